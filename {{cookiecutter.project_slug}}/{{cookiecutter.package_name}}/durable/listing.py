"""Reading workflows for callers: lists with DBOS's filters, one workflow's status, one workflow's steps.

The ``DBOS`` class and the admin server both answer from here, in DBOS's shapes (``handles.py``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .error import DBOSException
from .handles import StepInfo, WorkflowStatus, step_info
from .runtime import Runtime


def list_workflows(
    rt: Runtime,
    *,
    workflow_ids: list[str] | None = None,
    status: str | list[str] | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    name: str | list[str] | None = None,
    app_version: str | list[str] | None = None,
    executor_id: str | list[str] | None = None,
    workflow_id_prefix: str | None = None,
    queue_name: str | list[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    sort_desc: bool = False,
    load_input: bool = True,
    load_output: bool = True,
    queues_only: bool = False,
    attributes: dict[str, Any] | None = None,
) -> list[WorkflowStatus]:
    """Workflows matching every filter given, oldest first (or newest with ``sort_desc``).

    ``queues_only`` lists workflows of queues and, without a ``status`` filter, only those still
    waiting or running (``DBOS.list_queued_workflows``).
    """
    if attributes and rt.sys_dialect.name != "postgresql":
        # SQLite's JSON functions cannot match PostgreSQL's containment (@>) exactly: refuse, as DBOS does.
        raise DBOSException("Filtering workflows by attributes is not supported on SQLite. "
                            "Use a Postgres system database to filter by attributes.")
    statuses = _as_list(status)
    if queues_only and statuses is None:
        statuses = ["ENQUEUED", "PENDING"]
    rows = rt.checkpoint_store.list_workflows(
        workflow_ids=workflow_ids,
        status=statuses,
        name=_as_list(name),
        app_version=_as_list(app_version),
        executor_id=_as_list(executor_id),
        queue_name=_as_list(queue_name),
        queues_only=queues_only,
        start_time_ms=_epoch_ms(start_time),
        end_time_ms=_epoch_ms(end_time),
        workflow_id_prefix=workflow_id_prefix,
        limit=limit,
        offset=offset,
        sort_desc=sort_desc,
        attributes=json.dumps(attributes) if attributes else None,
    )
    return [WorkflowStatus.from_row(rt, r, load_input=load_input, load_output=load_output) for r in rows]


def workflow_status(rt: Runtime, workflow_id: str) -> WorkflowStatus | None:
    row = rt.checkpoint_store.get_workflow(workflow_id)
    return WorkflowStatus.from_row(rt, row) if row is not None else None


def list_steps(rt: Runtime, workflow_id: str) -> list[StepInfo]:
    return [step_info(rt, record) for record in rt.checkpoint_store.load_steps(workflow_id).values()]


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _epoch_ms(value: str | None) -> int | None:
    """DBOS takes ISO-8601 timestamps for time filters."""
    if value is None:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
