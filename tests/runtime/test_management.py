"""cancel_workflow, resume_workflow, fork_workflow and SetWorkflowTimeout."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from durable import DBOS, SetWorkflowID, SetWorkflowTimeout, current, lifecycle
from durable.error import (
    DBOSAwaitedWorkflowCancelledError,
    DBOSConflictingWorkflowError,
    DBOSNonExistentWorkflowError,
)
from durable.wakeups import status_key

CALLS: dict[str, int] = {}
GATE = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    GATE.clear()


@DBOS.step()
def noted(name: str) -> str:
    CALLS[name] = CALLS.get(name, 0) + 1
    return name


@DBOS.step()
def gated(name: str) -> str:
    CALLS[name] = CALLS.get(name, 0) + 1
    GATE.wait(10)
    return name


@DBOS.workflow()
def stops_at_gate() -> list[str]:
    return [noted("one"), gated("two"), noted("three")]


@DBOS.workflow()
def waits_for_message() -> Any:
    noted("before")
    return DBOS.recv("go", timeout_seconds=30)


@DBOS.workflow()
def long_sleeper() -> str:
    noted("before")
    DBOS.sleep(30)
    return noted("after")


@DBOS.workflow()
def steps_and_event(fail: bool) -> list[str]:
    a = noted("a")
    DBOS.set_event("stage", "a-done")
    b = noted("b")
    if fail:
        raise ValueError("asked to fail")
    return [a, b, noted("c")]


@DBOS.workflow()
def parent_of_sleeper() -> str:
    return long_sleeper()


def status(workflow_id: str) -> str:
    found = DBOS.get_workflow_status(workflow_id)
    assert found is not None
    return found.status


def wait_for(predicate: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def wait_past_deadline(workflow_id: str) -> None:
    found = DBOS.get_workflow_status(workflow_id)
    assert found is not None and found.workflow_deadline_epoch_ms is not None
    deadline = found.workflow_deadline_epoch_ms
    wait_for(lambda: time.time() * 1000 > deadline, f"{workflow_id}'s deadline to pass")


# -- cancel ----------------------------------------------------------------------------------------


def test_cancelled_workflow_stops_at_its_next_step(dbos: type[DBOS]) -> None:
    with SetWorkflowID("cancel-1"):
        handle = DBOS.start_workflow(stops_at_gate)
    wait_for(lambda: CALLS.get("two") == 1, "the gated step to start")
    DBOS.cancel_workflow("cancel-1")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert status("cancel-1") == "CANCELLED"
    assert "three" not in CALLS
    assert [s["function_name"] for s in DBOS.list_workflow_steps("cancel-1")] == ["noted"]  # "two" not recorded


def test_cancel_wakes_a_workflow_waiting_in_recv_and_sleep(dbos: type[DBOS]) -> None:
    with SetWorkflowID("cancel-recv"):
        receiving = DBOS.start_workflow(waits_for_message)
    with SetWorkflowID("cancel-sleep"):
        sleeping = DBOS.start_workflow(long_sleeper)
    waiting = current.current_runtime().wakeups.is_waiting
    wait_for(lambda: waiting(status_key("cancel-recv")) and waiting(status_key("cancel-sleep")),
             "both workflows to start waiting")
    started = time.monotonic()
    DBOS.cancel_workflow("cancel-recv")
    DBOS.cancel_workflow("cancel-sleep")
    for handle in (receiving, sleeping):
        with pytest.raises(DBOSAwaitedWorkflowCancelledError):
            handle.get_result(timeout_seconds=10)
    assert time.monotonic() - started < 2


def test_cancelled_workflow_is_not_recovered(dbos: type[DBOS]) -> None:
    with SetWorkflowID("cancel-2"):
        handle = DBOS.start_workflow(waits_for_message)
    wait_for(lambda: CALLS.get("before") == 1, "the workflow to wait")
    DBOS.cancel_workflow("cancel-2")
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert DBOS.recover_pending_workflows() == 0
    assert status("cancel-2") == "CANCELLED"


def test_cancelling_a_finished_workflow_changes_nothing(dbos: type[DBOS]) -> None:
    with SetWorkflowID("done-1"):
        steps_and_event(False)
    DBOS.cancel_workflow("done-1")
    assert status("done-1") == "SUCCESS"


# -- resume ----------------------------------------------------------------------------------------


def test_resumed_workflow_runs_on_from_its_checkpoints(dbos: type[DBOS]) -> None:
    with SetWorkflowID("resume-1"):
        handle = DBOS.start_workflow(stops_at_gate)
    wait_for(lambda: CALLS.get("two") == 1, "the gated step to start")
    DBOS.cancel_workflow("resume-1")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    resumed = DBOS.resume_workflow("resume-1")
    assert resumed.get_result(timeout_seconds=10) == ["one", "two", "three"]
    assert CALLS == {"one": 1, "two": 2, "three": 1}  # "one" replayed; "two" was never recorded
    assert status("resume-1") == "SUCCESS"


def test_resume_runs_a_failed_workflow_again(dbos: type[DBOS]) -> None:
    with SetWorkflowID("resume-err"), pytest.raises(ValueError):
        steps_and_event(True)
    assert status("resume-err") == "ERROR"
    with pytest.raises(ValueError):
        DBOS.resume_workflow("resume-err").get_result(timeout_seconds=10)  # same inputs, same failure
    assert CALLS == {"a": 1, "b": 1}  # the steps replayed from their checkpoints


def test_resume_of_an_unknown_workflow_names_it(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSNonExistentWorkflowError, match="nope"):
        DBOS.resume_workflow("nope")


# -- fork ------------------------------------------------------------------------------------------


def test_fork_reuses_checkpoints_before_the_start_step(dbos: type[DBOS]) -> None:
    with SetWorkflowID("orig"):
        assert steps_and_event(False) == ["a", "b", "c"]
    # steps: 1 noted(a), 2 setEvent, 3 noted(b), 4 noted(c)
    with SetWorkflowID("forked"):
        handle = DBOS.fork_workflow("orig", 3)
    assert handle.workflow_id == "forked"
    assert handle.get_result(timeout_seconds=10) == ["a", "b", "c"]
    assert CALLS == {"a": 1, "b": 2, "c": 2}
    assert DBOS.get_event("forked", "stage", timeout_seconds=0) == "a-done"  # the kept step's event came along
    assert [s["function_id"] for s in DBOS.list_workflow_steps("forked")] == [1, 2, 3, 4]


def test_fork_gets_a_new_id_and_refuses_a_taken_one(dbos: type[DBOS]) -> None:
    with SetWorkflowID("orig-2"):
        steps_and_event(False)
    handle = DBOS.fork_workflow("orig-2", 1)
    assert handle.workflow_id != "orig-2"
    assert handle.get_result(timeout_seconds=10) == ["a", "b", "c"]
    with SetWorkflowID("orig-2"), pytest.raises(DBOSConflictingWorkflowError):
        DBOS.fork_workflow("orig-2", 1)
    with pytest.raises(DBOSNonExistentWorkflowError):
        DBOS.fork_workflow("missing", 1)


# -- timeouts --------------------------------------------------------------------------------------


def test_timeout_cancels_a_workflow_blocked_in_sleep_with_its_children(dbos: type[DBOS]) -> None:
    started = time.monotonic()
    with SetWorkflowID("timed-parent"), SetWorkflowTimeout(0.5):
        handle = DBOS.start_workflow(parent_of_sleeper)
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert time.monotonic() - started < 3
    wait_for(lambda: status("timed-parent") == "CANCELLED", "the parent to be cancelled")
    children = DBOS.list_workflows(workflow_id_prefix="timed-parent-")
    assert [c.status for c in children] == ["CANCELLED"]
    assert "after" not in CALLS


def test_timeout_is_checked_by_the_next_checkpoint(dbos: type[DBOS]) -> None:
    with SetWorkflowID("timed-step"), SetWorkflowTimeout(1.0):
        handle = DBOS.start_workflow(stops_at_gate)
    wait_for(lambda: CALLS.get("two") == 1, "the gated step to start")
    wait_past_deadline("timed-step")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    assert status("timed-step") == "CANCELLED"
    assert "three" not in CALLS


def test_workflow_within_its_timeout_succeeds(dbos: type[DBOS]) -> None:
    before = time.time() * 1000
    with SetWorkflowID("in-time"), SetWorkflowTimeout(30):
        assert steps_and_event(False) == ["a", "b", "c"]
    found = DBOS.get_workflow_status("in-time")
    assert found is not None and found.workflow_deadline_epoch_ms is not None
    assert before + 29_000 <= found.workflow_deadline_epoch_ms <= time.time() * 1000 + 30_000


def test_recovery_sweep_cancels_workflows_past_their_deadline(dbos: type[DBOS]) -> None:
    with SetWorkflowID("timed-gate"), SetWorkflowTimeout(1.0):
        handle = DBOS.start_workflow(stops_at_gate)
    wait_for(lambda: CALLS.get("two") == 1, "the gated step to start")
    wait_past_deadline("timed-gate")
    configured = lifecycle.configured()
    assert configured is not None and configured.recovery is not None
    configured.recovery.wake()  # the sweep, not the step, must find it
    wait_for(lambda: status("timed-gate") == "CANCELLED", "the sweep to cancel the workflow")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)


def test_set_workflow_timeout_refuses_a_non_positive_value() -> None:
    with pytest.raises(ValueError, match="-1"):
        SetWorkflowTimeout(-1)
