"""Database-backed queues (``DBOS.register_queue``, ``retrieve_queue``, ``delete_queue``, ``list_queues``)
and the dequeuer's view of every queue this process serves (``DBOS.listen_queues``).

A registered queue is a row of the ``queues`` table (``store/queue_config_store.py``), so every process
runs it with the same limits, and a change reaches every dequeuer at its next round. An in-memory
queue (``Queue(...)``) of the same name wins in the process that declared it, as in DBOS.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .enqueue import INTERNAL_QUEUE_NAME, wake_dequeuer
from .queue_config import QueueRateLimit, QueueSettings
from .queues import QUEUES, Queue, config_store, declared_queues
from .runtime import Runtime
from .store.queue_config_store import QueueConfigStore

logger = logging.getLogger(__name__)

ON_CONFLICT = ("update_if_latest_version", "always_update", "never_update")


def register_queue(
    rt: Runtime,
    name: str,
    on_conflict: str,
    *,
    worker_concurrency: int | None,
    global_concurrency: int | None,
    partition_concurrency: int | None,
    partition_worker_concurrency: int | None,
    partition_limiter: QueueRateLimit | None,
    limiter: QueueRateLimit | None,
    polling_interval_sec: float,
    concurrency: int | None,
    priority_enabled: bool,
    partition_queue: bool,
) -> Queue:
    """Store the queue's limits (bad limits store nothing); an existing row is replaced per ``on_conflict``.

    ``update_if_latest_version`` replaces it only when this process runs the newest application
    version (the version of the executor that started last), so an old version still running in a
    rolling deploy does not undo the new one's limits.
    """
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be 'update_if_latest_version', 'always_update' or 'never_update', "
                         f"got {on_conflict!r}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a queue needs a non-empty string name, got {name!r}")
    settings = QueueSettings.of(
        concurrency=concurrency, global_concurrency=global_concurrency, worker_concurrency=worker_concurrency,
        limiter=limiter, partition_concurrency=partition_concurrency,
        partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
        partition_queue=partition_queue, priority_enabled=priority_enabled, polling_interval_sec=polling_interval_sec)
    store = config_store(rt)
    if on_conflict == "update_if_latest_version":
        latest = store.latest_application_version()
        update = latest is None or latest == rt.settings.application_version
    else:
        update = on_conflict == "always_update"
    if store.upsert(name, settings.to_row(), update=update):
        logger.info("registered queue %s %s", name, settings)
    wake_dequeuer(rt)  # a queue with work already waiting starts now
    found = retrieve_queue(rt, name)
    assert found is not None, f"queue {name} vanished right after it was registered"
    return found


def retrieve_queue(rt: Runtime, name: str) -> Queue | None:
    """The database-backed queue ``name`` as stored now, or None."""
    row = config_store(rt).get(name)
    return None if row is None else Queue.from_settings(name, QueueSettings.from_row(row))


def delete_queue(rt: Runtime, name: str) -> None:
    """Remove a database-backed queue: its waiting workflows stay ENQUEUED until it is registered again."""
    config_store(rt).delete(name)


def list_queues(rt: Runtime) -> list[Queue]:
    """Every database-backed queue, by name."""
    return [Queue.from_settings(name, QueueSettings.from_row(row)) for name, row in config_store(rt).list()]


def queue_for_enqueue(queue_name: str) -> Queue:
    """``DBOS.enqueue_workflow(name, ...)``: the in-memory queue, else a reference to a (maybe future) row.

    Enqueueing on a queue that no process serves yet is allowed, as in DBOS: the workflow waits
    ENQUEUED until one registers it.
    """
    return QUEUES.get(queue_name) or Queue(queue_name, database_backed_queue=True)


def served_queues(store: QueueConfigStore, listening: Sequence[str] | None) -> list[Queue]:
    """What the dequeuer claims from this round: in-memory queues, then registered ones, then the
    internal queue; only those in ``listening`` when ``DBOS.listen_queues`` named some."""
    found: dict[str, Queue] = {queue.name: queue for queue in declared_queues()}
    for name, row in store.list():
        found.setdefault(name, Queue.from_settings(name, QueueSettings.from_row(row)))
    if listening is None:
        return list(found.values())
    wanted = set(listening) | {INTERNAL_QUEUE_NAME}
    return [queue for name, queue in found.items() if name in wanted]


def queue_names(queues: Sequence[Queue | str]) -> list[str]:
    """``DBOS.listen_queues``'s argument: Queue objects or names."""
    names = []
    for queue in queues:
        name = queue if isinstance(queue, str) else getattr(queue, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"listen_queues takes Queue objects or queue names, got {queue!r}")
        names.append(name)
    return names
