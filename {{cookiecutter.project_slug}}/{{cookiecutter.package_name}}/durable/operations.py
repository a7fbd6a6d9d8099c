"""Operator jobs beyond DBOS's Python API, shared by the CLI (``cli.py``) and the admin server.

- recovery of named executors, refused for a live one (fresh heartbeat) unless forced: its workflows
  would run twice;
- garbage collection: delete finished workflows created before a cutoff (or beyond the newest N), in
  bounded batches, one transaction each, keeping every PENDING, ENQUEUED or DELAYED row;
- a global timeout: cancel every unfinished workflow created before a cutoff.

Deleting and cancelling call the management module, the one implementation of both.
"""

from __future__ import annotations

import logging

from .error import DBOSException
from .management import cancel_workflows, delete_workflows
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


def garbage_collect(rt: Runtime, *, cutoff_epoch_ms: int | None = None, rows_threshold: int | None = None,
                    batch_size: int = GC_BATCH) -> int:
    """Delete finished workflows created before the cutoff and beyond the newest ``rows_threshold``.

    With both, the later cutoff wins (more is deleted), as in DBOS. Returns how many were deleted.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size}")
    if rows_threshold is not None:
        if rows_threshold < 1:
            raise ValueError(f"rows_threshold must be a positive whole number, got {rows_threshold}")
        nth = rt.operations_store.nth_newest_created_at(rows_threshold)
        if nth is not None and (cutoff_epoch_ms is None or nth > cutoff_epoch_ms):
            cutoff_epoch_ms = nth
    if cutoff_epoch_ms is None:
        return 0
    deleted = 0
    previous: list[str] = []
    while True:
        # One batch per transaction of the delete. A row resumed between this pick and the delete
        # would go too: garbage collection is for workflows long finished, not ones an operator works on.
        batch = rt.operations_store.finished_before(cutoff_epoch_ms, batch_size)
        if not batch or batch == previous:  # nothing left, or nothing deleted: never loop
            break
        delete_workflows(rt, batch)
        deleted += len(batch)
        previous = batch
        if len(batch) < batch_size:
            break
    if deleted:
        logger.info("garbage collection deleted %d finished workflow(s)", deleted)
    return deleted


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
