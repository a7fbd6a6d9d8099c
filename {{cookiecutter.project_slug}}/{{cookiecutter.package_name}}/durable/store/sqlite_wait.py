"""Waiting for SQLite's write lock in steps of a twentieth of a millisecond instead of SQLite's 1, 2, 5, 10 ms.

SQLite's own busy handler sleeps 1 ms, then 2, then 5, 10, 15 ms... between tries. A writer here holds
the lock for a fraction of a millisecond, so a waiter slept many times longer than the lock was held:
two gunicorn workers serving the example spent a sixth of their time in that handler's sleep (py-spy,
bench/README.md). The runtime's own connections (``PatientConnection``) run with ``busy_timeout = 0``
and wait here, starting at 0.05 ms, up to the same overall timeout.

Only a statement sent outside a transaction is tried again: ``BEGIN IMMEDIATE`` and autocommit
statements, which SQLite refuses with BUSY before changing anything (its documentation calls them
safe to retry). Inside a transaction the write lock is already held (``BEGIN IMMEDIATE``; WAL
readers take no lock), so a BUSY there is raised as it always was.

Threads of one process first queue on a lock of the process's own for that file (``_WRITERS``), held
from a writing statement until its transaction ends: a thread waiting there is woken the moment the
one ahead finishes, and only one thread per process polls SQLite, so the lock's holder is not starved
of the GIL by many pollers (recovery's 64 workflow threads). It only orders threads that would each
wait for SQLite's lock anyway; SQLite's lock still decides, across processes too, and a thread that
cannot get the queue's lock within the timeout asks SQLite regardless.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

T = TypeVar("T")

# How long a statement waits for the lock in all before "database is locked" is raised.
WAIT_TIMEOUT_SEC = 5.0
FIRST_PAUSE_SEC = 0.00005
# The pauses double from 0.05 ms to 0.2 ms and stay there: a try costs about a microsecond, and only one
# thread per process tries (the turns below), so fine pauses are cheap; a wait behind another process's
# short transaction then ends within about 0.1 ms of its commit. Before the turns, 64 recovery threads all
# polled, and a 1 ms cap starved the lock's holder of the GIL (bench/README.md section 2); with a 25 ms cap,
# two gunicorn workers spent 14% of their time asleep here, much of it after the lock was free.
LONGEST_PAUSE_SEC = 0.0002


# Statements that never take SQLite's write lock (a deferred BEGIN takes it at its first write).
_NO_WRITE_LOCK = ("SELECT", "VALUES", "EXPLAIN", "PRAGMA", "COMMIT", "ROLLBACK", "END", "RELEASE", "SAVEPOINT")


def _takes_write_lock(sql: str) -> bool:
    head = sql.lstrip()[:20].upper()
    if head.startswith("BEGIN"):
        return "IMMEDIATE" in head or "EXCLUSIVE" in head
    return not head.startswith(_NO_WRITE_LOCK)


class _WriterQueues:
    """One lock per database file in this process: its writing threads take turns on it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def for_file(self, database: str) -> threading.Lock:
        lock = self._locks.get(database)
        if lock is None:
            with self._guard:
                lock = self._locks.setdefault(database, threading.Lock())
        return lock

    def forget(self) -> None:
        """In a forked child: a lock held by a thread of the parent would never be released."""
        self._guard = threading.Lock()
        self._locks = {}


_WRITERS = _WriterQueues()
os.register_at_fork(after_in_child=_WRITERS.forget)


def is_busy(exc: BaseException) -> bool:
    """The database file's lock is held by another connection (SQLITE_BUSY and its extended codes)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def patiently(connection: sqlite3.Connection, send: Callable[[], T]) -> T:
    """Send a statement; while the lock is busy and no transaction is open, try again after a short pause."""
    if connection.in_transaction:
        return send()
    deadline: float | None = None
    pause = FIRST_PAUSE_SEC
    while True:
        try:
            return send()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + WAIT_TIMEOUT_SEC
            elif now >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SEC)


class PatientCursor(sqlite3.Cursor):
    """A cursor whose statements outside a transaction wait for the lock (``patiently``)."""

    def execute(self, sql: str, parameters: Any = (), /) -> PatientCursor:
        connection: PatientConnection = self.connection  # type: ignore[assignment]
        if connection.in_transaction and connection._turn is not None:
            # Inside a transaction that holds the turn (most statements): nothing to wait for, and the
            # turn goes back only if this statement ended the transaction. in_turn's path, fewer calls.
            try:
                sqlite3.Cursor.execute(self, sql, parameters)
            finally:
                connection._end_turn_unless_in_transaction()
            return self
        with connection.in_turn(sql):
            patiently(connection, lambda: sqlite3.Cursor.execute(self, sql, parameters))
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> PatientCursor:
        rows = list(seq_of_parameters)  # an iterator would be spent by a refused first try
        connection = cast(PatientConnection, self.connection)
        with connection.in_turn(sql):
            patiently(connection, lambda: sqlite3.Cursor.executemany(self, sql, rows))
        return self


class PatientConnection(sqlite3.Connection):
    """The runtime's SQLite connection (``sqlite3.connect(factory=...)``): cursors wait with ``patiently``,
    after this process's other writers to the same file (``_WRITERS``)."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._database = os.path.abspath(os.fsdecode(database))
        self._turn: threading.Lock | None = None  # the queue's lock while this connection holds it

    def cursor(self, factory: Any = PatientCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    @contextmanager
    def in_turn(self, sql: str) -> Iterator[None]:
        """Take this file's queue before a writing statement; give it back once no transaction is open."""
        if self._turn is None and _takes_write_lock(sql):
            lock = _WRITERS.for_file(self._database)
            if lock.acquire(timeout=WAIT_TIMEOUT_SEC):
                self._turn = lock
        try:
            yield
        finally:
            if self._turn is not None:
                self._end_turn_unless_in_transaction()

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()

    def _end_turn_unless_in_transaction(self) -> None:
        try:
            open_transaction = self.in_transaction
        except sqlite3.ProgrammingError:  # closed: no transaction is left
            open_transaction = False
        if not open_transaction:
            self._end_turn()

    def commit(self) -> None:
        self._ending(super().commit)

    def rollback(self) -> None:
        self._ending(super().rollback)

    def _ending(self, end: Callable[[], None]) -> None:
        try:
            end()
        finally:
            self._end_turn_unless_in_transaction()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_turn()

