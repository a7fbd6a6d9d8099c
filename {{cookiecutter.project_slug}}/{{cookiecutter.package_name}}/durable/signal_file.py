"""Cross-process wake-ups on SQLite: a file beside the database whose timestamp writers bump.

SQLite has no LISTEN/NOTIFY, but every process sharing a SQLite file runs on one host and sees one
file system. A writer that wakes its own waiters (a message sent, an event set, a workflow enqueued
or finished) also sets this file's modification time. In each process a watcher thread, started
when something first waits, learns of a change from inotify on Linux (it sleeps in the kernel: no
polling), or elsewhere by comparing the timestamp every ``STAT_POLL_SEC``; it then wakes every
local waiter and each re-reads its row. The waiters' own database re-reads stay as the safety net,
so a lost bump only delays an answer.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Without inotify: a stat() every 10 ms (wake-ups across processes in ~5 ms, ~1% of a core).
STAT_POLL_SEC = 0.01
# With inotify the timestamp is still compared this often, in case the watch was lost (file replaced).
INOTIFY_RECHECK_SEC = 1.0
_IN_MODIFY, _IN_ATTRIB, _IN_CLOEXEC, _IN_NONBLOCK = 0x2, 0x4, 0o2000000, 0o4000


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library's symbols, from the running process itself.

    Not ``ctypes.util.find_library``: it runs ``ldconfig`` in a subprocess, from the watcher thread, and a
    process that forks meanwhile (gunicorn's preloading master, ``DBOS.after_fork``) could hand its child a
    lock held by that half-done spawn: the child then hung for good.
    """
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _inotify_fd(path: str) -> int | None:
    """An inotify descriptor watching ``path`` for a timestamp change, or None where there is none."""
    libc = _libc()
    if libc is None:
        return None
    try:
        fd = int(libc.inotify_init1(_IN_CLOEXEC | _IN_NONBLOCK))
    except (OSError, AttributeError):  # not Linux
        return None
    if fd < 0:
        return None
    if libc.inotify_add_watch(fd, os.fsencode(path), _IN_ATTRIB | _IN_MODIFY) < 0:
        os.close(fd)
        return None
    return fd


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


class SignalFile:
    """Bump the file after a commit that others may wait for; watch it to hear other processes' bumps.

    Every change wakes the local waiters, our own bumps included: telling ours from another
    process's bump made within the same moment cannot be done reliably, and a spare re-read is cheap.
    """

    def __init__(self, path: str, on_change: Callable[[], None]) -> None:
        self.path = path
        self._on_change = on_change
        self._stop = threading.Event()
        self._pid = os.getpid()
        self._inotify: int | None = None
        self._stop_pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def bump(self) -> None:
        stamp = time.time_ns()  # explicit nanoseconds: the kernel's own stamp is as coarse as its tick
        try:
            os.utime(self.path, ns=(stamp, stamp))
        except FileNotFoundError:
            if self._create():
                self.bump()
        except PermissionError:
            try:  # another user's file: setting "now" needs only write access
                os.utime(self.path)
            except OSError:
                pass
        except OSError:
            pass  # a read-only folder: other processes hear us at their next database re-read

    def _create(self) -> bool:
        try:
            with open(self.path, "a"):
                return True
        except OSError:
            return False

    def watch(self) -> None:
        """Start the watcher thread once (idempotent)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._create()
            self._pid = os.getpid()
            self._inotify = _inotify_fd(self.path)
            if self._inotify is not None:
                self._stop_pipe = os.pipe()
                inotify, stop_read = self._inotify, self._stop_pipe[0]
                self._thread = threading.Thread(target=lambda: self._run_inotify(inotify, stop_read),
                                                name="durable-sqlite-signal", daemon=True)
            else:
                self._thread = threading.Thread(target=self._run_polling, name="durable-sqlite-signal", daemon=True)
            self._thread.start()

    def _wake(self) -> None:
        try:
            self._on_change()
        except Exception:  # a waiter's bug must not end cross-process wake-ups
            logger.exception("waking local waiters failed")

    def _run_inotify(self, inotify: int, stop_read: int) -> None:
        seen = _mtime_ns(self.path)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([inotify, stop_read], [], [], INOTIFY_RECHECK_SEC)
                if stop_read in ready:
                    return
                stamp = _mtime_ns(self.path)
                if inotify in ready:
                    _drain(inotify)
                    self._wake()  # an event is news even when two bumps left one timestamp
                elif stamp != seen:  # the watch was lost (file replaced): the timestamp still tells
                    self._wake()
                seen = stamp
        finally:
            os.close(inotify)
            os.close(stop_read)

    def _run_polling(self) -> None:
        seen = _mtime_ns(self.path)
        while not self._stop.wait(STAT_POLL_SEC):
            stamp = _mtime_ns(self.path)
            if stamp != seen:
                seen = stamp
                self._wake()

    def stop(self) -> None:
        if os.getpid() != self._pid:
            self.forget_after_fork()  # a forked child: the thread and its wake-up pipe are the parent's
            return
        self._stop.set()
        pipe, self._stop_pipe = self._stop_pipe, None
        if pipe is not None:
            os.write(pipe[1], struct.pack("B", 1))
            os.close(pipe[1])  # the thread closes the read end (and inotify) as it ends
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def forget_after_fork(self) -> None:
        """In a forked child the thread does not exist: close the inherited descriptors, start nothing."""
        self._stop.set()
        self._thread = None
        inherited = [self._inotify, *(self._stop_pipe or ())]
        self._inotify, self._stop_pipe = None, None
        for fd in inherited:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
