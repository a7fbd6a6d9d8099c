"""One run of a stored schedule: what a tick, a trigger or a backfill enqueues, under which workflow ID.

A tick's ID is ``sched-<schedule name>-<tick, ISO 8601 in the schedule's zone>``, the same in every
process, so the ENQUEUED insert's ``ON CONFLICT DO NOTHING`` keeps one run per tick however many
processes fire it, and a backfill over ticks that already ran enqueues nothing new. The workflow
gets ``(tick, context)``; a class method's class comes first, found by its registered name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .context import SetWorkflowID
from .cron import as_utc_if_naive, cron_ticks, zone
from .enqueue import enqueue_workflow
from .error import DBOSException
from .queues import INTERNAL_QUEUE, QUEUES
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime
from .store.schedule_store import ScheduleRow

logger = logging.getLogger(__name__)

# A backfill enqueues at most this many runs: a window of years over a per-second cron is a mistake.
MAX_BACKFILL_RUNS = 10_000


def scheduled_run_id(schedule_name: str, tick: datetime) -> str:
    return f"sched-{schedule_name}-{tick.isoformat()}"


@dataclass(frozen=True)
class _NamedQueue:
    """A queue this process has not declared, by name: its rows wait for the processes that declare it."""

    name: str
    partitioned: bool = False
    database_backed_queue: bool = True  # its limits are the registered row's (if any), read by the dequeuer


@dataclass(frozen=True)
class ScheduleTarget:
    """What a schedule runs, resolved in this process."""

    schedule_name: str
    info: FunctionInfo
    bound: tuple[Any, ...]  # (cls,) for a class method
    context: Any
    queue_name: str | None


def registered_workflow(name: str) -> FunctionInfo | None:
    """The workflow registered here under ``name`` (its unversioned code, else its latest version)."""
    info = REGISTRY.find_workflow(name)
    if info is None:
        versions = REGISTRY.versions_of(name)
        info = REGISTRY.find_workflow(name, versions[-1]) if versions else None
    return info


def _elsewhere(*_args: Any, **_kwargs: Any) -> Any:
    raise DBOSException("this workflow is implemented by another process: enqueue it, do not call it")


def resolve(rt: Runtime, row: ScheduleRow, *, by_name: bool = False) -> ScheduleTarget:
    """The registered workflow (and class) a stored schedule names; raise if this process has none.

    ``by_name`` (a ``DBOSClient``, which has no workflow code) targets a plain workflow by its stored name.
    """
    info = registered_workflow(row.workflow_name)
    if info is None and by_name and row.workflow_class_name is None:
        info = FunctionInfo(row.workflow_name, _elsewhere, "workflow")
    if info is None:
        raise DBOSException(f"Workflow function '{row.workflow_name}' of schedule '{row.schedule_name}' "
                            "is not registered in this process")
    bound: tuple[Any, ...] = ()
    if row.workflow_class_name is not None:
        klass = REGISTRY.classes.get(row.workflow_class_name)
        if klass is None:
            raise DBOSException(f"Class '{row.workflow_class_name}' of schedule '{row.schedule_name}' "
                                "is not registered in this process")
        bound = (klass,)
    context = rt.codec.decode(row.context) if row.context is not None else None
    return ScheduleTarget(row.schedule_name, info, bound, context, row.queue_name)


def enqueue_run(rt: Runtime, target: ScheduleTarget, tick: datetime, workflow_id: str) -> str:
    """Enqueue the run of ``tick`` under ``workflow_id`` (or find it enqueued already); return the ID."""
    queue: Any = INTERNAL_QUEUE
    if target.queue_name is not None:
        queue = QUEUES.get(target.queue_name) or _NamedQueue(target.queue_name)
    with SetWorkflowID(workflow_id):
        return enqueue_workflow(rt, queue, target.info, (*target.bound, tick, target.context), {},
                                schedule_name=target.schedule_name)


def stored_schedule(rt: Runtime, name: str) -> ScheduleRow:
    row = rt.schedule_store.get(name)
    if row is None:
        raise DBOSException(f"Schedule '{name}' does not exist")
    return row


def backfill(rt: Runtime, name: str, start: datetime, end: datetime, *, by_name: bool = False) -> list[str]:
    """Enqueue every tick of the schedule strictly between ``start`` and ``end``; return their IDs, in order."""
    row = stored_schedule(rt, name)
    target = resolve(rt, row, by_name=by_name)
    start, end = as_utc_if_naive(start), as_utc_if_naive(end)
    ticks: list[datetime] = []
    for tick in cron_ticks(row.schedule, start, zone(row.cron_timezone)):
        if tick >= end:
            break
        if len(ticks) == MAX_BACKFILL_RUNS:
            raise DBOSException(f"backfilling schedule '{name}' from {start.isoformat()} to {end.isoformat()} "
                                f"would enqueue more than {MAX_BACKFILL_RUNS} runs; backfill a shorter window")
        ticks.append(tick)
    return [enqueue_run(rt, target, tick, scheduled_run_id(name, tick)) for tick in ticks]


def trigger(rt: Runtime, name: str, *, by_name: bool = False) -> str:
    """Enqueue one run of the schedule now, outside its cron; return its ID."""
    target = resolve(rt, stored_schedule(rt, name), by_name=by_name)
    now = datetime.now(UTC)
    return enqueue_run(rt, target, now, f"sched-{name}-trigger-{now.isoformat()}")
