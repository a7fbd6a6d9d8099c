"""Runs workflows: create or find the row, decide who runs the body, run it, record how it ended.

A workflow's life, in commits: one to create its row (PENDING, inputs), one per step (output or
error), one to finish (SUCCESS or ERROR with the output). Replay after a crash re-runs the body from
the top; each step finds its record by step ID and returns it without running again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from . import row_flush
from .attributes import attributes_json
from .auth import auth_columns, row_auth
from .context import (
    DBOSContext,
    RequestInfo,
    WorkflowState,
    current_context,
    entered,
    take_workflow_id,
)
from .enqueue_options import pinned_app_version
from .error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSConflictingWorkflowError,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSFencedError,
    DBOSNonExistentWorkflowError,
    DBOSNotLaunchedError,
    DBOSSerializationError,
    DBOSShutdownError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowFunctionNotFoundError,
)
from .invocation import Invocation, conflict_with
from .observe import emit
from .portable import WorkflowSerializationFormat, coerce_to_hints
from .recorded_calls import GET_RESULT, as_step
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime
from .steps import as_exception, decode_step
from .store.base import NewWorkflow, StepRecord, WorkflowRow, WorkflowStatusString, now_ms, settle_past
from .store.held_steps import holding
from .tracing import span

logger = logging.getLogger(__name__)

PENDING = WorkflowStatusString.PENDING.value
SUCCESS = WorkflowStatusString.SUCCESS.value
ERROR = WorkflowStatusString.ERROR.value
CANCELLED = WorkflowStatusString.CANCELLED.value
DEAD = WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED.value
TERMINAL = frozenset({SUCCESS, ERROR, CANCELLED, DEAD})
# How long a caller whose workflow was taken over waits for the new owner before being told (409).
FENCED_WAIT_SEC = 5.0
# A dequeued workflow whose code this process lacks waits this long before it is dequeued again.
UNKNOWN_CODE_RETRY_MS = 1000


# -- outcomes --------------------------------------------------------------------------------------


def outcome_of(rt: Runtime, workflow_id: str, status: str, output: Any, error: Any) -> Any:
    """The value a finished workflow returned, or raise what it raised."""
    if status == SUCCESS:
        return rt.codec.decode(output) if output is not None else None
    if status == ERROR:
        raise as_exception(rt.codec.decode(error))
    if status == CANCELLED:
        raise DBOSAwaitedWorkflowCancelledError(workflow_id)
    if status == DEAD:
        raise DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(workflow_id)
    raise DBOSException(f"workflow {workflow_id} is {status}, not finished")


def wait_for_result(rt: Runtime, workflow_id: str, timeout: float | None = None) -> Any:
    """Wait for a workflow that runs elsewhere (another thread or process) and return its outcome."""
    future = rt.future_of(workflow_id)
    if future is not None:
        try:
            return future.result(timeout)
        except (DBOSFencedError, DBOSWorkflowCancelledError, DBOSShutdownError):
            pass  # not the outcome: cancelled (the row says so) or run elsewhere now; read the row
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        found = rt.checkpoint_store.get_outcome(workflow_id)
        if found is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        status, output, error = found
        if status in TERMINAL:
            return outcome_of(rt, workflow_id, status, output, error)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"workflow {workflow_id} still {status} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


# -- starting --------------------------------------------------------------------------------------


@dataclass
class Started:
    """What starting a workflow decided: run it here (with this state), or it is already taken care of."""

    workflow_id: str
    state: WorkflowState | None  # set when this caller must run the body
    request: RequestInfo | None
    parent: WorkflowState | None = None
    parent_step_id: int | None = None
    parent_record: StepRecord | None = None  # what an earlier run of the parent recorded for this child
    finished: WorkflowRow | None = None  # the workflow had already ended: its row holds the outcome


def assign_workflow_id(
    parent: DBOSContext | None, parent_state: WorkflowState | None, name: str
) -> tuple[str, int | None, StepRecord | None, bool]:
    """The new workflow's ID; for a child its step in the parent and what an earlier run recorded there;
    whether the ID was chosen or derived (not a fresh UUID, which no other caller can know).
    A child is one step of its parent; its ID derives from the parent's, so replay finds it again.
    """
    if parent is None or parent_state is None:
        workflow_id, was_chosen = take_workflow_id(parent)
        return workflow_id, None, None, was_chosen
    step_id = parent_state.allocate_step_id()
    record = parent_state.recorded.get(step_id) if parent_state.recorded else None
    if record is not None and record.function_name != name:
        raise DBOSUnexpectedStepError(parent_state.workflow_id, step_id, name, record.function_name)
    chosen, was_set = take_workflow_id(parent)
    workflow_id = (record.child_workflow_id if record else None) or (
        chosen if was_set else f"{parent_state.workflow_id}-{step_id}"
    )
    return workflow_id, step_id, record, True


def new_workflow_row(
    rt: Runtime, call: Invocation, workflow_id: str, request: RequestInfo | None, parent_state: WorkflowState | None,
    timeout_ms: int | None, deadline: int | None, queue_name: str | None = None,
) -> NewWorkflow:
    """The row a starting (or enqueued) workflow writes: its inputs checked and encoded at the call."""
    if parent_state is not None and parent_state.unsettled_created_ms is not None:
        # A child's created_at must follow its parent's, as it would had the parent waited at its start.
        settle_past(parent_state.unsettled_created_ms)
        parent_state.unsettled_created_ms = None
    info = call.info
    caller = current_context()
    return NewWorkflow(
        workflow_id=workflow_id,
        name=info.name,
        inputs=rt.codec.encode({"args": list(call.args), "kwargs": call.kwargs}, what=f"workflow {info.name!r} input",
                               portable=is_portable_workflow(info)),
        executor_id=rt.executor_id,
        application_version=pinned_app_version() or rt.settings.application_version,
        application_id=rt.settings.application_id,
        class_name=call.class_name,
        config_name=call.config_name,
        request=rt.codec.encode(request.to_json(), what="request") if request else None,
        parent_workflow_id=parent_state.workflow_id if parent_state else None,
        queue_name=queue_name,
        workflow_version=info.version,
        workflow_timeout_ms=timeout_ms,
        workflow_deadline_epoch_ms=deadline,
        attributes=attributes_json(caller),
        **auth_columns(caller.auth if caller is not None else None),
    )


def is_portable_workflow(info: FunctionInfo) -> bool:
    """``@DBOS.workflow(serialization_type=WorkflowSerializationFormat.PORTABLE)``: plain-JSON checkpoints."""
    return info.options.get("serialization_type") == WorkflowSerializationFormat.PORTABLE


def begin_workflow(rt: Runtime, call: Invocation, *, inline: bool = False) -> Started:
    """Create the workflow's row (or find it) and decide who runs the body.

    ``inline``: the caller runs the body on its own thread and waits for it (``row_flush.py``).
    """
    info = call.info
    parent = current_context()
    if parent is not None and parent.step_kind is not None:
        # A step's body is not replayed, so a child started there would shift every later step ID.
        raise DBOSException(
            f"workflow {info.name!r} was called or started from inside a {parent.step_kind} of workflow "
            f"{parent.workflow_id!r}; as in DBOS, start workflows from the workflow's body (a queue's "
            "enqueue inside @DBOS.transaction commits with the transaction)"
        )
    parent_state = parent.workflow if parent is not None else None
    workflow_id, step_id, record, chosen = assign_workflow_id(parent, parent_state, info.name)
    request = parent.request if parent is not None else None
    started = Started(workflow_id, None, request, parent_state, step_id, record)
    if record is not None and record.child_workflow_id and (record.output is not None or record.error is not None):
        return started  # the parent already holds this child's outcome: nothing to start
    timeout_ms, deadline = timeout_for(parent)
    unflushed = inline and parent_state is None and row_flush.may_start_unflushed(rt, info.name)
    # Run inline, the caller gets control back only after the workflow's end, whose stamp is settled:
    # the start's stamp need not be (``settle_past``), which spares most calls a sleep.
    row = new_workflow_row(rt, call, workflow_id, request, parent_state, timeout_ms, deadline)
    created_ms = now_ms() if inline else None  # after the row: building it settles the parent's stamp
    deferred = unflushed and not chosen and row_flush.may_defer_row(rt, info.name)  # unflushed: inline
    existing = None if deferred else rt.checkpoint_store.create_workflow(row, flush=not unflushed,
                                                                         created_ms=created_ms)
    if existing is None:
        emit("workflow_started", name=info.name)
        started.state = WorkflowState(workflow_id, info.name, generation=0, recorded=None, deadline_epoch_ms=deadline,
                                      auth=parent.auth if parent is not None else None,
                                      row_unflushed=unflushed and not deferred, unsettled_created_ms=created_ms)
        if deferred:
            row_flush.defer_row(rt, started.state, row, created_ms)
        return started
    conflict = conflict_with(existing, info.name, call)
    if conflict:
        raise DBOSConflictingWorkflowError(workflow_id, conflict)
    if existing.status == PENDING and existing.workflow_version != info.version:
        raise DBOSConflictingWorkflowError(
            workflow_id, f"it was started by version {existing.workflow_version!r} of {info.name!r}, "
            f"this call is version {info.version!r}; recovery runs it with the code of its own version"
        )
    if existing.status in TERMINAL:
        started.finished = existing
    else:
        started.state = take_over(rt, existing)
    return started


def timeout_for(ctx: DBOSContext | None) -> tuple[int | None, int | None]:
    """(timeout ms, deadline epoch ms) of a workflow about to start: SetWorkflowTimeout's, else the parent's."""
    timeout_ms = ctx.workflow_timeout_ms if ctx is not None else None
    if timeout_ms:
        return timeout_ms, now_ms() + timeout_ms
    if timeout_ms is None and ctx is not None and ctx.workflow is not None:
        return None, ctx.workflow.deadline_epoch_ms  # a child shares its parent's deadline, as in DBOS
    return None, None


def take_over(rt: Runtime, row: WorkflowRow) -> WorkflowState | None:
    """For a workflow that already has a row: the state to resume it here, or None if it needs no run here."""
    if row.status != PENDING:
        return None
    if rt.future_of(row.workflow_id) is not None:
        return None  # another thread here runs it; callers wait on its future
    if row.executor_id != rt.executor_id:
        adopted = rt.checkpoint_store.adopt_workflow(row.workflow_id, rt.executor_id, rt.alive_since_ms())
        if adopted is None:
            return None  # a live executor owns it; callers wait for its outcome
        emit("workflow_adopted")
        row = adopted
    if dead_lettered(rt, row):
        return None  # callers read its outcome: DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded
    return WorkflowState(
        row.workflow_id, row.name, generation=row.owner_generation,
        recorded=rt.checkpoint_store.load_steps(row.workflow_id), deadline_epoch_ms=row.workflow_deadline_epoch_ms,
        auth=row_auth(row.authenticated_user, row.authenticated_roles, row.assumed_role),
    )


# -- running ---------------------------------------------------------------------------------------


def run_body(rt: Runtime, call: Invocation, state: WorkflowState, request: RequestInfo | None) -> Any:
    """Run a workflow's body under its own context and record how it ended."""
    name = call.info.name
    portable = is_portable_workflow(call.info)
    ctx = DBOSContext(request=request, workflow=state, auth=state.auth)
    held = rt.hold_steps(state.workflow_id)
    emit("workflow_running", 1, name=name)
    try:
        with entered(ctx), holding(held), span(f"workflow {name}", workflow_id=state.workflow_id):
            try:
                result = call.call()
                output = rt.codec.encode(result, what=f"workflow {name!r} output", portable=portable)
            except (DBOSFencedError, DBOSWorkflowCancelledError, DBOSDatabaseUnavailableError, DBOSNotLaunchedError):
                # Not the workflow's outcome: another executor owns it, it was cancelled, the database is
                # away (it stays PENDING and this executor resumes it once the database is back), or DBOS
                # was destroyed under it (it stays PENDING for the next launch or another executor).
                raise
            except Exception as exc:
                error = rt.codec.encode_exception(exc, portable=portable)
                try:
                    state.write_pending_row()  # a run that wrote nothing yet still ends with its row
                    rt.checkpoint_store.finish_workflow(state.workflow_id, state.generation, ERROR, None, error)
                except DBOSFencedError:
                    pass
                else:
                    _finished(name, ERROR, error)
                raise
            # Inside ``holding``: the outcome's commit carries the steps still held.
            state.write_pending_row()
            rt.checkpoint_store.finish_workflow(state.workflow_id, state.generation, SUCCESS, output, None)
        _finished(name, SUCCESS, output)
        return result
    finally:
        if held is not None:
            rt.release_held(held)  # what is still held here was refused or never committed: at-least-once
        row_flush.forget_row(rt, state)  # if it stopped before any durable write: nothing of it was recorded
        emit("workflow_running", -1, name=name)


