"""The SQL of operator actions on workflows: cancel, resume, fork, delete, and the timeout sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import (
    GET_WORKFLOW,
    STEP_SELECT,
    WORKFLOW_EXISTS,
    WORKFLOW_SELECT,
    WorkflowRow,
    now_ms,
    settle_past,
)
from .database import Database
from .listener import NOTIFY_SQL

# SUCCESS and ERROR are outcomes; anything else (PENDING, ENQUEUED, dead-lettered) can be cancelled.
_CANCEL = """
UPDATE {workflow_status} SET status = 'CANCELLED', updated_at = ?, completed_at = ?
WHERE workflow_uuid = ? AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED')
RETURNING owner_generation"""
_CHILDREN = "SELECT workflow_uuid FROM {workflow_status} WHERE parent_workflow_id = ?"
# Back to PENDING under a new fencing generation (a late write of the old run is refused), owned
# by the caller, with the recovery counter and the deadline cleared, as DBOS does. A workflow still waiting
# in a queue (or DELAYED) runs now, outside its queue's limits, as DBOS's resume does (internal queue). Its deduplication
# ID was released when it finished and may be held by another workflow now: it is dropped, as in DBOS.
_RESUME = """
UPDATE {workflow_status} SET status = 'PENDING', executor_id = ?, owner_generation = owner_generation + 1,
    recovery_attempts = 0, workflow_deadline_epoch_ms = NULL, output = NULL, error = NULL,
    completed_at = NULL, updated_at = ?, deduplication_id = NULL, delay_until_epoch_ms = NULL,
    queue_name = CASE WHEN status IN ('ENQUEUED', 'DELAYED') THEN '_dbos_internal_queue' ELSE queue_name END,
    queue_partition_key = CASE WHEN status IN ('ENQUEUED', 'DELAYED') THEN NULL ELSE queue_partition_key END
WHERE workflow_uuid = ? AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'ENQUEUED', 'DELAYED')
RETURNING {columns}"""
# The same, onto a queue: ENQUEUED there for whichever process declares it (DBOS's resume(queue_name=)).
_RESUME_TO_QUEUE = """
UPDATE {workflow_status} SET status = 'ENQUEUED', queue_name = ?, executor_id = NULL,
    owner_generation = owner_generation + 1, recovery_attempts = 0, workflow_deadline_epoch_ms = NULL,
    output = NULL, error = NULL, completed_at = NULL, started_at_epoch_ms = NULL, updated_at = ?,
    deduplication_id = NULL
WHERE workflow_uuid = ? AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'ENQUEUED')
RETURNING {columns}"""
# A fork runs here at once (PENDING, owned by the caller) or waits on a queue (ENQUEUED, no owner).
_FORK = """
INSERT INTO {workflow_status} (workflow_uuid, status, name, class_name, config_name, inputs, request,
    executor_id, owner_generation, application_version, application_id, recovery_attempts, queue_name,
    queue_partition_key, parent_workflow_id, created_at, updated_at, workflow_version, workflow_timeout_ms,
    workflow_deadline_epoch_ms, forked_from, attributes, authenticated_user, assumed_role, authenticated_roles)
SELECT ?, ?, name, class_name, config_name, inputs, request, ?, 0, COALESCE(?, application_version),
    application_id, 0, ?, ?, NULL, ?, ?, workflow_version, ?, ?, workflow_uuid, attributes, authenticated_user,
    assumed_role, authenticated_roles
