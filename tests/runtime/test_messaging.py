"""DBOS.sleep, send/recv and set_event/get_event: recorded as steps, replayed, woken without busy polling."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from conftest import reopen_as_orphan
from durable import DBOS, SetWorkflowID, current, lifecycle
from durable.error import DBOSException, DBOSNonExistentWorkflowError
from durable.wakeups import event_key, status_key
from helpers import wait_until

CALLS: dict[str, int] = {}


def count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@DBOS.step()
def noted(name: str) -> str:
    count(name)
    return name


@DBOS.workflow()
def sleeper(seconds: float) -> float:
    before = DBOS.step()(time.time)()
    DBOS.sleep(seconds)
    return time.time() - before


@DBOS.workflow()
def receiver(topic: str | None, timeout: float) -> Any:
    noted("before-recv")
    return DBOS.recv(topic, timeout_seconds=timeout)


@DBOS.workflow()
def two_receives(timeout: float) -> list[Any]:
    return [DBOS.recv("t", timeout_seconds=timeout), DBOS.recv("t", timeout_seconds=timeout)]


@DBOS.workflow()
def sender(destination: str, message: Any) -> str:
    DBOS.send(destination, message, "t")
    return noted("after-send")


@DBOS.workflow()
def publisher(value: Any) -> None:
    DBOS.set_event("progress", "started")
    noted("between-events")
    DBOS.set_event("progress", value)


@DBOS.workflow()
def event_reader(workflow_id: str, timeout: float) -> Any:
    return DBOS.get_event(workflow_id, "progress", timeout_seconds=timeout)


def step_names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)]


def wait_until_waiting(key: str) -> None:
    """Until a thread waits on ``key`` (a recv, a get_event, a sleep), instead of guessing how long that takes."""
    wakeups = current.current_runtime().wakeups
    wait_until(lambda: wakeups.is_waiting(key), timeout=10, what=f"a waiter on {key}", interval=0.01)


# -- sleep -----------------------------------------------------------------------------------------


def test_sleep_is_a_recorded_step_that_replay_does_not_repeat(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("sleep-1"):
        assert sleeper(0.3) >= 0.3
    assert step_names("sleep-1") == ["time", "DBOS.sleep"]
    reopen_as_orphan(database_url, "sleep-1")
    started = time.monotonic()
    handle = DBOS.retrieve_workflow("sleep-1")
    DBOS.recover_pending_workflows()
    handle.get_result(timeout_seconds=10)
    assert time.monotonic() - started < 0.3, "the replayed sleep waited again though its wake-up time had passed"


def test_sleep_outside_a_workflow_is_a_plain_sleep(dbos: type[DBOS]) -> None:
    started = time.monotonic()
    DBOS.sleep(0.05)
    assert time.monotonic() - started >= 0.05


# -- send and recv ---------------------------------------------------------------------------------


def test_message_sent_from_outside_is_received(dbos: type[DBOS]) -> None:
    with SetWorkflowID("recv-1"):
        handle = DBOS.start_workflow(receiver, "t", 10)
    DBOS.send("recv-1", {"hello": ("tuple", 1)}, "t")
    assert handle.get_result(timeout_seconds=10) == {"hello": ("tuple", 1)}
    assert step_names("recv-1") == ["noted", "DBOS.recv", "DBOS.sleep"]


def test_recv_wakes_promptly_when_a_message_arrives_later(dbos: type[DBOS]) -> None:
    with SetWorkflowID("recv-2"):
        handle = DBOS.start_workflow(receiver, None, 20)
    wait_until_waiting(status_key("recv-2"))
    sent = time.monotonic()
    DBOS.send("recv-2", "late")
    assert handle.get_result(timeout_seconds=10) == "late"
    assert time.monotonic() - sent < 1.0, "recv waited for a poll interval instead of being woken"


def test_recv_times_out_with_none_and_replays_none(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("recv-3"):
        assert receiver("t", 0.2) is None
    DBOS.send("recv-3", "too late", "t")
    reopen_as_orphan(database_url, "recv-3")
    DBOS.recover_pending_workflows()
    assert DBOS.retrieve_workflow("recv-3").get_result(timeout_seconds=10) is None  # replayed, not re-received


def test_messages_are_received_in_order_and_each_once(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("recv-4"):
        handle = DBOS.start_workflow(two_receives, 10)
    for n in (1, 2, 3):
        DBOS.send("recv-4", n, "t")
    assert handle.get_result(timeout_seconds=10) == [1, 2]
    reopen_as_orphan(database_url, "recv-4")
    DBOS.recover_pending_workflows()
    assert DBOS.retrieve_workflow("recv-4").get_result(timeout_seconds=10) == [1, 2]  # message 3 still unread


def test_topics_keep_their_messages_apart(dbos: type[DBOS]) -> None:
    with SetWorkflowID("recv-5"):
        handle = DBOS.start_workflow(receiver, "wanted", 10)
    DBOS.send("recv-5", "other", "unwanted")
    DBOS.send("recv-5", "mine", "wanted")
    assert handle.get_result(timeout_seconds=10) == "mine"


def test_send_from_a_workflow_is_not_repeated_by_replay(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("inbox"):
        inbox = DBOS.start_workflow(two_receives, 1.5)
    with SetWorkflowID("send-1"):
        assert sender("inbox", "once") == "after-send"
    reopen_as_orphan(database_url, "send-1", drop_steps_from=2)  # the send is recorded, what follows is not
    DBOS.recover_pending_workflows()
    assert DBOS.retrieve_workflow("send-1").get_result(timeout_seconds=10) == "after-send"
    assert inbox.get_result(timeout_seconds=10) == ["once", None]


def test_send_with_an_idempotency_key_delivers_once(dbos: type[DBOS]) -> None:
    with SetWorkflowID("inbox-2"):
        inbox = DBOS.start_workflow(two_receives, 1.5)
    DBOS.send("inbox-2", "one", "t", idempotency_key="k-1")
    DBOS.send("inbox-2", "one", "t", idempotency_key="k-1")
    assert inbox.get_result(timeout_seconds=10) == ["one", None]


def test_send_to_an_unknown_workflow_names_it(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSNonExistentWorkflowError, match="no-such-workflow"):
        DBOS.send("no-such-workflow", "hello")


def test_recv_outside_a_workflow_is_refused(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSException, match="recv"):
        DBOS.recv("t", timeout_seconds=0)


# -- events ----------------------------------------------------------------------------------------


def test_get_event_waits_for_the_value_and_sees_the_latest(dbos: type[DBOS]) -> None:
    with SetWorkflowID("pub-1"):
        DBOS.start_workflow(publisher, {"done": True}).get_result(timeout_seconds=10)
    assert DBOS.get_event("pub-1", "progress", timeout_seconds=1) == {"done": True}
    assert DBOS.get_event("pub-1", "missing", timeout_seconds=0.1) is None


def test_get_event_is_woken_by_set_event(dbos: type[DBOS]) -> None:
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(DBOS.get_event("pub-2", "progress", timeout_seconds=10)))
    reader.start()
    wait_until_waiting(event_key("pub-2", "progress"))
    set_at = time.monotonic()
    with SetWorkflowID("pub-2"):
        publisher(5)
    reader.join(timeout=10)
    assert got and got[0] in ("started", 5)
    assert time.monotonic() - set_at < 1.0


def test_get_event_in_a_workflow_is_recorded_and_replayed(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("pub-3"):
        publisher("first")
    with SetWorkflowID("reader-3"):
        assert event_reader("pub-3", 1) == "first"
    assert step_names("reader-3") == ["DBOS.getEvent", "DBOS.sleep"]
    with SetWorkflowID("pub-3b"):
        publisher("second")
    reopen_as_orphan(database_url, "reader-3")
    DBOS.recover_pending_workflows()
    assert DBOS.retrieve_workflow("reader-3").get_result(timeout_seconds=10) == "first"


def test_set_event_outside_a_workflow_is_refused(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSException, match="set_event"):
        DBOS.set_event("k", 1)


def test_waiting_workflow_stops_when_the_process_shuts_down(dbos: type[DBOS]) -> None:
    with SetWorkflowID("recv-stop"):
        DBOS.start_workflow(receiver, "t", 30)
    wait_until_waiting(status_key("recv-stop"))
    started = time.monotonic()
    DBOS.destroy(workflow_completion_timeout_sec=5)
    assert time.monotonic() - started < 3, "destroy waited for a recv that cannot finish"
    assert lifecycle.configured() is None
