"""``@DBOS.transaction``: the business writes and their checkpoint commit together, exactly once.

The checkpoint row is inserted through the transaction's own connection just before COMMIT. If
another execution already recorded this step, the insert finds the row taken, the whole transaction
rolls back, and the recorded result is returned instead. Serialization failures and deadlocks are
retried with a bounded backoff; they are the database's business, not the step's outcome.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import row_flush
from .context import DBOSContext, current_context, entered
from .error import DBOSDatabaseUnavailableError
from .registry import FunctionInfo
from .runtime import DEFAULT_TRANSACTION_ISOLATION, Runtime
from .step_inputs import encode_inputs
from .steps import decode_step, replay_step
from .store.base import PendingRow, StepCheckpoint, now_ms
from .store.held_steps import HELD, HeldRefusedError, HeldSteps

logger = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 10
# Levels whose statements all read one snapshot: a row another connection commits meanwhile makes the
# transaction fail (and retry) rather than go unseen by a later statement that a new snapshot would show.
_SNAPSHOT_LEVELS = ("REPEATABLE READ", "SERIALIZABLE")
UNAVAILABLE_DEADLINE_SEC = 30.0


class _StepTaken(Exception):
    """The checkpoint insert found the step already recorded: roll back, use the recorded result."""


def _isolation_for(rt: Runtime, requested: str | None) -> str | None:
    """The level to set on the transaction's connection: None when it is the engine's own (or on SQLite,
    whose transactions are serializable already: one writer at a time)."""
    if rt.app_engine.dialect.name != "postgresql":
        return None
    wanted = (requested or DEFAULT_TRANSACTION_ISOLATION).upper().replace("_", " ")  # as PostgreSQL spells it
    return None if wanted == rt.app_isolation else wanted


def run_transaction(
    rt: Runtime, info: FunctionInfo, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run a transaction function as a step of the current workflow."""
    ctx = current_context()
    assert ctx is not None and ctx.workflow is not None, "transactions run inside a workflow"
    if ctx.step_kind is not None:
        raise RuntimeError(f"transaction {info.name!r} cannot be called from inside a step or transaction")
    state = ctx.workflow
    step_id = state.allocate_step_id(carries_row=True)  # a pending row commits with this transaction
    found, value = replay_step(rt, state, step_id, info.name)
    if found:
        return value
    isolation = _isolation_for(rt, info.options.get("isolation_level"))
    one_snapshot = (isolation or rt.app_isolation) in _SNAPSHOT_LEVELS
    row_flush.before_transaction(rt, state, step_id)
    started_ms = now_ms()
    inputs = encode_inputs(rt.codec, info, args, kwargs)  # once, whatever the retries: the call as made
    delay = 0.01
    conflicts = 0
    deadline = time.monotonic() + UNAVAILABLE_DEADLINE_SEC
    held = _held_for(rt, state.workflow_id)
    while True:
        connection: sa.Connection | None = None
        session: Session | None = None
        # The run's held step checkpoints commit with this transaction: its writes are what others see next.
        held_now: list[StepCheckpoint] = []
        if held is not None:
            held.commit_lock.acquire()
            held_now = held.take()
        try:
            connection = rt.app_engine.connect()
            if isolation:
                connection = connection.execution_options(isolation_level=isolation)
            session = Session(bind=connection, expire_on_commit=False)
            step_ctx = DBOSContext(request=ctx.request, workflow=state, step_id=step_id, step_kind="transaction",
                                   sql_session=session)
            # The session's own transaction, as in DBOS: a commit or rollback by the function ends it, and
            # the checkpoint write through the session then raises InvalidRequestError (recorded as its error).
            with session.begin():
                with entered(step_ctx):
                    result = func(*args, **kwargs)
                session.flush()
                output = rt.codec.encode(result, what=f"transaction {info.name!r} output")
                step = StepCheckpoint(state.workflow_id, state.generation, step_id, info.name, output, None, started_ms,
                                      inputs=inputs)
                _checkpoints_in(rt, session.connection(), step, held_now, row_flush.row_to_carry(rt, state),
                                one_snapshot=one_snapshot)
        except HeldRefusedError as refusal:
            # Rolled back: nothing of this attempt committed. Run it again unless the run was fenced.
            assert held is not None
            held.settle(refusal.refused)
            held.restore([s for s in held_now if s not in refusal.refused])
            continue
        except _StepTaken:
            if held is not None:
                held.restore(held_now)
            return decode_step(rt, rt.checkpoint_store.step_conflict(state.workflow_id, state.generation, step_id))
        except Exception as exc:
            if held is not None:
                held.restore(held_now)  # rolled back with the transaction: the next commit carries them
            kind = _classify(rt, exc)
            if kind == "user":
                # The user's error (or an unstorable result): rolled back; record it so replay raises it too.
                state.write_pending_row()  # the row did not commit with it
                winner = rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, info.name,
                                                         None, rt.codec.encode_exception(exc), started_ms, inputs=inputs)
                if winner is not None:
                    return decode_step(rt, winner)
                raise
            if (kind == "unavailable" and time.monotonic() > deadline) or conflicts >= MAX_CONFLICT_RETRIES:
                # Still not the step's outcome: the workflow stays PENDING and is resumed later.
                raise DBOSDatabaseUnavailableError(f"transaction {info.name!r} could not commit: {exc}") from exc
            # A conflict, or the database away for a moment: nothing committed, so run it again. (If the
            # COMMIT went through just before the connection dropped, the checkpoint insert of the retry
            # finds the step taken and the recorded result is returned: still exactly once.)
            conflicts += kind == "conflict"
            logger.info("transaction %s: %s; retrying", info.name, exc)
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
            continue
        except BaseException:
            if held is not None:
                held.restore(held_now)
            raise
        finally:
            if session is not None:
                session.close()
            if connection is not None:
                connection.close()
            if held is not None:
                held.commit_lock.release()
        row_flush.after_transaction(rt, state)  # its commit flushed the log the workflow's row is in
        if rt.app_checkpoint_store is not None:  # separate system database: copy the checkpoint there too
            rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, info.name, output, None, started_ms,
                                            inputs=inputs)
        return result


