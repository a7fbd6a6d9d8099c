"""DBOSClient beside a running service (here, the test process's runtime), on both databases.

A client in a separate process is tested in test_operate_served.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from durable import DBOS, DBOSClient, Queue, SendMessage, SetWorkflowID
from durable.error import DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError

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
