"""Queues: enqueue workflows as ENQUEUED rows; a thread per process dequeues them within the queue's limits.

``Queue(name, concurrency=..., worker_concurrency=..., limiter=..., priority_enabled=...)`` registers the
queue in this process (by name, as DBOS does). ``queue.enqueue(fn, ...)`` commits the workflow row as
ENQUEUED and returns a handle. The dequeuer thread claims rows of every queue this process declared
(``store/queue_store.py``: one transaction per queue, bounded by the global concurrency, this
executor's concurrency and the rate limiter), then runs each like a recovered workflow, from its
recorded inputs. An enqueue in this process wakes the dequeuer at once; on PostgreSQL an enqueue in
another process wakes it through ``NOTIFY``; otherwise it re-reads every ``QUEUE_POLL_SEC``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypedDict

from .context import current_context
from .executor import Invocation, _timeout_for, assign_workflow_id, new_workflow_row, resume_row
from .registry import FunctionInfo
from .runtime import Runtime
from .store.base import now_ms
from .store.checkpoint_store import CheckpointStore
from .store.queue_store import QueueLimits, QueueStore

if TYPE_CHECKING:
    from .handles import WorkflowHandle

logger = logging.getLogger(__name__)

# The wake-up key of the dequeuer (in-process, and the pg_notify payload).
QUEUE_KEY = '["queues"]'
# How often the dequeuer re-reads when nothing signals it: SQLite has no notifications; a queue with
# work waiting for a free slot or for the rate limiter is re-read as often.
QUEUE_POLL_SEC = 0.1
# On PostgreSQL enqueues notify; this re-read catches slots freed by other processes.
POSTGRES_QUEUE_POLL_SEC = 1.0
# At most this many rows are claimed from one queue per round.
DEQUEUE_BATCH = 100
MAX_PRIORITY = 2**31 - 1


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflows of the queue start in any ``period`` seconds."""

    limit: int
    period: float


# Every queue declared in this process, by name: the dequeuer claims only from these.
QUEUES: dict[str, Queue] = {}
_QUEUES_LOCK = threading.Lock()


