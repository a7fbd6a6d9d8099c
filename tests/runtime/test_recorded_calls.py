"""API calls from a workflow's body are its steps, recorded as DBOS 2.31.1 records them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from conftest import reopen_as_orphan, wait_for_status
from durable import DBOS, SetWorkflowID
from durable.error import DBOSAwaitedWorkflowCancelledError

CALLS: dict[str, int] = {}
GATE = threading.Event()
REACHED = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    GATE.clear()
    REACHED.clear()


@DBOS.step()
def rc_count(name: str) -> str:
    CALLS[name] = CALLS.get(name, 0) + 1
    return name


@DBOS.workflow()
def rc_child(value: str) -> str:
    return value.upper()


@DBOS.workflow()
def rc_failing_child() -> None:
    raise ValueError("child failed")


@DBOS.workflow()
def rc_parent() -> list[Any]:
    direct = rc_child("a")
    handle = DBOS.start_workflow(rc_child, "b")
    status = handle.get_status().status
    listed = len(DBOS.list_workflows(workflow_id_prefix="rc-p"))
    return [direct, handle.get_result(), status in ("PENDING", "SUCCESS"), listed]


@DBOS.workflow()
def rc_awaits_failure() -> str:
    try:
        rc_failing_child()
    except ValueError as exc:
        return str(exc)
    return "no error"


@DBOS.transaction()
def rc_status_in_transaction(workflow_id: str) -> None:
    DBOS.get_workflow_status(workflow_id)


@DBOS.workflow()
def rc_blocks_between_steps() -> str:
    rc_count("first")
    REACHED.set()
    GATE.wait(10)
    return rc_count("second")


@DBOS.workflow()
def rc_sleeper() -> None:
    DBOS.sleep(0.3)


def names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)]


def test_a_child_is_a_start_then_a_get_result(dbos: type[DBOS]) -> None:
    with SetWorkflowID("rc-p"):
        assert rc_parent() == ["A", "B", True, 3]
    steps = DBOS.list_workflow_steps("rc-p")
    assert [s["function_name"] for s in steps] == [
        rc_child.__qualname__, "DBOS.getResult", rc_child.__qualname__, "DBOS.getStatus", "DBOS.listWorkflows",
        "DBOS.getResult",
    ]
    assert (steps[0]["child_workflow_id"], steps[0]["output"]) == ("rc-p-1", None)  # the start: no output
    assert (steps[1]["child_workflow_id"], steps[1]["output"]) == ("rc-p-1", "A")
    assert (steps[5]["child_workflow_id"], steps[5]["output"]) == ("rc-p-3", "B")


def test_replay_returns_what_the_calls_returned(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("rc-p"):
        rc_parent()
    # Later workflows whose IDs match the prefix must not change the replayed listing.
    with SetWorkflowID("rc-p-extra"):
        rc_child("x")
    reopen_as_orphan(database_url, "rc-p")
    DBOS.recover_pending_workflows()
    wait_for_status("rc-p", "SUCCESS")
    assert DBOS.retrieve_workflow("rc-p").get_result() == ["A", "B", True, 3]


def test_a_childs_error_is_recorded_with_its_get_result(dbos: type[DBOS]) -> None:
    with SetWorkflowID("rc-f"):
        assert rc_awaits_failure() == "child failed"
    steps = DBOS.list_workflow_steps("rc-f")
    assert [s["function_name"] for s in steps] == [rc_failing_child.__qualname__, "DBOS.getResult"]
    assert steps[0]["error"] is None and isinstance(steps[1]["error"], ValueError)


def test_api_calls_are_refused_inside_a_transaction(dbos: type[DBOS]) -> None:
    with pytest.raises(Exception, match="Invalid call to `DBOS.getStatus` inside a transaction"):
        @DBOS.workflow()
        def rc_runs_transaction() -> None:
            rc_status_in_transaction("x")

        rc_runs_transaction()


def test_a_cancelled_run_stops_before_its_next_step(dbos: type[DBOS]) -> None:
    with SetWorkflowID("rc-c"):
        handle = DBOS.start_workflow(rc_blocks_between_steps)
    assert REACHED.wait(10)
    DBOS.cancel_workflow("rc-c")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert CALLS == {"first": 1}  # the body of "second" never ran
    assert DBOS.resume_workflow("rc-c").get_result(timeout_seconds=10) == "second"
    assert CALLS == {"first": 1, "second": 1}


def test_a_step_started_as_a_workflow_runs_as_a_temporary_one(dbos: type[DBOS]) -> None:
    handle = DBOS.start_workflow(rc_count, "alone")
    assert handle.get_result(timeout_seconds=10) == "alone"
    assert handle.get_status().name == f"<temp>.{rc_count.__qualname__}"
    assert names(handle.workflow_id) == [rc_count.__qualname__]


def test_status_counts_executions_and_sleep_shows_its_span(dbos: type[DBOS]) -> None:
    started = time.time()
    with SetWorkflowID("rc-s"):
        rc_sleeper()
    status = DBOS.get_workflow_status("rc-s")
    assert status is not None and status.recovery_attempts == 1 and status.app_id == ""
    [sleep] = DBOS.list_workflow_steps("rc-s")
    assert sleep["function_name"] == "DBOS.sleep"
    assert sleep["completed_at_epoch_ms"] - sleep["started_at_epoch_ms"] >= 300  # type: ignore[operator]
    assert sleep["started_at_epoch_ms"] >= int(started * 1000)  # type: ignore[operator]
