"""The runtime's SQLite connections wait for the write lock in short steps (store/sqlite_wait.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable.store import sqlite_wait
from durable.store.dialects import create_sqlite_engine
from durable.store.sqlite_wait import PatientConnection, is_busy


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "wait.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    yield path


def patient(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, factory=PatientConnection, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 0")  # as the runtime's engine sets it: the waiting is ours
    return conn


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection takes the write lock now and keeps it ``seconds``."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_statement_outside_a_transaction_waits_for_the_lock_then_runs(database: Path) -> None:
    conn = patient(database)
    holder = hold_write_lock(database, 0.3)
    began = time.monotonic()
    conn.execute("INSERT INTO t VALUES (2)")  # busy_timeout is 0: without the wait this raises at once
    waited = time.monotonic() - began
    holder.join()
    assert waited >= 0.25
    assert sorted(n for (n,) in conn.execute("SELECT n FROM t")) == [1, 2]
    # BEGIN IMMEDIATE waits the same way.
    holder = hold_write_lock(database, 0.2)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (3)")
    conn.execute("COMMIT")
    holder.join()
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (4,)


def test_the_same_statement_without_the_wait_fails_at_once(database: Path) -> None:
    plain = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder = hold_write_lock(database, 0.3)
    with pytest.raises(sqlite3.OperationalError) as failure:
        plain.execute("INSERT INTO t VALUES (2)")
    holder.join()
    assert is_busy(failure.value)


def test_waiting_gives_up_after_the_timeout(database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_wait, "WAIT_TIMEOUT_SEC", 0.2)
    conn = patient(database)
    holder = hold_write_lock(database, 1.0)
    began = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as failure:
        conn.execute("INSERT INTO t VALUES (2)")
    assert is_busy(failure.value) and 0.2 <= time.monotonic() - began < 0.9
    holder.join()


def test_a_statement_inside_a_transaction_is_not_sent_twice(database: Path) -> None:
    conn = patient(database)
    conn.execute("BEGIN")  # deferred: it reads a snapshot that another writer then makes stale
    conn.execute("SELECT count(*) FROM t").fetchone()
    hold_write_lock(database, 0.0).join()
    began = time.monotonic()
    with pytest.raises(sqlite3.OperationalError) as failure:
        conn.execute("INSERT INTO t VALUES (2)")  # SQLITE_BUSY_SNAPSHOT: no wait can help
    assert is_busy(failure.value) and time.monotonic() - began < 1.0
    conn.execute("ROLLBACK")


def test_the_runtime_engine_waits_with_sqlite_wait(database: Path) -> None:
    engine = create_sqlite_engine(f"sqlite:///{database}", pool_size=1, autocommit=True)
    try:
        raw = engine.raw_connection()
        try:
            assert isinstance(raw.dbapi_connection, PatientConnection)
            assert raw.dbapi_connection.execute("PRAGMA busy_timeout").fetchone() == (0,)
            holder = hold_write_lock(database, 0.2)
            raw.dbapi_connection.execute("INSERT INTO t VALUES (5)")
            holder.join()
        finally:
            raw.close()
    finally:
        engine.dispose()


def pauses_while(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses ``patiently`` takes from now on (each is a refused try at SQLite's lock)."""
    taken: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(sqlite_wait.time, "sleep", lambda s: (taken.append(s), real_sleep(s)))
    return taken


def test_writers_of_one_process_take_turns_instead_of_polling_sqlite(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = patient(database), patient(database)
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    pauses = pauses_while(monkeypatch)
    done: list[float] = []
    writer = threading.Thread(target=lambda: (second.execute("INSERT INTO t VALUES (2)"), done.append(time.monotonic())))
    writer.start()
    threading.Event().wait(0.3)  # not time.sleep: that now counts as the writer's pauses
    assert done == [], "the second writer went ahead of an open write transaction"
    committed = time.monotonic()
    first.execute("COMMIT")
    writer.join(5)
    assert done and done[0] >= committed
    assert pauses == [], "the second writer polled SQLite instead of waiting for its turn"
    # A read never waits for a turn.
    first.execute("BEGIN IMMEDIATE")
    assert second.execute("SELECT count(*) FROM t").fetchone() == (2,)
    first.execute("ROLLBACK")


@pytest.mark.parametrize("ending", ["COMMIT", "ROLLBACK", "commit()", "rollback()", "close()"])
def test_a_turn_ends_with_its_transaction(database: Path, ending: str) -> None:
    conn = patient(database)
    turn = sqlite_wait._WRITERS.for_file(str(database))
    conn.execute("INSERT INTO t VALUES (1)")
    assert not turn.locked(), "an autocommit statement kept its turn"
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (2)")
    assert turn.locked()
    if ending.endswith("()"):
        getattr(conn, ending[:-2])()
    else:
        conn.execute(ending)
    assert not turn.locked(), f"{ending} kept the turn"


def test_a_forked_child_does_not_inherit_a_turn(database: Path) -> None:
    conn = patient(database)
    conn.execute("BEGIN IMMEDIATE")  # this thread holds the turn across the fork
    pid = os.fork()
    if pid == 0:  # the child: its own writers must not wait for a thread it does not have
        os._exit(0 if not sqlite_wait._WRITERS.for_file(str(database)).locked() else 1)
    _, status = os.waitpid(pid, 0)
    conn.execute("ROLLBACK")
    assert os.waitstatus_to_exitcode(status) == 0
