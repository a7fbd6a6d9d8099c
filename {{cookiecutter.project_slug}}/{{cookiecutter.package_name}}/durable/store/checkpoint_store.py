"""Every read and write of the system tables. SQL lives here and nowhere else.

The hot path (start, step, finish) is one statement and one commit each, on a pooled driver
connection in autocommit mode, with SQL text built once. A brand-new workflow never reads its steps
back: there are none. A dropped connection or a locked SQLite file is retried here, so callers never
see either.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..error import DBOSFencedError, DBOSWorkflowCancelledError
from .base import (
    GET_WORKFLOW,
    STEP_SELECT,
    WORKFLOW_SELECT,
    NewWorkflow,
    StepCheckpoint,
    StepRecord,
    WorkflowRow,
    WorkflowStatusString,
    now_ms,
    settle_past,
)
from .database import Database

PENDING = WorkflowStatusString.PENDING.value
CANCELLED = WorkflowStatusString.CANCELLED.value

_INSERT_WORKFLOW = """
INSERT INTO {workflow_status} (workflow_uuid, status, name, class_name, config_name, inputs, request,
    executor_id, owner_generation, application_version, application_id, recovery_attempts, queue_name,
    parent_workflow_id, created_at, updated_at, workflow_version, workflow_timeout_ms, workflow_deadline_epoch_ms,
    attributes, authenticated_user, assumed_role, authenticated_roles)
VALUES (?, ?, ?, ?, ?, ?J, ?J, ?, 0, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?J, ?, ?, ?J)
ON CONFLICT (workflow_uuid) DO NOTHING"""

# Fenced: the row goes in only while the workflow is still PENDING at the generation this execution
# holds, and before its deadline if it has one. So cancellation and timeouts cost the hot path
# nothing: a cancelled or late workflow's next checkpoint inserts no row, and only then does
# ``step_conflict`` read why.
_RECORD_STEP = """
INSERT INTO {operation_outputs} (workflow_uuid, function_id, function_name, output, error,
    child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, attempts, inputs)
SELECT ?, ?, ?, ?J, ?J, ?, ?, ?, ?, ?J
WHERE EXISTS (SELECT 1 FROM {workflow_status} WHERE workflow_uuid = ? AND owner_generation = ?
    AND status = 'PENDING' AND (workflow_deadline_epoch_ms IS NULL OR workflow_deadline_epoch_ms > ?))
ON CONFLICT (workflow_uuid, function_id) DO NOTHING"""

_RECORD_STEP_UNFENCED = """
INSERT INTO {operation_outputs} (workflow_uuid, function_id, function_name, output, error,
    child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, attempts, inputs)
