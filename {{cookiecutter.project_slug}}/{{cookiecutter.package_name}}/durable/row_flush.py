"""When a new workflow's row may commit without a flush, and where it must be flushed.

A workflow called inline (``checkout(...)`` in a route) that starts with a ``@DBOS.transaction`` has its
row inserted through the unflushed connections (``Dialect.create_unflushed_engine``): the row is seen at
once (its ID is taken, its status readable), and that transaction's commit, a flushed commit on the same
log, makes it durable. The invariant this relies on: until the workflow's first durable write nothing
outside the database depends on the row surviving the machine. Its caller is blocked in the call, and
effects outside the database happen only in steps (DBOS's rule for workflow and transaction bodies). So:

* before a step's body runs, the row is flushed if nothing has flushed it yet (a step's effect must be
  finished by recovery, which needs the row);
* every other durable write (a transaction's commit, a step's or a message's checkpoint, a child's row,
  the outcome) is a flushed commit on the system database's log, which flushes the row with it;
* ``DBOS.start_workflow``, enqueues and children always insert flushed: a handle promises a durable row.
* held step checkpoints (``held_steps.py``) never ride in an unflushed commit: a statement on the
  unflushed engine first commits them through their own, flushed, database (``Database._held``).

A new workflow whose ID the runtime chose (no ``SetWorkflowID``, no idempotency key: nobody else can name
it) goes further when it starts with a transaction: its row is not written at the start at all, but
inserted by that transaction, in its commit (``defer_row``). Until then the run has no durable effect
(its body runs only deterministic code before its first step), so a crash before that commit loses a
call that did nothing durable, as if its request had come a moment later. A first step that is not a
transaction writes the row before it (``WorkflowState.allocate_step_id``), as do the workflow's end,
a transaction that rolls back with the user's error, and a reader here that asks for the workflow by
ID, a cancel, a fork or shutdown (``Runtime.write_pending_rows``); whoever writes first wins, the
other insert finds the same row. A listing, or another process, sees the row once it commits.

Only with the system tables in the application database (``shares_database``): a transaction's commit
then flushes the log the row is in. Whether a workflow starts with a transaction is learnt from its
previous run in this process; a wrong guess costs one flushing write before the first step, never a
guarantee. A process that dies loses nothing unflushed: only the machine or the server dying can.
"""

from __future__ import annotations

from .context import WorkflowState
from .runtime import Runtime
from .store.base import NewWorkflow, PendingRow, now_ms


def may_start_unflushed(rt: Runtime, name: str) -> bool:
    """Whether a new inline run of workflow ``name`` may insert its row unflushed."""
    if rt.sys_db_unflushed is rt.sys_db:  # a user's system_database_engine: no unflushed pool to use
        return False
    return rt.settings.shares_database and rt.begins_with_transaction.get(name, False)


def may_defer_row(rt: Runtime, name: str) -> bool:
    """Whether a new inline run of ``name``, with an ID the runtime chose, may leave its row to its first
    transaction. Off with ``defer_step_checkpoints=False``: every write then commits where it happens."""
    return (rt.settings.defer_step_checkpoints and rt.app_checkpoint_store is None
            and may_start_unflushed(rt, name))


def defer_row(rt: Runtime, state: WorkflowState, row: NewWorkflow, created_ms: int | None) -> None:
    """Leave ``state``'s row (stamped ``created_ms``, else now) to its first transaction; any other first
    write writes it before itself."""
    created_ms = now_ms() if created_ms is None else created_ms
    pending = PendingRow(row, created_ms)
    with rt.running_lock:
        rt.pending_rows[row.workflow_id] = pending
    state.write_row = lambda: rt.write_pending_row(pending)


def row_to_carry(rt: Runtime, state: WorkflowState) -> PendingRow | None:
    """``state``'s pending row, if it still waits: the transaction about to commit inserts it first."""
    if state.write_row is None:
        return None
    return rt.pending_rows.get(state.workflow_id)


def forget_row(rt: Runtime, state: WorkflowState) -> None:
    """If the run stopped before its row was written (the database away, shutdown), nobody writes it now."""
    if state.write_row is None:
        return
    state.write_row = None
    pending = rt.pending_rows.get(state.workflow_id)
    if pending is not None:
        rt.forget_pending_row(pending)


def before_transaction(rt: Runtime, state: WorkflowState, step_id: int) -> None:
    """A new transaction is about to run; its flushed commit makes the row durable."""
    if step_id == 1 and state.recorded is None:
        rt.begins_with_transaction[state.name] = True


def after_transaction(rt: Runtime, state: WorkflowState) -> None:
    """A transaction committed: its flushed commit carried the pending row, or flushed the unflushed one."""
    state.row_unflushed = False
    forget_row(rt, state)


def before_step_body(rt: Runtime, state: WorkflowState, step_id: int) -> None:
    """A new step's body is about to run: its row must survive the machine before any effect does."""
    if step_id == 1 and state.recorded is None:
        rt.begins_with_transaction[state.name] = False
    if state.row_unflushed:
        rt.checkpoint_store.flush_workflow_row(state.workflow_id)
        state.row_unflushed = False
