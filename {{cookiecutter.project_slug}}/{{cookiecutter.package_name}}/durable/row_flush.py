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

Only with the system tables in the application database (``shares_database``): a transaction's commit
then flushes the log the row is in. Whether a workflow starts with a transaction is learnt from its
previous run in this process; a wrong guess costs one flushing write before the first step, never a
guarantee. A process that dies loses nothing unflushed: only the machine or the server dying can.
"""

from __future__ import annotations

from .context import WorkflowState
from .runtime import Runtime


def may_start_unflushed(rt: Runtime, name: str) -> bool:
    """Whether a new inline run of workflow ``name`` may insert its row unflushed."""
    if rt.sys_db_unflushed is rt.sys_db:  # a user's system_database_engine: no unflushed pool to use
        return False
    return rt.settings.shares_database and rt.begins_with_transaction.get(name, False)


def before_transaction(rt: Runtime, state: WorkflowState, step_id: int) -> None:
    """A new transaction is about to run; its flushed commit makes the row durable."""
    if step_id == 1 and state.recorded is None:
        rt.begins_with_transaction[state.name] = True


def after_transaction(state: WorkflowState) -> None:
    state.row_unflushed = False


def before_step_body(rt: Runtime, state: WorkflowState, step_id: int) -> None:
    """A new step's body is about to run: its row must survive the machine before any effect does."""
    if step_id == 1 and state.recorded is None:
        rt.begins_with_transaction[state.name] = False
    if state.row_unflushed:
        rt.checkpoint_store.flush_workflow_row(state.workflow_id)
        state.row_unflushed = False
