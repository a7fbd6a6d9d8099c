"""Workflow timeouts: a durable deadline per workflow, and cancellation when it passes.

``SetWorkflowTimeout(seconds)`` gives the workflows started in its block a deadline, stored in their
row (``workflow_deadline_epoch_ms``); a child inherits its parent's deadline. Nothing checks it on the
hot path: the step-checkpoint INSERT's fence also requires the deadline to be in the future, so a
late workflow's next checkpoint is refused and only then is it cancelled (``store/checkpoint_store``).
A workflow blocked in ``sleep``/``recv``/``get_event`` wakes at its deadline, and the recovery loop
sweeps the rest (a workflow stuck in a long step, or one whose process died), children included.
"""

from __future__ import annotations

import logging

from .management import cancel_workflows
from .runtime import Runtime
from .store.base import now_ms

logger = logging.getLogger(__name__)

SWEEP_BATCH = 200


def expire_if_past_deadline(rt: Runtime, workflow_id: str, deadline_epoch_ms: int) -> bool:
    """Cancel a workflow (and its children) whose deadline has passed; True if it had."""
    if now_ms() < deadline_epoch_ms:
        return False
    cancel_workflows(rt, [workflow_id], cancel_children=True)
    return True


def cancel_expired(rt: Runtime) -> int:
    """Cancel every PENDING workflow past its deadline, with its children; return how many."""
    expired = rt.management_store.past_deadline(SWEEP_BATCH)
    if expired:
        cancel_workflows(rt, expired, cancel_children=True)
        logger.info("cancelled %d workflow(s) past their deadline", len(expired))
    return len(expired)
