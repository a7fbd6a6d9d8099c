"""Step options beyond retries: should_retry, and timeout_seconds on plain (synchronous) steps."""

from __future__ import annotations

import threading
import time

import pytest

from durable import DBOS, SetWorkflowID, error

RELEASE = threading.Event()
ATTEMPTS: list[float] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    RELEASE.clear()
    ATTEMPTS.clear()


@DBOS.step(timeout_seconds=0.2)
def hangs() -> str:
    ATTEMPTS.append(time.monotonic())
    RELEASE.wait(5)
    return "too late"


@DBOS.step(timeout_seconds=2)
def quick() -> str:
    return f"quick in {DBOS.workflow_id}"  # the step's context reaches its thread


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01, timeout_seconds=0.2)
def slow_then_fast() -> str:
    ATTEMPTS.append(time.monotonic())
    if len(ATTEMPTS) < 2:
        RELEASE.wait(5)
    return "second attempt"


@DBOS.workflow()
def calls_hangs() -> str:
    try:
        return hangs()
    finally:
        RELEASE.set()  # let the abandoned attempt finish


@DBOS.workflow()
def calls_quick() -> str:
    return quick()


@DBOS.workflow()
def calls_slow_then_fast() -> str:
    result = slow_then_fast()
    RELEASE.set()
    return result


def test_a_step_that_overruns_its_timeout_fails_the_workflow_with_a_recorded_error(dbos: type[DBOS]) -> None:
    started = time.monotonic()
    with SetWorkflowID("timed-out"), pytest.raises(error.DBOSStepTimeoutError) as raised:
        calls_hangs()
    assert time.monotonic() - started < 2, "the workflow waited for the body instead of its timeout"
    assert raised.value.step_name.endswith("hangs") and raised.value.timeout_seconds == 0.2
    steps = DBOS.list_workflow_steps("timed-out")
    assert len(steps) == 1 and isinstance(steps[0]["error"], error.DBOSStepTimeoutError)
    status = DBOS.get_workflow_status("timed-out")
    assert status is not None and status.status == "ERROR"


def test_a_step_within_its_timeout_returns_normally(dbos: type[DBOS]) -> None:
    with SetWorkflowID("in-time"):
        assert calls_quick() == "quick in in-time"


def test_each_retry_gets_a_fresh_timeout(dbos: type[DBOS]) -> None:
    assert calls_slow_then_fast() == "second attempt"
    assert len(ATTEMPTS) == 2


def test_a_bad_timeout_is_refused_where_the_step_is_declared() -> None:
    for bad in (0, -1, float("inf"), "5"):
        with pytest.raises(error.DBOSException, match="positive and finite"):
            DBOS.step(timeout_seconds=bad)(lambda: None)  # type: ignore[arg-type]


def test_outside_a_workflow_the_timeout_does_nothing() -> None:
    assert quick() == "quick in None"


def test_should_retry_false_raises_the_error_itself_at_once(dbos: type[DBOS]) -> None:
    @DBOS.step(retries_allowed=True, max_attempts=5, interval_seconds=0.01,
               should_retry=lambda exc: not isinstance(exc, PermissionError))
    def picky(kind: str) -> None:
        ATTEMPTS.append(time.monotonic())
        raise PermissionError("no") if kind == "fatal" else TimeoutError("later")

    @DBOS.workflow()
    def run_picky(kind: str) -> None:
        picky(kind)

    with pytest.raises(PermissionError):
        run_picky("fatal")
    assert len(ATTEMPTS) == 1
    ATTEMPTS.clear()
    with pytest.raises(error.DBOSMaxStepRetriesExceeded):
        run_picky("transient")
    assert len(ATTEMPTS) == 5


def test_should_retry_is_asked_on_the_last_attempt_too(dbos: type[DBOS]) -> None:
    @DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01,
               should_retry=lambda exc: not isinstance(exc, ValueError))
    def fails_differently_at_the_end() -> None:
        ATTEMPTS.append(time.monotonic())
        raise ValueError("permanent") if len(ATTEMPTS) == 3 else TimeoutError("transient")

    @DBOS.workflow()
    def run_it() -> None:
        fails_differently_at_the_end()

    with pytest.raises(ValueError, match="permanent"):
        run_it()
    assert len(ATTEMPTS) == 3


def test_a_workflow_started_from_inside_a_step_is_refused(dbos: type[DBOS]) -> None:
    """As in DBOS: a step's body is not replayed, so a child started there would shift later step IDs."""
    @DBOS.workflow()
    def child() -> str:
        return "child"

    @DBOS.step()
    def starts_a_child() -> str:
        return DBOS.start_workflow(child).get_result()

    @DBOS.workflow()
    def parent() -> str:
        return starts_a_child()

    with pytest.raises(error.DBOSException, match="from inside a step of workflow"):
        parent()
