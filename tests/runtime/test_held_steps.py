"""Held step checkpoints: a plain step's checkpoint commits with the workflow's next durable write.

What must hold: nothing the workflow publishes commits before its earlier steps; readers in this
process see a running workflow's finished steps, as in DBOS; a run fenced by a new owner commits
nothing; and the outcome's commit carries whatever is still held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import DBOS, SetWorkflowID
from durable.current import current_runtime
from durable.error import DBOSFencedError
from helpers import wait_until

gate = threading.Event()
seen: dict[str, Any] = {}


@pytest.fixture
def launched(database_url: str) -> Iterator[str]:
    DBOS.destroy()
    DBOS(config=make_config(database_url))
    DBOS.launch()
    gate.clear()
    seen.clear()
    try:
        yield database_url
    finally:
        gate.set()
        DBOS.destroy()


def step_rows(database_url: str, workflow_id: str) -> list[str]:
    """The step rows committed so far, read over a connection of the test's own."""
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(
                f"SELECT function_name FROM {prefix}operation_outputs WHERE workflow_uuid = :w ORDER BY function_id"),
                {"w": workflow_id})]
    finally:
        engine.dispose()


@DBOS.step()
def add_one(x: int) -> int:
    return x + 1


@DBOS.step()
def refuse(x: int) -> int:
    raise ValueError(f"no {x}")


@DBOS.step()
def wait_for_gate() -> None:
    assert gate.wait(30), "the test never opened the gate"


@DBOS.workflow()
def steps_then_gate(x: int) -> int:
    a = add_one(x)
    b = add_one(a)
    wait_for_gate()
    return b


@DBOS.workflow()
def step_then_event(x: int) -> int:
    a = add_one(x)
    DBOS.set_event("a", a)
    wait_for_gate()
    return a


@DBOS.workflow()
def survives_a_failed_step(x: int) -> str:
    try:
        refuse(x)
    except ValueError as exc:
        return str(exc)
    return "unreachable"


@DBOS.workflow()
def step_then_pause(x: int) -> int:
    a = add_one(x)
    time.sleep(0.3)  # plain code: nothing is written until the end
    return a


@DBOS.transaction()
def write_mark(name: str) -> None:
    DBOS.sql_session.execute(sa.text("INSERT INTO marks (name) VALUES (:n)"), {"n": name})


@DBOS.workflow()
def step_gate_transaction(x: int) -> int:
    a = add_one(x)
    seen["ran"] = True
    assert gate.wait(30)
    write_mark("after")
    return a


def test_outcome_commit_carries_the_held_steps(launched: str) -> None:
    with SetWorkflowID("three"):
        assert survives_a_failed_step(1) == "no 1"
    assert step_rows(launched, "three") == ["refuse"]  # an error checkpoint is held and written too
    [step] = DBOS.list_workflow_steps("three")
    assert isinstance(step["error"], ValueError)


def test_a_held_step_keeps_its_own_completion_time(launched: str) -> None:
    with SetWorkflowID("paused"):
        assert step_then_pause(1) == 2
    [step] = DBOS.list_workflow_steps("paused")
    status = DBOS.get_workflow_status("paused")
    assert status is not None and step["completed_at_epoch_ms"] is not None
    assert step["completed_at_epoch_ms"] <= status.updated_at - 250, "the step's time is when it was written"


