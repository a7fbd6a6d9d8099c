"""The SQL of listings: workflows by DBOS's filters, and one workflow's steps a page at a time.

A listing is one SELECT built from the filters given; every value is a bound parameter (time bounds
as integers, so PostgreSQL keeps using the BIGINT indexes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .base import STEP_SELECT, WORKFLOW_SELECT, StepRecord, WorkflowRow
from .database import Database


@dataclass(frozen=True)
class TimeRange:
    """Inclusive bounds in epoch milliseconds on one column (None: unbounded)."""

    column: str
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class WorkflowQuery:
    """What ``list_workflows`` asks for: every filter given must hold (None: not filtered)."""

    workflow_ids: Sequence[str] | None = None
    status: Sequence[str] | None = None
    name: Sequence[str] | None = None
    executor_id: Sequence[str] | None = None
    app_version: Sequence[str] | None = None
    queue_name: Sequence[str] | None = None
    schedule_name: Sequence[str] | None = None  # the stored schedule that enqueued it
    forked_from: Sequence[str] | None = None
    parent_workflow_id: Sequence[str] | None = None
    workflow_id_prefix: Sequence[str] | None = None
    times: tuple[TimeRange, ...] = ()
    queues_only: bool = False
    was_forked_from: bool | None = None
    has_parent: bool | None = None
    user: Sequence[str] | None = None
    attributes: str | None = None  # JSON text: rows whose attributes contain it (PostgreSQL's @>)
    limit: int | None = None
    offset: int | None = None
    sort_desc: bool = False


# list filter -> column
_IN_FILTERS = (
    ("workflow_ids", "workflow_uuid"), ("status", "status"), ("name", "name"), ("executor_id", "executor_id"),
    ("app_version", "application_version"), ("queue_name", "queue_name"), ("forked_from", "forked_from"),
    ("parent_workflow_id", "parent_workflow_id"), ("user", "authenticated_user"), ("schedule_name", "schedule_name"),
)
_TIME_COLUMNS = frozenset({"created_at", "completed_at", "started_at_epoch_ms"})


class ListingStore:
    """Reads for listings, on the system database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite = db.dialect.name == "sqlite"
        self._steps = db.dialect.sql(
            f"SELECT {STEP_SELECT} FROM {{operation_outputs}} WHERE workflow_uuid = ? ORDER BY function_id"
            " LIMIT ? OFFSET ?"
        )

    def list_workflows(self, query: WorkflowQuery) -> list[WorkflowRow]:
        """Workflows matching ``query``, by creation time (then ID, so equal times keep one order)."""
        where, params = _conditions(query)
        direction = "DESC" if query.sort_desc else "ASC"
        sql = f"SELECT {WORKFLOW_SELECT} FROM {{workflow_status}}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY created_at {direction}, workflow_uuid {direction}"
        if query.limit is not None or query.offset:
            sql += " LIMIT ? OFFSET ?"
            params.extend([self._no_limit(query.limit), query.offset or 0])
        return [WorkflowRow(*row) for row in self.db.fetch(self.db.dialect.sql(sql), params)]

    def list_steps(self, workflow_id: str, limit: int | None = None, offset: int | None = None) -> list[StepRecord]:
        """A workflow's recorded steps in step order, ``offset`` skipped and at most ``limit`` of them."""
        rows = self.db.fetch(self._steps, (workflow_id, self._no_limit(limit), offset or 0))
        return [StepRecord(*row) for row in rows]

    def _no_limit(self, limit: int | None) -> int | None:
        """SQLite spells "no limit" -1; PostgreSQL takes NULL."""
        if limit is not None:
            return limit
        return -1 if self._sqlite else None


def _conditions(query: WorkflowQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for attribute, column in _IN_FILTERS:
        values = getattr(query, attribute)
        if values is not None:
            values = list(values)
            where.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0")
            params.extend(values)
    if query.workflow_id_prefix is not None:
        prefixes = list(query.workflow_id_prefix)
        # substr, not LIKE: a prefix may hold % or _ (test_, say), which LIKE would read as patterns.
        where.append("(" + " OR ".join("substr(workflow_uuid, 1, ?) = ?" for _ in prefixes) + ")"
                     if prefixes else "1 = 0")
        for prefix in prefixes:
            params.extend([len(prefix), prefix])
    for time_range in query.times:
        if time_range.column not in _TIME_COLUMNS:
            raise ValueError(f"not a time column: {time_range.column}")
        for bound, operator in ((time_range.low, ">="), (time_range.high, "<=")):
            if bound is not None:
                where.append(f"{time_range.column} {operator} ?")
                params.append(int(bound))
    if query.queues_only:
        where.append("queue_name IS NOT NULL")
    if query.was_forked_from is not None:
        where.append("was_forked_from = ?")
        params.append(1 if query.was_forked_from else 0)
    if query.attributes is not None:  # the caller refuses it on SQLite, whose JSON cannot match @> exactly
        where.append("attributes @> ?J")
        params.append(query.attributes)
    if query.has_parent is not None:
        where.append("parent_workflow_id IS NOT NULL" if query.has_parent else "parent_workflow_id IS NULL")
    return where, params
