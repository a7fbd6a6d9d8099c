"""Every read and write of the system tables. SQL lives here and nowhere else.

The hot path (start, step, finish) is one statement and one commit each, on a pooled driver
connection in autocommit mode, with SQL text built once. A brand-new workflow never reads its steps
back: there are none. A dropped connection or a locked SQLite file is retried here, so callers never
see either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ..error import DBOSFencedError, DBOSWorkflowCancelledError
from .base import (
    GET_WORKFLOW,
    STEP_SELECT,
    WORKFLOW_SELECT,
    NewWorkflow,
    PendingRow,
    StepCheckpoint,
    StepRecord,
    WorkflowRow,
    WorkflowStatusString,
    now_ms,
    settle_past,
)
from .database import Database
from .held_fold import carry_row_and_insert_steps, fold_held, insert_steps

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

_TOUCH_WORKFLOW = "UPDATE {workflow_status} SET updated_at = updated_at WHERE workflow_uuid = ?"

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
# The next orphans after a (created_at, workflow_uuid) position, oldest first, walked along the
# (status, created_at, workflow_uuid) index: each batch starts where the last one ended, so adopting
# n orphans reads each PENDING row once, not once a batch. The row comparison with ``status <= 'PENDING'``
# means ``status = 'PENDING'``; it is written so because with the equality PostgreSQL's planner walks the
# created_at index instead (it takes PENDING rows to be spread evenly over time) and filters every
# finished row older than the first orphan: 50-80 ms a batch at 90,000 rows, bench/README.md section 2.
_ADOPT_ORPHANS = (
    "UPDATE {workflow_status} SET " + _ADOPT_SET + " WHERE workflow_uuid IN ("
    "SELECT workflow_uuid FROM {workflow_status} WHERE (status, created_at, workflow_uuid) > ('PENDING', ?, ?)"
    " AND status <= 'PENDING' AND " + _ORPHAN.removeprefix("status = 'PENDING' AND ")
    + " ORDER BY status, created_at, workflow_uuid LIMIT ?{skip_locked}) RETURNING {columns}, EXISTS ("
    "SELECT 1 FROM {operation_outputs} o WHERE o.workflow_uuid = {workflow_status}.workflow_uuid)"
)
# Only workflows whose code this process has: one without it would fail a run it could never make.
_ADOPT_KNOWN_ORPHANS = _ADOPT_ORPHANS.replace(" ORDER BY", " AND name IN ({json_strings}) ORDER BY")
# Where a keyset walk starts: before every row (created_at is a time in ms, never negative).
ADOPT_START: tuple[int, str] = (-1, "")
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

    def __init__(self, db: Database, unflushed: Database | None = None) -> None:
        self.db = db
        self.unflushed = unflushed or db  # commits that skip the flush (``row_flush.py``)
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
        self._touch_workflow = build(_TOUCH_WORKFLOW)
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
        self._folded_finish: dict[int, str] = {}  # by the number of held checkpoints it carries
        self._insert_steps: dict[int, str] = {}  # by the number of checkpoints
        self._carry_row_and_insert_steps: dict[int, str] = {}  # the same, after a workflow row (PostgreSQL)

    # -- workflows ------------------------------------------------------------------------------------

    def create_workflow(
        self, new: NewWorkflow, *, flush: bool = True, created_ms: int | None = None
    ) -> WorkflowRow | None:
        """Insert a new workflow row. Return None when it was created, else the row that already exists.

        ``flush=False``: the commit does not wait for the log's flush (``row_flush.py`` says when).
        ``created_ms``: the row's stamp, which the caller settles (``settle_past``) before its own caller
        gets control back; without it the stamp is now and is settled here.
        """
        now = now_ms() if created_ms is None else created_ms
        inserted = (self.db if flush else self.unflushed).execute(self._insert_workflow, _workflow_values(new, now))
        if inserted:
            if created_ms is None:
                settle_past(now)
            return None
        existing = self.get_workflow(new.workflow_id)
        assert existing is not None, "a conflicting workflow row vanished"
        return existing

    def flush_workflow_row(self, workflow_id: str) -> None:
        """A flushed commit that rewrites the row: the log, and the unflushed insert in it, reach the disk."""
        self.db.execute(self._touch_workflow, (workflow_id,))

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
        params = (status, output, error, now, now, workflow_id, generation)
        updated = self.db.execute_folding_held(self._finish, params, lambda steps: self._finish_with(steps, params))
        if not updated:
            self.explain_refused_write(workflow_id, generation)
        settle_past(now)

    def _finish_with(self, steps: list[StepCheckpoint], params: tuple[Any, ...]) -> tuple[str, list[Any]]:
        """The outcome's UPDATE with ``steps`` inserted in the same statement (``held_fold.py``)."""
        sql = self._for_count(self._folded_finish, lambda n: fold_held(_FINISH, n), len(steps))
        return sql, [*_fenced_rows(steps), *params, len(steps)]

    def _for_count(self, built: dict[int, str], text: Callable[[int], str], count: int) -> str:
        """A statement whose text depends on how many checkpoints it carries, built once per count."""
        sql = built.get(count)
        if sql is None:
            sql = built[count] = self.db.dialect.sql(text(count))
        return sql

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

    def record_steps_in(
        self, connection: sa.Connection, steps: list[StepCheckpoint], row: PendingRow | None = None, *,
        with_row_in_one: bool = False,
    ) -> set[int]:
        """Checkpoint ``steps`` (of one run) through an application transaction's connection, in one
        statement; return the step IDs it inserted (the others were refused: fenced, or already recorded).

        They commit with the transaction's own writes: ``@DBOS.transaction``'s exactly-once. ``row``, the
        run's workflow row that waited for this transaction (``row_flush.py``), is inserted first, in the
        same transaction; one already there (a reader here wrote it first) stays. ``with_row_in_one`` (the
        transaction reads one snapshot): on PostgreSQL the row and the checkpoints are one statement.
        """
        fenced = tuple(_fenced_rows(steps))
        # The driver's own cursor on the transaction's connection: SQLAlchemy's execution machinery costs
        # more than these INSERTs do (bench/README, "Where the CPU of a durable request goes").
        cursor = connection.connection.cursor()
        try:
            if row is None:
                cursor.execute(self._for_count(self._insert_steps, insert_steps, len(steps)), fenced)
            elif with_row_in_one and self.db.dialect.folds_held_steps:  # one statement: a data-modifying WITH
                sql = self._for_count(self._carry_row_and_insert_steps,
                                      lambda n: carry_row_and_insert_steps(_INSERT_WORKFLOW, n), len(steps))
                cursor.execute(sql, (*_workflow_values(row.row, row.created_ms), *fenced))
            else:
                cursor.execute(self._insert_workflow, _workflow_values(row.row, row.created_ms))
                cursor.execute(self._for_count(self._insert_steps, insert_steps, len(steps)), fenced)
            return {int(found[0]) for found in cursor.fetchall()}
        finally:
            cursor.close()

    def record_step_unfenced_in(self, connection: sa.Connection, step: StepCheckpoint) -> bool:
        """A checkpoint through the transaction's connection, for an application database that holds no
        workflow rows to fence against; False if the step is recorded already.

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
        self, executor_id: str, alive_since_ms: int, limit: int, names: list[str] | None = None,
        after: tuple[int, str] = ADOPT_START,
    ) -> list[tuple[WorkflowRow, bool]]:
        """Take ownership of PENDING workflows whose executor is dead, bumping their fencing generation.

        Each row comes with whether it has any step checkpoint: a run of one without needs no read of them.
        With ``names``, only workflows of those names: the others wait for a process that has their code.
        ``after``: only rows past this (created_at, workflow_uuid), the ``adopted_until`` of the last batch.
        """
        head: tuple[Any, ...] = (executor_id, now_ms(), *after, alive_since_ms)
        if names is None:
            found = self.db.fetch(self._adopt_orphans, (*head, limit))
        else:
            found = self.db.fetch(self._adopt_known_orphans, (*head, json.dumps(names), limit))
        return [(WorkflowRow(*r[:-1]), bool(r[-1])) for r in found]

    @staticmethod
    def adopted_until(adopted: list[tuple[WorkflowRow, bool]]) -> tuple[int, str]:
        """The keyset position after a batch: no orphan before it is left but those another adopter had locked.

        (The database's collation may order IDs unlike Python: a position short of its last row only
        makes the next batch look at a few adopted rows again, which are no orphans any more.)
        """
        return max((row.created_at, row.workflow_id) for row, _has_steps in adopted)

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


def _workflow_values(new: NewWorkflow, created_ms: int) -> tuple[Any, ...]:
    """The parameters of ``_INSERT_WORKFLOW`` for ``new``, stamped ``created_ms``."""
    return (new.workflow_id, new.status, new.name, new.class_name, new.config_name, new.inputs, new.request,
            new.executor_id, new.application_version, new.application_id, new.queue_name,
            new.parent_workflow_id, created_ms, created_ms, new.workflow_version, new.workflow_timeout_ms,
            new.workflow_deadline_epoch_ms, new.attributes, new.authenticated_user, new.assumed_role,
            new.authenticated_roles)


def _fenced_rows(steps: list[StepCheckpoint]) -> list[Any]:
    """``_fenced_params`` of each step, one after another: the parameters of held_fold's VALUES rows."""
    return [value for step in steps for value in _fenced_params(step)]


def _fenced_params(step: StepCheckpoint) -> tuple[Any, ...]:
    """The checkpoint's values, then the fence: still PENDING, at this generation, before its deadline."""
    values = _step_values(step)
    return (*values, step.workflow_id, step.generation, values[7])  # [7]: completed_at (now, unless held)
