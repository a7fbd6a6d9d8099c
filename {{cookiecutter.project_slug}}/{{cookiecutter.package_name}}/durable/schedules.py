"""Schedules kept in the database (DBOS 2.31.1's ``DBOS.create_schedule`` and friends).

A schedule names a workflow (by its registered name, and its class for a class method), a cron
expression read in an optional time zone, a context value passed to every run, and optionally a
queue. Every process's scheduler thread (``scheduler.py``) runs every ACTIVE schedule; a change made
here wakes this process's thread at once. Called from a workflow's body, each operation is a step
(``DBOS.createSchedule``, ``DBOS.listSchedules``, ...), so replay returns what the first run saw;
``apply_schedules``, ``backfill_schedule`` and ``trigger_schedule`` refuse to run there, as in DBOS.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypedDict, TypeVar

from .context import current_context, workflow_body
from .cron import check_cron, zone
from .error import DBOSException
from .handles import WorkflowHandle
from .queues import QUEUES
from .recorded_calls import as_step
from .registered_queues import retrieve_queue
from .registry import workflow_of
from .runtime import Runtime
from .schedule_runs import backfill, trigger
from .store.schedule_store import ScheduleExistsError, ScheduleRow

logger = logging.getLogger(__name__)
T = TypeVar("T")


class WorkflowSchedule(TypedDict):
    """A stored schedule, as ``DBOS.list_schedules``/``get_schedule`` return it (context decoded)."""

    schedule_id: str
    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    status: str
    context: Any
    last_fired_at: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None


class ScheduleInput(TypedDict, total=False):
    """One entry of ``DBOS.apply_schedules``: the first three keys are required."""

    schedule_name: str
    workflow_fn: Callable[..., Any]
    schedule: str
    context: Any
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None


def _as_step(rt: Runtime, step_name: str, work: Callable[[], T]) -> T:
    """Run ``work`` as a step of the calling workflow (recorded, replayed), or plainly outside one."""
    return as_step(rt, step_name, work)


def _refuse_in_workflow(what: str) -> None:
    if workflow_body(current_context()) is not None:
        raise DBOSException(f"DBOS.{what} cannot be called from within a workflow")


def _changed(rt: Runtime) -> None:
    rt.schedule_wakeup.set()  # this process's scheduler looks at the table now


def _row(rt: Runtime, *, schedule_name: str, workflow_fn: Callable[..., Any], schedule: str, context: Any,
         automatic_backfill: bool, cron_timezone: str | None, queue_name: str | None) -> ScheduleRow:
    """A new schedule's row, every field checked as DBOS checks it."""
    check_cron(schedule)
    if queue_name is not None and queue_name not in QUEUES and retrieve_queue(rt, queue_name) is None:
        raise DBOSException(f"Queue '{queue_name}' is not declared. Please create the queue before using it "
                            "in a schedule.")
    try:
        info, bound = workflow_of(workflow_fn)
    except DBOSException:
        name = getattr(workflow_fn, "__qualname__", repr(workflow_fn))
        raise DBOSException(f"Workflow function '{name}' is not registered") from None
    if info.kind != "workflow" or info.name.startswith("<temp>."):
        raise DBOSException(f"Workflow function '{info.name}' is not registered (schedule a @DBOS.workflow())")
    if info.method_kind == "instance":
        raise DBOSException("Configured instance methods cannot be used as scheduled workflows")
    if info.method_kind is None and bound:
        raise DBOSException(f"Function target appears to be a class, but is not properly registered: "
                            f"decorate the class of {info.name} with @DBOS.dbos_class()")
    return schedule_row(rt, schedule_name=schedule_name, workflow_name=info.name,
                        workflow_class_name=info.class_name if info.method_kind == "class" else None,
                        schedule=schedule, context=context, automatic_backfill=automatic_backfill,
                        cron_timezone=cron_timezone, queue_name=queue_name)


def schedule_row(rt: Runtime, *, schedule_name: str, workflow_name: str, workflow_class_name: str | None,
                 schedule: str, context: Any, automatic_backfill: bool, cron_timezone: str | None,
                 queue_name: str | None) -> ScheduleRow:
    """A new schedule's row for a workflow named as stored (``DBOSClient``'s way), cron and zone checked."""
    check_cron(schedule)
    zone(cron_timezone)
    if not isinstance(schedule_name, str) or not schedule_name:
        raise DBOSException(f"schedule_name must be a non-empty string, got {schedule_name!r}")
    return ScheduleRow(
        schedule_id=str(uuid.uuid4()), schedule_name=schedule_name, workflow_name=workflow_name,
        workflow_class_name=workflow_class_name, schedule=schedule,
        status="ACTIVE", context=rt.codec.encode(context, what=f"context of schedule {schedule_name!r}"),
        last_fired_at=None, automatic_backfill=bool(automatic_backfill), cron_timezone=cron_timezone,
        queue_name=queue_name,
    )


