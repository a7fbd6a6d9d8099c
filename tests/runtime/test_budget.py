"""The hot path's database round trips, counted at the driver: the start's commit, then one for the held
steps and the end (one per step, plus start and end, with ``defer_step_checkpoints=False``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import DBOS, SetWorkflowID, current, lifecycle


@DBOS.step()
def step_a(x: int) -> int:
    return x + 1


@DBOS.transaction()
def step_txn(x: int) -> int:
    DBOS.sql_session.execute(sa.text("SELECT 1"))
    return x * 2


@DBOS.transaction(isolation_level="READ COMMITTED")
def step_txn_read_committed(x: int) -> int:
    DBOS.sql_session.execute(sa.text("SELECT 1"))
    return x * 2


@DBOS.workflow()
def transaction_first(x: int) -> int:
    return step_txn(x)


@DBOS.workflow()
def read_committed_first(x: int) -> int:
    return step_txn_read_committed(x)


@DBOS.workflow()
def three_steps(x: int) -> int:
    return step_a(step_a(step_a(x)))


@DBOS.workflow()
def with_transaction(x: int) -> int:
    return step_a(step_txn(x))


def _trace(statements: list[str]) -> Any:
    # Only the test's own thread: the workflows run inline on it, while the runtime's background threads
    # (dequeuer, schedules) poll on their own timers and would land in the count now and then.
    owner = threading.get_ident()

    def record(statement: str) -> None:
        if threading.get_ident() == owner:
            statements.append(statement)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "set_trace_callback"):  # sqlite3 reports every statement it runs
            dbapi_connection.set_trace_callback(record)
            return
        import psycopg

        class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                record(str(query))
                return super().execute(query, params, **kwargs)

        dbapi_connection.cursor_factory = CountingCursor

    return on_connect


@pytest.fixture
def traced(database_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[list[str], list[str]]]:
    """(system statements, application commits) recorded while the test runs."""
    DBOS.destroy()
    # A long heartbeat keeps the background thread's statements out of the count.
    defer = getattr(request, "param", True)
    DBOS(config=make_config(database_url, executor_heartbeat_sec=300, executor_timeout_sec=600,
                            defer_step_checkpoints=defer))
    DBOS.launch()
    runtime = current.current_runtime()
    configured = lifecycle.configured()
    assert configured is not None and configured.recovery is not None
    configured.recovery.swept.wait(10)  # the launch sweep is over before counting starts
    statements: list[str] = []
    commits: list[str] = []
    sa.event.listen(runtime.sys_engine, "connect", _trace(statements))
    runtime.sys_engine.dispose()  # new connections carry the tracer
    sa.event.listen(runtime.app_engine, "commit", lambda conn: commits.append("commit"))
    try:
        yield statements, commits
    finally:
        DBOS.destroy()


def on_postgres() -> bool:
    return current.current_runtime().sys_engine.dialect.name == "postgresql"


def writes(statements: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def verbs(statements: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in statements]


def test_three_step_workflow_costs_two_commits(traced: tuple[list[str], list[str]]) -> None:
    statements, _ = traced
    with SetWorkflowID("budget-1"):
        assert three_steps(1) == 4
    # The start in autocommit; the three held checkpoints and the outcome in one transaction. No reads, no pings.
    # On PostgreSQL that transaction is one statement, one round trip (held_fold.py).
    if on_postgres():
        assert verbs(statements) == ["INSERT", "WITH"], statements
    else:
        assert verbs(statements) == ["INSERT", "BEGIN", "INSERT", "INSERT", "INSERT", "UPDATE", "COMMIT"], statements


@pytest.mark.parametrize("traced", [False], indirect=True, ids=["not-deferred"])
def test_three_step_workflow_without_deferral_costs_five_statements_and_five_commits(
    traced: tuple[list[str], list[str]],
) -> None:
    statements, _ = traced
    with SetWorkflowID("budget-1"):
        assert three_steps(1) == 4
    # Each statement runs in autocommit: its own single commit. No reads, no BEGIN, no pings.
    assert verbs(statements) == ["INSERT", "INSERT", "INSERT", "INSERT", "UPDATE"], statements


def test_transaction_step_commits_once_with_its_checkpoint(traced: tuple[list[str], list[str]]) -> None:
    statements, commits = traced
    with SetWorkflowID("budget-2"):
        assert with_transaction(1) == 3
    assert commits == ["commit"]  # business statement + checkpoint INSERT in one application commit
    # start, the following plain step, finish: the transaction's checkpoint went through its own commit.
    if on_postgres():  # the held step and the outcome in one statement (held_fold.py)
        assert verbs(statements) == ["INSERT", "WITH"], statements
    else:
        assert writes(statements) == ["INSERT", "INSERT", "UPDATE"], statements


def test_a_row_left_to_the_first_transaction_rides_with_its_checkpoint(
    traced: tuple[list[str], list[str]],
) -> None:
    statements, commits = traced
    assert transaction_first(1) == 2  # a generated ID: the next run learns it begins with a transaction
    runtime = current.current_runtime()
    app_statements: list[str] = []
    sa.event.listen(runtime.app_engine, "connect", _trace(app_statements))
    runtime.app_engine.dispose()
    statements.clear()
    commits.clear()
    assert transaction_first(2) == 4
    assert commits == ["commit"]  # the row, the business statement and the checkpoint: one commit
    carried = [verb for verb in verbs(app_statements) if verb in ("INSERT", "WITH")]
    # PostgreSQL: one statement, the row in a data-modifying WITH (held_fold.carry_row_and_insert_steps).
    assert carried == (["WITH"] if on_postgres() else ["INSERT", "INSERT"]), app_statements
    assert writes(statements) == ["UPDATE"], statements  # the system engine: only the outcome


def test_at_read_committed_the_carried_row_is_a_statement_of_its_own(traced: tuple[list[str], list[str]]) -> None:
    # A new snapshot per statement: a row a reader here commits meanwhile must be visible to the
    # checkpoint's fence, which it would not be inside the row's own statement.
    assert read_committed_first(1) == 2
    runtime = current.current_runtime()
    app_statements: list[str] = []
    sa.event.listen(runtime.app_engine, "connect", _trace(app_statements))
    runtime.app_engine.dispose()
    assert read_committed_first(2) == 4
    assert [verb for verb in verbs(app_statements) if verb in ("INSERT", "WITH")] == ["INSERT", "INSERT"]


def test_replaying_a_finished_workflow_costs_one_round_trip(traced: tuple[list[str], list[str]]) -> None:
    statements, _ = traced
    with SetWorkflowID("budget-3"):
        three_steps(1)
    statements.clear()
    with SetWorkflowID("budget-3"):
        assert three_steps(1) == 4
    # The INSERT finds the row taken; one read returns the recorded outcome.
    assert [s.split()[0].upper() for s in statements] == ["INSERT", "SELECT"], statements
