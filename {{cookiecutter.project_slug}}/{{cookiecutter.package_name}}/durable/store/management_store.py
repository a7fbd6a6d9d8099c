"""The SQL of operator actions on workflows: cancel, resume, fork, and the timeout sweep."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import GET_WORKFLOW, STEP_SELECT, WORKFLOW_EXISTS, WORKFLOW_SELECT, WorkflowRow, now_ms
from .database import Database
from .listener import NOTIFY_SQL

# SUCCESS and ERROR are outcomes; anything else (PENDING, ENQUEUED, dead-lettered) can be cancelled.
_CANCEL = """
UPDATE {workflow_status} SET status = 'CANCELLED', updated_at = ?, completed_at = ?
WHERE workflow_uuid = ? AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED')"""
_CHILDREN = "SELECT workflow_uuid FROM {workflow_status} WHERE parent_workflow_id = ?"
# Back to PENDING under a new fencing generation (a late write of the old run is refused), owned
# by the caller, with the recovery counter and the deadline cleared, as DBOS does. Its deduplication
# ID was released when it finished and may be held by another workflow now: it is dropped, as in DBOS.
_RESUME = """
UPDATE {workflow_status} SET status = 'PENDING', executor_id = ?, owner_generation = owner_generation + 1,
    recovery_attempts = 0, workflow_deadline_epoch_ms = NULL, output = NULL, error = NULL,
    completed_at = NULL, updated_at = ?, deduplication_id = NULL
WHERE workflow_uuid = ? AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
RETURNING {columns}"""
_FORK = """
INSERT INTO {workflow_status} (workflow_uuid, status, name, class_name, config_name, inputs, request,
    executor_id, owner_generation, application_version, application_id, recovery_attempts, queue_name,
    parent_workflow_id, created_at, updated_at, workflow_version, attributes, authenticated_user, assumed_role,
    authenticated_roles)
SELECT ?, 'PENDING', name, class_name, config_name, inputs, request, ?, 0, COALESCE(?, application_version),
    application_id, 0, NULL, NULL, ?, ?, workflow_version, attributes, authenticated_user, assumed_role,
    authenticated_roles
FROM {workflow_status} WHERE workflow_uuid = ?
ON CONFLICT (workflow_uuid) DO NOTHING"""
_FORK_STEPS = """
INSERT INTO {operation_outputs} (workflow_uuid, {step_columns})
SELECT ?, {step_columns} FROM {operation_outputs} WHERE workflow_uuid = ? AND function_id < ?"""
_FORK_EVENT_HISTORY = """
INSERT INTO {workflow_events_history} (workflow_uuid, function_id, key, value)
SELECT ?, function_id, key, value FROM {workflow_events_history} WHERE workflow_uuid = ? AND function_id < ?"""
# The fork's streams: the entries written by the steps it keeps (a step's retries included).
_FORK_STREAMS = """
INSERT INTO {streams} (workflow_uuid, key, stream_offset, value, function_id)
SELECT ?, key, stream_offset, value, function_id FROM {streams} WHERE workflow_uuid = ? AND function_id < ?"""
# The fork's events: for each key, the value its latest kept step set.
_FORK_EVENTS = """
INSERT INTO {workflow_events} (workflow_uuid, key, value)
SELECT h.workflow_uuid, h.key, h.value FROM {workflow_events_history} h
WHERE h.workflow_uuid = ? AND h.function_id = (
    SELECT MAX(function_id) FROM {workflow_events_history} l WHERE l.workflow_uuid = h.workflow_uuid AND l.key = h.key)"""
_SET_ATTRIBUTES = "UPDATE {workflow_status} SET attributes = ?J, updated_at = ? WHERE workflow_uuid = ?"
_PAST_DEADLINE = """
SELECT workflow_uuid FROM {workflow_status}
WHERE status = 'PENDING' AND workflow_deadline_epoch_ms IS NOT NULL AND workflow_deadline_epoch_ms <= ?
ORDER BY workflow_deadline_epoch_ms LIMIT ?"""


class ManagementStore:
    """Cancel, resume and fork, on the system database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.dialect

        def build(text: str) -> str:
            return dialect.sql(text.replace("{columns}", WORKFLOW_SELECT).replace("{step_columns}", STEP_SELECT))

        self._cancel = build(_CANCEL)
        self._children = build(_CHILDREN)
        self._resume = build(_RESUME)
        self._fork = build(_FORK)
        self._fork_steps = build(_FORK_STEPS)
        self._fork_event_history = build(_FORK_EVENT_HISTORY)
        self._fork_events = build(_FORK_EVENTS)
        self._fork_streams = build(_FORK_STREAMS)
        self._get_workflow = build(GET_WORKFLOW)
        self._exists = build(WORKFLOW_EXISTS)
        self._past_deadline = build(_PAST_DEADLINE)
        self._set_attributes = build(_SET_ATTRIBUTES)
        self._notify = dialect.sql(NOTIFY_SQL) if dialect.name == "postgresql" else None

    def cancel(self, workflow_ids: Sequence[str], wake_keys: Sequence[str]) -> int:
        """Mark workflows CANCELLED unless they already ended, and wake their waiters; return how many changed."""

        def work(cursor: Any) -> int:
            now = now_ms()
            changed = 0
            for workflow_id, wake in zip(workflow_ids, wake_keys, strict=True):
                cursor.execute(self._cancel, (now, now, workflow_id))
                if cursor.rowcount:
                    changed += 1
                    if self._notify is not None:
                        cursor.execute(self._notify, (wake,))
            return changed

        return self.db.transaction(work)

    def children(self, workflow_id: str) -> list[str]:
        return [r[0] for r in self.db.fetch(self._children, (workflow_id,))]

    def exists(self, workflow_id: str) -> bool:
        return bool(self.db.fetch(self._exists, (workflow_id,)))

    def resume(self, workflow_id: str, executor_id: str) -> WorkflowRow | None:
        """Set a cancelled, failed or dead-lettered workflow PENDING again, owned by ``executor_id``."""
        rows = self.db.fetch(self._resume, (executor_id, now_ms(), workflow_id))
        return WorkflowRow(*rows[0]) if rows else None

    def fork(
        self, workflow_id: str, new_id: str, start_step: int, executor_id: str, application_version: str | None
    ) -> WorkflowRow | None:
        """Copy a workflow under ``new_id`` with the checkpoints (events, streams) of steps before ``start_step``.

        Returns the new row, or None when ``new_id`` is already taken. One transaction: a fork is
        all there or not at all.
        """

        def work(cursor: Any) -> WorkflowRow | None:
            now = now_ms()
            cursor.execute(self._fork, (new_id, executor_id, application_version, now, now, workflow_id))
            if not cursor.rowcount:
                return None
            cursor.execute(self._fork_steps, (new_id, workflow_id, start_step))
            cursor.execute(self._fork_event_history, (new_id, workflow_id, start_step))
            cursor.execute(self._fork_events, (new_id,))
            cursor.execute(self._fork_streams, (new_id, workflow_id, start_step))
            cursor.execute(self._get_workflow, (new_id,))
            return WorkflowRow(*cursor.fetchone())

        return self.db.transaction(work)

    def set_attributes(self, workflow_id: str, attributes: str | None) -> None:
        """Replace a workflow's attributes (JSON text; None clears them)."""
        self.db.execute(self._set_attributes, (attributes, now_ms(), workflow_id))

    def past_deadline(self, limit: int) -> list[str]:
        """PENDING workflows whose deadline has passed (the recovery loop cancels them)."""
        return [r[0] for r in self.db.fetch(self._past_deadline, (now_ms(), limit))]
