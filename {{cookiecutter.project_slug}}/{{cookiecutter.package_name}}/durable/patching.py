"""``DBOS.patch`` and ``DBOS.deprecate_patch``: change a workflow's code while older executions replay.

A patch is a marker step named ``DBOS.patch-<name>`` at the workflow's next step ID:

- ``patch`` on a new execution (or past the end of a replayed history) records the marker and returns
  True; replay finds the marker and returns True again. When an earlier execution recorded another
  step there, that run predates the patch: False, and the step ID is left for the old code's step.
- ``deprecate_patch`` (once no workflow that predates the patch is left) returns True always. It
  records nothing, but skips a marker that an earlier execution recorded, so those still replay.

Both need ``enable_patching=True`` in ``DBOSConfig`` and must be called from a workflow's body, as in
DBOS. A brand-new workflow has no history, so ``deprecate_patch`` costs no read and ``patch`` one INSERT.
"""

from __future__ import annotations

from .config import RuntimeSettings
from .context import WorkflowState, current_context, workflow_body
from .current import current_runtime
from .error import DBOSException
from .runtime import Runtime
from .store.base import now_ms

MARKER_PREFIX = "DBOS.patch-"  # the step name DBOS records for a patch


def marker_name(patch_name: str) -> str:
    """The step name under which ``patch_name``'s marker is recorded."""
    return f"{MARKER_PREFIX}{patch_name}"


def _calling_workflow(settings: RuntimeSettings, what: str) -> WorkflowState:
    """The workflow whose body calls ``what``; raise as DBOS does when patching is off or there is none."""
    if not settings.enable_patching:
        raise DBOSException("enable_patching must be True in DBOS configuration")
    state = workflow_body(current_context())
    if state is None:
        raise DBOSException(f"{what} must be called from a workflow")
    return state


def _recorded_name(rt: Runtime, state: WorkflowState, step_id: int) -> str | None:
    """The name an earlier execution recorded at ``step_id``, or None if it recorded nothing there."""
    if state.recorded is None:
        return None  # a brand-new workflow: nothing to read
    record = state.recorded.get(step_id)
    if record is None and rt.app_checkpoint_store is not None:
        record = rt.app_checkpoint_store.get_step(state.workflow_id, step_id)  # a transaction whose copy was lost
    return record.function_name if record is not None else None


def patch(settings: RuntimeSettings, patch_name: str) -> bool:
    """``DBOS.patch``: True on the patched path (marker recorded or replayed), False for older executions."""
    state = _calling_workflow(settings, "DBOS.patch")
    rt = current_runtime()  # launched: a workflow runs
    name = marker_name(patch_name)
    step_id = state.next_step_id + 1  # peek: only the patched path takes the step ID
    recorded = _recorded_name(rt, state, step_id)
    if recorded is None:
        winner = rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, name, None, None, now_ms())
        recorded = name if winner is None else winner.function_name
    if recorded != name:
        return False  # the old code's step was recorded here: the old branch replays it at this ID
    state.allocate_step_id()
    return True


def deprecate_patch(settings: RuntimeSettings, patch_name: str) -> bool:
    """``DBOS.deprecate_patch``: always True; steps over a marker recorded by an earlier execution."""
    state = _calling_workflow(settings, "DBOS.deprecate_patch")
    record = state.recorded.get(state.next_step_id + 1) if state.recorded else None
    if record is not None and record.function_name == marker_name(patch_name):
        state.allocate_step_id()  # keep the steps after the marker at the IDs they were recorded under
    return True
