"""Queues: declare them, by name, with their limits (``enqueue.py`` enqueues, ``dequeuer.py`` runs them).

``Queue(name, concurrency, limiter, worker_concurrency=..., partition_concurrency=..., ...)`` declares a
queue in this process, by name, as DBOS does; ``DBOS.register_queue`` declares or updates one. The
dequeuer claims only from the queues declared here, within their limits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from .enqueue import INTERNAL_QUEUE_NAME, enqueue_call
from .store.queue_store import QueueLimits

if TYPE_CHECKING:
    from .handles import WorkflowHandle


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflows of the queue start in any ``period`` seconds."""

    limit: int
    period: float


# Every queue declared in this process, by name: the dequeuer claims only from these.
QUEUES: dict[str, Queue] = {}
_QUEUES_LOCK = threading.Lock()


def declared_queues() -> list[Queue]:
    with _QUEUES_LOCK:
        return list(QUEUES.values())


def _check_limiter(name: str, label: str, limiter: QueueRateLimit | None) -> None:
    if limiter is None:
        return
    if not isinstance(limiter, dict) or limiter.get("limit") is None or limiter.get("period") is None:
        raise ValueError(f"Queue {name!r}: {label} must give both 'limit' and 'period', got {limiter!r}")
    if int(limiter["limit"]) < 1 or float(limiter["period"]) <= 0:
        raise ValueError(f"Queue {name!r}: {label} needs a positive 'limit' and 'period', got {limiter!r}")


def _rate(limiter: QueueRateLimit | None) -> dict[str, Any]:
    if limiter is None:
        return {}
    return {"limit": int(limiter["limit"]), "period_ms": int(float(limiter["period"]) * 1000)}


@dataclass(frozen=True)
class QueueSettings:
    """A queue's limits, checked; ``partition_*`` limits (or ``partition_queue``) partition the queue."""

    concurrency: int | None = None
    worker_concurrency: int | None = None
    limiter: QueueRateLimit | None = None
    partition_concurrency: int | None = None
    partition_worker_concurrency: int | None = None
    partition_limiter: QueueRateLimit | None = None
    # DBOS's older spelling: every limit above applies per partition instead of to the whole queue.
    partition_queue: bool = False

    def check(self, name: str) -> None:
        counts = (("concurrency", self.concurrency), ("worker_concurrency", self.worker_concurrency),
                  ("partition_concurrency", self.partition_concurrency),
                  ("partition_worker_concurrency", self.partition_worker_concurrency))
        for label, value in counts:
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"Queue {name!r}: {label} must be an integer of at least 1 (or None for no "
                                 f"limit), got {value!r}")
        for small, big in (("worker_concurrency", "concurrency"),
                           ("partition_worker_concurrency", "partition_concurrency"),
                           ("partition_concurrency", "concurrency"),
                           ("partition_worker_concurrency", "worker_concurrency")):
            low, high = getattr(self, small), getattr(self, big)
            if low is not None and high is not None and low > high:
                raise ValueError(f"Queue {name!r}: {small} ({low}) may not exceed {big} ({high})")
        _check_limiter(name, "limiter", self.limiter)
        _check_limiter(name, "partition_limiter", self.partition_limiter)
        if self.partition_queue and self._has_partition_limits():
            raise ValueError(f"Queue {name!r}: partition_queue=True makes every limit per partition; give "
                             "either it or the partition_* limits, not both")

    def _has_partition_limits(self) -> bool:
        return any(v is not None for v in (self.partition_concurrency, self.partition_worker_concurrency,
                                           self.partition_limiter))

    @property
    def partitioned(self) -> bool:
        return self.partition_queue or self._has_partition_limits()

    def whole_queue_limits(self) -> QueueLimits:
        if self.partition_queue:
            return QueueLimits()
        return QueueLimits(self.concurrency, self.worker_concurrency, **_rate(self.limiter))

    def per_partition_limits(self) -> QueueLimits | None:
        if self.partition_queue:
            return QueueLimits(self.concurrency, self.worker_concurrency, **_rate(self.limiter))
        if not self._has_partition_limits():
            return None
        return QueueLimits(self.partition_concurrency, self.partition_worker_concurrency,
                           **_rate(self.partition_limiter))


def queue_settings(
    name: str,
    *,
    concurrency: int | None,
    global_concurrency: int | None,
    worker_concurrency: int | None,
    limiter: QueueRateLimit | None,
    partition_concurrency: int | None,
    partition_worker_concurrency: int | None,
    partition_limiter: QueueRateLimit | None,
    partition_queue: bool,
    polling_interval_sec: float,
) -> QueueSettings:
    """DBOS's queue arguments (``Queue(...)``, ``DBOS.register_queue(...)``) as checked settings.

    ``global_concurrency`` is DBOS's newer name for ``concurrency``; the newer one wins.
    """
    if polling_interval_sec <= 0:
        raise ValueError(f"Queue {name!r}: polling_interval_sec must be positive, got {polling_interval_sec}")
    if partition_queue and global_concurrency is not None:
        raise ValueError(f"Queue {name!r}: partition_queue=True applies every limit per partition; use "
                         "partition_concurrency with global_concurrency instead")
    settings = QueueSettings(
        concurrency=concurrency if global_concurrency is None else global_concurrency,
        worker_concurrency=worker_concurrency,
        limiter=limiter,
        partition_concurrency=partition_concurrency,
        partition_worker_concurrency=partition_worker_concurrency,
        partition_limiter=partition_limiter,
        partition_queue=partition_queue,
    )
    settings.check(name)
    return settings