def test_steps_are_held_until_a_reader_here_asks(launched: str) -> None:
    handle = DBOS.start_workflow(steps_then_gate, 1)
    wait_until(lambda: len(DBOS.list_workflow_steps(handle.workflow_id)) == 2, timeout=10,
               what="the running workflow's two finished steps, listed from another thread")
    # The listing flushed them: they are rows now, not only memory.
    assert step_rows(launched, handle.workflow_id) == ["add_one", "add_one"]
    gate.set()
    assert handle.get_result() == 3
    assert [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [
        "add_one", "add_one", "wait_for_gate"]


def test_steps_held_behind_a_long_step_are_written_by_the_sweep(launched: str) -> None:
    handle = DBOS.start_workflow(steps_then_gate, 1)
    # No reader asks: the recovery sweep (every heartbeat, 5 s here) writes checkpoints held over 2 s.
    wait_until(lambda: step_rows(launched, handle.workflow_id) == ["add_one", "add_one"], timeout=20,
               what="the held checkpoints to be written while the gated step runs")
    gate.set()
    assert handle.get_result() == 3


def test_held_step_is_committed_before_the_event_it_published(launched: str) -> None:
    handle = DBOS.start_workflow(step_then_event, 5)
    assert DBOS.get_event(handle.workflow_id, "a", timeout_seconds=10) == 6
    # The event's commit carried the step: a process that sees the event sees the step too.
    assert step_rows(launched, handle.workflow_id)[:2] == ["add_one", "DBOS.setEvent"]
    gate.set()
    assert handle.get_result() == 6


def started_past_its_step(workflow: Any) -> tuple[Any, Future[Any]]:
    """Start ``workflow(1)`` here and wait until it has run its step; its handle and its run's future."""
    handle = DBOS.start_workflow(workflow, 1)
    run = current_runtime().future_of(handle.workflow_id)
    assert run is not None
    wait_until(lambda: seen.get("ran"), timeout=10, what="the step to finish")
    return handle, run


def test_run_fenced_while_holding_commits_nothing(launched: str) -> None:
    engine = sa.create_engine(launched)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE marks (name VARCHAR(20))")
    rt = current_runtime()
    handle, run = started_past_its_step(step_gate_transaction)
    # A new owner takes the workflow (what recovery does to a dead executor's): the generation moves on.
    assert rt.checkpoint_store.readopt(handle.workflow_id, rt.executor_id) is not None
    gate.set()
    assert isinstance(run.exception(timeout=10), DBOSFencedError)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM marks").scalar() == 0, "a fenced run committed"
    engine.dispose()
    assert step_rows(launched, handle.workflow_id) == [], "a fenced run's held checkpoint was written"


@DBOS.workflow()
def step_then_wait_in_code(x: int) -> int:
    a = add_one(x)
    seen["ran"] = True
    assert gate.wait(30)  # plain code: the step stays held until the outcome's commit carries it
    return a


def record_step_behind_its_back(database_url: str, workflow_id: str, output: str) -> None:
    """Another execution's record of step 1 (what a retried commit that had gone through leaves)."""
    engine = sa.create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    table, value = ("dbos.operation_outputs", "CAST(:o AS jsonb)") if postgres else ("dbos_operation_outputs", ":o")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {table} (workflow_uuid, function_id, function_name, output) "
                                 f"VALUES (:w, 1, 'add_one', {value})"), {"w": workflow_id, "o": output})
    finally:
        engine.dispose()


def test_run_fenced_while_holding_writes_neither_its_steps_nor_its_outcome(launched: str) -> None:
    # The outcome carries the held step (on PostgreSQL, in the same statement: held_fold.py).
    rt = current_runtime()
    handle, run = started_past_its_step(step_then_wait_in_code)
    assert rt.checkpoint_store.readopt(handle.workflow_id, rt.executor_id) is not None
    gate.set()
    assert isinstance(run.exception(timeout=10), DBOSFencedError)
    assert step_rows(launched, handle.workflow_id) == [], "a fenced run's held checkpoint was written"
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None and status.status == "PENDING", "a fenced run wrote its outcome"


def test_outcome_commits_when_a_held_step_is_already_recorded_as_held(launched: str) -> None:
    handle, _ = started_past_its_step(step_then_wait_in_code)
    record_step_behind_its_back(launched, handle.workflow_id, "2")  # what the run holds: add_one(1)
    gate.set()
    assert handle.get_result() == 2
    assert step_rows(launched, handle.workflow_id) == ["add_one"]
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None and status.status == "SUCCESS"


def test_outcome_is_refused_when_a_held_step_was_recorded_differently(launched: str) -> None:
    handle, run = started_past_its_step(step_then_wait_in_code)
    record_step_behind_its_back(launched, handle.workflow_id, "99")  # another execution's different value
    gate.set()
    assert isinstance(run.exception(timeout=10), DBOSFencedError)
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None and status.status == "PENDING", "the outcome of a run that diverged was written"


def test_deferral_off_writes_each_step_at_once(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url, defer_step_checkpoints=False))
    DBOS.launch()
    gate.clear()
    try:
        handle = DBOS.start_workflow(steps_then_gate, 1)
        wait_until(lambda: step_rows(database_url, handle.workflow_id) == ["add_one", "add_one"], timeout=10,
                   what="both steps' rows without any reader asking")
        gate.set()
        assert handle.get_result() == 3
    finally:
        gate.set()
        DBOS.destroy()
