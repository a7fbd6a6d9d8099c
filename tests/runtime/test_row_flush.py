"""A new inline workflow with a chosen ID that begins with a transaction inserts its row unflushed
(row_flush.py; one with a generated ID leaves it to the transaction: test_row_deferral.py).

The row is seen at once; the transaction's flushed commit makes it durable; a step's body never runs
before the row is flushed; a process killed in between loses nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import DBOS, SetWorkflowID, current
from durable.context import current_context
from helpers import wait_until

WORKER = Path(__file__).with_name("row_flush_worker.py")
seen: list[tuple[str, bool]] = []


def unflushed_now() -> bool:
    state = current_context().workflow  # type: ignore[union-attr]
    return state.row_unflushed  # type: ignore[union-attr]


@DBOS.transaction()
def save(label: str) -> str:
    seen.append((f"transaction {label}", unflushed_now()))
    return label


@DBOS.step()
def act(label: str) -> str:
    seen.append((f"step {label}", unflushed_now()))
    return label


@DBOS.workflow()
def save_then_act(label: str, step_first: bool = False) -> str:
    if step_first:
        act(label)
    save(label)
    return act(label)


@pytest.fixture
def counted(database_url: str) -> Iterator[list[str]]:
    """A launched runtime; yields the names of the pools (flushed, unflushed) each checkout came from."""
    DBOS.destroy()
    seen.clear()
    DBOS(config=make_config(database_url))
    DBOS.launch()
    rt = current.current_runtime()
    checkouts: list[str] = []
    test_thread = threading.get_ident()  # the runtime's background threads check out connections too

    def count(pool: str) -> Any:
        return lambda *_: checkouts.append(pool) if threading.get_ident() == test_thread else None

    sa.event.listen(rt.sys_db.engine, "checkout", count("flushed"))
    sa.event.listen(rt.sys_db_unflushed.engine, "checkout", count("unflushed"))
    try:
        yield checkouts
    finally:
        DBOS.destroy()


def test_the_second_run_of_a_transaction_first_workflow_inserts_unflushed(counted: list[str]) -> None:
    assert save_then_act("one") == "one"
    assert seen == [("transaction one", False), ("step one", False)]  # first run: nothing learnt yet
    seen.clear()
    counted.clear()
    with SetWorkflowID("chosen-two"):  # a chosen ID: a generated one leaves its row to the transaction
        assert save_then_act("two") == "two"
    # The row went in unflushed; the transaction's commit flushed it, so the step needs no flush of its own.
    assert seen == [("transaction two", True), ("step two", False)]
    assert counted[0] == "unflushed" and counted.count("unflushed") == 1


def test_a_step_never_runs_before_the_row_is_flushed(counted: list[str]) -> None:
    save_then_act("learn")
    seen.clear()
    save_then_act("now-step-first", step_first=True)  # inserted unflushed on the guess: flushed before the step
    assert seen[0] == ("step now-step-first", False)
    seen.clear()
    counted.clear()
    save_then_act("again", step_first=True)  # the guess is corrected: a flushed insert
    assert "unflushed" not in counted and seen[0] == ("step again", False)


def test_started_workflows_always_insert_flushed(counted: list[str]) -> None:
    save_then_act("learn")
    counted.clear()
    assert DBOS.start_workflow(save_then_act, "background").get_result() == "background"
    assert "unflushed" not in counted  # a handle promises a durable row


def test_a_separate_system_database_never_inserts_unflushed(tmp_path: Path) -> None:
    """Two SQLite files are enough to show the rule (no database_url: it would run once per database)."""
    DBOS.destroy()
    seen.clear()
    app_url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    DBOS(config=make_config(app_url, system_database_url=f"sqlite:///{tmp_path / 'sys.sqlite'}"))
    DBOS.launch()
    try:
        save_then_act("one")
        save_then_act("two")
        assert ("transaction two", False) in seen  # the transaction's commit would flush the wrong log
    finally:
        DBOS.destroy()


def test_a_given_system_database_engine_never_inserts_unflushed(database_url: str) -> None:
    """The user's engine is theirs to configure: no unflushed pool beside it, so no flag and no extra flush."""
    DBOS.destroy()
    seen.clear()
    engine = sa.create_engine(database_url)
    DBOS(config=make_config(database_url, system_database_engine=engine))
    DBOS.launch()
    try:
        rt = current.current_runtime()
        assert rt.sys_db_unflushed is rt.sys_db
        save_then_act("one")
        save_then_act("two")
        assert ("transaction two", False) in seen
    finally:
        DBOS.destroy()
        engine.dispose()


def test_a_process_killed_between_the_unflushed_row_and_the_transaction_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    start = subprocess.Popen([sys.executable, str(WORKER), database_url, "start", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "row-inserted").exists(), timeout=60, what="the blocked workflow")
        start.send_signal(signal.SIGKILL)
        start.wait(timeout=10)
    finally:
        start.kill()
    assert (tmp_path / "row-inserted").read_text() == "True", "the row was not inserted unflushed"
    recover = subprocess.run([sys.executable, str(WORKER), database_url, "recover", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert recover.returncode == 0, recover.stderr
    assert recover.stdout.splitlines()[:2] == ["SUCCESS", "'confirmed crashed'"]
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            booked = conn.exec_driver_sql("SELECT label FROM booked ORDER BY label").scalars().all()
    finally:
        engine.dispose()
    assert booked == ["crashed", "warm-up"]
