"""Operator actions on workflows: cancel, resume, fork, delete.

Cancelling is one UPDATE of the status; the running workflow learns of it for free at its next
checkpoint, whose fenced INSERT requires ``status = 'PENDING'`` (see ``store/checkpoint_store.py``),
and at once if it waits in ``sleep``/``recv``/``get_event`` (its waiters are woken). Recovery adopts
only PENDING workflows, so a cancelled one stays put until ``resume_workflow``, which sets it
PENDING under a new fencing generation and runs it here from its checkpoints (or, given a queue,
ENQUEUED there). ``fork_workflow`` copies the checkpoints before a step into a new workflow and runs
that. ``delete_workflows`` removes a workflow and everything recorded under its ID.

Called from a workflow's body, each action is one of its steps (``recorded_calls.py``): replay does
not cancel, resume, fork or delete again, and a fork's replay returns the fork it made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .context import current_context, take_workflow_id
from .enqueue import QUEUE_KEY, wake_dequeuer
from .error import DBOSConflictingWorkflowError, DBOSException, DBOSNonExistentWorkflowError
from .executor import resume_row
from .handles import WorkflowHandle
from .recorded_calls import CANCEL, DELETE, FORK, RESUME, as_step
from .runtime import Runtime
from .store.management_store import ForkSpec, ManagementStore
from .wakeups import status_key

logger = logging.getLogger(__name__)

# How long resume waits for a cancelled run of the same workflow in this process to stop.
_OLD_RUN_STOP_SEC = 10.0
# Cancelled generations remembered for runs here (runtime.cancelled); the oldest are forgotten past this.
_CANCELLED_KEPT = 10_000


def cancel_workflows(rt: Runtime, workflow_ids: list[str], *, cancel_children: bool = False) -> int:
    """Cancel workflows (and, level by level, their children); return how many were still running."""
    return as_step(rt, CANCEL, lambda: _cancel(rt, workflow_ids, cancel_children))


def _cancel(rt: Runtime, workflow_ids: list[str], cancel_children: bool) -> int:
    seen = set(workflow_ids)
    frontier = list(workflow_ids)
    changed = 0
    while frontier:
        keys = [status_key(w) for w in frontier]
        for workflow_id in frontier:
            rt.flush_held(workflow_id)  # steps a run here finished before the cancel stay recorded, as in DBOS
        cancelled = rt.management_store.cancel(frontier, keys)
        changed += len(cancelled)
        _remember_cancelled(rt, cancelled)
        for key in keys:
            rt.wakeups.wake(key)
        if not cancel_children:
            break
        children = [c for w in frontier for c in rt.management_store.children(w) if c not in seen]
        seen.update(children)
        frontier = children
    return changed


def _remember_cancelled(rt: Runtime, cancelled: dict[str, int]) -> None:
    rt.cancelled.update(cancelled)
    while len(rt.cancelled) > _CANCELLED_KEPT:
        del rt.cancelled[next(iter(rt.cancelled))]


def resume_workflow(rt: Runtime, workflow_id: str, queue_name: str | None = None) -> WorkflowHandle[Any]:
    """Run a CANCELLED, ERROR, dead-lettered or still ENQUEUED workflow now, from its checkpoints; others
    (PENDING, SUCCESS) are left as they are.

    Without ``queue_name`` it runs here at once; with one it is ENQUEUED there, for any process that
    declares that queue.
    """
    as_step(rt, RESUME, lambda: _resume(rt, workflow_id, queue_name))
    return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))


def _resume(rt: Runtime, workflow_id: str, queue_name: str | None) -> None:
    row = rt.management_store.resume(workflow_id, rt.executor_id, queue_name)
    if row is None:
        if not rt.management_store.exists(workflow_id):
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return  # PENDING or SUCCESS already: nothing to resume
    rt.wakeups.wake(status_key(workflow_id))  # a cancelled run still waiting here stops (it is fenced now)
    rt.messaging_store.notify(status_key(workflow_id))  # and one waiting in another process
    _wait_for_old_run(rt, workflow_id)
    if queue_name is not None:
        logger.info("resuming workflow %s on queue %s", workflow_id, queue_name)
        _wake_queues(rt)
        return
    logger.info("resuming workflow %s", workflow_id)
    resume_row(rt, row)


def resume_workflows(rt: Runtime, workflow_ids: list[str], queue_name: str | None = None) -> list[WorkflowHandle[Any]]:
    """``resume_workflow`` for each (one step in a workflow); an unknown ID is refused before any is resumed."""

    def resume_all() -> None:
        missing = [w for w in workflow_ids if not rt.management_store.exists(w)]
        if missing:
            raise DBOSNonExistentWorkflowError("target", ", ".join(missing))
        for workflow_id in workflow_ids:
            _resume(rt, workflow_id, queue_name)

    as_step(rt, RESUME, resume_all)
    return [WorkflowHandle(rt, w, rt.future_of(w)) for w in workflow_ids]


def fork_workflow(
    rt: Runtime,
    workflow_id: str,
    start_step: int,
    *,
    application_version: str | None = None,
    queue_name: str | None = None,
    queue_partition_key: str | None = None,
    replacement_children: Mapping[str, str] | None = None,
    timeout_seconds: float | None = None,
) -> WorkflowHandle[Any]:
    """Start a new workflow with the original's inputs and the checkpoints of its steps before ``start_step``.

    The new ID is the one ``SetWorkflowID`` chose, else a random UUID. A ``start_step`` below 1 re-runs
    every step, as in DBOS. ``replacement_children`` maps child workflow IDs recorded in the kept steps
    to others (forks of those children, say), so the fork awaits those instead. ``timeout_seconds``
    gives the fork a timeout of its own (from its start, or from its dequeue when on a queue).
    """
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise DBOSException(f"Invalid workflow timeout {timeout_seconds}. Timeouts must be positive.")
    new_id, _ = take_workflow_id(current_context())
    spec = ForkSpec(
        new_id=new_id, start_step=max(int(start_step), 1), executor_id=rt.executor_id,
        application_version=application_version, queue_name=queue_name, queue_partition_key=queue_partition_key,
        timeout_ms=int(timeout_seconds * 1000) if timeout_seconds is not None else None,
        replacement_children=dict(replacement_children) if replacement_children else None,
    )
    forked_id = as_step(rt, FORK, lambda: _fork(rt, workflow_id, spec))
    return WorkflowHandle(rt, forked_id, rt.future_of(forked_id))


def _fork(rt: Runtime, workflow_id: str, spec: ForkSpec) -> str:
    new_id = spec.new_id
    rt.flush_held(workflow_id)  # the fork copies the steps a run here has finished
    row = rt.management_store.fork(workflow_id, spec)
    if row is None:
        if not rt.management_store.exists(workflow_id):
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        raise DBOSConflictingWorkflowError(new_id, "a workflow with this ID exists; fork under another ID")
    logger.info("forked workflow %s from step %d as %s", workflow_id, spec.start_step, new_id)
    if spec.queue_name is not None:
        _wake_queues(rt)
    else:
        resume_row(rt, row)
    return new_id


def delete_workflows(rt: Runtime, workflow_ids: list[str], *, delete_children: bool = False) -> None:
    """Delete workflows (and with ``delete_children`` their descendants) and all that is recorded for them.

    Meant for finished workflows: a workflow still running here is not stopped by it.
    """
    as_step(rt, DELETE, lambda: _delete(rt, workflow_ids, delete_children))


def _delete(rt: Runtime, workflow_ids: list[str], delete_children: bool) -> None:
    ids = list(workflow_ids)
    if delete_children:
        ids += rt.management_store.descendants(ids)
    rt.management_store.delete(ids)
    if rt.app_checkpoint_store is not None:  # transactions also checkpoint in the application database
        ManagementStore(rt.app_checkpoint_store.db).delete(ids)
    logger.info("deleted workflow(s) %s", ids)


def _wake_queues(rt: Runtime) -> None:
    """A row is ENQUEUED: this process's dequeuer looks now, and on PostgreSQL the others too."""
    wake_dequeuer(rt)
    rt.messaging_store.notify(QUEUE_KEY)


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