def _finished(name: str, status: str, recorded: str | None) -> None:
    emit("workflow_finished", name=name, status=status)
    emit("checkpoint_bytes", len(recorded or ""), kind="workflow")


def run_inline(rt: Runtime, call: Invocation, started: Started) -> Any:
    """Run (or await) a workflow on the calling thread and return its result."""
    workflow_id, state = started.workflow_id, started.state
    if started.parent_record is not None and started.state is None and (
        started.parent_record.output is not None or started.parent_record.error is not None
    ):
        return decode_step(rt, started.parent_record)
    finished = started.finished
    if finished is not None:
        result = _checked_child(rt, call, started, lambda: outcome_of(
            rt, workflow_id, finished.status, finished.output, finished.error))
    elif state is None:
        result = _checked_child(rt, call, started, lambda: wait_for_result(rt, workflow_id))
    else:
        other = rt.claim_inline(workflow_id)
        if other is not None:
            result = _checked_child(rt, call, started, other.result)
        else:
            outcome: tuple[bool, Any] = (False, None)
            def run_here() -> Any:
                try:
                    return _run_cancellable(rt, call, state, started)
                except DBOSFencedError:
                    # Another run took the workflow over (recovery here or elsewhere): its outcome counts,
                    # if it comes soon; else the caller (an HTTP request, say) is told now, not at its timeout.
                    return _await_new_owner(rt, workflow_id)

            try:
                result = _checked_child(rt, call, started, run_here)
                outcome = (True, result)
            except BaseException as exc:
                outcome = (False, exc)
                raise
            finally:
                rt.release_inline(workflow_id, outcome)
    return result