class Queue:
    """A named queue of workflows, with optional concurrency limits, rate limiters and partitions.

    Priorities always work (``priority_enabled`` is accepted, as DBOS still does, and changes
    nothing). ``polling_interval_sec`` is accepted for DBOS's signature: enqueues wake the dequeuer,
    so there is no poll to tune.
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
        polling_interval_sec: float = 1.0,
        priority_enabled: bool = False,
        partition_queue: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a Queue needs a non-empty string name, got {name!r}")
        self.name = name
        self.settings = queue_settings(
            name, concurrency=concurrency, global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency, limiter=limiter, partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
            partition_queue=partition_queue, polling_interval_sec=polling_interval_sec,
        )
        self.priority_enabled = priority_enabled
        self.polling_interval_sec = polling_interval_sec
        with _QUEUES_LOCK:
            if name in QUEUES:
                raise ValueError(f"Queue {name!r} has already been declared in this process; declare it once "
                                 "(or use DBOS.register_queue to update it)")
            QUEUES[name] = self

    @property
    def concurrency(self) -> int | None:
        return self.settings.concurrency

    @property
    def worker_concurrency(self) -> int | None:
        return self.settings.worker_concurrency

    @property
    def limiter(self) -> QueueRateLimit | None:
        return self.settings.limiter

    @property
    def partitioned(self) -> bool:
        return self.settings.partitioned

    @property
    def limits(self) -> QueueLimits:
        return self.settings.whole_queue_limits()

    @property
    def partition_limits(self) -> QueueLimits | None:
        """Limits that apply to each partition key separately; None if the queue has no partitions."""
        return self.settings.per_partition_limits()

    def reconfigure(self, settings: QueueSettings) -> None:
        """Take new limits (``DBOS.register_queue`` on a declared queue); the next claim applies them."""
        settings.check(self.name)
        self.settings = settings

    def enqueue(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Commit ``func(*args, **kwargs)`` as an ENQUEUED workflow of this queue; return its handle."""
        return enqueue_call(self, func, args, kwargs)


_REGISTER_LOCK = threading.Lock()  # one register_queue at a time: look up, then declare or update
ON_CONFLICT = ("update_if_latest_version", "always_update", "never_update")


def declare_queue(
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
    partition_queue: bool,
) -> Queue:
    """``DBOS.register_queue``: declare a queue, or give a declared one new limits unless ``never_update``."""
    if on_conflict not in ON_CONFLICT:
        raise ValueError(f"on_conflict must be 'update_if_latest_version', 'always_update' or 'never_update', "
                         f"got {on_conflict!r}")
    settings = queue_settings(
        name, concurrency=concurrency, global_concurrency=global_concurrency,
        worker_concurrency=worker_concurrency, limiter=limiter, partition_concurrency=partition_concurrency,
        partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
        partition_queue=partition_queue, polling_interval_sec=polling_interval_sec,
    )
    return _register(name, settings, update=on_conflict != "never_update")


def _register(name: str, settings: QueueSettings, *, update: bool) -> Queue:
    """Declare a queue, or give a declared one new limits when ``update``; bad limits change nothing."""
    with _REGISTER_LOCK:
        existing = QUEUES.get(name)
        if existing is None:
            # Declared with its limits from the start: the dequeuer never sees it without them.
            return Queue(name, settings.concurrency, settings.limiter,
                         worker_concurrency=settings.worker_concurrency,
                         partition_concurrency=settings.partition_concurrency,
                         partition_worker_concurrency=settings.partition_worker_concurrency,
                         partition_limiter=settings.partition_limiter, partition_queue=settings.partition_queue)
        if update:
            existing.reconfigure(settings)
        return existing


def find_queue(queue_name: str) -> Queue:
    queue = QUEUES.get(queue_name)
    if queue is None:
        known = ", ".join(sorted(n for n in QUEUES if n != INTERNAL_QUEUE_NAME)) or "none"
        raise ValueError(f"no Queue named {queue_name!r} is declared in this process (declared: {known}); "
                         "create it with Queue(name) at import time")
    return queue


# start_workflow inside an open transaction enqueues here, so the workflow starts once the transaction commits.
INTERNAL_QUEUE = Queue(INTERNAL_QUEUE_NAME)
