"""HTTP idempotency: replay, 409 while running, 422 on a different request, expiry, takeover."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient

from conftest import make_config
from durable import DBOS, current, error
from durable.idempotency import Fingerprint
from durable.store.base import now_ms
from helpers import wait_until

ran: list[str] = []
gate = threading.Event()


@DBOS.step()
def charge(amount: int) -> str:
    ran.append(f"charge {amount}")
    return f"txn-{len(ran)}"


@DBOS.workflow()
def checkout_flow(amount: int, wait: bool) -> dict[str, object]:
    if wait:
        gate.wait(20)
    return {"transaction": charge(amount), "workflow_id": DBOS.workflow_id}


def build_app() -> Flask:
    app = Flask(__name__)

    @app.post("/checkout")
    def checkout():  # type: ignore[no-untyped-def]
        body = request.get_json()
        return jsonify(checkout_flow(body["amount"], body.get("wait", False))), 201

    @app.post("/flaky")
    def flaky():  # type: ignore[no-untyped-def]
        ran.append("flaky")
        return {"error": "database restarting"}, 503

    @app.post("/gated-flaky")
    def gated_flaky():  # type: ignore[no-untyped-def]
        gate.wait(20)
        ran.append("gated-flaky")
        return {"error": "database restarting"}, 503

    return app


def client_for(database_url: str, **config: object) -> Iterator[FlaskClient]:
    DBOS.destroy()
    ran.clear()
    gate.clear()
    app = build_app()
    DBOS(flask=app, config=make_config(database_url, **config))
    try:
        yield app.test_client()
    finally:
        gate.set()
        DBOS.destroy()


@pytest.fixture
def client(database_url: str) -> Iterator[FlaskClient]:
    yield from client_for(database_url)


@pytest.fixture
def waiting_client(database_url: str) -> Iterator[FlaskClient]:
    yield from client_for(database_url, idempotency_wait_sec=20)


KEY = {"dbos-idempotency-key": "key-1"}


def test_retry_replays_the_stored_response_byte_for_byte(client: FlaskClient) -> None:
    first = client.post("/checkout", json={"amount": 5}, headers=KEY)
    second = client.post("/checkout", json={"amount": 5}, headers=KEY)
    assert first.status_code == second.status_code == 201
    assert second.data == first.data and first.json["workflow_id"] == "key-1"
    assert "Idempotent-Replayed" not in first.headers and second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert ran == ["charge 5"]


def test_same_key_for_another_request_is_422_naming_the_difference(client: FlaskClient) -> None:
    client.post("/checkout", json={"amount": 5}, headers=KEY)
    other_body = client.post("/checkout", json={"amount": 6}, headers=KEY)
    assert other_body.status_code == 422 and "request body differs" in other_body.json["error"]
    other_path = client.post("/flaky", json={"amount": 5}, headers=KEY)
    assert other_path.status_code == 422 and "path /checkout != /flaky" in other_path.json["error"]
    assert ran == ["charge 5"]


def test_duplicate_while_running_gets_409_with_retry_after(client: FlaskClient) -> None:
    results: list[int] = []
    first = threading.Thread(
        target=lambda: results.append(client.post("/checkout", json={"amount": 5, "wait": True}, headers=KEY).status_code))
    first.start()
    rt = current.current_runtime()
    wait_until(lambda: rt.idempotency_store.get("key-1", 0) is not None, timeout=10, what="the first request's claim")
    duplicate = client.post("/checkout", json={"amount": 5, "wait": True}, headers=KEY)
    assert duplicate.status_code == 409 and duplicate.headers["Retry-After"] == "1"
    gate.set()
    first.join(timeout=20)
    assert results == [201]
    assert client.post("/checkout", json={"amount": 5, "wait": True}, headers=KEY).headers["Idempotent-Replayed"] == "true"
    assert ran == ["charge 5"]


def test_concurrent_duplicates_run_the_body_once(waiting_client: FlaskClient) -> None:
    responses: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def send() -> None:
        response = waiting_client.post("/checkout", json={"amount": 9, "wait": True}, headers=KEY)
        with lock:
            responses.append((response.status_code, response.data))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    gate.set()
    for t in threads:
        t.join(timeout=30)
    assert len(responses) == 6 and {status for status, _ in responses} == {201}
    assert len({body for _, body in responses}) == 1  # the waiters got the first response
    assert ran == ["charge 9"]


def test_a_waiter_that_read_the_key_just_before_it_was_done_replays_it(waiting_client: FlaskClient) -> None:
    """The owner may store its response and stop serving the key between a waiter's read and its check."""
    rt = current.current_runtime()
    store = rt.idempotency_store
    real_get = store.get
    read_running = threading.Event()

    def get_then_let_the_owner_finish(key: str, alive_since: int):  # type: ignore[no-untyped-def]
        record = real_get(key, alive_since)
        if threading.current_thread().name == "waiter" and record is not None and record.state != "done":
            read_running.set()
            wait_until(lambda: key not in rt.serving_keys, timeout=20, what="the owner to finish")
        return record

    store.get = get_then_let_the_owner_finish  # type: ignore[method-assign]
    results: dict[str, tuple[int, bytes]] = {}

    def send(name: str) -> None:
        response = waiting_client.post("/checkout", json={"amount": 4, "wait": True}, headers=KEY)
        results[name] = (response.status_code, response.data)

    owner = threading.Thread(target=send, args=("owner",), name="owner")
    owner.start()
    wait_until(lambda: real_get("key-1", 0) is not None, timeout=10, what="the owner's claim")
    waiter = threading.Thread(target=send, args=("waiter",), name="waiter")
    waiter.start()
    assert read_running.wait(10)
    gate.set()
    owner.join(timeout=30)
    waiter.join(timeout=30)
    assert results["waiter"] == results["owner"] and results["owner"][0] == 201
    assert ran == ["charge 4"]