def _public(rt: Runtime, row: ScheduleRow) -> WorkflowSchedule:
    """A row as DBOS returns it; a context this code can no longer decode comes back as its stored text."""
    context: Any = None
    if row.context is not None:
        try:
            context = rt.codec.decode(row.context)
        except Exception as exc:
            logger.warning("the context of schedule %r cannot be decoded (%s); returning it as stored",
                           row.schedule_name, exc)
            context = row.context
    return WorkflowSchedule(
        schedule_id=row.schedule_id, schedule_name=row.schedule_name, workflow_name=row.workflow_name,
        workflow_class_name=row.workflow_class_name, schedule=row.schedule, status=row.status, context=context,
        last_fired_at=row.last_fired_at, automatic_backfill=row.automatic_backfill,
        cron_timezone=row.cron_timezone, queue_name=row.queue_name,
    )


def _values(value: str | Sequence[str] | None) -> list[str] | None:
    return None if value is None else [value] if isinstance(value, str) else list(value)


# -- the API ---------------------------------------------------------------------------------------


def create_schedule(rt: Runtime, **fields: Any) -> None:
    """``DBOS.create_schedule``: store a new schedule; its name must be free."""
    store_schedule(rt, _row(rt, **fields))


def store_schedule(rt: Runtime, row: ScheduleRow) -> None:
    """Store a new schedule's row (a step in a workflow's body); its name must be free."""

    def create() -> None:
        try:
            rt.schedule_store.create(row)
        except ScheduleExistsError:
            raise DBOSException(f"Schedule '{row.schedule_name}' already exists") from None
        _changed(rt)

    _as_step(rt, "DBOS.createSchedule", create)


def list_schedules(rt: Runtime, *, status: str | Sequence[str] | None = None,
                   workflow_name: str | Sequence[str] | None = None,
                   schedule_name_prefix: str | Sequence[str] | None = None) -> list[WorkflowSchedule]:
    """``DBOS.list_schedules``: the schedules matching every filter given, oldest first."""

    def read() -> list[WorkflowSchedule]:
        rows = rt.schedule_store.list(status=_values(status), workflow_name=_values(workflow_name),
                                      name_prefix=_values(schedule_name_prefix))
        return [_public(rt, row) for row in rows]

    return _as_step(rt, "DBOS.listSchedules", read)


def get_schedule(rt: Runtime, name: str) -> WorkflowSchedule | None:
    def read() -> WorkflowSchedule | None:
        row = rt.schedule_store.get(name)
        return None if row is None else _public(rt, row)

    return _as_step(rt, "DBOS.getSchedule", read)


def delete_schedule(rt: Runtime, name: str) -> None:
    """``DBOS.delete_schedule``: no error if there is none by that name."""

    def delete() -> None:
        rt.schedule_store.delete(name)
        _changed(rt)

    _as_step(rt, "DBOS.deleteSchedule", delete)


def set_schedule_status(rt: Runtime, name: str, status: str) -> None:
    """``DBOS.pause_schedule`` (PAUSED) and ``DBOS.resume_schedule`` (ACTIVE)."""

    def update() -> None:
        rt.schedule_store.set_status(name, status)
        _changed(rt)

    _as_step(rt, "DBOS.pauseSchedule" if status == "PAUSED" else "DBOS.resumeSchedule", update)


def apply_schedules(rt: Runtime, schedules: Sequence[ScheduleInput]) -> None:
    """``DBOS.apply_schedules``: create or replace these schedules in one transaction.

    A replaced schedule keeps its ID, its status (a paused one stays paused) and when it last fired.
    """
    _refuse_in_workflow("apply_schedules")
    rows = []
    for i, entry in enumerate(schedules):
        for required in ("schedule_name", "workflow_fn", "schedule"):
            if required not in entry:
                raise DBOSException(f"Schedule entry {i} is missing required field '{required}'")
        rows.append(_row(rt, schedule_name=entry["schedule_name"], workflow_fn=entry["workflow_fn"],
                         schedule=entry["schedule"], context=entry.get("context"),
                         automatic_backfill=entry.get("automatic_backfill", False),
                         cron_timezone=entry.get("cron_timezone"), queue_name=entry.get("queue_name")))
    store_schedules(rt, rows)


def store_schedules(rt: Runtime, rows: Sequence[ScheduleRow]) -> None:
    """Create or replace these schedules in one transaction (see ``apply_schedules``)."""
    rt.schedule_store.upsert(rows)
    _changed(rt)


def backfill_schedule(rt: Runtime, name: str, start: datetime, end: datetime) -> list[WorkflowHandle[None]]:
    """``DBOS.backfill_schedule``: enqueue the ticks strictly between ``start`` and ``end`` (naive = UTC)."""
    _refuse_in_workflow("backfill_schedule")
    return [WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id)) for workflow_id in backfill(rt, name, start, end)]


def trigger_schedule(rt: Runtime, name: str) -> WorkflowHandle[None]:
    """``DBOS.trigger_schedule``: enqueue one run now, with the schedule's context."""
    _refuse_in_workflow("trigger_schedule")
    workflow_id = trigger(rt, name)
    return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))
