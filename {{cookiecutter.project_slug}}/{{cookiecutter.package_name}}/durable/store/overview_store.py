"""The SQL of the overview that the dashboard and the metrics read: keyset pages of workflows, counts.

A page is ``ORDER BY created_at DESC, workflow_uuid DESC`` after a cursor, the last row of the page
before, so reading page 1000 costs what page 1 does: the database walks an index from the cursor
(``workflow_status_*_created_uuid``, one per filter the dashboard offers) instead of counting past
an OFFSET. Counts read only waiting and running rows (ENQUEUED, PENDING), through the status and
queue indexes, never the finished history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import WORKFLOW_SELECT, WorkflowRow
from .database import Database

_QUEUE_COUNTS = """
SELECT queue_name, status, COUNT(*) FROM {workflow_status}
WHERE status IN ('ENQUEUED', 'PENDING') AND queue_name IS NOT NULL
GROUP BY queue_name, status"""
_STATUS_COUNT = "SELECT COUNT(*) FROM {workflow_status} WHERE status = ?"
# Only here: replay and DBOS.list_workflow_steps never read a step's inputs (step_inputs.py).
_STEP_INPUTS = "SELECT function_id, inputs FROM {operation_outputs} WHERE workflow_uuid = ? AND inputs IS NOT NULL"


@dataclass(frozen=True)
class PageFilter:
    """What the dashboard filters by; None is no filter. Times are epoch ms, inclusive."""

    status: str | None = None
    name: str | None = None
    queue_name: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


class OverviewStore:
    """Pages and counts on the system database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue_counts = db.dialect.sql(_QUEUE_COUNTS)
        self._status_count = db.dialect.sql(_STATUS_COUNT)
        self._step_inputs = db.dialect.sql(_STEP_INPUTS)

    def page(self, where: PageFilter, after: tuple[int, str] | None, limit: int) -> list[WorkflowRow]:
        """Up to ``limit`` workflows, newest first, older than ``after`` (created_at, workflow ID)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("status", where.status), ("name", where.name), ("queue_name", where.queue_name)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.start_ms is not None:
            clauses.append("created_at >= ?")
            params.append(where.start_ms)
        if where.end_ms is not None:
            clauses.append("created_at <= ?")
            params.append(where.end_ms)
        if after is not None:
            # The first term bounds the index range; the second only sorts out rows of the same millisecond.
            clauses.append("created_at <= ? AND (created_at < ? OR workflow_uuid < ?)")
            params.extend([after[0], after[0], after[1]])
        sql = f"SELECT {WORKFLOW_SELECT} FROM {{workflow_status}}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at DESC, workflow_uuid DESC LIMIT ?"
        params.append(limit)
        return [WorkflowRow(*row) for row in self.db.fetch(self.db.dialect.sql(sql), params)]

    def queue_counts(self) -> dict[str, dict[str, int]]:
        """``{queue: {"ENQUEUED": n, "PENDING": m}}`` for queues with work waiting or running."""
        found: dict[str, dict[str, int]] = {}
        for queue, status, count in self.db.fetch(self._queue_counts, ()):
            found.setdefault(queue, {"ENQUEUED": 0, "PENDING": 0})[status] = int(count)
        return found

    def count(self, status: str) -> int:
        return int(self.db.fetch(self._status_count, (status,))[0][0])

    def step_inputs(self, workflow_id: str) -> dict[int, str]:
        """The recorded inputs (JSON text) of a workflow's steps that have them, by step ID."""
        return {int(row[0]): row[1] for row in self.db.fetch(self._step_inputs, (workflow_id,))}