FROM {workflow_status} WHERE workflow_uuid = ?
ON CONFLICT (workflow_uuid) DO NOTHING"""
_MARK_FORKED = "UPDATE {workflow_status} SET was_forked_from = 1 WHERE workflow_uuid = ?"
_REPLACE_CHILD = "UPDATE {operation_outputs} SET child_workflow_id = ? WHERE workflow_uuid = ? AND child_workflow_id = ?"
_FORK_STEPS = """
INSERT INTO {operation_outputs} (workflow_uuid, {step_columns}, inputs)
SELECT ?, {step_columns}, inputs FROM {operation_outputs} WHERE workflow_uuid = ? AND function_id < ?"""
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
# Deleting a workflow takes everything recorded under its ID (no foreign keys cascade here).
_DELETES = (
    "DELETE FROM {streams} WHERE workflow_uuid IN ({ids})",
    "DELETE FROM {operation_outputs} WHERE workflow_uuid IN ({ids})",
    "DELETE FROM {workflow_events} WHERE workflow_uuid IN ({ids})",
    "DELETE FROM {workflow_events_history} WHERE workflow_uuid IN ({ids})",
    "DELETE FROM {notifications} WHERE destination_uuid IN ({ids})",
    "DELETE FROM {workflow_status} WHERE workflow_uuid IN ({ids})",
)
_SET_ATTRIBUTES = "UPDATE {workflow_status} SET attributes = ?J, updated_at = ? WHERE workflow_uuid = ?"
_PAST_DEADLINE = """
SELECT workflow_uuid FROM {workflow_status}
WHERE status = 'PENDING' AND workflow_deadline_epoch_ms IS NOT NULL AND workflow_deadline_epoch_ms <= ?
ORDER BY workflow_deadline_epoch_ms LIMIT ?"""


@dataclass(frozen=True)
class ForkSpec:
    """How to fork: the new ID, the first step to re-run, and where and how the fork runs."""

    new_id: str
    start_step: int
    executor_id: str
    application_version: str | None = None
    queue_name: str | None = None  # None: PENDING, run by the caller; else ENQUEUED on that queue
    queue_partition_key: str | None = None
    timeout_ms: int | None = None
    replacement_children: Mapping[str, str] | None = None  # old child ID -> new, in the copied steps


class ManagementStore:
    """Cancel, resume, fork and delete, on one database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.dialect

        def build(text: str) -> str:
            return dialect.sql(text.replace("{columns}", WORKFLOW_SELECT).replace("{step_columns}", STEP_SELECT))

        self._cancel = build(_CANCEL)
        self._children = build(_CHILDREN)
        self._resume = build(_RESUME)
        self._resume_to_queue = build(_RESUME_TO_QUEUE)
        self._fork = build(_FORK)
        self._mark_forked = build(_MARK_FORKED)
        self._replace_child = build(_REPLACE_CHILD)
        self._deletes = _DELETES
        self._dialect = dialect
        self._fork_steps = build(_FORK_STEPS)
        self._fork_event_history = build(_FORK_EVENT_HISTORY)
        self._fork_events = build(_FORK_EVENTS)
        self._fork_streams = build(_FORK_STREAMS)
        self._get_workflow = build(GET_WORKFLOW)
        self._exists = build(WORKFLOW_EXISTS)
        self._past_deadline = build(_PAST_DEADLINE)
        self._set_attributes = build(_SET_ATTRIBUTES)
        self._notify = dialect.sql(NOTIFY_SQL) if dialect.name == "postgresql" else None

    def cancel(self, workflow_ids: Sequence[str], wake_keys: Sequence[str]) -> dict[str, int]:
        """Mark workflows CANCELLED unless they already ended, and wake their waiters.

        Returns the workflows that changed, each with the fencing generation it was cancelled at.
        """

        def work(cursor: Any) -> tuple[dict[str, int], int]:
            now = now_ms()
            changed: dict[str, int] = {}
            for workflow_id, wake in zip(workflow_ids, wake_keys, strict=True):
                cursor.execute(self._cancel, (now, now, workflow_id))
                row = cursor.fetchone()
                if row is not None:
                    changed[workflow_id] = int(row[0])
                    if self._notify is not None:
                        cursor.execute(self._notify, (wake,))
            return changed, now

        changed, stamped = self.db.transaction(work)
        settle_past(stamped)  # completed_at: see settle_past
        return changed

    def children(self, workflow_id: str) -> list[str]:
        return [r[0] for r in self.db.fetch(self._children, (workflow_id,))]

    def exists(self, workflow_id: str) -> bool:
        return bool(self.db.fetch(self._exists, (workflow_id,)))

    def resume(self, workflow_id: str, executor_id: str, queue_name: str | None = None) -> WorkflowRow | None:
        """Set a cancelled, failed or dead-lettered workflow PENDING again, owned by ``executor_id``
        (or ENQUEUED on ``queue_name``). One still waiting on a queue is taken off that wait the same way."""
        if queue_name is not None:
            rows = self.db.fetch(self._resume_to_queue, (queue_name, now_ms(), workflow_id))
        else:
            rows = self.db.fetch(self._resume, (executor_id, now_ms(), workflow_id))
        return WorkflowRow(*rows[0]) if rows else None

    def fork(self, workflow_id: str, spec: ForkSpec) -> WorkflowRow | None:
        """Copy a workflow under ``spec.new_id`` with the checkpoints (events, streams) of steps before its start step.

        Returns the new row, or None when the new ID is already taken. One transaction: a fork is
        all there or not at all, and the original is marked as forked from in the same commit.
        """
        status = "ENQUEUED" if spec.queue_name is not None else "PENDING"
        executor = None if spec.queue_name is not None else spec.executor_id

        def work(cursor: Any) -> tuple[WorkflowRow | None, int]:
            now = now_ms()
            # A fork run here counts its timeout from now; a queued one from its dequeue (queue_store).
            deadline = now + spec.timeout_ms if spec.timeout_ms and spec.queue_name is None else None
            cursor.execute(self._fork, (spec.new_id, status, executor, spec.application_version, spec.queue_name,
                                        spec.queue_partition_key, now, now, spec.timeout_ms, deadline, workflow_id))
            if not cursor.rowcount:
                return None, now
            cursor.execute(self._mark_forked, (workflow_id,))
            cursor.execute(self._fork_steps, (spec.new_id, workflow_id, spec.start_step))
            for old_child, new_child in (spec.replacement_children or {}).items():
                cursor.execute(self._replace_child, (new_child, spec.new_id, old_child))
            cursor.execute(self._fork_event_history, (spec.new_id, workflow_id, spec.start_step))
            cursor.execute(self._fork_events, (spec.new_id,))
            cursor.execute(self._fork_streams, (spec.new_id, workflow_id, spec.start_step))
            cursor.execute(self._get_workflow, (spec.new_id,))
            return WorkflowRow(*cursor.fetchone()), now

        row, stamped = self.db.transaction(work)
        if row is not None:
            settle_past(stamped)  # created_at: see settle_past
        return row

    def descendants(self, workflow_ids: Sequence[str]) -> list[str]:
        """Children, grandchildren and so on of the given workflows (not the workflows themselves)."""
        seen = set(workflow_ids)
        found: list[str] = []
        frontier = list(workflow_ids)
        while frontier:
            children = [c for w in frontier for c in self.children(w) if c not in seen]
            seen.update(children)
            found.extend(children)
            frontier = children
        return found

    def delete(self, workflow_ids: Sequence[str]) -> None:
        """Delete workflows and what is recorded under their IDs: steps, events, streams, messages to them."""
        ids = list(dict.fromkeys(workflow_ids))
        if not ids:
            return
        marks = ", ".join("?" * len(ids))
        statements = [self._dialect.sql(sql.replace("{ids}", marks)) for sql in self._deletes]

        def work(cursor: Any) -> None:
            for statement in statements:
                cursor.execute(statement, ids)

        self.db.transaction(work)

    def set_attributes(self, workflow_id: str, attributes: str | None) -> None:
        """Replace a workflow's attributes (JSON text; None clears them)."""
        self.db.execute(self._set_attributes, (attributes, now_ms(), workflow_id))

    def past_deadline(self, limit: int) -> list[str]:
        """PENDING workflows whose deadline has passed (the recovery loop cancels them)."""
        return [r[0] for r in self.db.fetch(self._past_deadline, (now_ms(), limit))]
