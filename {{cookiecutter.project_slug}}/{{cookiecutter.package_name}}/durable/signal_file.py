"""Cross-process wake-ups on SQLite: a file beside the database whose timestamp writers bump.

SQLite has no LISTEN/NOTIFY, but every process sharing a SQLite file runs on one host and sees one
file system. A writer that wakes its own waiters (a message sent, an event set, a workflow enqueued
or finished) also sets this file's modification time. In each process a watcher thread, started
when something first waits, compares the timestamp every ``SIGNAL_POLL_SEC`` (a stat() call, no
database read) and wakes every local waiter when another process changed it; each re-reads its
row. The waiters' own database re-reads stay as the safety net, so a lost bump only delays.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# A stat() every 10 ms: wake-ups across processes in ~5 ms on average, for ~100 syscalls a second.
SIGNAL_POLL_SEC = 0.01


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


class SignalFile:
    """Bump the file after a commit that others may wait for; watch it to hear other processes' bumps."""

    def __init__(self, path: str, on_change: Callable[[], None]) -> None:
        self.path = path
        self._on_change = on_change
        self._last_bump = 0  # our own bump: seeing it change is no news
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def bump(self) -> None:
        stamp = time.time_ns()
        self._last_bump = stamp
        try:
            os.utime(self.path, ns=(stamp, stamp))
        except FileNotFoundError:
            try:
                with open(self.path, "a"):
                    pass
                os.utime(self.path, ns=(stamp, stamp))
            except OSError:
                pass  # a read-only folder: other processes hear us at their next database re-read
        except OSError:
            pass

    def watch(self) -> None:
        """Start the watcher thread once (idempotent)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="durable-sqlite-signal", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        seen = _mtime_ns(self.path)
        while not self._stop.wait(SIGNAL_POLL_SEC):
            stamp = _mtime_ns(self.path)
            if stamp != seen:
                seen = stamp
                if stamp != self._last_bump:
                    try:
                        self._on_change()
                    except Exception:  # a waiter's bug must not end cross-process wake-ups
                        logger.exception("waking local waiters failed")

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def forget_after_fork(self) -> None:
        """In a forked child the thread does not exist; make sure nothing waits for it."""
        self._stop.set()
        self._thread = None
