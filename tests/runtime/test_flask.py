"""The Flask middleware: request snapshot, client IP, app context in background work, error JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, current_app, jsonify

from conftest import make_config
from durable import DBOS, current
from durable.flask import client_ip

seen: dict[str, object] = {}


@DBOS.step()
def read_app_config() -> str:
    return str(current_app.config["GREETING"])


@DBOS.workflow()
def background_greeting() -> dict[str, object]:
    request = DBOS.request
    return {"greeting": read_app_config(), "request_id": request.request_id if request else None,
            "ip": request.client_ip if request else None}


@DBOS.step()
def unstorable_step() -> object:
    return object()  # JSON has no way to store it


@DBOS.workflow()
def unstorable_workflow() -> object:
    return unstorable_step()


def build_app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config["GREETING"] = "hello"

    @app.get("/plain")
    def plain():  # type: ignore[no-untyped-def]
        return {"ok": True}

    @app.get("/start")
    def start():  # type: ignore[no-untyped-def]
        handle = DBOS.start_workflow(background_greeting)
        return {"workflow_id": handle.workflow_id}

    @app.get("/unstorable")
    def unstorable():  # type: ignore[no-untyped-def]
        return {"value": unstorable_workflow()}

    @app.get("/response/<name>")
    @DBOS.workflow()
    def response_workflow(name: str):  # type: ignore[no-untyped-def]
        seen[name] = seen.get(name, 0) + 1  # type: ignore[operator]
        return jsonify({"name": name}), 202

    return app


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    DBOS.destroy()
    app = build_app()
    DBOS(flask=app, config=make_config(database_url, trusted_proxies=1))
    try:
        yield app
    finally:
        DBOS.destroy()


def test_background_workflow_has_app_context_and_the_request(app: Flask) -> None:
    client = app.test_client()
    started = client.get("/start", headers={"x-request-id": "r-42", "X-Forwarded-For": "203.0.113.9"}).json
    result = DBOS.retrieve_workflow(started["workflow_id"]).get_result(timeout_seconds=20)
    assert result == {"greeting": "hello", "request_id": "r-42", "ip": "203.0.113.9"}


def test_route_workflow_replays_its_response_tuple_from_the_checkpoint(app: Flask) -> None:
    client = app.test_client()
    headers = {"dbos-idempotency-key": "resp-1"}
    seen.clear()
    first = client.get("/response/x", headers=headers)
    rt = current.current_runtime()
    rt.sys_db.execute(rt.sys_db.dialect.sql("DELETE FROM {idempotency_keys}"), ())  # only the checkpoint is left
    second = client.get("/response/x", headers=headers)
    assert (first.status_code, first.json) == (second.status_code, second.json) == (202, {"name": "x"})
    assert second.headers["Content-Type"] == "application/json" and seen == {"x": 1}


def test_client_ip_believes_only_trusted_hops() -> None:
    environ = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.9"}
    assert client_ip(environ, 0) == "10.0.0.2"  # no proxy trusted: the header could be forged
    assert client_ip(environ, 1) == "203.0.113.9"  # the one proxy we run appended the real client
    assert client_ip(environ, 2) == "1.1.1.1"
    assert client_ip(environ, 3) == "10.0.0.2"  # fewer hops than trusted: fall back to the socket


def test_service_answers_while_the_database_is_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    DBOS.destroy()
    app = build_app()
    DBOS(flask=app, config=make_config("postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2"))
    try:
        client = app.test_client()
        assert client.get("/plain").status_code == 200
        down = client.get("/response/y")
        assert down.status_code == 503
        assert down.json["code"] == 3 and down.json["error"] == "service unavailable"  # no host names leak
        assert down.json["request_id"] == down.headers["dbos-request-id"]
    finally:
        DBOS.destroy()


def test_runtime_built_before_the_app_attaches_with_init_app(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url))  # e.g. in an extensions module, before create_app()
    try:
        app = build_app()
        DBOS.init_app(app)
        client = app.test_client()
        started = client.get("/start", headers={"x-request-id": "late"}).json
        result = DBOS.retrieve_workflow(started["workflow_id"]).get_result(timeout_seconds=20)
        assert result["greeting"] == "hello" and result["request_id"] == "late"
    finally:
        DBOS.destroy()


def test_unserialisable_step_output_is_a_generic_500_with_details_in_the_log(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    response = app.test_client().get("/unstorable")
    assert (response.status_code, response.mimetype) == (500, "application/json")
    assert response.json["error"] == "internal error" and "unstorable_step" not in response.get_data(as_text=True)
    assert "unstorable_step" in caplog.text and "cannot be checkpointed" in caplog.text