def test_server_errors_are_not_stored(client: FlaskClient) -> None:
    assert client.post("/flaky", headers=KEY).status_code == 503
    assert client.post("/flaky", headers=KEY).status_code == 503
    assert ran == ["flaky", "flaky"]


def test_expired_keys_run_again_and_are_swept(database_url: str) -> None:
    for client in client_for(database_url, idempotency_ttl_sec=0.2):
        client.post("/checkout", json={"amount": 1}, headers={"dbos-idempotency-key": "short"})
        client.post("/checkout", json={"amount": 1}, headers={"dbos-idempotency-key": "short-2"})
        time.sleep(0.3)
        again = client.post("/checkout", json={"amount": 1}, headers={"dbos-idempotency-key": "short"})
        assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
        # The workflow ID still dedupes: the charge did not run again.
        assert ran == ["charge 1", "charge 1"]
        rt = current.current_runtime()
        time.sleep(0.3)
        assert rt.idempotency_store.delete_expired() == 2
        assert rt.idempotency_store.get("short", 0) is None


def test_key_of_a_dead_owner_is_taken_over(client: FlaskClient) -> None:
    rt = current.current_runtime()
    body = b'{"amount": 3}'
    fp = Fingerprint("POST", "/checkout", hashlib.sha256(body).hexdigest())
    rt.idempotency_store.claim("orphan", fp.digest, fp.method, fp.path, "gone-host:1:dead", 60_000)
    response = client.post("/checkout", data=body, content_type="application/json",
                           headers={"dbos-idempotency-key": "orphan"})
    assert response.status_code == 201 and ran == ["charge 3"]
    assert client.post("/checkout", data=body, content_type="application/json",
                       headers={"dbos-idempotency-key": "orphan"}).headers["Idempotent-Replayed"] == "true"


