"""DBOS 2.31.1's result and messaging API: get_result, wait_first, get_all_events, send_bulk, step_status,
the DBOS.getResult step, steps enqueued as <temp> workflows, and the execution counter (recovery_attempts)."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import InvalidRequestError

from durable import DBOS, SendMessage, SetWorkflowID, error


@DBOS.workflow()
def _doubled(x: int) -> int:
    return x * 2


@DBOS.workflow()
def _fails() -> None:
    raise ValueError("boom")


@DBOS.workflow()
def _receive_all(count: int) -> list[object]:
    return [DBOS.recv("t", timeout_seconds=10) for _ in range(count)]


@DBOS.workflow()
def _receive_one() -> object:
    return DBOS.recv(timeout_seconds=2)


def test_get_result_by_id_returns_the_value_or_raises_the_error(dbos: type[DBOS]) -> None:
    handle = DBOS.start_workflow(_doubled, 21)
    assert DBOS.get_result(handle.workflow_id) == 42
    failing = DBOS.start_workflow(_fails)
    with pytest.raises(ValueError, match="boom"):
        DBOS.get_result(failing.workflow_id)
    with pytest.raises(error.DBOSNonExistentWorkflowError, match="Non-existent target workflow ID: nope"):
        DBOS.get_result("nope")


_release = threading.Event()
_child_runs: list[int] = []


@DBOS.workflow()
def _slow_child(x: int) -> int:
    _child_runs.append(x)
    _release.wait(10)
    return x


@DBOS.workflow()
def _waits_on_handles() -> tuple[int, int]:
    first = DBOS.start_workflow(_slow_child, 1)
    other = DBOS.start_workflow(_doubled, 5)
    done = DBOS.wait_first([first, other])
    return done.get_result(), DBOS.get_result(first.workflow_id)


def test_a_workflow_records_its_waits_as_steps_and_replays_them(dbos: type[DBOS]) -> None:
    _release.clear()
    workflow_id = str(uuid.uuid4())
    threading.Timer(0.5, _release.set).start()
    with SetWorkflowID(workflow_id):
        assert _waits_on_handles() == (10, 1)
    names = [step["function_name"] for step in DBOS.list_workflow_steps(workflow_id)]
    assert names[-3:] == ["DBOS.waitFirst", "DBOS.getResult", "DBOS.getResult"]
    get_results = [s for s in DBOS.list_workflow_steps(workflow_id) if s["function_name"] == "DBOS.getResult"]
    assert [s["output"] for s in get_results] == [10, 1]
    assert all(s["child_workflow_id"] for s in get_results)
    runs = len(_child_runs)
    with SetWorkflowID(workflow_id):  # finished: the recorded result, nothing runs again
        assert _waits_on_handles() == (10, 1)
    assert len(_child_runs) == runs


def test_wait_first_refuses_empty_or_duplicate_handles(dbos: type[DBOS]) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        DBOS.wait_first([])
    handle = DBOS.start_workflow(_doubled, 1)
    with pytest.raises(ValueError, match="duplicate|more than once"):
        DBOS.wait_first([handle, handle])


@DBOS.workflow()
def _sets_events() -> dict[str, object]:
    DBOS.set_event("a", 1)
    DBOS.set_event("a", 2)
    DBOS.set_event("b", {"nested": [1, 2]})
    return DBOS.get_all_events(DBOS.workflow_id or "")


def test_get_all_events_returns_the_latest_value_of_each_key(dbos: type[DBOS]) -> None:
    workflow_id = str(uuid.uuid4())
    with SetWorkflowID(workflow_id):
        assert _sets_events() == {"a": 2, "b": {"nested": [1, 2]}}
    assert DBOS.get_all_events(workflow_id) == {"a": 2, "b": {"nested": [1, 2]}}
    assert DBOS.list_workflow_steps(workflow_id)[-1]["function_name"] == "DBOS.get_events"
    assert DBOS.get_all_events(DBOS.start_workflow(_doubled, 1).workflow_id) == {}


def test_send_bulk_delivers_all_messages_or_none(dbos: type[DBOS]) -> None:
    receiver = DBOS.start_workflow(_receive_all, 2)
    DBOS.send_bulk([SendMessage(receiver.workflow_id, "x", "t"), SendMessage(receiver.workflow_id, "y", "t")])
    assert receiver.get_result() == ["x", "y"]

    lonely = DBOS.start_workflow(_receive_one)
    with pytest.raises(error.DBOSNonExistentWorkflowError, match="Non-existent `send` destination workflow ID"):
        DBOS.send_bulk([SendMessage(lonely.workflow_id, "lost"), SendMessage("no-such-workflow", "x")])
    assert lonely.get_result() is None  # the batch rolled back: nothing arrived


def test_send_bulk_refuses_a_key_given_twice_and_accepts_an_empty_batch(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException, match="duplicate idempotency keys: k"):
        DBOS.send_bulk([SendMessage("a", 1, idempotency_key="k"), SendMessage("b", 2, idempotency_key="k")])
    DBOS.send_bulk([])
    with pytest.raises(error.DBOSException, match="send_to_forks"):
        DBOS.send_bulk([], send_to_forks=True)


_sends: list[int] = []


@DBOS.workflow()
def _bulk_sender(destination: str) -> None:
    _sends.append(1)
    DBOS.send_bulk([SendMessage(destination, "one", "t"), SendMessage(destination, "two", "t")])


def test_send_bulk_from_a_workflow_is_one_step_sent_once(dbos: type[DBOS]) -> None:
    receiver = DBOS.start_workflow(_receive_all, 2)
    sender_id = str(uuid.uuid4())
    with SetWorkflowID(sender_id):
        _bulk_sender(receiver.workflow_id)
    assert receiver.get_result() == ["one", "two"]
    assert [s["function_name"] for s in DBOS.list_workflow_steps(sender_id)] == ["DBOS.send_bulk"]


_attempts: list[object] = []


@DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=3)
def _flaky_step() -> str:
    status = DBOS.step_status
    _attempts.append(status)
    if len(_attempts) < 3:
        raise RuntimeError("again")
    return "ok"


@DBOS.step()
def _plain_step() -> object:
    return DBOS.step_status


@DBOS.workflow()
def _uses_steps() -> tuple[str, object]:
    return _flaky_step(), _plain_step()


def test_step_status_reports_the_attempt_of_a_retrying_step(dbos: type[DBOS]) -> None:
    _attempts.clear()
    result, plain = _uses_steps()
    assert result == "ok"
    assert [(s.step_id, s.current_attempt, s.max_attempts) for s in _attempts] == [(1, 0, 3), (1, 1, 3), (1, 2, 3)]  # type: ignore[attr-defined]
    assert (plain.step_id, plain.current_attempt, plain.max_attempts) == (2, None, None)  # type: ignore[attr-defined]
    assert DBOS.step_status is None  # outside a step


@DBOS.step(name="named_step")
def _enqueueable_step(x: int) -> str | None:
    return DBOS.workflow_id


def test_a_step_started_on_its_own_runs_as_a_temp_workflow(dbos: type[DBOS]) -> None:
    assert _enqueueable_step(1) is None  # called outside a workflow: a plain call
    DBOS.register_queue("steps-queue")
    handle = DBOS.enqueue_workflow("steps-queue", _enqueueable_step, 1)
    assert handle.get_result() == handle.workflow_id
    assert handle.get_status().name == "<temp>.named_step"
    started = DBOS.start_workflow(_enqueueable_step, 2)
    assert started.get_result() == started.workflow_id


def test_a_function_both_step_and_transaction_is_refused() -> None:
    with pytest.raises(error.DBOSConflictingRegistrationError, match="conflicting function type"):
        @DBOS.step()
        @DBOS.transaction()
        def both() -> None:
            pass


@DBOS.transaction()
def _commits_itself() -> None:
    DBOS.sql_session.execute(sa.text("SELECT 1"))
    DBOS.sql_session.commit()


def test_a_transaction_that_commits_by_itself_fails_as_in_dbos(dbos: type[DBOS]) -> None:
    workflow_id = str(uuid.uuid4())
    for _ in range(2):  # the second call replays the recorded error
        with pytest.raises(InvalidRequestError, match="Can't operate on closed transaction"):
            with SetWorkflowID(workflow_id):
                _commits_itself()


def test_recovery_attempts_counts_executions_started(dbos: type[DBOS]) -> None:
    handle = DBOS.start_workflow(_doubled, 2)
    handle.get_result()
    assert handle.get_status().recovery_attempts == 1
    DBOS.register_queue("count-queue")
    queued = DBOS.enqueue_workflow("count-queue", _doubled, 3)
    queued.get_result()
    assert queued.get_status().recovery_attempts == 1


def test_a_serialization_failure_is_a_type_error(dbos: type[DBOS]) -> None:
    assert issubclass(error.DBOSSerializationError, TypeError)


def test_a_handle_of_a_destroyed_dbos_refuses_to_wait(database_url: str) -> None:
    from conftest import make_config

    DBOS.destroy()
    DBOS(config=make_config(database_url))
    handle = DBOS.start_workflow(_doubled, 4)
    assert handle.get_result() == 8
    DBOS.destroy()
    with pytest.raises(error.DBOSException, match="destroyed"):
        handle.get_result()
