"""The dequeuer: a thread per process that claims queued workflows of the declared queues and runs them.

It claims rows of every queue this process declared (``store/queue_store.py``: one transaction per
queue, bounded by the global concurrency, this executor's concurrency and the rate limiter, and per
partition for a partitioned queue), then runs each like a recovered workflow, from its recorded inputs.
Each round first moves DELAYED workflows whose time has come to ENQUEUED, and the wait before the
next round ends no later than the earliest delay still ahead. An enqueue in this process wakes it at once; on PostgreSQL an enqueue in another process wakes it
through ``NOTIFY``; otherwise it re-reads every ``QUEUE_POLL_SEC``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .enqueue import QUEUE_KEY, wake_dequeuer
from .executor import resume_row
from .registered_queues import served_queues
from .runtime import Runtime
from .store.base import now_ms
from .store.database import Database
from .store.queue_config_store import QueueConfigStore
from .store.queue_store import QueueStore

logger = logging.getLogger(__name__)

# How often the dequeuer re-reads when nothing signals it: SQLite has no notifications; a queue with
# work waiting for a free slot or for the rate limiter is re-read as often.
QUEUE_POLL_SEC = 0.1
# On PostgreSQL enqueues notify; this re-read catches slots freed by other processes.
POSTGRES_QUEUE_POLL_SEC = 1.0
# At most this many rows are claimed from one queue per round.
DEQUEUE_BATCH = 100


class Dequeuer:
    """The thread that claims queued workflows of this process's queues and runs them."""

    def __init__(self, rt: Runtime, listening: list[str] | None = None) -> None:
        self.rt = rt
        self.listening = listening  # DBOS.listen_queues: only these queues (and the internal one)
        # Its own connection: polling stays off the workflows' pool (and out of their statement counts).
        engine = rt.new_sys_engine(pool_size=1)
        self._db = Database(engine, rt.sys_dialect)
        self.queue_store = QueueStore(self._db)
        self.config_store = QueueConfigStore(self._db)
        self.claimed_any = False
        self.next_due_ms: int | None = None  # when the earliest DELAYED workflow joins its queue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="durable-queues", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Claim nothing more; workflows already claimed keep running (or stay PENDING for recovery)."""
        self._stop.set()
        wake_dequeuer(self.rt)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._db.engine.dispose()

    def _on_done(self, _future: Any) -> None:
        wake_dequeuer(self.rt)  # a slot is free: claim the next one now

    def dequeue(self) -> bool:
        """Claim and start what each queue allows now; True if some queue still has work waiting."""
        rt = self.rt
        backlog = False
        self.next_due_ms = self.queue_store.promote_due(QUEUE_KEY)
        queues = served_queues(self.config_store, self.listening)
        waiting = self.queue_store.waiting_queues([queue.name for queue in queues])
        for queue in queues:
            if self._stop.is_set() or rt.stopping.is_set():
                break
            if queue.name not in waiting:
                continue
            claimed = self.queue_store.claim(queue.name, rt.executor_id, queue.limits, DEQUEUE_BATCH,
                                             queue.partition_limits, rt.settings.application_version)
            backlog = backlog or claimed.backlog
            self.claimed_any = self.claimed_any or bool(claimed.rows)
            for row in claimed.rows:
                try:
                    future = resume_row(rt, row, dequeued=True)
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
        return backlog, backlog or self.claimed_any or self.next_due_ms is not None

    def _wait_sec(self, backlog: bool, idle_sec: float) -> float:
        """How long to wait for a wake-up: shorter with work waiting, and no later than the next delay's end."""
        wait = QUEUE_POLL_SEC if backlog else idle_sec
        if self.next_due_ms is not None:
            wait = min(wait, max(0.0, (self.next_due_ms - now_ms()) / 1000))
        return wait

    def _running(self) -> bool:
        return not self._stop.is_set() and not self.rt.stopping.is_set()

    def _run(self) -> None:
        rt = self.rt
        idle_sec = POSTGRES_QUEUE_POLL_SEC if self.queue_store.is_postgres else QUEUE_POLL_SEC
        # On PostgreSQL, until this process has queue work, wait on the in-process flag only: a process
        # that never uses queues opens no LISTEN connection for them. On SQLite watching costs no
        # connection, and it is how enqueues in other processes reach this one at once.
        active = not self.queue_store.is_postgres
        while self._running() and not active:
            rt.queue_wakeup.clear()
            backlog, active = self._round()
            active = active or rt.queue_wakeup.is_set()
            if not active:
                rt.queue_wakeup.wait(self._wait_sec(backlog, idle_sec))
                active = rt.queue_wakeup.is_set()
        if not self._running():
            return
        with rt.wakeups.watching(QUEUE_KEY) as waiter:
            while self._running():
                waiter.clear()
                backlog, _ = self._round()
                waiter.wait(self._wait_sec(backlog, idle_sec))