def test_a_waiter_never_gets_the_response_of_another_request_that_took_the_released_key(
        waiting_client: FlaskClient) -> None:
    """The first request fails (503: released); another request (another path) takes the key and finishes
    before the waiter reads it again. The waiter's answer is 422, not that request's response."""
    rt = current.current_runtime()
    store = rt.idempotency_store
    real_get = store.get
    waiting = threading.Event()
    results: dict[str, tuple[int, dict[str, object]]] = {}

    def send(name: str, path: str, amount: int) -> None:
        response = waiting_client.post(path, json={"amount": amount}, headers=KEY)
        results[name] = (response.status_code, response.json or {})

    def get_letting_another_request_in(key: str, alive_since: int):  # type: ignore[no-untyped-def]
        record = real_get(key, alive_since)
        if threading.current_thread().name == "waiter":
            waiting.set()
            if record is None and "other" not in results:  # released: another request takes the key first
                other = threading.Thread(target=send, args=("other", "/checkout", 7), name="other")
                other.start()
                other.join(timeout=20)
                record = real_get(key, alive_since)
        return record

    store.get = get_letting_another_request_in  # type: ignore[method-assign]
    owner = threading.Thread(target=send, args=("owner", "/gated-flaky", 1), name="owner")
    owner.start()
    wait_until(lambda: real_get("key-1", 0) is not None, timeout=10, what="the owner's claim")
    waiter = threading.Thread(target=send, args=("waiter", "/gated-flaky", 1), name="waiter")
    waiter.start()
    assert waiting.wait(10)
    gate.set()
    owner.join(timeout=30)
    waiter.join(timeout=30)
    assert results["owner"][0] == 503 and results["other"][0] == 201
    status, body = results["waiter"]
    assert status == 422 and "first used for another request" in str(body["error"]), results["waiter"]
    assert ran == ["gated-flaky", "charge 7"]


def test_a_takeover_starts_the_keys_staleness_clock_again(client: FlaskClient) -> None:
    """created_at is when the current owner took the key: a process that took over a key an hour after its
    first owner died is not itself stale at once (a retry elsewhere would run the handler beside it)."""
    rt = current.current_runtime()
    store = rt.idempotency_store
    store.claim("taken", "digest", "POST", "/checkout", "gone-host:1:dead", 60_000)
    an_hour_ago = now_ms() - 3_600_000
    rt.sys_db.execute(rt.sys_db.dialect.sql("UPDATE {idempotency_keys} SET created_at = ? WHERE idempotency_key = ?"),
                      (an_hour_ago, "taken"))
    assert store.get("taken", 0).created_at == an_hour_ago
    before = now_ms()
    assert store.adopt("taken", "gone-host:1:dead", rt.executor_id)
    record = store.get("taken", 0)
    assert record.executor_id == rt.executor_id and record.created_at >= before


def test_a_takeover_the_database_fails_answers_503_json_and_leaves_the_key_free(client: FlaskClient) -> None:
    rt = current.current_runtime()
    body = b'{"amount": 6}'
    fp = Fingerprint("POST", "/checkout", hashlib.sha256(body).hexdigest())
    rt.idempotency_store.claim("orphan", fp.digest, fp.method, fp.path, "gone-host:1:dead", 60_000)
    real_adopt = rt.idempotency_store.adopt

    def adopt_while_the_database_is_away(*args: object) -> bool:  # what the store raises past its retries
        raise error.DBOSDatabaseUnavailableError("the database did not answer")

    rt.idempotency_store.adopt = adopt_while_the_database_is_away  # type: ignore[method-assign]
    headers = {"dbos-idempotency-key": "orphan"}
    failed = client.post("/checkout", data=body, content_type="application/json", headers=headers)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1" and ran == []
    assert failed.json is not None and failed.json["error"] == "service unavailable"  # JSON, not a server page
    rt.idempotency_store.adopt = real_adopt  # type: ignore[method-assign]
    again = client.post("/checkout", data=body, content_type="application/json", headers=headers)
    assert again.status_code == 201 and ran == ["charge 6"]  # not a 409 for a key this process still held


def test_claims_and_responses_skip_the_flush_and_workflows_do_not(client: FlaskClient) -> None:
    """The key's writes need only be seen at once; the workflow's flushed commits make them durable."""
    rt = current.current_runtime()
    pg = rt.sys_dialect.name == "postgresql"
    show = "SHOW synchronous_commit" if pg else "PRAGMA synchronous"
    assert client.post("/checkout", json={"amount": 4}, headers=KEY).status_code == 201
    unflushed = rt.idempotency_store.unflushed.fetch(show, ())[0][0]
    flushed = rt.sys_db.fetch(show, ())[0][0]
    assert (unflushed, flushed) == (("off", "on") if pg else (1, 2))  # SQLite: 1 NORMAL, 2 FULL
    assert rt.idempotency_store.get("key-1", 0).state == "done"  # seen at once by the flushed pool
