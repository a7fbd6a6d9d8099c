"""Queues: declare them, and enqueue workflows on them as ENQUEUED rows (``dequeuer.py`` runs them).

``Queue(name, concurrency, limiter, worker_concurrency=..., partition_concurrency=..., ...)`` declares a
queue in this process, by name, as DBOS does; ``DBOS.register_queue`` declares or updates one.
``queue.enqueue(fn, ...)`` commits the workflow row as ENQUEUED and returns a handle.
``SetEnqueueOptions`` gives the next enqueues a priority, a deduplication ID or a partition key.
Inside an open transaction (``@DBOS.transaction``, or ``EnqueueInTransaction(session)``) the row is
written through that transaction, so the workflow exists only if the transaction commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .context import DBOSContext, current_context
from .error import DBOSException, DBOSQueueDeduplicatedError
from .executor import Invocation, _timeout_for, assign_workflow_id, new_workflow_row
from .registry import FunctionInfo
from .runtime import Runtime
from .store.base import NewWorkflow, now_ms
from .store.queue_store import DuplicateDeduplicationID, QueueLimits

if TYPE_CHECKING:
    from .handles import WorkflowHandle

# The wake-up key of the dequeuer (in-process, and the pg_notify payload).
QUEUE_KEY = '["queues"]'
MAX_PRIORITY = 2**31 - 1
# Where start_workflow inside an open transaction puts its workflow (and where schedules enqueue).
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"


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
        from .api import DBOS  # the DBOS class holds the launched runtime; it imports this module

        return DBOS.enqueue_workflow(self.name, func, *args, **kwargs)


_REGISTER_LOCK = threading.Lock()  # one register_queue at a time: look up, then declare or update


def register_queue(name: str, settings: QueueSettings, *, update: bool) -> Queue:
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


# -- enqueue options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueOptions:
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None


_enqueue_options: ContextVar[EnqueueOptions | None] = ContextVar("durable_enqueue_options", default=None)


class SetEnqueueOptions:
    """``with SetEnqueueOptions(...):`` applies to the workflows enqueued in the block.

    - ``priority``: a lower number runs first (1 is the highest; without one, 0, ahead of all).
    - ``deduplication_id``: while a workflow of the queue holding this ID waits or runs, another
      enqueue with it raises ``DBOSQueueDeduplicatedError``.
    - ``queue_partition_key``: the partition of a partitioned queue (required there, refused elsewhere).
    """

    def __init__(self, *, priority: int | None = None, deduplication_id: str | None = None,
                 queue_partition_key: str | None = None) -> None:
        if priority is not None and not (isinstance(priority, int) and 1 <= priority <= MAX_PRIORITY):
            raise ValueError(f"priority must be an integer from 1 to {MAX_PRIORITY}, got {priority!r}")
        for label, value in (("deduplication_id", deduplication_id), ("queue_partition_key", queue_partition_key)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{label} must be a non-empty string, got {value!r}")
        self.options = EnqueueOptions(priority or 0, deduplication_id, queue_partition_key)
        self._token: Any = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        _enqueue_options.reset(self._token)


_outer_transaction: ContextVar[Session | sa.Connection | None] = ContextVar("durable_outer_tx", default=None)


@contextmanager
def EnqueueInTransaction(transaction: Session | sa.Connection) -> Iterator[None]:  # noqa: N802 - reads as a class
    """Enqueue (or start) workflows in the block through the application's own open transaction.

    The workflow rows commit or roll back with it, so a workflow exists exactly when the business
    writes beside it do. The system tables must live in the application database.
    """
    token = _outer_transaction.set(transaction)
    try:
        yield
    finally:
        _outer_transaction.reset(token)


def find_queue(queue_name: str) -> Queue:
    queue = QUEUES.get(queue_name)
    if queue is None:
        known = ", ".join(sorted(n for n in QUEUES if n != INTERNAL_QUEUE_NAME)) or "none"
        raise ValueError(f"no Queue named {queue_name!r} is declared in this process (declared: {known}); "
                         "create it with Queue(name) at import time")
    return queue


def _checked_options(queue: Queue) -> EnqueueOptions:
    options = _enqueue_options.get() or EnqueueOptions()
    if queue.partitioned and options.queue_partition_key is None:
        raise ValueError(f"Queue {queue.name!r} is partitioned: enqueue inside "
                         "SetEnqueueOptions(queue_partition_key=...)")
    if not queue.partitioned and options.queue_partition_key is not None:
        raise ValueError(f"Queue {queue.name!r} is not partitioned, so queue_partition_key "
                         f"{options.queue_partition_key!r} has no meaning there; declare it with partition limits")
    if queue.partitioned and options.deduplication_id is not None:
        raise ValueError(f"Queue {queue.name!r} is partitioned; deduplication IDs work on unpartitioned queues "
                         "only (as in DBOS)")
    return options


def open_transaction(parent: DBOSContext | None) -> Session | sa.Connection | None:
    """The application transaction an enqueue here must join, if any."""
    outer = _outer_transaction.get()
    if outer is not None:
        return outer
    return parent.sql_session if parent is not None else None


def enqueue_workflow(rt: Runtime, queue: Queue, info: FunctionInfo, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> str:
    """Commit an ENQUEUED workflow row (or find the one with its ID) and wake the dequeuer; return its ID.

    Inside a workflow, the enqueue is a step of the parent: replay finds the same child again.
    """
    options = _checked_options(queue)
    call = Invocation.of(info, args, kwargs)
    parent = current_context()
    parent_state = parent.workflow if parent is not None and parent.step_kind is None else None
    transaction = open_transaction(parent)
    if transaction is not None and parent_state is not None:
        raise DBOSException(f"workflow {parent_state.workflow_id!r} enqueues {info.name!r} inside an application "
                            "transaction from its body; do it in a @DBOS.transaction, whose checkpoint commits "
                            "with the transaction")
    workflow_id, step_id, _record = assign_workflow_id(parent, parent_state, info.name)
    timeout_ms, deadline = _timeout_for(parent)
    if timeout_ms:
        deadline = None  # a queued workflow's timeout counts from its dequeue, as in DBOS
    request = parent.request if parent is not None else None
    row = replace(new_workflow_row(rt, call, workflow_id, request, parent_state, timeout_ms, deadline,
                                   queue_name=queue.name),
                  priority=options.priority, deduplication_id=options.deduplication_id,
                  queue_partition_key=options.queue_partition_key)
    if transaction is not None:
        _enqueue_in_transaction(rt, transaction, row)
        return workflow_id
    try:
        existing = rt.queue_store.enqueue(row, QUEUE_KEY)
    except DuplicateDeduplicationID:
        raise DBOSQueueDeduplicatedError(workflow_id, queue.name, options.deduplication_id or "") from None
    if parent_state is not None and step_id is not None:
        if not (parent_state.recorded and step_id in parent_state.recorded):
            rt.checkpoint_store.record_step(parent_state.workflow_id, parent_state.generation, step_id, info.name,
                                 None, None, now_ms(), child_workflow_id=workflow_id)
    if existing is None:
        wake_dequeuer(rt)
    return workflow_id


def wake_dequeuer(rt: Runtime) -> None:
    rt.queue_wakeup.set()
    rt.wakeups.wake(QUEUE_KEY)


def _enqueue_in_transaction(rt: Runtime, transaction: Session | sa.Connection, row: NewWorkflow) -> None:
    """Insert the row through the caller's transaction; a refusal leaves the transaction usable.

    No in-process wake-up: it would come before the COMMIT. PostgreSQL's NOTIFY is delivered at the
    COMMIT; on SQLite the dequeuer's short poll finds the row.
    """
    if rt.app_checkpoint_store is not None:
        raise DBOSException("a workflow can join an application transaction only when the system tables live in "
                            "the application database; with a separate system_database_url, enqueue after "
                            "the commit instead")
    connection = transaction.connection() if isinstance(transaction, Session) else transaction
    try:
        rt.queue_store.enqueue_in(connection, row, QUEUE_KEY)
    except DuplicateDeduplicationID:
        raise DBOSQueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None


# start_workflow inside an open transaction enqueues here, so the workflow starts once the transaction commits.
INTERNAL_QUEUE = Queue(INTERNAL_QUEUE_NAME)
