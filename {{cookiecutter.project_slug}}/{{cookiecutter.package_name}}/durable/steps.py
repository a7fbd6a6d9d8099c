"""Checkpoints steps: replay a step's record, or run it (with retries and a timeout) and record it.

Each call of a step from a workflow's body takes the next step ID. Replay finds the record under
that ID and returns its output (or raises its error) without running the step; a new step runs and
its outcome is one fenced INSERT. Another execution that recorded the step first wins: its record is
returned. Transactions, messages and patches checkpoint through the same replay here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import row_flush
from .context import DBOSContext, StepStatus, WorkflowState, current_context, entered, workflow_body
from .error import (
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSSerializationError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
)
from .observe import emit
from .registry import FunctionInfo
from .runtime import Runtime
from .step_inputs import encode_inputs
from .step_timeouts import call_with_timeout
from .store.base import StepCheckpoint, StepRecord, now_ms
from .store.held_steps import HELD, MAX_HELD
from .tracing import span

logger = logging.getLogger(__name__)


def as_exception(value: Any) -> BaseException:
    """A recorded error as an exception to raise (a value that is none is wrapped)."""
    return value if isinstance(value, BaseException) else DBOSException(f"workflow failed: {value!r}")



def replay_step(rt: Runtime, state: WorkflowState, step_id: int, name: str) -> tuple[bool, Any]:
    """(True, value) when an earlier run recorded this step; raise its recorded error; (False, None) if new.

    A new step of a run that this process cancelled is not started: the run stops here, as in DBOS.
    """
    record = state.recorded.get(step_id) if state.recorded else None
    if record is None and rt.app_checkpoint_store is not None and state.recorded is not None:
        record = rt.app_checkpoint_store.get_step(state.workflow_id, step_id)  # a transaction whose copy was lost
    if record is None:
        if rt.cancelled.get(state.workflow_id) == state.generation:
            raise DBOSWorkflowCancelledError(f"Workflow {state.workflow_id} was cancelled")
        return False, None
    if record.function_name != name:
        raise DBOSUnexpectedStepError(state.workflow_id, step_id, name, record.function_name)
    return True, decode_step(rt, record)


def decode_step(rt: Runtime, record: StepRecord) -> Any:
    if record.error is not None:
        raise as_exception(rt.codec.decode(record.error))
    return rt.codec.decode(record.output) if record.output is not None else None


def run_step(
    rt: Runtime, info: FunctionInfo, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``my_step(...)`` inside a workflow: replay its record, or run it (with retries) and record it."""
    ctx = current_context()
    state = workflow_body(ctx)
    if ctx is None or state is None:
        return func(*args, **kwargs)  # outside a workflow, or nested in a step: plain call, as in DBOS
    step_id = state.allocate_step_id()
    name = info.name
    found, value = replay_step(rt, state, step_id, name)
    if found:
        return value
    options = info.options
    attempts = int(options.get("max_attempts", 3)) if options.get("retries_allowed") else 1
    should_retry: Callable[[BaseException], bool] | None = options.get("should_retry")
    timeout: float | None = options.get("timeout_seconds")
    interval = float(options.get("interval_seconds", 1.0))
    backoff = float(options.get("backoff_rate", 2.0))
    started_ms = now_ms()
    inputs = encode_inputs(rt.codec, info, args, kwargs)  # before the run: the call as made, not as mutated
    errors: list[Exception] = []
    step_ctx = DBOSContext(request=ctx.request, workflow=state, step_id=step_id, step_kind="step")
    retrying = bool(options.get("retries_allowed"))
    row_flush.before_step_body(rt, state, step_id)
    for attempt in range(1, attempts + 1):
        step_ctx.step_status = StepStatus(step_id, attempt - 1 if retrying else None, attempts if retrying else None)
        try:
            with entered(step_ctx), span(f"step {name}", workflow_id=state.workflow_id, step_id=step_id):
                result = (func(*args, **kwargs) if timeout is None
                          else call_with_timeout(name, timeout, func, args, kwargs))
        except Exception as exc:
            errors.append(exc)
            # Asked on every failure of a retrying step, the last included: a refusal raises the error
            # itself, as in DBOS.
            refused = attempts > 1 and should_retry is not None and not should_retry(exc)
            if attempt < attempts and not refused:
                logger.warning("step %s attempt %d/%d failed: %r; retrying", name, attempt, attempts, exc)
                emit("step_retried", name=name)
                flush_held_steps(rt, state)  # a wait is a commit point: the run's earlier steps become durable first
                time.sleep(interval * backoff ** (attempt - 1))
                continue
            retried_out = attempt == attempts > 1 and not refused
            final: Exception = DBOSMaxStepRetriesExceeded(name, attempts, errors) if retried_out else exc
            _record_step_outcome(rt, state, step_id, name, None, rt.codec.encode_exception(final), started_ms, attempt,
                                 inputs)
            emit("step_finished", (now_ms() - started_ms) / 1000, name=name, outcome="error")
            raise final from (exc if final is not exc else None)
        try:
            output = rt.codec.encode(result, what=f"step {name!r} output")
        except DBOSSerializationError as exc:
            _record_step_outcome(rt, state, step_id, name, None, rt.codec.encode_exception(exc), started_ms, attempt,
                                 inputs)
            raise
        winner = _record_step_outcome(rt, state, step_id, name, output, None, started_ms, attempt, inputs)
        emit("step_finished", (now_ms() - started_ms) / 1000, name=name, outcome="ok")
        return result if winner is None else decode_step(rt, winner)
    raise AssertionError("unreachable")


def _record_step_outcome(
    rt: Runtime, state: WorkflowState, step_id: int, name: str, output: str | None, error: str | None, started_ms: int,
    attempts: int, inputs: str,
) -> StepRecord | None:
    emit("checkpoint_bytes", len(output or error or ""), kind="step")
    held = HELD.get()
    done_ms = now_ms()
    past_deadline = state.deadline_epoch_ms is not None and done_ms >= state.deadline_epoch_ms
    if held is not None and held.workflow_id == state.workflow_id and len(held) < MAX_HELD and not past_deadline:
        # At-least-once either way: the checkpoint commits with the run's next write (held_steps.py).
        # Past the deadline it is written now: the fenced INSERT is what cancels the workflow. Held, its
        # completion time is the fence's "now", so a later write does not cancel a step that was in time.
        held.hold(StepCheckpoint(state.workflow_id, state.generation, step_id, name, output, error, started_ms,
                                 attempts=attempts, inputs=inputs, completed_ms=done_ms))
        return None
    return rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, name, output, error, started_ms,
                                           attempts=attempts, inputs=inputs)


def flush_held_steps(rt: Runtime, state: WorkflowState) -> None:
    """Commit the run's held step checkpoints now: before a wait, or a call that does not write itself."""
    held = HELD.get()
    if held is not None and held.workflow_id == state.workflow_id and len(held):
        held.home.flush_held(held)
