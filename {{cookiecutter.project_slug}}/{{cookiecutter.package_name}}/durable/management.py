"""Operator actions on workflows: cancel, resume, fork.

Cancelling is one UPDATE of the status; the running workflow learns of it for free at its next
checkpoint, whose fenced INSERT requires ``status = 'PENDING'`` (see ``store/checkpoint_store.py``),
and at once if it waits in ``sleep``/``recv``/``get_event`` (its waiters are woken). Recovery adopts
only PENDING workflows, so a cancelled one stays put until ``resume_workflow``, which sets it
PENDING under a new fencing generation and runs it here from its checkpoints. ``fork_workflow``
copies the checkpoints before a step into a new workflow and runs that.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .context import current_context, take_workflow_id
from .error import DBOSConflictingWorkflowError, DBOSException, DBOSNonExistentWorkflowError
from .executor import resume_row
from .handles import WorkflowHandle
from .runtime import Runtime
from .wakeups import status_key

logger = logging.getLogger(__name__)

# How long resume waits for a cancelled run of the same workflow in this process to stop.
_OLD_RUN_STOP_SEC = 10.0


def cancel_workflows(rt: Runtime, workflow_ids: list[str], *, cancel_children: bool = False) -> int:
    """Cancel workflows (and, level by level, their children); return how many were still running."""
    seen = set(workflow_ids)
    frontier = list(workflow_ids)
    changed = 0
    while frontier:
        keys = [status_key(w) for w in frontier]
        changed += rt.management_store.cancel(frontier, keys)
        for key in keys:
            rt.wakeups.wake(key)
        if not cancel_children:
            break
        children = [c for w in frontier for c in rt.management_store.children(w) if c not in seen]
        seen.update(children)
        frontier = children
    return changed


def resume_workflow(rt: Runtime, workflow_id: str) -> WorkflowHandle[Any]:
    """Run a CANCELLED, ERROR or dead-lettered workflow again from its checkpoints; others are left as they are."""
    row = rt.management_store.resume(workflow_id, rt.executor_id)
    if row is None:
        if not rt.management_store.exists(workflow_id):
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))  # PENDING or SUCCESS already: nothing to resume
    rt.wakeups.wake(status_key(workflow_id))  # a cancelled run still waiting here stops (it is fenced now)
    rt.messaging_store.notify(status_key(workflow_id))  # and one waiting in another process
    _wait_for_old_run(rt, workflow_id)
    logger.info("resuming workflow %s", workflow_id)
    future = resume_row(rt, row)
    return WorkflowHandle(rt, workflow_id, future)


def fork_workflow(
    rt: Runtime, workflow_id: str, start_step: int, application_version: str | None = None
) -> WorkflowHandle[Any]:
    """Start a new workflow with the original's inputs and the checkpoints of its steps before ``start_step``.

    The new ID is the one ``SetWorkflowID`` chose, else a random UUID.
    """
    if start_step < 1:
        raise DBOSException(f"fork_workflow start_step={start_step!r}: step IDs start at 1; use 1 to rerun all steps")
    new_id, _ = take_workflow_id(current_context())
    row = rt.management_store.fork(workflow_id, new_id, start_step, rt.executor_id, application_version)
    if row is None:
        if not rt.management_store.exists(workflow_id):
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        raise DBOSConflictingWorkflowError(new_id, "a workflow with this ID exists; fork under another ID")
    logger.info("forked workflow %s from step %d as %s", workflow_id, start_step, new_id)
    return WorkflowHandle(rt, new_id, resume_row(rt, row))


def _wait_for_old_run(rt: Runtime, workflow_id: str) -> None:
    """A cancelled run may still be finishing a step here; the new run starts once it has stopped."""
    old = rt.future_of(workflow_id)
    if old is None:
        return
    try:
        old.exception(timeout=_OLD_RUN_STOP_SEC)
    except FutureTimeout:
        logger.warning("workflow %s: the cancelled run is still in a step; the resumed run starts after it",
                       workflow_id)
    except BaseException:  # noqa: B036 - a cancelled run ends with DBOSWorkflowCancelledError; that is expected
        pass