def _await_new_owner(rt: Runtime, workflow_id: str) -> Any:
    """The outcome of a workflow another execution took over, if it ends within FENCED_WAIT_SEC."""
    try:
        return wait_for_result(rt, workflow_id, timeout=FENCED_WAIT_SEC)
    except TimeoutError:
        raise DBOSFencedError(workflow_id) from None


def _run_cancellable(rt: Runtime, call: Invocation, state: WorkflowState, started: Started) -> Any:
    """Run the body inline; if the workflow is cancelled, its caller sees DBOSAwaitedWorkflowCancelledError."""
    try:
        return run_body(rt, call, state, started.request)
    except DBOSWorkflowCancelledError:
        # The caller (a parent, or plain code) awaited this workflow: as with a handle, it learns the
        # workflow was cancelled. A parent records that as its step, unless it was cancelled too.
        raise DBOSAwaitedWorkflowCancelledError(started.workflow_id) from None


def _checked_child(rt: Runtime, call: Invocation, started: Started, get: Callable[[], Any]) -> Any:
    """Get a workflow's result; for a child, as DBOS records it: the child's start, then ``DBOS.getResult``.

    The start is recorded before the child runs (its ID is what replay needs); the result is the
    parent's next step, so replay returns it without running or awaiting the child again.
    """
    parent, step_id = started.parent, started.parent_step_id
    if parent is None or step_id is None:
        return get()
    record_child_start(rt, parent, step_id, call.info.name, started.workflow_id)
    return as_step(rt, GET_RESULT, get, child_workflow_id=started.workflow_id, record_errors=True)


