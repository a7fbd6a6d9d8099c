"""A queue's limits: DBOS's arguments checked (with DBOS's messages), and how each limit is scoped.

``QueueSettings`` is what a ``Queue`` holds, what ``DBOS.register_queue`` stores in the ``queues`` table
and what the dequeuer applies. Partitioning follows DBOS 2.31: any ``partition_*`` limit partitions the
queue, the whole-queue limits still apply to the queue as a whole; the deprecated ``partition_queue=True``
alone (a *legacy* partitioned queue) applies ``concurrency``, ``worker_concurrency`` and ``limiter`` to
each partition instead.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

from .store.queue_store import QueueLimits

DEFAULT_POLLING_INTERVAL_SEC = 1.0


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflows of the queue start in any ``period`` seconds."""

    limit: int
    period: float


def check_limiter(label: str, limiter: QueueRateLimit | None) -> None:
    if limiter is None:
        return
    if not isinstance(limiter, dict) or limiter.get("limit") is None or limiter.get("period") is None:
        raise ValueError(f"{label} must specify both 'limit' and 'period', got {limiter!r}")
    if int(limiter["limit"]) < 1 or float(limiter["period"]) <= 0:
        raise ValueError(f"{label} needs a positive 'limit' and 'period', got {limiter!r}")


def check_count(label: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{label} must be at least 1 (or None for no limit), got {value!r}")


def check_polling_interval(value: float) -> None:
    if not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"polling_interval_sec must be positive, got {value!r}")


def validate_queue_args(
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
) -> None:
    """Refuse limits that contradict each other or could never bind (DBOS's rules and wording)."""
    if concurrency is not None and global_concurrency is not None:
        raise ValueError("concurrency is deprecated in favor of global_concurrency; set only one of them")
    partition_limits = (partition_concurrency, partition_worker_concurrency, partition_limiter)
    if partition_queue and any(v is not None for v in partition_limits):
        raise ValueError("partition_queue is deprecated in favor of the partition_* limits; set only one of them")
    if partition_queue and global_concurrency is not None:
        raise ValueError("partition_queue applies every limit per partition, so it cannot be combined with "
                         "global_concurrency; use partition_concurrency instead")
    queue_concurrency = concurrency if global_concurrency is None else global_concurrency
    for label, value in (("concurrency", queue_concurrency), ("worker_concurrency", worker_concurrency),
                         ("partition_concurrency", partition_concurrency),
                         ("partition_worker_concurrency", partition_worker_concurrency)):
        check_count(label, value)
    for small, small_value, big, big_value in (
        ("partition_worker_concurrency", partition_worker_concurrency, "partition_concurrency", partition_concurrency),
        ("partition_worker_concurrency", partition_worker_concurrency, "worker_concurrency", worker_concurrency),
        ("worker_concurrency", worker_concurrency, "concurrency", queue_concurrency),
        ("partition_concurrency", partition_concurrency, "global_concurrency", queue_concurrency),
        ("partition_worker_concurrency", partition_worker_concurrency, "concurrency", queue_concurrency),
    ):
        if small_value is not None and big_value is not None and small_value > big_value:
            raise ValueError(f"{big} must be greater than or equal to {small} ({big_value} < {small_value})")
    check_polling_interval(polling_interval_sec)
    check_limiter("limiter", limiter)
    check_limiter("partition_limiter", partition_limiter)


