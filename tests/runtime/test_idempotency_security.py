"""Idempotency keys are no way into another request's result: fingerprints, scopes, key syntax, cookies.

The key is the ID of the first workflow a request starts, and workflow IDs are no secret (the example
returns them): a key naming a workflow that another request started must be refused, not replayed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, jsonify, make_response, request
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_config
from durable import DBOS, current
from durable.flask import set_idempotency_scope

charged: list[str] = []


@DBOS.step()
def charge_card(user: str, amount: int) -> str:
    charged.append(f"{user}:{amount}")
    return f"txn-{len(charged)}-secret-of-{user}"


@DBOS.workflow()
def pay_flow(user: str, amount: int) -> dict[str, object]:
    return {"user": user, "transaction": charge_card(user, amount), "workflow_id": DBOS.workflow_id}


def build_app() -> Flask:
    app = Flask(__name__)

    @app.post("/pay")
    def pay():  # type: ignore[no-untyped-def]
        body = request.get_json()
        return jsonify(pay_flow(request.headers.get("Authorization", "anonymous"), body["amount"])), 201

    @app.post("/start")
    def start():  # type: ignore[no-untyped-def]
        handle = DBOS.start_workflow(pay_flow, "victim", 99)
        handle.get_result()
        return {"workflow_id": handle.workflow_id}, 201

    @app.post("/login")
    def login():  # type: ignore[no-untyped-def]
        response = make_response({"ok": True}, 201)
        response.set_cookie("session", "secret-session-of-the-first-caller")
        return response

    @app.post("/login-workflow")
    @DBOS.workflow()
    def login_workflow():  # type: ignore[no-untyped-def]
        response = make_response(jsonify({"ok": True}), 201)
        response.set_cookie("session", "secret-session-of-the-first-caller")
        return response

    set_idempotency_scope(app, lambda req: req.headers.get("Authorization"))
    return app


@pytest.fixture
def client(database_url: str) -> Iterator[FlaskClient]:
    DBOS.destroy()
    charged.clear()
    app = build_app()
    DBOS(flask=app, config=make_config(database_url))
    try:
        yield app.test_client()
    finally:
        DBOS.destroy()


def pay(client: FlaskClient, key: str, user: str = "alice", amount: int = 5):  # type: ignore[no-untyped-def]
    return client.post("/pay", json={"amount": amount}, headers={"dbos-idempotency-key": key, "Authorization": user})


def test_key_naming_a_workflow_started_without_a_key_is_refused(client: FlaskClient) -> None:
    victim = client.post("/start").json["workflow_id"]  # e.g. learned from GET /orders/<sequential id>
    stolen = pay(client, victim, user="mallory")
    assert stolen.status_code == 422 and stolen.mimetype == "application/json"
    assert "secret-of-victim" not in stolen.get_data(as_text=True)
    assert "another request started" in stolen.json["error"]
    assert charged == ["victim:99"]  # and nothing ran for mallory under the victim's ID


def test_key_of_another_caller_is_refused_even_with_the_same_body(client: FlaskClient) -> None:
    first = pay(client, "order-17", user="alice")
    assert first.status_code == 201
    again = pay(client, "order-17", user="alice")
    assert again.data == first.data and again.headers["Idempotent-Replayed"] == "true"
    other = pay(client, "order-17", user="mallory")
    assert other.status_code == 422 and "secret-of-alice" not in other.get_data(as_text=True)
    assert charged == ["alice:5"]


def test_key_of_another_caller_is_refused_after_its_key_row_expired(client: FlaskClient) -> None:
    first = pay(client, "order-18", user="alice")
    rt = current.current_runtime()
    rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {idempotency_keys}"), ())  # expired and swept
    other = pay(client, "order-18", user="mallory")
    assert other.status_code == 422 and "secret-of-alice" not in other.get_data(as_text=True)
    same = pay(client, "order-18", user="alice")  # the first caller's retry still gets its workflow's result
    assert (same.status_code, same.json) == (201, first.json)
    assert charged == ["alice:5"]


@pytest.mark.parametrize("key", ["k" * 256, "k" * 2000, "k" * 3000, "", "has space", "tab\there", "é",
                                 "nul\x00", "del\x7f"])
def test_keys_that_are_not_1_to_255_visible_ascii_get_400_json(client: FlaskClient, key: str) -> None:
    response = client.post("/pay", json={"amount": 1}, headers={"dbos-idempotency-key": key})
    assert (response.status_code, response.mimetype) == (400, "application/json")
    assert "1-255 visible ASCII" in response.json["error"] and charged == []


def test_a_255_character_key_is_accepted(client: FlaskClient) -> None:
    key = "k" * 254 + "~"
    assert pay(client, key).json["workflow_id"] == key


@pytest.mark.parametrize("path", ["/login", "/login-workflow"])
def test_set_cookie_is_never_stored_or_replayed(client: FlaskClient, path: str) -> None:
    headers = {"dbos-idempotency-key": f"login{path.replace('/', '-')}", "Authorization": "alice"}
    first = client.post(path, headers=headers)
    assert "secret-session" in first.headers["Set-Cookie"]
    replayed = client.post(path, headers=headers)
    assert replayed.headers["Idempotent-Replayed"] == "true" and "Set-Cookie" not in replayed.headers
    if path == "/login-workflow":  # the route is a workflow: its checkpointed response replays, cookie-free
        rt = current.current_runtime()
        rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {idempotency_keys}"), ())
        from_checkpoint = client.post(path, headers=headers)
        assert from_checkpoint.status_code == 201 and "Set-Cookie" not in from_checkpoint.headers


KEYS = st.sampled_from(["k1", "k2", "k3"])
USERS = st.sampled_from(["alice", "bob"])
AMOUNTS = st.sampled_from([1, 2])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.tuples(KEYS, USERS, AMOUNTS), min_size=1, max_size=8))
def test_a_key_is_never_replayed_across_fingerprints_or_scopes(
    client: FlaskClient, calls: list[tuple[str, str, int]]
) -> None:
    """The first request with a key decides; later ones with another body or caller are refused."""
    rt = current.current_runtime()
    rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {idempotency_keys}"), ())
    rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {operation_outputs}"), ())
    rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {workflow_status}"), ())
    first: dict[str, tuple[str, int, bytes]] = {}
    for key, user, amount in calls:
        response = pay(client, key, user, amount)
        owner = first.get(key)
        if owner is None:
            assert response.status_code == 201, response.data
            first[key] = (user, amount, response.data)
        elif owner[:2] == (user, amount):
            assert (response.status_code, response.data) == (201, owner[2])
        else:
            assert response.status_code == 422, response.data
            assert f"secret-of-{owner[0]}" not in response.get_data(as_text=True) or owner[0] == user
