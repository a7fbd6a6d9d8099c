"""Reading workflows for callers: lists with DBOS's filters, one workflow's status, one workflow's steps.

The ``DBOS`` class and the admin server both answer from here, in DBOS's shapes (``handles.py``).

Time filters take ISO-8601 strings, as in DBOS; stamps are whole epoch milliseconds, and a stamping
call returns only once its millisecond is over (``store.base.settle_past``). So for a bound read from
the clock (``datetime.now().isoformat()``, microseconds included):
- a start bound (``start_time``, ``completed_after``, ``dequeued_after``) matches stamps ``>= floor(ms)``:
  what happened after the bound was read, however soon after;
- an end bound (``end_time``, ``completed_before``, ``dequeued_before``) with a sub-millisecond part
  matches stamps ``<= floor(ms) - 1``: what finished before the bound was read, not what began in the
  same millisecond right after it. A bound on a whole millisecond matches ``<= ms``, as in DBOS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from .error import DBOSException
from .handles import StepInfo, WorkflowStatus, step_info
from .handles import workflow_status as read_status
from .recorded_calls import GET_STATUS, LIST_QUEUED_WORKFLOWS, LIST_STEPS, LIST_WORKFLOWS, as_step
from .runtime import Runtime
from .store.listing_store import TimeRange, WorkflowQuery

# Filters of DBOS 2.31.1 on data this runtime does not record (yet): refused, never ignored, since an
# ignored filter would return workflows the caller asked to leave out.
_NOT_RECORDED = {
    "application_name": "application names",
}
# Without a status filter, list_queued_workflows shows what still waits or runs (DELAYED is DBOS's).
_QUEUED_STATUSES = ["DELAYED", "ENQUEUED", "PENDING"]


class QueuedWorkflowFilters(TypedDict, total=False):
    """The keyword arguments of ``DBOS.list_queued_workflows`` (DBOS 2.31.1's), each optional."""

    workflow_ids: list[str] | None
    status: str | list[str] | None
    start_time: str | None
    end_time: str | None
    completed_after: str | None
    completed_before: str | None
    dequeued_after: str | None
    dequeued_before: str | None
    name: str | list[str] | None
    app_version: str | list[str] | None
    forked_from: str | list[str] | None
    parent_workflow_id: str | list[str] | None
    user: str | list[str] | None
    queue_name: str | list[str] | None
    limit: int | None
    offset: int | None
    sort_desc: bool
    workflow_id_prefix: str | list[str] | None
    load_input: bool
    load_output: bool
    executor_id: str | list[str] | None
    has_parent: bool | None
    attributes: dict[str, Any] | None
    application_name: str | list[str] | None


class WorkflowFilters(QueuedWorkflowFilters, total=False):
    """The keyword arguments of ``DBOS.list_workflows`` (DBOS 2.31.1's), each optional."""

    queues_only: bool
    was_forked_from: bool | None
    schedule_name: str | list[str] | None


def list_workflows(
    rt: Runtime,
    *,
    workflow_ids: list[str] | None = None,
    status: str | list[str] | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    completed_after: str | None = None,
    completed_before: str | None = None,
    dequeued_after: str | None = None,
    dequeued_before: str | None = None,
    name: str | list[str] | None = None,
    app_version: str | list[str] | None = None,
    forked_from: str | list[str] | None = None,
    parent_workflow_id: str | list[str] | None = None,
    queue_name: str | list[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    sort_desc: bool = False,
    workflow_id_prefix: str | list[str] | None = None,
    load_input: bool = True,
    load_output: bool = True,
    executor_id: str | list[str] | None = None,
    queues_only: bool = False,
    schedule_name: str | list[str] | None = None,
    was_forked_from: bool | None = None,
    has_parent: bool | None = None,
    user: str | list[str] | None = None,
    attributes: dict[str, Any] | None = None,
    **not_recorded: Any,
) -> list[WorkflowStatus]:
    """Workflows matching every filter given, oldest first (or newest with ``sort_desc``).

    ``queues_only`` lists workflows of queues and, without a ``status`` filter, only those still
    waiting or running (``DBOS.list_queued_workflows``).
    """
    _refuse_unrecorded(not_recorded)
    if attributes and rt.sys_dialect.name != "postgresql":
        # SQLite's JSON functions cannot match PostgreSQL's containment (@>) exactly: refuse, as DBOS does.
        raise DBOSException("Filtering workflows by attributes is not supported on SQLite. "
                            "Use a Postgres system database to filter by attributes.")
    statuses = _as_list(status)
    if queues_only and not statuses:
        statuses = list(_QUEUED_STATUSES)
    query = WorkflowQuery(
        workflow_ids=workflow_ids or None,  # DBOS: an empty list of IDs filters nothing
        status=statuses,
        name=_as_list(name),
        app_version=_as_list(app_version),
        executor_id=_as_list(executor_id),
        queue_name=_as_list(queue_name),
        schedule_name=_as_list(schedule_name),
        forked_from=_as_list(forked_from),
        parent_workflow_id=_as_list(parent_workflow_id),
        workflow_id_prefix=_as_list(workflow_id_prefix),
        times=tuple(r for r in (
            _time_range("created_at", start_time, end_time),
            _time_range("completed_at", completed_after, completed_before),
            _time_range("started_at_epoch_ms", dequeued_after, dequeued_before),
        ) if r is not None),
        queues_only=queues_only,
        was_forked_from=was_forked_from,
        has_parent=has_parent,
        limit=_count("limit", limit),
        offset=_count("offset", offset),
        sort_desc=sort_desc,
        user=_as_list(user),
        attributes=json.dumps(attributes) if attributes else None,
    )

    def read() -> list[WorkflowStatus]:
        rows = rt.listing_store.list_workflows(query)
        return [WorkflowStatus.from_row(rt, r, load_input=load_input, load_output=load_output) for r in rows]

    return as_step(rt, LIST_QUEUED_WORKFLOWS if queues_only else LIST_WORKFLOWS, read)


def workflow_status(rt: Runtime, workflow_id: str) -> WorkflowStatus | None:
    """``DBOS.get_workflow_status`` (in a workflow's body, its step ``DBOS.getStatus``)."""
    return as_step(rt, GET_STATUS, lambda: read_status(rt, workflow_id))


def list_steps(
    rt: Runtime, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
) -> list[StepInfo]:
    """A workflow's steps in order; ``load_output=False`` leaves outputs and errors undecoded (None)."""
    page = (_count("limit", limit), _count("offset", offset))

    def read() -> list[StepInfo]:
        rt.flush_held(workflow_id)  # a run on another thread here: its finished steps show, as in DBOS
        return [step_info(rt, record, load_output=load_output)
                for record in rt.listing_store.list_steps(workflow_id, *page)]

    return as_step(rt, LIST_STEPS, read)


def _refuse_unrecorded(filters: dict[str, Any]) -> None:
    for key, value in filters.items():
        if key not in _NOT_RECORDED:
            raise TypeError(f"list_workflows() got an unexpected keyword argument {key!r}")
        if value is not None:
            raise DBOSException(f"list_workflows({key}=...) is not supported: this runtime does not record "
                                f"{_NOT_RECORDED[key]}")


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _count(what: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DBOSException(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def _time_range(column: str, after: str | None, before: str | None) -> TimeRange | None:
    if not after and not before:
        return None
    low = _epoch_us(after, column) if after else None
    high = _epoch_us(before, column) if before else None
    return TimeRange(
        column,
        low // 1000 if low is not None else None,
        (high // 1000 - (1 if high % 1000 else 0)) if high is not None else None,
    )


def _epoch_us(value: str, column: str) -> int:
    """An ISO-8601 time as whole epoch microseconds (a time without offset is local, as in DBOS)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise DBOSException(f"time filter on {column}: {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the local zone, as datetime.timestamp() reads a naive time
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