class Queue:
    """A named queue of workflows, with optional concurrency limits, a rate limiter and priorities."""

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        priority_enabled: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a Queue needs a non-empty string name, got {name!r}")
        for label, value in (("concurrency", concurrency), ("worker_concurrency", worker_concurrency)):
            if value is not None and value < 1:
                raise ValueError(f"Queue {name!r}: {label} must be at least 1 (or None for no limit), got {value}")
        if concurrency is not None and worker_concurrency is not None and worker_concurrency > concurrency:
            raise ValueError(f"Queue {name!r}: worker_concurrency ({worker_concurrency}) may not exceed "
                             f"concurrency ({concurrency})")
        if limiter is not None and (limiter.get("limit", 0) < 1 or float(limiter.get("period", 0)) <= 0):
            raise ValueError(f"Queue {name!r}: limiter needs a positive 'limit' and 'period', got {limiter!r}")
        self.name = name
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.limiter = limiter
        self.priority_enabled = priority_enabled
        with _QUEUES_LOCK:
            if name in QUEUES:
                raise ValueError(f"Queue {name!r} has already been declared in this process; declare it once")
            QUEUES[name] = self

    @property
    def limits(self) -> QueueLimits:
        limiter = self.limiter
        return QueueLimits(
            concurrency=self.concurrency,
            worker_concurrency=self.worker_concurrency,
            limit=limiter["limit"] if limiter else None,
            period_ms=int(float(limiter["period"]) * 1000) if limiter else 0,
        )

    def enqueue(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Commit ``func(*args, **kwargs)`` as an ENQUEUED workflow of this queue; return its handle."""
        from .api import DBOS  # the DBOS class holds the launched runtime; it imports this module

        return DBOS.enqueue_workflow(self.name, func, *args, **kwargs)


_enqueue_options: ContextVar[dict[str, Any] | None] = ContextVar("durable_enqueue_options", default=None)


class SetEnqueueOptions:
    """``with SetEnqueueOptions(priority=...):`` applies to the workflows enqueued in the block.

    A lower priority number runs first (1 is the highest; without one, 0, ahead of all); the queue
    must be declared with ``priority_enabled=True``.
    """

    def __init__(self, *, priority: int | None = None) -> None:
        if priority is not None and not (isinstance(priority, int) and 1 <= priority <= MAX_PRIORITY):
            raise ValueError(f"priority must be an integer from 1 to {MAX_PRIORITY}, got {priority!r}")
        self.priority = priority
        self._token: Any = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set({"priority": self.priority})
        return self

    def __exit__(self, *exc: object) -> None:
        _enqueue_options.reset(self._token)


def find_queue(queue_name: str) -> Queue:
    queue = QUEUES.get(queue_name)
    if queue is None:
        known = ", ".join(sorted(QUEUES)) or "none"
        raise ValueError(f"no Queue named {queue_name!r} is declared in this process (declared: {known}); "
                         "create it with Queue(name) at import time")
    return queue


def enqueue_workflow(rt: Runtime, queue: Queue, info: FunctionInfo, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> str:
    """Commit an ENQUEUED workflow row (or find the one with its ID) and wake the dequeuer; return its ID.

    Inside a workflow, the enqueue is a step of the parent: replay finds the same child again.
    """
    options = _enqueue_options.get() or {}
    priority = options.get("priority") or 0
    if priority and not queue.priority_enabled:
        raise ValueError(f"Queue {queue.name!r} was declared without priority_enabled=True; "
                         f"enqueue without a priority or enable priorities on the queue")
    call = Invocation.of(info, args, kwargs)
    parent = current_context()
    parent_state = parent.workflow if parent is not None and parent.step_kind is None else None
    workflow_id, step_id, _record = assign_workflow_id(parent, parent_state, info.name)
    timeout_ms, deadline = _timeout_for(parent)
    if timeout_ms:
        deadline = None  # a queued workflow's timeout counts from its dequeue, as in DBOS
    request = parent.request if parent is not None else None
    row = new_workflow_row(rt, call, workflow_id, request, parent_state, timeout_ms, deadline, queue_name=queue.name)
    existing = rt.queues.enqueue(row, priority, QUEUE_KEY)
    if parent_state is not None and step_id is not None:
        if not (parent_state.recorded and step_id in parent_state.recorded):
            rt.store.record_step(parent_state.workflow_id, parent_state.generation, step_id, info.name,
                                 None, None, now_ms(), child_workflow_id=workflow_id)
    if existing is None:
        rt.queue_wakeup.set()
        rt.wakeups.wake(QUEUE_KEY)
    return workflow_id


class Dequeuer:
    """The thread that claims queued workflows of this process's queues and runs them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # Its own connection: polling stays off the workflows' pool (and out of their statement counts).
        engine = rt.sys_dialect.create_engine(rt.settings.sys_db_url, pool_size=1, autocommit=True)
        self.store = QueueStore(CheckpointStore(engine, rt.sys_dialect))
        self.claimed_any = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="durable-queues", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Claim nothing more; workflows already claimed keep running (or stay PENDING for recovery)."""
        self._stop.set()
        self.rt.queue_wakeup.set()
        self.rt.wakeups.wake(QUEUE_KEY)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.store.store.engine.dispose()

    def _on_done(self, _future: Any) -> None:
        self.rt.queue_wakeup.set()  # a slot is free: claim the next one now
        self.rt.wakeups.wake(QUEUE_KEY)

    def dequeue(self) -> bool:
        """Claim and start what each queue allows now; True if some queue still has work waiting."""
        rt = self.rt
        backlog = False
        with _QUEUES_LOCK:
            queues = list(QUEUES.values())
        for queue in queues:
            if self._stop.is_set() or rt.stopping.is_set():
                break
            claimed = self.store.claim(queue.name, rt.executor_id, queue.limits, DEQUEUE_BATCH)
            backlog = backlog or claimed.backlog
            self.claimed_any = self.claimed_any or bool(claimed.rows)
            for row in claimed.rows:
                try:
                    future = resume_row(rt, row)
                except Exception:
                    logger.exception("could not start queued workflow %s", row.workflow_id)
                    continue
                if future is not None:
                    future.add_done_callback(self._on_done)
        return backlog

    def _round(self) -> tuple[bool, bool]:
        """One dequeue round: (some queue has work waiting, this round claimed or saw work)."""
        try:
            backlog = self.dequeue()
        except Exception:
            # The database may be restarting; the next round tries again.
            logger.warning("dequeue failed", exc_info=True)
            return True, False
        return backlog, backlog or self.claimed_any

    def _running(self) -> bool:
        return not self._stop.is_set() and not self.rt.stopping.is_set()

    def _run(self) -> None:
        rt = self.rt
        idle_sec = POSTGRES_QUEUE_POLL_SEC if self.store.is_postgres else QUEUE_POLL_SEC
        # Until this process has queue work, wait on the in-process flag only: a process that never
        # uses queues opens no LISTEN connection for them.
        active = False
        while self._running() and not active:
            rt.queue_wakeup.clear()
            backlog, active = self._round()
            active = active or rt.queue_wakeup.is_set()
            if not active:
                rt.queue_wakeup.wait(QUEUE_POLL_SEC if backlog else idle_sec)
                active = rt.queue_wakeup.is_set()
        if not self._running():
            return
        with rt.wakeups.watching(QUEUE_KEY) as waiter:
            while self._running():
                waiter.clear()
                backlog, _ = self._round()
                waiter.wait(QUEUE_POLL_SEC if backlog else idle_sec)
