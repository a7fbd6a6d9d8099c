"""The SQL of the Debouncer: push a debounced DELAYED workflow's time back and give it the latest inputs.

A debounce of a key first tries this one UPDATE (the common case: the key's workflow is still
DELAYED); only when nothing matched does the caller enqueue a new workflow, whose insert the
deduplication index makes unique per key, so racing debouncers converge on one workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import now_ms
from .database import Database
from .listener import NOTIFY_SQL

# The new time is capped at the workflow's debounce deadline (CASE, not LEAST: the same SQL on both).
_BOUNCE = """
UPDATE {workflow_status} SET inputs = ?J, updated_at = ?,
    delay_until_epoch_ms = CASE WHEN debounce_deadline_epoch_ms IS NOT NULL AND debounce_deadline_epoch_ms < ?
        THEN debounce_deadline_epoch_ms ELSE ? END
WHERE name = ? AND queue_name = ? AND deduplication_id = ? AND status = 'DELAYED' AND is_debounced = 1
RETURNING workflow_uuid"""
_HOLDER = """
SELECT workflow_uuid, is_debounced, name FROM {workflow_status}
WHERE queue_name = ? AND deduplication_id = ? AND status IN ('DELAYED', 'ENQUEUED', 'PENDING')"""


@dataclass(frozen=True)
class Holder:
    """The workflow holding a debounce key that a bounce could not extend."""

    workflow_id: str
    is_debounced: bool
    name: str


class DebounceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.is_postgres = db.dialect.name == "postgresql"
        self._bounce = db.dialect.sql(_BOUNCE)
        self._holder = db.dialect.sql(_HOLDER)
        self._notify = db.dialect.sql(NOTIFY_SQL) if self.is_postgres else ""

    def bounce(self, name: str, queue_name: str, deduplication_id: str, delay_until_epoch_ms: int, inputs: str,
               wake_key: str) -> str | None:
        """Extend the key's DELAYED debounced workflow with these inputs; its ID, or None if there is none."""

        def work(cursor: Any) -> str | None:
            cursor.execute(self._bounce, (inputs, now_ms(), delay_until_epoch_ms, delay_until_epoch_ms, name,
                                          queue_name, deduplication_id))
            row = cursor.fetchone()
            if row is not None and self.is_postgres:
                cursor.execute(self._notify, (wake_key,))
            return str(row[0]) if row is not None else None

        return self.db.transaction(work)

    def holder(self, queue_name: str, deduplication_id: str) -> Holder | None:
        rows = self.db.fetch(self._holder, (queue_name, deduplication_id))
        return Holder(str(rows[0][0]), bool(rows[0][1]), str(rows[0][2])) if rows else None
