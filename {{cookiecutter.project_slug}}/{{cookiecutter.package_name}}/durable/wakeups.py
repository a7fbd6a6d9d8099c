"""Wakes threads that wait for a message, an event or a status change, without busy polling.

A waiter registers under keys (``message_key``, ``event_key``, ``status_key``), then loops: clear,
read the database, wait. Anything that may change the answer wakes the keys it concerns:

- in this process, the writer calls ``wake(key)`` right after its commit;
- on PostgreSQL, the writer also ``pg_notify``s the key in its transaction, and one listener thread
  per process (``store/listener.py``) wakes the local waiters, so other processes hear it at commit;
- on SQLite, which has no notifications, the writer bumps a file beside the database
  (``signal_file.py``) that a thread in each process watches; waiters also re-read every
  ``SQLITE_POLL_SEC`` (one indexed SELECT), the safety net.

Every wait is bounded and always followed by a read, so a lost wake-up only delays an answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .signal_file import SignalFile
from .store.listener import PostgresListener

# How often a waiter re-reads the database when another process may have written without a signal.
SQLITE_POLL_SEC = 0.1
# Waits that only watch for cancellation (a durable sleep) re-read less often on SQLite.
SQLITE_STATUS_POLL_SEC = 1.0
# On PostgreSQL notifications do the work; this re-read is a safety net for a dropped listener.
POSTGRES_RECHECK_SEC = 5.0
# pg_notify payloads must stay under 8000 bytes; longer keys are hashed (same on both sides).
_MAX_PAYLOAD = 1000


def _key(kind: str, *parts: str) -> str:
    text = json.dumps([kind, *parts], separators=(",", ":"))
    if len(text.encode()) > _MAX_PAYLOAD:
        return kind + ":" + hashlib.sha256(text.encode()).hexdigest()
    return text


def message_key(destination_id: str, topic: str) -> str:
    return _key("m", destination_id, topic)


def event_key(workflow_id: str, key: str) -> str:
    return _key("e", workflow_id, key)


def stream_key(workflow_id: str, key: str) -> str:
    """Woken by every write to (or close of) one stream of a workflow."""
    return _key("t", workflow_id, key)


def status_key(workflow_id: str) -> str:
    """Woken when a workflow is cancelled, resumed or times out, so its sleeps and waits stop."""
    return _key("s", workflow_id)


class Waiter:
    """One waiting thread's flag: set by any of its keys' wake-ups, cleared before each read."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._event = threading.Event()

    def clear(self) -> None:
        self._event.clear()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(max(0.0, timeout))


class Wakeups:
    """The waiters of one process, by key, and (on PostgreSQL) the listener that wakes them."""

    def __init__(self, postgres_url: str | None, sqlite_signal_path: str | None = None,
                 poll_sec: float | None = None) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[Waiter]] = {}
        self._postgres_url = postgres_url
        self._listener: PostgresListener | None = None
        self._signal = SignalFile(sqlite_signal_path, self.wake_all) if sqlite_signal_path else None
        self._closed = False
        # Without LISTEN waiters re-read this often (DBOS's notification_listener_polling_interval_sec);
        # on SQLite at least every SQLITE_POLL_SEC, its writers' signal file being a mere hint.
        self._poll_sec = poll_sec if poll_sec is not None else SQLITE_POLL_SEC
        if sqlite_signal_path is not None:
            self._poll_sec = min(self._poll_sec, SQLITE_POLL_SEC)

    @property
    def poll_sec(self) -> float:
        """How long a waiter for data written by other processes may wait before re-reading."""
        return POSTGRES_RECHECK_SEC if self._postgres_url else self._poll_sec

    @property
    def status_poll_sec(self) -> float:
        return POSTGRES_RECHECK_SEC if self._postgres_url else max(self._poll_sec, SQLITE_STATUS_POLL_SEC)

    @contextmanager
    def watching(self, *keys: str) -> Iterator[Waiter]:
        """Register a waiter under ``keys`` for the block; register before the first read, so no wake is lost."""
        waiter = Waiter(keys)
        with self._lock:
            for key in keys:
                self._waiting.setdefault(key, set()).add(waiter)
        try:
            self._ensure_listener()
            yield waiter
        finally:
            with self._lock:
                for key in keys:
                    group = self._waiting.get(key)
                    if group is not None:
                        group.discard(waiter)
                        if not group:
                            del self._waiting[key]

    def is_waiting(self, key: str) -> bool:
        """Whether a thread waits under ``key`` now (tests wait on this instead of sleeping)."""
        with self._lock:
            return bool(self._waiting.get(key))

    def wake(self, key: str) -> None:
        """After a commit that ``key``'s waiters care about: wake them here, and other SQLite processes."""
        self.wake_local(key)
        if self._signal is not None:
            self._signal.bump()

    def wake_local(self, key: str) -> None:
        with self._lock:
            waiters = list(self._waiting.get(key, ()))
        for waiter in waiters:
            waiter.set()

    def wake_all(self) -> None:
        """Every waiter re-reads (the listener reconnected, or the process is stopping)."""
        with self._lock:
            waiters = {w for group in self._waiting.values() for w in group}
        for waiter in waiters:
            waiter.set()

    def _ensure_listener(self) -> None:
        """Start the LISTEN thread on first use: processes that never wait hold no extra connection."""
        if self._closed:
            return
        if self._signal is not None:
            self._signal.watch()
        if self._postgres_url is None:
            return
        with self._lock:
            listener = self._listener
            if listener is None:
                listener = PostgresListener(self._postgres_url, self.wake_local, self.wake_all)
                self._listener = listener
                listener.start()
        listener.listening.wait(5.0)  # if the database is slow, the periodic re-read covers the gap

    def listen_now(self) -> threading.Thread | None:
        """Start the LISTEN thread now (a ``DBOSClient(use_listen_notify=True)``); its thread, on PostgreSQL."""
        self._ensure_listener()
        return self._listener.thread if self._listener is not None else None

    def listener_connection(self) -> Any:
        """The LISTEN connection once its LISTEN has run, else None."""
        listener = self._listener
        return listener.connection if listener is not None and listener.listening.is_set() else None

    def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        if self._signal is not None:
            self._signal.stop()
        self.wake_all()

    def forget_after_fork(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.forget_after_fork()
        if self._signal is not None:
            self._signal.forget_after_fork()
