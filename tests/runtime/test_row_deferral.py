"""A new inline workflow with a generated ID that begins with a transaction leaves its row to that
transaction (row_flush.py): no commit of its own, and nothing recorded until the transaction commits.

Its row appears with the transaction's commit; a reader here that asks for it by ID writes it first;
any other first step, the workflow's end and a rolled-back transaction write it before themselves; a
process killed inside that first transaction leaves no trace of the call.
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
from helpers import wait_until

WORKER = Path(__file__).with_name("row_flush_worker.py")
observed: dict[str, Any] = {}
gate = threading.Event()


def count_rows(engine: sa.Engine, workflow_id: str) -> int:
    """The workflow's rows as a connection of ``engine`` (not the runtime's) sees them now."""
    table = "dbos.workflow_status" if engine.dialect.name == "postgresql" else "dbos_workflow_status"
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE workflow_uuid = :id"),
                                {"id": workflow_id}).scalar_one())


def rows_seen_elsewhere(workflow_id: str) -> int:
    return count_rows(observed["engine"], workflow_id)


@DBOS.transaction()
def record(label: str) -> str:
    observed.setdefault("in_transaction", []).append(rows_seen_elsewhere(DBOS.workflow_id or ""))
    if label == "wait":
        gate.wait(timeout=30)
    if label == "fail":
        raise ValueError("refused by the transaction")
    return label


@DBOS.step()
def act(label: str) -> str:
    observed.setdefault("in_step", []).append(rows_seen_elsewhere(DBOS.workflow_id or ""))
    return label


@DBOS.workflow()
def record_then_act(label: str, step_first: bool = False) -> str:
    if step_first:
        act(label)
    record(label)
    return act(label)


@pytest.fixture
def runtime(database_url: str) -> Iterator[None]:
    DBOS.destroy()
    observed.clear()
    gate.clear()
    observed["engine"] = sa.create_engine(database_url)
    DBOS(config=make_config(database_url))
    DBOS.launch()
    record_then_act("learn")  # the first run learns that this workflow begins with a transaction
    observed.pop("in_transaction")
    try:
        yield
    finally:
        gate.set()
        DBOS.destroy()
        observed["engine"].dispose()


def ids_of(label_filter: str) -> list[str]:
    return [w.workflow_id for w in DBOS.list_workflows(name=record_then_act.__qualname__)
            if label_filter in str(w.input)]


def test_the_row_commits_with_the_first_transaction(runtime: None) -> None:
    rt = current.current_runtime()
    assert record_then_act("two") == "two"
    assert observed["in_transaction"] == [0]  # not written before the transaction: it carries the row
    [workflow_id] = ids_of("two")
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None and status.status == "SUCCESS"
    assert [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)] == [
        record.__qualname__, act.__qualname__]
    assert not rt.pending_rows


def test_a_chosen_id_writes_its_row_before_the_transaction(runtime: None) -> None:
    with SetWorkflowID("chosen-row"):
        assert record_then_act("chosen") == "chosen"
    assert observed["in_transaction"] == [1]  # another caller could name it: its row is there at once


def test_a_reader_here_that_asks_by_id_writes_the_row_first(runtime: None) -> None:
    rt = current.current_runtime()
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(record_then_act("wait")))
    caller.start()
    try:
        wait_until(lambda: rt.pending_rows, timeout=10, what="the run waiting in its transaction")
        [workflow_id] = list(rt.pending_rows)
        reader = threading.Thread(target=lambda: answers.append(DBOS.get_workflow_status(workflow_id)))
        reader.start()
        gate.set()  # on SQLite the reader's write waits for the transaction's lock; on PostgreSQL for its key
        reader.join(timeout=30)
        caller.join(timeout=30)
    finally:
        gate.set()
    statuses = [a for a in answers if not isinstance(a, str)]
    assert "wait" in answers and len(statuses) == 1
    assert statuses[0] is not None and statuses[0].workflow_id == workflow_id  # never "no such workflow"
    final = DBOS.get_workflow_status(workflow_id)
    assert final is not None and final.status == "SUCCESS"
    assert not rt.pending_rows


def test_a_step_first_run_writes_the_row_before_the_step(runtime: None) -> None:
    assert record_then_act("step-first", step_first=True) == "step-first"
    assert observed["in_step"][0] == 1  # a step's effect needs a row for recovery to finish it


def test_a_transaction_that_fails_leaves_the_row_and_the_error(runtime: None) -> None:
    with pytest.raises(ValueError, match="refused by the transaction"):
        record_then_act("fail")
    assert observed["in_transaction"] == [0]
    [workflow_id] = ids_of("fail")
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None and status.status == "ERROR"
    [step] = DBOS.list_workflow_steps(workflow_id)
    assert step["function_name"] == record.__qualname__ and isinstance(step["error"], ValueError)


def test_off_with_deferral_off(database_url: str) -> None:
    DBOS.destroy()
    observed.clear()
    observed["engine"] = sa.create_engine(database_url)
    DBOS(config=make_config(database_url, defer_step_checkpoints=False))
    DBOS.launch()
    try:
        record_then_act("learn")
        observed.clear()
        observed["engine"] = sa.create_engine(database_url)
        record_then_act("eager")
        assert observed["in_transaction"] == [1]
    finally:
        DBOS.destroy()
        observed["engine"].dispose()


def test_a_process_killed_inside_the_first_transaction_leaves_no_trace(database_url: str, tmp_path: Path) -> None:
    start = subprocess.Popen([sys.executable, str(WORKER), database_url, "start-deferred", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (tmp_path / "in-transaction").exists(), timeout=60, what="the blocked transaction")
        start.send_signal(signal.SIGKILL)
        start.wait(timeout=10)
    finally:
        start.kill()
    workflow_id = (tmp_path / "in-transaction").read_text()
    recover = subprocess.run([sys.executable, str(WORKER), database_url, "recover-deferred", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert recover.returncode == 0, recover.stderr
    engine = sa.create_engine(database_url)
    try:
        rows = count_rows(engine, workflow_id)
        with engine.connect() as conn:
            booked = conn.exec_driver_sql("SELECT label FROM booked ORDER BY label").scalars().all()
    finally:
        engine.dispose()
    assert rows == 0  # nothing durable had happened: the call left nothing to recover
    assert booked == ["warm-up"]
