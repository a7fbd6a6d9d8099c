"""API calls made from a workflow's body are its steps: ``DBOS.getStatus``, ``DBOS.listWorkflows``, ...

A workflow that lists workflows, reads a status, waits for a handle's result or forks another must
see on replay what its first run saw, so each such call is recorded under the next step ID (its
output, and for a handle's result its error too) and replayed from there. Outside a workflow, and
inside a step, the call is a plain call, as in DBOS; inside a transaction it is refused, since its
effect could not commit with the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .context import current_context, workflow_body
from .error import (
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSFencedError,
    DBOSNotLaunchedError,
    DBOSWorkflowCancelledError,
)
from .runtime import Runtime
from .steps import decode_step, flush_held_steps, replay_step
from .store.base import now_ms

T = TypeVar("T")

GET_STATUS = "DBOS.getStatus"
GET_RESULT = "DBOS.getResult"
LIST_WORKFLOWS = "DBOS.listWorkflows"
LIST_QUEUED_WORKFLOWS = "DBOS.listQueuedWorkflows"
LIST_STEPS = "DBOS.listWorkflowSteps"
CANCEL = "DBOS.cancelWorkflow"
RESUME = "DBOS.resumeWorkflow"
FORK = "DBOS.forkWorkflow"
DELETE = "DBOS.deleteWorkflow"

# Not an outcome of the call: the caller's own run was fenced or cancelled, the database was away, DBOS
# was destroyed under it, or a wait timed out.
_NOT_RECORDED = (DBOSFencedError, DBOSWorkflowCancelledError, DBOSDatabaseUnavailableError, DBOSNotLaunchedError,
                 TimeoutError)


def as_step(
    rt: Runtime, name: str, call: Callable[[], T], *, child_workflow_id: str | None = None,
    record_errors: bool = False,
) -> T:
    """Run ``call`` as the workflow's next step named ``name`` (replayed if recorded), else plainly.

    ``record_errors`` records what the call raised as its outcome too (a handle's result: the
    child's error is what replay must raise again); otherwise an error is raised and not recorded.
    """
    ctx = current_context()
    if ctx is not None and ctx.step_kind == "transaction":
        raise DBOSException(f"Invalid call to `{name}` inside a transaction")
    state = workflow_body(ctx)
    if state is None:
        return call()
    step_id = state.allocate_step_id()
    found, value = replay_step(rt, state, step_id, name)
    if found:
        return value  # type: ignore[no-any-return]
    flush_held_steps(rt, state)  # what the call shows (or waits for) follows the run's earlier steps
    started = now_ms()
    try:
        result = call()
    except Exception as exc:
        if record_errors and not isinstance(exc, _NOT_RECORDED):
            rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, name, None,
                                            rt.codec.encode_exception(exc), started, child_workflow_id=child_workflow_id)
        raise
    output = rt.codec.encode(result, what=f"the result of {name}")
    winner = rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, name, output, None,
                                             started, child_workflow_id=child_workflow_id)
    return result if winner is None else decode_step(rt, winner)