def _held_for(rt: Runtime, workflow_id: str) -> HeldSteps | None:
    """The run's held checkpoints when they can ride in the transaction's commit; else written now, alone."""
    held = HELD.get()
    if held is None or held.workflow_id != workflow_id:
        return None
    if rt.app_checkpoint_store is not None:
        # A separate system database: its commit cannot share the application's, so it goes first.
        held.home.flush_held(held)
        return None
    return held


def _checkpoints_in(
    rt: Runtime, connection: sa.Connection, step: StepCheckpoint, held: list[StepCheckpoint], row: PendingRow | None,
    *, one_snapshot: bool,
) -> None:
    """Insert the transaction's checkpoint, and the held ones it carries, through its own connection, in
    one statement (after the run's pending ``row``, if it waits for this transaction); raise
    HeldRefusedError if a held one is refused, _StepTaken if its own is.

    ``one_snapshot``: the transaction reads one snapshot (PostgreSQL's REPEATABLE READ or SERIALIZABLE),
    so the row may go into the checkpoints' statement. At READ COMMITTED it may not: a reader here that
    commits the row meanwhile would be invisible to that statement's fence, where the next statement's
    new snapshot sees it."""
    if rt.app_checkpoint_store is not None:
        # The application database holds no workflow rows to fence against (and no held checkpoints
        # ride here): the copy to the system database, right after the commit, is fenced instead.
        if not rt.app_checkpoint_store.record_step_unfenced_in(connection, step):
            raise _StepTaken()
        return
    inserted = rt.checkpoint_store.record_steps_in(connection, [*held, step], row, with_row_in_one=one_snapshot)
    refused = [held_step for held_step in held if held_step.step_id not in inserted]
    if refused:
        raise HeldRefusedError(refused)
    if step.step_id not in inserted:
        raise _StepTaken()


def _classify(rt: Runtime, exc: BaseException) -> str:
    """"unavailable" (connection lost), "conflict" (retry the transaction) or "user" (the step's outcome)."""
    original = getattr(exc, "orig", None) or exc
    if rt.sys_dialect.is_disconnect(original):
        return "unavailable"
    if rt.sys_dialect.is_retryable(original):
        return "conflict"
    return "user"