@dataclass(frozen=True)
class QueueSettings:
    """A queue's limits as stored. ``partition_queue`` is True once the queue is partitioned at all."""

    concurrency: int | None = None
    worker_concurrency: int | None = None
    limiter: QueueRateLimit | None = None
    partition_concurrency: int | None = None
    partition_worker_concurrency: int | None = None
    partition_limiter: QueueRateLimit | None = None
    partition_queue: bool = False
    priority_enabled: bool = False
    polling_interval_sec: float = DEFAULT_POLLING_INTERVAL_SEC

    @staticmethod
    def of(*, concurrency: int | None = None, global_concurrency: int | None = None, worker_concurrency: int | None = None,
           limiter: QueueRateLimit | None = None, partition_concurrency: int | None = None,
           partition_worker_concurrency: int | None = None, partition_limiter: QueueRateLimit | None = None,
           partition_queue: bool = False, priority_enabled: bool = False,
           polling_interval_sec: float = DEFAULT_POLLING_INTERVAL_SEC) -> QueueSettings:
        """DBOS's queue arguments, checked; ``global_concurrency`` is the newer name of ``concurrency``."""
        validate_queue_args(
            concurrency=concurrency, global_concurrency=global_concurrency, worker_concurrency=worker_concurrency,
            limiter=limiter, partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
            partition_queue=partition_queue, polling_interval_sec=polling_interval_sec)
        settings = QueueSettings(
            concurrency if global_concurrency is None else global_concurrency, worker_concurrency,
            _copy(limiter), partition_concurrency, partition_worker_concurrency, _copy(partition_limiter),
            bool(partition_queue), bool(priority_enabled), float(polling_interval_sec))
        return replace(settings, partition_queue=settings.partition_queue or settings.has_partition_limits)

    @property
    def has_partition_limits(self) -> bool:
        return any(v is not None for v in (self.partition_concurrency, self.partition_worker_concurrency,
                                           self.partition_limiter))

    @property
    def legacy(self) -> bool:
        """Partitioned by the deprecated flag alone: every limit applies per partition."""
        return self.partition_queue and not self.has_partition_limits

    @property
    def partitioned(self) -> bool:
        return self.partition_queue

    def scoped(self) -> QueueSettings:
        """The limits at the scope they are enforced at (DBOS's getters report these)."""
        if not self.legacy:
            return self
        return replace(self, concurrency=None, worker_concurrency=None, limiter=None,
                       partition_concurrency=self.concurrency, partition_worker_concurrency=self.worker_concurrency,
                       partition_limiter=self.limiter)

    def whole_queue_limits(self) -> QueueLimits:
        scoped = self.scoped()
        return QueueLimits(scoped.concurrency, scoped.worker_concurrency, **_rate(scoped.limiter))

    def per_partition_limits(self) -> QueueLimits | None:
        """Limits that apply to each partition key separately; None if the queue has no partitions."""
        if not self.partitioned:
            return None
        scoped = self.scoped()
        return QueueLimits(scoped.partition_concurrency, scoped.partition_worker_concurrency,
                           **_rate(scoped.partition_limiter))

    def to_row(self) -> dict[str, Any]:
        """The ``queues`` table's columns."""
        limiter, partition = self.limiter, self.partition_limiter
        return {
            "concurrency": self.concurrency, "worker_concurrency": self.worker_concurrency,
            "rate_limit_max": limiter["limit"] if limiter else None,
            "rate_limit_period_sec": limiter["period"] if limiter else None,
            "priority_enabled": int(self.priority_enabled), "partition_queue": int(self.partition_queue),
            "partition_concurrency": self.partition_concurrency,
            "partition_worker_concurrency": self.partition_worker_concurrency,
            "partition_rate_limit_max": partition["limit"] if partition else None,
            "partition_rate_limit_period_sec": partition["period"] if partition else None,
            "polling_interval_sec": self.polling_interval_sec,
        }

    @staticmethod
    def from_row(row: dict[str, Any]) -> QueueSettings:
        return QueueSettings(
            row["concurrency"], row["worker_concurrency"],
            _limiter(row["rate_limit_max"], row["rate_limit_period_sec"]),
            row["partition_concurrency"], row["partition_worker_concurrency"],
            _limiter(row["partition_rate_limit_max"], row["partition_rate_limit_period_sec"]),
            bool(row["partition_queue"]), bool(row["priority_enabled"]), float(row["polling_interval_sec"]))


QUEUE_ROW_COLUMNS = tuple(QueueSettings(None).to_row())
SETTING_NAMES = tuple(f.name for f in fields(QueueSettings))


def _copy(limiter: QueueRateLimit | None) -> QueueRateLimit | None:
    return None if limiter is None else QueueRateLimit(limit=limiter["limit"], period=limiter["period"])


def _limiter(limit: int | None, period: float | None) -> QueueRateLimit | None:
    if limit is None or period is None:
        return None
    return QueueRateLimit(limit=int(limit), period=float(period))


def _rate(limiter: QueueRateLimit | None) -> dict[str, Any]:
    if limiter is None:
        return {}
    return {"limit": int(limiter["limit"]), "period_ms": int(float(limiter["period"]) * 1000)}
