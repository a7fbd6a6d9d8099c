"""Queues: declared in this process (``Queue(...)``) or registered in the database (``DBOS.register_queue``).

``Queue(name, concurrency, limiter, ...)`` declares an *in-memory* queue, as DBOS does: its limits live in
the code, every process declares it the same way, and declaring a name twice raises.
``DBOS.register_queue(name, ...)`` stores a *database-backed* queue in the ``queues`` table
(``store/queue_config_store.py``): every process sees it, its getters read the row and its setters
(``set_global_concurrency``...) change it for every dequeuer at its next round. ``enqueue.py`` enqueues,
``dequeuer.py`` runs both kinds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .current import current_runtime
from .enqueue import INTERNAL_QUEUE_NAME, enqueue_call, wake_dequeuer
from .error import DBOSException
from .queue_config import (
    DEFAULT_POLLING_INTERVAL_SEC,
    QueueRateLimit,
    QueueSettings,
    check_count,
    check_limiter,
    check_polling_interval,
)
from .store.queue_config_store import QueueConfigStore
from .store.queue_store import QueueLimits

if TYPE_CHECKING:
    from .handles import WorkflowHandle
    from .runtime import Runtime

__all__ = ["QUEUES", "Queue", "QueueRateLimit", "declared_queues", "forget_declared_queues"]

# Every in-memory queue declared in this process, by name.
QUEUES: dict[str, Queue] = {}
_QUEUES_LOCK = threading.Lock()


def declared_queues() -> list[Queue]:
    with _QUEUES_LOCK:
        return list(QUEUES.values())


def forget_declared_queues() -> None:
    """``DBOS.destroy(destroy_registry=True)``: forget in-memory queues (the internal one stays)."""
    with _QUEUES_LOCK:
        for name in [n for n in QUEUES if n != INTERNAL_QUEUE_NAME]:
            del QUEUES[name]


def config_store(rt: Runtime) -> QueueConfigStore:
    return QueueConfigStore(rt.sys_db)


class Queue:
    """A named queue of workflows, with optional concurrency limits, rate limiters and partitions.

    Priorities always work (``priority_enabled`` is kept and reported, as DBOS does). The dequeuer
    is woken by enqueues and by finished workflows, so ``polling_interval_sec`` is stored and
    reported but does not slow anything down.
    """

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        *,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        polling_interval_sec: float = DEFAULT_POLLING_INTERVAL_SEC,
        database_backed_queue: bool = False,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        **_ignored: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a Queue needs a non-empty string name, got {name!r}")
        self.name = name
        self.database_backed_queue = database_backed_queue
        if database_backed_queue:
            # A reference to a row: nothing checked, nothing declared; the getters read the row.
            self._settings = QueueSettings(concurrency if global_concurrency is None else global_concurrency,
                                           worker_concurrency, limiter, partition_concurrency,
                                           partition_worker_concurrency, partition_limiter, partition_queue,
                                           priority_enabled, polling_interval_sec)
            return
        self._settings = QueueSettings.of(
            concurrency=concurrency, global_concurrency=global_concurrency, worker_concurrency=worker_concurrency,
            limiter=limiter, partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
            partition_queue=partition_queue, priority_enabled=priority_enabled,
            polling_interval_sec=polling_interval_sec)
        with _QUEUES_LOCK:
            if name in QUEUES and name != INTERNAL_QUEUE_NAME:
                raise ValueError(f"Queue {name} has already been declared in this process; declare it once, "
                                 "or register it with DBOS.register_queue to change its limits at run time")
            QUEUES[name] = self

    @staticmethod
    def from_settings(name: str, settings: QueueSettings) -> Queue:
        """A database-backed queue as its row holds it."""
        queue = Queue(name, database_backed_queue=True)
        queue._settings = settings
        return queue

    # -- reading: a database-backed queue reads its row first ------------------------------------------

    @property
    def settings(self) -> QueueSettings:
        """The limits as last read (no database read: the dequeuer reads every row once per round)."""
        return self._settings

    def _fresh(self) -> QueueSettings:
        if self.database_backed_queue:
            found = config_store(current_runtime()).get(self.name)
            if found is None:
                raise DBOSException(f"Queue {self.name} not found in the database")
            self._settings = QueueSettings.from_row(found)
        return self._settings

    @property
    def concurrency(self) -> int | None:
        """Deprecated name of ``global_concurrency`` (as stored, whatever the scope)."""
        return self._fresh().concurrency

    @property
    def global_concurrency(self) -> int | None:
        return self._fresh().scoped().concurrency

    @property
    def worker_concurrency(self) -> int | None:
        return self._fresh().scoped().worker_concurrency

    @property
    def limiter(self) -> QueueRateLimit | None:
        return self._fresh().scoped().limiter

    @property
    def partition_concurrency(self) -> int | None:
        return self._fresh().scoped().partition_concurrency

    @property
    def partition_worker_concurrency(self) -> int | None:
        return self._fresh().scoped().partition_worker_concurrency

    @property
    def partition_limiter(self) -> QueueRateLimit | None:
        return self._fresh().scoped().partition_limiter

    @property
    def priority_enabled(self) -> bool:
        return self._fresh().priority_enabled

    @property
    def partition_queue(self) -> bool:
        return self._fresh().partition_queue

    @property
    def polling_interval_sec(self) -> float:
        return self._fresh().polling_interval_sec

    @property
    def partitioned(self) -> bool:
        """Partition keys required on enqueue (a database-backed reference does not know: no check)."""
        return self._settings.partitioned

    @property
    def limits(self) -> QueueLimits:
        return self._settings.whole_queue_limits()

    @property
    def partition_limits(self) -> QueueLimits | None:
        return self._settings.per_partition_limits()

    # -- changing a database-backed queue --------------------------------------------------------------

    def _writable(self, field: str | None = None) -> QueueSettings:
        """The row as stored now, so checks never trust a stale copy; refuse what may not change."""
        if not self.database_backed_queue:
            raise DBOSException(f"Cannot configure queue {self.name}: dynamic configuration is only supported "
                                "for queues registered via DBOS.register_queue")
        current = self._fresh()
        if field is not None and current.legacy:
            raise DBOSException(
                f"Cannot set {field} on queue {self.name}: it is registered with the deprecated partition_queue "
                "option, under which concurrency, worker_concurrency and limiter apply per partition. "
                "Re-register the queue with the partition_* limits instead.")
        return current

    def _write(self, new: QueueSettings) -> None:
        rt = current_runtime()
        if not config_store(rt).update(self.name, new.to_row()):
            raise DBOSException(f"Queue {self.name} not found in the database")
        self._settings = new
        wake_dequeuer(rt)  # this process's dequeuer applies it now; others at their next round

    def set_concurrency(self, value: int | None) -> None:
        """Deprecated name of ``set_global_concurrency``."""
        current = self._writable()
        self._write(replace(current, concurrency=_checked_concurrency(current, value)))

    def set_global_concurrency(self, value: int | None) -> None:
        current = self._writable("global_concurrency")
        self._write(replace(current, concurrency=_checked_concurrency(current, value)))

    def set_worker_concurrency(self, value: int | None) -> None:
        current = self._writable("worker_concurrency")
        check_count("worker_concurrency", value)
        if value is not None:
            _at_most("worker_concurrency", value, "concurrency", current.concurrency)
            _at_most("partition_worker_concurrency", current.partition_worker_concurrency, "worker_concurrency",
                     value)
        self._write(replace(current, worker_concurrency=value))

    def set_limiter(self, value: QueueRateLimit | None) -> None:
        check_limiter("limiter", value)
        current = self._writable("limiter")
        self._write(replace(current, limiter=value))

    def set_priority_enabled(self, value: bool) -> None:
        self._write(replace(self._writable(), priority_enabled=bool(value)))

    def set_partition_concurrency(self, value: int | None) -> None:
        check_count("partition_concurrency", value)
        current = self._writable("partition_concurrency")
        if value is not None:
            _at_most("partition_concurrency", value, "global_concurrency", current.concurrency)
            if current.partition_worker_concurrency is not None and current.partition_worker_concurrency > value:
                raise ValueError("partition_concurrency must be greater than or equal to partition_worker_concurrency")
        self._write(_repartitioned(replace(current, partition_concurrency=value)))

    def set_partition_worker_concurrency(self, value: int | None) -> None:
        check_count("partition_worker_concurrency", value)
        current = self._writable("partition_worker_concurrency")
        if value is not None:
            _at_most("partition_worker_concurrency", value, "partition_concurrency", current.partition_concurrency)
            _at_most("partition_worker_concurrency", value, "worker_concurrency", current.worker_concurrency)
            _at_most("partition_worker_concurrency", value, "concurrency", current.concurrency)
        self._write(_repartitioned(replace(current, partition_worker_concurrency=value)))

    def set_partition_limiter(self, value: QueueRateLimit | None) -> None:
        check_limiter("partition_limiter", value)
        current = self._writable("partition_limiter")
        self._write(_repartitioned(replace(current, partition_limiter=value)))

    def set_partition_queue(self, value: bool) -> None:
        """Deprecated: partition with the ``set_partition_*`` limits instead."""
        current = self._writable()
        if current.has_partition_limits:
            raise DBOSException(f"Cannot set partition_queue on queue {self.name}: it is partitioned by its "
                                "partition_* limits. Clear those instead.")
        self._write(replace(current, partition_queue=bool(value)))

    def set_polling_interval_sec(self, value: float) -> None:
        check_polling_interval(value)
        self._write(replace(self._writable(), polling_interval_sec=float(value)))

    def enqueue(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Commit ``func(*args, **kwargs)`` as an ENQUEUED workflow of this queue; return its handle."""
        return enqueue_call(self, func, args, kwargs)

    def __repr__(self) -> str:
        kind = "database-backed" if self.database_backed_queue else "in-memory"
        return f"Queue({self.name!r}, {kind}, {self._settings})"


def _at_most(small: str, small_value: int | None, big: str, big_value: int | None) -> None:
    if small_value is not None and big_value is not None and small_value > big_value:
        raise ValueError(f"{small} must be less than or equal to {big} ({small_value} > {big_value})")


def _repartitioned(settings: QueueSettings) -> QueueSettings:
    """Partitioning follows the partition_* limits: clearing the last one un-partitions the queue."""
    return replace(settings, partition_queue=settings.has_partition_limits)


def _checked_concurrency(current: QueueSettings, value: int | None) -> int | None:
    check_count("concurrency", value)
    if value is not None:
        _at_most("worker_concurrency", current.worker_concurrency, "concurrency", value)
        _at_most("partition_concurrency", current.partition_concurrency, "global_concurrency", value)
        _at_most("partition_worker_concurrency", current.partition_worker_concurrency, "concurrency", value)
    return value


# start_workflow inside an open transaction enqueues here, so the workflow starts once the transaction commits.
INTERNAL_QUEUE = Queue(INTERNAL_QUEUE_NAME)
