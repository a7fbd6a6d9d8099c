"""The SQL of operator jobs that DBOS's API has no method for: hand a workflow to the service, pick
what a garbage collection deletes, pick what a global timeout cancels.

Deleting and cancelling themselves go through the management store, the one implementation of both.
"""

from __future__ import annotations

from typing import Any

from .base import now_ms
from .database import Database
from .listener import NOTIFY_SQL

# enqueue.INTERNAL_QUEUE_NAME and enqueue.QUEUE_KEY; a store cannot import them (a test checks they agree).
HANDOFF_QUEUE = "_dbos_internal_queue"
HANDOFF_WAKE_KEY = '["queues"]'
# Kept by garbage collection, cancelled by a global timeout: a workflow not finished yet.
_IN_FLIGHT = "('PENDING', 'ENQUEUED', 'DELAYED')"

# The row an operator's process just set PENDING (resume, fork, recovery) becomes ENQUEUED, owned by
# nobody, on its own queue or else the internal one: any service process's dequeuer claims it (and
# bumps the fencing generation) as it claims any queued workflow.
_HAND_OFF = """
UPDATE {workflow_status} SET status = 'ENQUEUED', queue_name = COALESCE(queue_name, ?), executor_id = NULL,
    started_at_epoch_ms = NULL, updated_at = ?
WHERE workflow_uuid = ? AND owner_generation = ? AND status = 'PENDING'"""
# The created_at of the n-th newest workflow: "keep the newest n rows" as a time cutoff (as DBOS).
_NTH_NEWEST = "SELECT created_at FROM {workflow_status} ORDER BY created_at DESC LIMIT 1 OFFSET ?"
_FINISHED_BEFORE = (
    "SELECT workflow_uuid FROM {workflow_status} WHERE created_at < ? AND status NOT IN " + _IN_FLIGHT
    + " ORDER BY created_at, workflow_uuid LIMIT ?")
_IN_FLIGHT_CREATED_BY = (
    "SELECT workflow_uuid FROM {workflow_status} WHERE created_at <= ? AND status IN " + _IN_FLIGHT
    + " ORDER BY created_at, workflow_uuid LIMIT ?")


class OperationsStore:
    """Hand-off, and the selections behind garbage collection and the global timeout."""

    def __init__(self, db: Database) -> None:
        self.db = db
        sql = db.dialect.sql
        self._hand_off = sql(_HAND_OFF)
        self._nth_newest = sql(_NTH_NEWEST)
        self._finished_before = sql(_FINISHED_BEFORE)
        self._in_flight_created_by = sql(_IN_FLIGHT_CREATED_BY)
        self._notify = sql(NOTIFY_SQL) if db.dialect.name == "postgresql" else None

    def hand_off(self, workflow_id: str, generation: int) -> bool:
        """Make a workflow this process set PENDING wait on a queue instead; False if it changed meanwhile."""

        def work(cursor: Any) -> bool:
            cursor.execute(self._hand_off, (HANDOFF_QUEUE, now_ms(), workflow_id, generation))
            moved = bool(cursor.rowcount)
            if moved and self._notify is not None:
                cursor.execute(self._notify, (HANDOFF_WAKE_KEY,))  # the dequeuers of PostgreSQL wake now
            return moved

        return self.db.transaction(work)

    def nth_newest_created_at(self, n: int) -> int | None:
        """When the n-th newest workflow was created (n >= 1), or None when there are fewer."""
        rows = self.db.fetch(self._nth_newest, (n - 1,))
        return int(rows[0][0]) if rows else None

    def finished_before(self, cutoff_epoch_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` IDs of finished workflows created before the cutoff, oldest first."""
        return [r[0] for r in self.db.fetch(self._finished_before, (cutoff_epoch_ms, limit))]

    def in_flight_created_by(self, cutoff_epoch_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` IDs of unfinished workflows created at or before the cutoff, oldest first."""
        return [r[0] for r in self.db.fetch(self._in_flight_created_by, (cutoff_epoch_ms, limit))]