VALUES (?, ?, ?, ?J, ?J, ?, ?, ?, ?, ?J)
ON CONFLICT (workflow_uuid, function_id) DO NOTHING"""

_FINISH = """
UPDATE {workflow_status} SET status = ?, output = ?J, error = ?J, updated_at = ?, completed_at = ?
WHERE workflow_uuid = ? AND owner_generation = ? AND status = 'PENDING'"""

_CANCEL_EXPIRED = """
UPDATE {workflow_status} SET status = 'CANCELLED', updated_at = ?, completed_at = ?
WHERE workflow_uuid = ? AND status = 'PENDING'"""
_GET_OUTCOME = "SELECT status, output, error FROM {workflow_status} WHERE workflow_uuid = ?"
_LOAD_STEPS = "SELECT {step_columns} FROM {operation_outputs} WHERE workflow_uuid = ? ORDER BY function_id"
_GET_STEP = "SELECT {step_columns} FROM {operation_outputs} WHERE workflow_uuid = ? AND function_id = ?"

_REGISTER_EXECUTOR = """
INSERT INTO {executors} (executor_id, hostname, pid, application_version, started_at, heartbeat_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (executor_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"""
_HEARTBEAT = "UPDATE {executors} SET heartbeat_at = ? WHERE executor_id = ?"
_EXPIRE_EXECUTOR = "UPDATE {executors} SET heartbeat_at = 0 WHERE executor_id = ?"
_EXECUTORS_ON_HOST = "SELECT executor_id, pid, heartbeat_at FROM {executors} WHERE hostname = ? AND executor_id <> ?"
_LIVE_EXECUTORS = "SELECT executor_id FROM {executors} WHERE heartbeat_at >= ?"
_FORGET_EXECUTORS = """
DELETE FROM {executors} WHERE heartbeat_at < ? AND NOT EXISTS (
    SELECT 1 FROM {workflow_status} w WHERE w.executor_id = {executors}.executor_id AND w.status = 'PENDING')"""

# A workflow is an orphan when it is PENDING and no live executor owns it.
_ORPHAN = """status = 'PENDING' AND (executor_id IS NULL OR executor_id NOT IN (
    SELECT executor_id FROM {executors} WHERE heartbeat_at >= ?))"""
_ADOPT_SET = """executor_id = ?, owner_generation = owner_generation + 1,
    recovery_attempts = recovery_attempts + 1, updated_at = ?"""
_ADOPT_ORPHANS = (
    "UPDATE {workflow_status} SET " + _ADOPT_SET + " WHERE workflow_uuid IN ("
    "SELECT workflow_uuid FROM {workflow_status} WHERE " + _ORPHAN + " ORDER BY created_at LIMIT ?{skip_locked})"
    " RETURNING {columns}"
)
# Only workflows whose code this process has: one without it would fail a run it could never make.
_ADOPT_KNOWN_ORPHANS = _ADOPT_ORPHANS.replace(" ORDER BY", " AND name IN ({json_strings}) ORDER BY")
_ADOPT_ONE = "UPDATE {workflow_status} SET " + _ADOPT_SET + " WHERE workflow_uuid = ? AND " + _ORPHAN + " RETURNING {columns}"
_ADOPT_FROM = ("UPDATE {workflow_status} SET " + _ADOPT_SET
               + " WHERE status = 'PENDING' AND executor_id = ? RETURNING {columns}")
_OWN_PENDING = """SELECT workflow_uuid FROM {workflow_status}
WHERE status = 'PENDING' AND executor_id = ? AND updated_at < ? ORDER BY created_at LIMIT ?"""
_READOPT = ("UPDATE {workflow_status} SET " + _ADOPT_SET
            + " WHERE workflow_uuid = ? AND executor_id = ? AND status = 'PENDING' RETURNING {columns}")
_DEAD_LETTER = """
UPDATE {workflow_status} SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', updated_at = ?
WHERE workflow_uuid = ? AND owner_generation = ? AND status = 'PENDING'"""


class CheckpointStore:
    """The system tables of one database, behind methods named for what they do."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.dialect
        columns = {"columns": WORKFLOW_SELECT, "step_columns": STEP_SELECT}
        skip = " FOR UPDATE SKIP LOCKED" if dialect.supports_skip_locked else ""

        def build(text: str) -> str:
            return dialect.sql(text.replace("{columns}", columns["columns"])
                               .replace("{step_columns}", columns["step_columns"])
                               .replace("{skip_locked}", skip)
                               .replace("{json_strings}", dialect.json_strings_sql))

        self._insert_workflow = build(_INSERT_WORKFLOW)
        self._record_step = build(_RECORD_STEP)
        self._record_step_unfenced = build(_RECORD_STEP_UNFENCED)
        self._finish = build(_FINISH)
        self._cancel_expired = build(_CANCEL_EXPIRED)
        self._get_workflow = build(GET_WORKFLOW)
        self._get_outcome = build(_GET_OUTCOME)
        self._load_steps = build(_LOAD_STEPS)
        self._get_step = build(_GET_STEP)
        self._register_executor = build(_REGISTER_EXECUTOR)
        self._heartbeat = build(_HEARTBEAT)
        self._expire_executor = build(_EXPIRE_EXECUTOR)
        self._executors_on_host = build(_EXECUTORS_ON_HOST)
        self._live_executors = build(_LIVE_EXECUTORS)
        self._forget_executors = build(_FORGET_EXECUTORS)
        self._adopt_orphans = build(_ADOPT_ORPHANS)
        self._adopt_known_orphans = build(_ADOPT_KNOWN_ORPHANS)
        self._adopt_one = build(_ADOPT_ONE)
        self._adopt_from = build(_ADOPT_FROM)
        self._own_pending = build(_OWN_PENDING)
        self._readopt = build(_READOPT)
        self._dead_letter = build(_DEAD_LETTER)

    # -- workflows ------------------------------------------------------------------------------------

    def create_workflow(self, new: NewWorkflow) -> WorkflowRow | None:
        """Insert a new workflow row. Return None when it was created, else the row that already exists."""
        now = now_ms()
        inserted = self.db.execute(
            self._insert_workflow,
            (new.workflow_id, new.status, new.name, new.class_name, new.config_name, new.inputs, new.request,
             new.executor_id, new.application_version, new.application_id, new.queue_name,
             new.parent_workflow_id, now, now, new.workflow_version, new.workflow_timeout_ms,
             new.workflow_deadline_epoch_ms, new.attributes, new.authenticated_user, new.assumed_role,
             new.authenticated_roles),
        )
        if inserted:
            settle_past(now)
            return None
        existing = self.get_workflow(new.workflow_id)
        assert existing is not None, "a conflicting workflow row vanished"
        return existing

    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        rows = self.db.fetch(self._get_workflow, (workflow_id,))
        return WorkflowRow(*rows[0]) if rows else None

    def get_outcome(self, workflow_id: str) -> tuple[str, Any, Any] | None:
        """Status, output and error of a workflow: the cheap read that result polling makes."""
        rows = self.db.fetch(self._get_outcome, (workflow_id,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def finish_workflow(
        self, workflow_id: str, generation: int, status: str, output: str | None, error: str | None
    ) -> None:
        """Record a workflow's final outcome; raise ``DBOSFencedError`` if another executor owns it now."""
        now = now_ms()
        updated = self.db.execute(self._finish, (status, output, error, now, now, workflow_id, generation))
        if not updated:
            self.explain_refused_write(workflow_id, generation)
        settle_past(now)

    def explain_refused_write(self, workflow_id: str, generation: int) -> None:
        """A fenced write matched no row: raise why (fenced or cancelled); return if it already finished.

        The rare path only: the hot path learns nothing until a write is refused.
        """
        row = self.get_workflow(workflow_id)
        if row is None or row.owner_generation != generation:
            raise DBOSFencedError(workflow_id)
        if row.status == CANCELLED:
            raise DBOSWorkflowCancelledError(f"Workflow {workflow_id} was cancelled")
        deadline = row.workflow_deadline_epoch_ms
        if row.status == PENDING and deadline is not None and deadline <= now_ms():
            # Its timeout passed: cancel it here; its children share the deadline (the recovery
            # loop's sweep cancels any that are not writing checkpoints).
            now = now_ms()
            self.db.execute(self._cancel_expired, (now, now, workflow_id))
            raise DBOSWorkflowCancelledError(f"Workflow {workflow_id} was cancelled: its timeout passed")
        # Same generation, finished: a retried statement had already written it. Nothing to do.

    def dead_letter(self, workflow_id: str, generation: int) -> None:
        self.db.execute(self._dead_letter, (now_ms(), workflow_id, generation))

    # -- steps ----------------------------------------------------------------------------------------

    def record_step(
        self, workflow_id: str, generation: int, step_id: int, name: str, output: str | None, error: str | None,
        started_ms: int, child_workflow_id: str | None = None, attempts: int | None = None,
        completed_ms: int | None = None, inputs: str | None = None,
    ) -> StepRecord | None:
        """Checkpoint a step. Return None when stored, or the record another execution stored first.

        ``completed_ms`` is the step's completion time when it is known ahead (a sleep's wake-up), else now.
        ``inputs`` is the call's JSON (``step_inputs.py``), stored for the dashboard and never read back.
        """
        now = now_ms()
        params = (workflow_id, step_id, name, output, error, child_workflow_id, started_ms,
                  completed_ms if completed_ms is not None else now, attempts, inputs, workflow_id, generation, now)
        if self.db.execute(self._record_step, params):
            return None
        return self.step_conflict(workflow_id, generation, step_id)

    def record_step_on(self, cursor: Any, step: StepCheckpoint) -> bool:
        """Checkpoint ``step`` inside a store transaction that writes more (a message, an event); False if refused."""
        cursor.execute(self._record_step, _fenced_params(step))
        return bool(cursor.rowcount)

    def record_step_in(self, connection: sa.Connection, step: StepCheckpoint) -> bool:
        """Checkpoint ``step`` through an application transaction's connection; False if refused.

        It commits with the transaction's own writes: ``@DBOS.transaction``'s exactly-once.
        """
        return bool(connection.exec_driver_sql(self._record_step, _fenced_params(step)).rowcount)

    def record_step_unfenced_in(self, connection: sa.Connection, step: StepCheckpoint) -> bool:
        """``record_step_in`` for an application database that holds no workflow rows to fence against.

        With a separate system database the copy there, right after the commit, is fenced instead.
        """
        return bool(connection.exec_driver_sql(self._record_step_unfenced, _step_values(step)).rowcount)

    def step_conflict(self, workflow_id: str, generation: int, step_id: int) -> StepRecord:
        """After a refused step write: the winner's record, or raise why the write was refused.

        ``DBOSFencedError`` when another execution owns the workflow now, ``DBOSWorkflowCancelledError``
        when it was cancelled.
        """
        existing = self.get_step(workflow_id, step_id)
        if existing is None:
            self.explain_refused_write(workflow_id, generation)
            raise DBOSFencedError(workflow_id)  # finished by another execution at this generation
        return existing

    def get_step(self, workflow_id: str, step_id: int) -> StepRecord | None:
        rows = self.db.fetch(self._get_step, (workflow_id, step_id))
        return StepRecord(*rows[0]) if rows else None

    def load_steps(self, workflow_id: str) -> dict[int, StepRecord]:
        """Every checkpointed step of a workflow, by step ID: what replay reuses."""
        return {row[0]: StepRecord(*row) for row in self.db.fetch(self._load_steps, (workflow_id,))}

    # -- executors and recovery -----------------------------------------------------------------------

    def register_executor(self, executor_id: str, hostname: str, pid: int, version: str) -> None:
        now = now_ms()
        self.db.execute(self._register_executor, (executor_id, hostname, pid, version, now, now))

    def heartbeat(self, executor_id: str) -> bool:
        """Refresh this executor's lease; False when its row is gone (it must register again)."""
        return bool(self.db.execute(self._heartbeat, (now_ms(), executor_id)))

    def expire_executor(self, executor_id: str) -> None:
        """Mark an executor dead now, so others adopt its workflows without waiting for the timeout."""
        self.db.execute(self._expire_executor, (executor_id,))

    def executors_on_host(self, hostname: str, except_id: str) -> list[tuple[str, int, int]]:
        return [(r[0], int(r[1]), int(r[2])) for r in self.db.fetch(self._executors_on_host, (hostname, except_id))]

    def live_executors(self, alive_since_ms: int) -> set[str]:
        """The executors whose heartbeat is at least this recent."""
        return {str(row[0]) for row in self.db.fetch(self._live_executors, (alive_since_ms,))}

    def forget_executors(self, older_than_ms: int) -> int:
        """Delete long-dead executor rows that own no PENDING workflow."""
        return self.db.execute(self._forget_executors, (older_than_ms,))

    def adopt_orphans(
        self, executor_id: str, alive_since_ms: int, limit: int, names: list[str] | None = None
    ) -> list[WorkflowRow]:
        """Take ownership of PENDING workflows whose executor is dead, bumping their fencing generation.

        With ``names``, only workflows of those names: the others wait for a process that has their code.
        """
        if names is None:
            params: tuple[Any, ...] = (executor_id, now_ms(), alive_since_ms, limit)
            return [WorkflowRow(*r) for r in self.db.fetch(self._adopt_orphans, params)]
        params = (executor_id, now_ms(), alive_since_ms, json.dumps(names), limit)
        return [WorkflowRow(*r) for r in self.db.fetch(self._adopt_known_orphans, params)]

    def adopt_workflow(self, workflow_id: str, executor_id: str, alive_since_ms: int) -> WorkflowRow | None:
        """Take one PENDING workflow whose executor is dead; None if it is finished or owned by a live one."""
        rows = self.db.fetch(self._adopt_one, (executor_id, now_ms(), workflow_id, alive_since_ms))
        return WorkflowRow(*rows[0]) if rows else None

    def adopt_from(self, dead_executor_id: str, executor_id: str) -> list[WorkflowRow]:
        """Take every PENDING workflow of an executor an operator declared dead, alive or not."""
        return [WorkflowRow(*r) for r in self.db.fetch(self._adopt_from, (executor_id, now_ms(), dead_executor_id))]

    def own_pending(self, executor_id: str, untouched_since_ms: int, limit: int) -> list[str]:
        """IDs of PENDING workflows this executor owns, unchanged since the given time."""
        return [r[0] for r in self.db.fetch(self._own_pending, (executor_id, untouched_since_ms, limit))]

    def readopt(self, workflow_id: str, executor_id: str) -> WorkflowRow | None:
        """Take one of our own workflows again under a new fencing generation (its run here stopped)."""
        rows = self.db.fetch(self._readopt, (executor_id, now_ms(), workflow_id, executor_id))
        return WorkflowRow(*rows[0]) if rows else None


def _step_values(step: StepCheckpoint) -> tuple[Any, ...]:
    return (step.workflow_id, step.step_id, step.name, step.output, step.error, step.child_workflow_id,
            step.started_ms, step.completed_ms if step.completed_ms is not None else now_ms(), step.attempts,
            step.inputs)


def _fenced_params(step: StepCheckpoint) -> tuple[Any, ...]:
    """The checkpoint's values, then the fence: still PENDING, at this generation, before its deadline."""
    values = _step_values(step)
    return (*values, step.workflow_id, step.generation, values[7])  # [7]: completed_at (now, unless held)
