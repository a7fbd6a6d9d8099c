"""``@DBOS.transaction``: business writes and checkpoint in one commit, exactly once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import DBOS, SetWorkflowID
from parallel import in_threads

runs: list[str] = []


def setup_ledger(database_url: str) -> sa.Engine:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO ledger (id, balance) VALUES (1, 0)")
    return engine


def balance(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT balance FROM ledger WHERE id = 1").scalar())


@DBOS.transaction()
def deposit(amount: int) -> int:
    runs.append("deposit")
    session = DBOS.sql_session
    session.execute(sa.text("UPDATE ledger SET balance = balance + :a WHERE id = 1"), {"a": amount})
    return int(session.execute(sa.text("SELECT balance FROM ledger WHERE id = 1")).scalar())


class Overdrawn(Exception):
    pass


@DBOS.transaction()
def withdraw(amount: int) -> None:
    DBOS.sql_session.execute(sa.text("UPDATE ledger SET balance = balance - :a WHERE id = 1"), {"a": amount})
    raise Overdrawn(f"cannot withdraw {amount}")


@DBOS.workflow()
def deposit_twice(amount: int) -> tuple[int, int]:
    return deposit(amount), deposit(amount)


@DBOS.workflow()
def overdraw(amount: int) -> None:
    withdraw(amount)


@pytest.fixture(autouse=True)
def clear_runs() -> None:
    runs.clear()


def test_transaction_commits_once_per_workflow_id(dbos: type[DBOS], database_url: str) -> None:
    engine = setup_ledger(database_url)
    for _ in range(3):
        with SetWorkflowID("deposit-1"):
            assert deposit_twice(5) == (5, 10)
    assert balance(engine) == 10 and runs == ["deposit", "deposit"]


def test_failing_transaction_rolls_back_and_records_its_error(dbos: type[DBOS], database_url: str) -> None:
    engine = setup_ledger(database_url)
    for _ in range(2):
        with SetWorkflowID("overdraw-1"), pytest.raises(Overdrawn, match="cannot withdraw 3"):
            overdraw(3)
    assert balance(engine) == 0
    steps = DBOS.list_workflow_steps("overdraw-1")
    assert len(steps) == 1 and isinstance(steps[0]["error"], Overdrawn)


def test_transaction_outside_a_workflow_runs_as_its_own_workflow(dbos: type[DBOS], database_url: str) -> None:
    engine = setup_ledger(database_url)
    assert deposit(7) == 7
    [workflow] = DBOS.list_workflows(name="<temp>.deposit")
    assert workflow.status == "SUCCESS" and balance(engine) == 7


def test_concurrent_transactions_on_one_row_all_commit(dbos: type[DBOS], database_url: str) -> None:
    """Contended SERIALIZABLE updates (PostgreSQL) and a locked SQLite file are retried, never surfaced."""
    engine = setup_ledger(database_url)
    def worker(n: int) -> None:
        for i in range(5):
            with SetWorkflowID(f"contended-{n}-{i}"):
                deposit_twice(1)

    assert in_threads(worker, 8) == []
    assert balance(engine) == 8 * 5 * 2
    assert len(runs) >= 80  # retries re-run the body, but each commit happened once


def _isolation() -> str:
    return str(DBOS.sql_session.execute(sa.text("SHOW transaction_isolation")).scalar_one())


@DBOS.transaction()
def isolation_by_default() -> str:
    return _isolation()


@DBOS.transaction(isolation_level="READ_COMMITTED")
def isolation_read_committed() -> str:
    return _isolation()


@DBOS.transaction(isolation_level="REPEATABLE READ")
def isolation_repeatable_read() -> str:
    return _isolation()


@DBOS.workflow()
def isolations() -> list[str]:
    return [isolation_by_default(), isolation_read_committed(), isolation_by_default(),
            isolation_repeatable_read(), isolation_by_default()]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite has one level
def test_each_transaction_runs_at_its_isolation_level(dbos: type[DBOS], database_url: str) -> None:
    # SERIALIZABLE by default, as in DBOS; a named level holds for its own transaction only, so the
    # pooled connection it ran on is back at the default for the next one.
    assert isolations() == ["serializable", "read committed", "serializable", "repeatable read", "serializable"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("engine_kwargs", [{"isolation_level": "READ COMMITTED"},
                                           {"execution_options": {"isolation_level": "READ COMMITTED"}}],
                         ids=["isolation_level", "execution_options"])
def test_a_level_in_db_engine_kwargs_leaves_each_transaction_at_its_own(
    database_url: str, engine_kwargs: dict[str, object]
) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url, db_engine_kwargs=engine_kwargs))
    DBOS.launch()
    try:
        assert isolations() == ["serializable", "read committed", "serializable", "repeatable read", "serializable"]
    finally:
        DBOS.destroy()


@DBOS.transaction()
def record_probe(note: str) -> str:
    DBOS.sql_session.execute(sa.text("INSERT INTO probes (note) VALUES (:n)"), {"n": note})
    return note


@DBOS.workflow()
def probe_once(note: str) -> str:
    return record_probe(note)


_SIREAD_ON_WORKFLOW_ROWS = """
SELECT c.relname, l.locktype, l.page, l.tuple, l.virtualtransaction FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.mode = 'SIReadLock' AND c.relname LIKE 'workflow_status%%'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def _siread_locks(engine: sa.Engine) -> set[tuple[object, ...]]:
    with engine.connect() as conn:
        return set(conn.exec_driver_sql(_SIREAD_ON_WORKFLOW_ROWS).all())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_runs_first_transaction_reads_no_page_other_runs_write(dbos: type[DBOS], database_url: str) -> None:
    # At SERIALIZABLE the index pages a transaction reads are predicate-locked, and a run's first transaction
    # inserts its workflow row next to the rows of the runs starting at the same moment (time-ordered
    # IDs). Had it also read that page (the checkpoint's fence, when its row is the statement's own), the
    # first transactions of concurrent runs would fail one another's serialization and retry. The locks
    # of a committed transaction live on while a transaction that overlapped it is open: this one. (The
    # warm-up run's may live on too, while any serializable transaction of the server overlaps it: only
    # locks that appear during the second run count.)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE probes (id SERIAL PRIMARY KEY, note TEXT NOT NULL)")
    assert probe_once("warm") == "warm"  # a workflow's first run writes its row up front (row_flush.py)
    witness = engine.connect().execution_options(isolation_level="SERIALIZABLE")
    try:
        witness.exec_driver_sql("SELECT count(*) FROM probes").scalar()  # its snapshot: before the run
        before = _siread_locks(engine)
        assert probe_once("second") == "second"  # its row rides in its transaction
        taken = _siread_locks(engine) - before
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT note FROM probes ORDER BY id").scalars().all() == ["warm", "second"]
        assert taken == set()
    finally:
        witness.rollback()
        witness.close()
        engine.dispose()
