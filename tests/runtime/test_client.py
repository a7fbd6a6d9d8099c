"""DBOSClient beside a running service (here, the test process's runtime), on both databases.

A client in a separate process is tested in test_operate_served.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from durable import DBOS, DBOSClient, Queue, SendMessage, SetWorkflowID
from durable.current import current_runtime
from durable.error import DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError
from durable.handles import WorkflowHandle
from durable.store.dialects import create_postgres_database
from helpers import PG_SERVER_URL, drop_database, require_postgres, wait_until

client_queue = Queue("client-queue")


@DBOS.workflow()
def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@DBOS.workflow()
def listens(topic: str) -> Any:
    return DBOS.recv(topic, timeout_seconds=30)


@pytest.fixture
def client(dbos: type[DBOS], database_url: str) -> Iterator[DBOSClient]:
    found = DBOSClient(system_database_url=database_url)
    try:
        yield found
    finally:
        found.destroy()


def test_enqueue_by_name_runs_in_the_service(client: DBOSClient) -> None:
    handle = client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "workflow_id": "g-1"},
                            "ops", punctuation="?")
    assert handle.get_result(timeout_seconds=20) == "hello ops?"
    assert client.retrieve_workflow("g-1").get_status().status == "SUCCESS"
    assert [w.workflow_id for w in client.list_workflows(name="greet")] == ["g-1"]
    with pytest.raises(DBOSNonExistentWorkflowError):
        client.retrieve_workflow("nope")
    with pytest.raises(DBOSException, match="unknown key 'colour'"):
        client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "colour": "red"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(DBOSException, match="Invalid priority -1"):
        client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "priority": -1})
    client.delete_workflow("g-1")
    assert DBOS.get_workflow_status("g-1") is None


def test_deduplication_and_return_existing(client: DBOSClient) -> None:
    options: Any = {"queue_name": "client-queue", "workflow_name": "listens", "deduplication_id": "d-1"}
    first = client.enqueue({**options, "workflow_id": "l-1"}, "never")
    with pytest.raises(DBOSQueueDeduplicatedError):
        client.enqueue({**options, "workflow_id": "l-2"}, "never")
    again = client.enqueue({**options, "workflow_id": "l-3", "duplication_policy": "return-existing"}, "never")
    assert again.workflow_id == first.workflow_id == "l-1"
    with pytest.raises(DBOSException, match="requires a deduplication_id"):
        client.enqueue({"queue_name": "client-queue", "workflow_name": "listens",
                        "duplication_policy": "return-existing"})
    client.send("l-1", "stop", "never")
    assert first.get_result(timeout_seconds=20) == "stop"


def test_enqueue_and_send_in_one_transaction(client: DBOSClient, database_url: str) -> None:
    with client._sys_db.engine.connect() as conn, conn.begin():
        handle = client.enqueue_in_transaction(
            conn, {"queue_name": "client-queue", "workflow_name": "listens", "workflow_id": "tx-1"}, "t")
        client.send_in_transaction(conn, "tx-1", "in the same transaction", "t")
    assert handle.get_result(timeout_seconds=20) == "in the same transaction"
    with client._sys_db.engine.connect() as conn, conn.begin():
        client.enqueue_in_transaction(
            conn, {"queue_name": "client-queue", "workflow_name": "listens", "workflow_id": "tx-2"}, "t")
        conn.rollback()
    assert DBOS.get_workflow_status("tx-2") is None  # rolled back with the caller's transaction
    with client._sys_db.engine.connect() as conn, conn.begin(), pytest.raises(DBOSNonExistentWorkflowError):
        client.send_in_transaction(conn, "nobody", "lost", "t")


def test_send_bulk_get_event_fork_and_resume(client: DBOSClient) -> None:
    with SetWorkflowID("b-1"):
        one = DBOS.start_workflow(listens, "bulk")
    with SetWorkflowID("b-2"):
        two = DBOS.start_workflow(listens, "bulk")
    client.send_bulk([SendMessage("b-1", "to one", "bulk"), SendMessage("b-2", "to two", "bulk")])
    assert (one.get_result(), two.get_result()) == ("to one", "to two")
    forked = client.fork_workflow("b-1", 1, forked_workflow_id="b-1-fork")
    client.send("b-1-fork", "to the fork", "bulk")
    assert forked.get_result(timeout_seconds=20) == "to the fork"
    assert client.get_event("b-1", "no-such-event", timeout_seconds=0.1) is None


def test_an_unreachable_database_raises_the_drivers_error_unless_lazy() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    with pytest.raises(sa.exc.DBAPIError):
        DBOSClient(system_database_url=url)
    lazy = DBOSClient(system_database_url=url, lazy=True)
    with pytest.raises(sa.exc.DBAPIError):
        lazy.check_connection()
    lazy.destroy()
    with pytest.raises(DBOSException, match="lazy"):
        DBOSClient(system_database_url=url, lazy=True, use_listen_notify=True)


def test_wait_first_returns_the_first_to_finish(client: DBOSClient) -> None:
    with SetWorkflowID("w-slow"):
        slow = DBOS.start_workflow(listens, "never")
    with SetWorkflowID("w-fast"):
        fast = DBOS.start_workflow(listens, "now")
    client.send("w-fast", "done", "now")
    handles = [client.retrieve_workflow(h.workflow_id) for h in (slow, fast)]
    assert client.wait_first(handles, polling_interval_sec=0.05).workflow_id == "w-fast"
    with pytest.raises(ValueError):
        client.wait_first([])
    DBOS.cancel_workflow("w-slow")


@DBOS.workflow()
def echoes(person: dict[str, Any]) -> dict[str, Any]:
    return {"seen": person, "b": 1, "a": 2}


@DBOS.workflow()
def reads_with_a_client(database_url: str, target: str) -> list[Any]:
    reader = DBOSClient(system_database_url=database_url)
    try:
        found = [w.workflow_id for w in reader.list_workflows(workflow_ids=[target])]
        return found + list(reader.read_stream(target, "s"))
    finally:
        reader.destroy()


@DBOS.workflow()
def writes_a_stream() -> None:
    DBOS.write_stream("s", "v0")
    DBOS.close_stream("s")


def test_dict_key_order_survives_the_database(client: DBOSClient) -> None:
    # PostgreSQL's JSONB orders keys shortest first; the caller's order is what a DBOS user sees.
    person = {"first": "John", "last": "Doe", "age": 30}
    handle = client.enqueue({"queue_name": "client-queue", "workflow_name": "echoes", "workflow_id": "o-1"}, person)
    result = handle.get_result(timeout_seconds=20)
    assert list(result) == ["seen", "b", "a"] and list(result["seen"]) == ["first", "last", "age"]
    status = client.retrieve_workflow("o-1").get_status()
    assert list(status.input["args"][0]) == ["first", "last", "age"]
    assert list(client.list_workflows(workflow_ids=["o-1"])[0].output) == ["seen", "b", "a"]


def test_only_the_matching_application_version_dequeues(client: DBOSClient) -> None:
    other = client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "workflow_id": "v-other",
                            "app_version": "0123456789abcdef"}, "other")
    unset = client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "workflow_id": "v-unset"}, "me")
    assert unset.get_result(timeout_seconds=20) == "hello me!"
    assert unset.get_status().app_version == DBOS.application_version  # the version that ran it
    time.sleep(1.5)
    status = other.get_status()
    assert (status.status, status.app_version) == ("ENQUEUED", "0123456789abcdef")
    client.cancel_workflow("v-other")


def test_client_calls_from_a_workflow_are_not_its_steps(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("s-writer"):
        writes_a_stream()
    with SetWorkflowID("s-reader"):
        assert reads_with_a_client(database_url, "s-writer") == ["s-writer", "v0"]
    assert DBOS.list_workflow_steps("s-reader") == []


@DBOS.workflow()
def client_ticked(tick: Any, context: Any) -> Any:
    return context


def test_schedules_by_workflow_name(client: DBOSClient) -> None:
    client.create_schedule(schedule_name="c-s", workflow_name="client_ticked", schedule="0 0 1 1 *",
                           context={"tenant": "acme"}, cron_timezone="Asia/Tokyo")
    [stored] = client.list_schedules()
    assert (stored["workflow_name"], stored["context"], stored["cron_timezone"]) == ("client_ticked", {"tenant": "acme"},
                                                                                      "Asia/Tokyo")
    with pytest.raises(DBOSException, match="already exists"):
        client.create_schedule(schedule_name="c-s", workflow_name="client_ticked", schedule="0 0 1 1 *")
    with pytest.raises(DBOSException, match="Invalid cron schedule"):
        client.create_schedule(schedule_name="bad", workflow_name="client_ticked", schedule="not a cron")
    client.pause_schedule("c-s")
    assert client.list_schedules(status="ACTIVE") == []
    client.resume_schedule("c-s")
    assert client.trigger_schedule("c-s").get_result(timeout_seconds=20) == {"tenant": "acme"}
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    ran = client.backfill_schedule("c-s", start - dt.timedelta(days=400), start + dt.timedelta(hours=1))
    assert [h.get_result(timeout_seconds=20) for h in ran] == [{"tenant": "acme"}] * 2
    client.apply_schedules([{"schedule_name": "c-s", "workflow_name": "client_ticked", "schedule": "0 0 2 1 *"},
                            {"schedule_name": "c-t", "workflow_name": "client_ticked", "schedule": "0 0 3 1 *"}])
    assert {s["schedule_name"]: s["schedule"] for s in client.list_schedules()} == {"c-s": "0 0 2 1 *",
                                                                                      "c-t": "0 0 3 1 *"}
    client.delete_schedule("c-s")
    assert client.get_schedule("c-s") is None


def test_wait_first_in_a_workflow_is_one_step(client: DBOSClient) -> None:
    with SetWorkflowID("wf-slow"):
        DBOS.start_workflow(listens, "never")
    with SetWorkflowID("wf-fast"):
        DBOS.start_workflow(greet, "x")
    assert DBOS.wait_first([DBOS.retrieve_workflow("wf-slow"), DBOS.retrieve_workflow("wf-fast")],
                           polling_interval_sec=0.05).workflow_id == "wf-fast"
    with SetWorkflowID("waits"):
        assert waits_first(["wf-slow", "wf-fast"]) == "wf-fast"
    assert [s["function_name"] for s in DBOS.list_workflow_steps("waits")] == ["DBOS.waitFirst"]
    DBOS.cancel_workflow("wf-slow")


@DBOS.workflow()
def waits_first(ids: list[str]) -> str:
    handles = [WorkflowHandle(current_runtime(), i) for i in ids]
    return DBOS.wait_first(handles, polling_interval_sec=0.05).workflow_id


def test_a_missing_postgres_database_is_created() -> None:
    require_postgres()
    name = f"t_created_{uuid.uuid4().hex[:8]}"
    try:
        assert create_postgres_database(f"{PG_SERVER_URL}/{name}") is True
        assert create_postgres_database(f"{PG_SERVER_URL}/{name}") is False  # there now
    finally:
        drop_database(name)


def test_a_delayed_enqueue_waits_then_runs(client: DBOSClient) -> None:
    before = int(time.time() * 1000)
    handle = client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "delay_seconds": 1.0}, "later")
    status = handle.get_status()
    assert status.status == "DELAYED" and status.delay_until_epoch_ms >= before + 1000
    assert handle.get_result(timeout_seconds=20) == "hello later!"
    assert handle.get_status().dequeued_at >= status.delay_until_epoch_ms
    with pytest.raises(ValueError, match="delay_seconds"):
        client.enqueue({"queue_name": "client-queue", "workflow_name": "greet", "delay_seconds": -1})


@DBOS.workflow()
def sets_an_event(value: str) -> None:
    DBOS.sleep(0.5)
    DBOS.set_event("k", value)


def test_use_listen_notify_starts_the_listener_now(dbos: type[DBOS], database_url: str) -> None:
    listening = DBOSClient(system_database_url=database_url, use_listen_notify=True)
    listener = listening._notification_listener_thread
    try:
        if database_url.startswith("sqlite"):
            assert listener is None  # SQLite has no LISTEN: waits watch the signal file
        else:
            assert listener is not None and listener.is_alive()
            wait_until(lambda: listening._sys_db.notification_conn is not None, 10, "the LISTEN connection")
        with SetWorkflowID("ln-1"):
            DBOS.start_workflow(sets_an_event, "v")
        assert listening.get_event("ln-1", "k", 30) == "v"
    finally:
        listening.destroy()
    assert listener is None or not listener.is_alive()


def test_a_queued_workflow_whose_code_is_not_registered_yet_waits_for_it(client: DBOSClient) -> None:
    """The service claims it, finds no code, and puts it back to wait: registered later, it runs (never ERROR)."""
    name = f"late_{uuid.uuid4().hex[:8]}"
    handle = client.enqueue({"queue_name": "client-queue", "workflow_name": name, "workflow_id": f"{name}-1"}, 3)
    wait_until(lambda: client.retrieve_workflow(handle.workflow_id).get_status().status == "DELAYED", 20,
               f"{name} to wait again after a claim found no code")

    def late(x: int) -> int:
        return x * 2

    late.__name__ = late.__qualname__ = name
    DBOS.workflow(name=name)(late)
    assert handle.get_result(timeout_seconds=20) == 6
