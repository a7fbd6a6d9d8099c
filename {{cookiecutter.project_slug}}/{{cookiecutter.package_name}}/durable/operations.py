"""Operator jobs beyond DBOS's Python API, shared by the CLI (``cli.py``) and the admin server.

- recovery of named executors, refused for a live one (fresh heartbeat) unless forced: its workflows
  would run twice;
- a global timeout: cancel every unfinished workflow created before a cutoff.

Deleting and cancelling call the management module, the one implementation of both.
"""

from __future__ import annotations

import logging

from .error import DBOSException
from .management import cancel_workflows
from .recovery import recover_executors
from .runtime import Runtime

logger = logging.getLogger(__name__)

# Rows deleted (or cancelled) per transaction: a long job never holds a long transaction.
GC_BATCH = 1000


class ExecutorsAliveError(DBOSException):
    """Recovery was asked for executors whose heartbeat is fresh; ``alive`` names them."""

    def __init__(self, alive: list[str]) -> None:
        self.alive = alive
        super().__init__(
            f"executor(s) {', '.join(alive)} are alive (their heartbeat is fresh): recovering them would run "
            "their workflows twice; force it only if you know they are gone")


def live_executors(rt: Runtime, executor_ids: list[str]) -> list[str]:
    """The IDs among those given whose heartbeat is fresh."""
    live = rt.checkpoint_store.live_executors(rt.alive_since_ms())
    return [e for e in executor_ids if e in live]


def recover(rt: Runtime, executor_ids: list[str], *, force: bool = False) -> list[str]:
    """Adopt the PENDING workflows of the named executors; return their IDs.

    In a service they run here; in an operator's process they go to the service's queues.
    """
    alive = live_executors(rt, executor_ids)
    if alive and not force:
        raise ExecutorsAliveError(alive)
    return recover_executors(rt, executor_ids)


def global_timeout(rt: Runtime, cutoff_epoch_ms: int, batch_size: int = GC_BATCH) -> list[str]:
    """Cancel every unfinished workflow created at or before the cutoff; return their IDs."""
    cancelled: list[str] = []
    seen: set[str] = set()
    while True:
        batch = rt.operations_store.in_flight_created_by(cutoff_epoch_ms, batch_size)
        fresh = [w for w in batch if w not in seen]  # a row that would not cancel must not loop
        if fresh:
            cancel_workflows(rt, fresh)
            cancelled.extend(fresh)
            seen.update(fresh)
        if len(batch) < batch_size or not fresh:
            break
    if cancelled:
        logger.info("global timeout cancelled %d workflow(s)", len(cancelled))
    return cancelled