def record_child_start(rt: Runtime, parent: WorkflowState, step_id: int, name: str, child_id: str) -> None:
    """Record a child started in the background (or enqueued) as its parent's step, unless replay found it."""
    if not (parent.recorded and step_id in parent.recorded):
        rt.checkpoint_store.record_step(parent.workflow_id, parent.generation, step_id, name, None, None, now_ms(),
                                        child_workflow_id=child_id)


def call_workflow(rt: Runtime, info: FunctionInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``my_workflow(...)``: run durably and return the result."""
    call = Invocation.of(info, args, kwargs)
    parent = current_context()
    if parent is not None and parent.step_kind is not None:
        return call.call()  # a workflow called from inside a step is plain code, as in DBOS
    started = begin_workflow(rt, call, inline=True)
    try:
        return run_inline(rt, call, started)
    finally:
        # Its end settled a later stamp, unless it stopped before (fenced, cancelled, database away).
        if started.state is not None and started.state.unsettled_created_ms is not None:
            settle_past(started.state.unsettled_created_ms)


def start_workflow(
    rt: Runtime, info: FunctionInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Future[Any] | None]:
    """``DBOS.start_workflow``: create the row now, run the body on a worker thread.

    Returns the workflow ID and the in-process future when the body runs (or already runs) here.
    """
    call = Invocation.of(info, args, kwargs)
    started = begin_workflow(rt, call)
    if started.parent is not None and started.parent_step_id is not None:
        record_child_start(rt, started.parent, started.parent_step_id, info.name, started.workflow_id)
    state = started.state
    if state is None:
        return started.workflow_id, rt.future_of(started.workflow_id)
    return started.workflow_id, rt.submit(started.workflow_id, lambda: run_body(rt, call, state, started.request))


def dead_lettered(rt: Runtime, row: WorkflowRow) -> bool:
    """Move a workflow started too many times to MAX_RECOVERY_ATTEMPTS_EXCEEDED instead of running it again.

    The table's ``recovery_attempts`` counts recoveries (DBOS's count of executions, less the first run):
    a workflow that keeps killing its process would otherwise take every executor down with it."""
    info = REGISTRY.find_workflow(row.name, row.workflow_version)
    limit = (info.options.get("max_recovery_attempts") if info else None) or rt.settings.max_recovery_attempts
    if row.recovery_attempts <= limit:
        return False
    logger.error("workflow %s (%s) exceeded %d recovery attempts; moved to %s", row.workflow_id, row.name, limit, DEAD)
    rt.checkpoint_store.dead_letter(row.workflow_id, row.owner_generation)
    return True


def resume_row(
    rt: Runtime, row: WorkflowRow, *, dequeued: bool = False, has_steps: bool = True
) -> Future[Any] | None:
    """Run a workflow this executor has just adopted (recovery) or dequeued, from its recorded inputs.

    ``has_steps=False``: the adopting statement saw no step checkpoint, so none is read. Once that
    statement committed (a new fencing generation), no earlier owner's checkpoint can be added; one
    whose statement was already under way is met as a conflict when the step is recorded again.
    """
    if not rt.runs_workflows:
        # An operator's process runs nothing: the service's dequeuer takes the workflow from here.
        rt.operations_store.hand_off(row.workflow_id, row.owner_generation)
        logger.info("workflow %s handed to the service's queues", row.workflow_id)
        return None
    info = REGISTRY.find_workflow(row.name, row.workflow_version)
    if dead_lettered(rt, row):
        return None
    if info is None and dequeued:
        # Not this process's code (yet): a module may still be importing, or another service runs it.
        # DBOS leaves such a row claimed; here it waits again, and any process that has the code takes it.
        rt.queue_store.defer(row.workflow_id, row.owner_generation, now_ms() + UNKNOWN_CODE_RETRY_MS)
        logger.warning("queued workflow %s (%s) has no registered code here; it waits %d ms and is dequeued again",
                       row.workflow_id, row.name, UNKNOWN_CODE_RETRY_MS)
        return None
    if info is None:
        known = REGISTRY.versions_of(row.name)
        detail = (f"it was started by version {row.workflow_version!r} of {row.name!r}, and this process has "
                  f"versions {known}; keep that version's code registered until its workflows finish"
                  if known else f"no workflow named {row.name!r} is registered")
        error = DBOSWorkflowFunctionNotFoundError(row.workflow_id, detail)
        logger.error("%s", error)
        rt.checkpoint_store.finish_workflow(row.workflow_id, row.owner_generation, ERROR, None, rt.codec.encode_exception(error))
        return None
    try:
        bound = _bound_object(info, row)
    except DBOSWorkflowFunctionNotFoundError as exc:
        # It stays PENDING: the instance may be registered later; each retry counts as a recovery attempt.
        logger.error("cannot run workflow %s: %s", row.workflow_id, exc)
        return None
    if dequeued:
        emit("workflow_started", name=row.name)
    else:
        emit("workflow_recovered", name=row.name)

    def resume() -> Any:
        # Decoding, the log line and the checkpoints' read happen on the worker thread: the thread that
        # adopts or dequeues hands out thousands in a row, with one GIL share among all the workers.
        if dequeued:
            logger.debug("starting queued workflow %s (%s)", row.workflow_id, row.name)
        else:
            logger.info("recovering workflow %s (%s)", row.workflow_id, row.name)
        try:
            inputs = rt.codec.decode(row.inputs) if row.inputs is not None else {"args": [], "kwargs": {}}
        except DBOSSerializationError as exc:
            rt.checkpoint_store.finish_workflow(row.workflow_id, row.owner_generation, ERROR, None,
                                                rt.codec.encode_exception(exc))
            raise  # the row's outcome, as a waiter on this run's future sees it
        args, kwargs = tuple(inputs["args"]), dict(inputs["kwargs"])
        if is_portable_workflow(info) or rt.codec.portable_default:
            # Plain JSON turned datetimes into strings: the function's type hints turn them back.
            args, kwargs = coerce_to_hints(info.func, args, kwargs, skip_first=info.method_kind in ("instance", "class"))
        call = Invocation(info, bound, args, kwargs, row.class_name, row.config_name)
        request = RequestInfo.from_json(rt.codec.decode(row.request)) if row.request is not None else None
        state = WorkflowState(row.workflow_id, row.name, generation=row.owner_generation,
                              recorded=rt.checkpoint_store.load_steps(row.workflow_id) if has_steps else {},
                              deadline_epoch_ms=row.workflow_deadline_epoch_ms,
                              auth=row_auth(row.authenticated_user, row.authenticated_roles, row.assumed_role))
        return run_body(rt, call, state, request)

    return rt.submit(row.workflow_id, resume)


def _bound_object(info: FunctionInfo, row: WorkflowRow) -> Any:
    """The instance or class a recorded method call runs on, found by the names the row recorded."""
    if info.method_kind == "instance":
        instance = REGISTRY.find_instance(row.class_name or "", row.config_name or "")
        if instance is None:
            raise DBOSWorkflowFunctionNotFoundError(
                row.workflow_id, f"configured class instance '{row.class_name}/{row.config_name}' is not registered"
            )
        return instance
    if info.method_kind == "class":
        klass = REGISTRY.classes.get(row.class_name or "")
        if klass is None:
            raise DBOSWorkflowFunctionNotFoundError(row.workflow_id, f"class '{row.class_name}' is not registered")
        return klass
    return None
