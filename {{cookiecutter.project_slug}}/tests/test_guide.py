"""Every code sample of the Flask integration guide, run with only its import line changed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import guide_app
import guide_orders_app
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from {{ cookiecutter.package_name }}.durable import DBOS, DBOSConfig, error


def serve(app: Flask, name: str, database_url: str) -> Iterator[FlaskClient]:
    """What the guide does at import: DBOS(flask=app, config=...) on a fresh database (no migrations run)."""
    DBOS.destroy()
    DBOS(flask=app, config=DBOSConfig(name=name, application_database_url=database_url))
    app.config["TESTING"] = True
    try:
        yield app.test_client()
    finally:
        DBOS.destroy()


@pytest.fixture
def client(database_url: str) -> Iterator[FlaskClient]:
    yield from serve(guide_app.app, "my-flask-app", database_url)


@pytest.fixture
def orders_client(database_url: str) -> Iterator[FlaskClient]:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:  # the guide assumes this table exists; column order as its SELECT * reads it
        serial = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
        conn.exec_driver_sql(
            f"CREATE TABLE orders (id {serial} PRIMARY KEY, user_id TEXT NOT NULL, status TEXT NOT NULL, items TEXT)"
        )
    engine.dispose()
    yield from serve(guide_orders_app.app, "flask-orders", database_url)


def test_quick_start_route_is_a_durable_workflow(client: FlaskClient) -> None:
    response = client.get("/process/42")
    assert response.json == {"user_id": "42", "result": "Processed 42"}
    [workflow] = DBOS.list_workflows(name="process_user")
    assert workflow.status == "SUCCESS" and workflow.input == {"args": (), "kwargs": {"user_id": "42"}}


def test_route_workflow_with_transaction_and_step(client: FlaskClient) -> None:
    assert client.get("/workflow/a/b").json == {"result": "a1b"}


def test_regular_route_starts_a_background_workflow(client: FlaskClient) -> None:
    body = client.get("/start-job/7").json
    assert body["job_id"] == "7" and body["status"] == "started"
    result = DBOS.retrieve_workflow(body["workflow_id"]).get_result(timeout_seconds=20)
    assert result == {"job_id": "7", "completed": "Processed 7"}


def test_idempotency_key_runs_the_payment_once(client: FlaskClient) -> None:
    guide_app.receipts.clear()
    headers = {"dbos-idempotency-key": "payment-abc-123"}
    first = client.post("/payment", json={"amount": 100, "user_id": "123"}, headers=headers).json
    second = client.post("/payment", json={"amount": 100, "user_id": "123"}, headers=headers).json
    assert first == second == {"status": "processed", "workflow_id": "payment-abc-123"}
    assert DBOS.retrieve_workflow("payment-abc-123").get_result(timeout_seconds=20) == {
        "transaction_id": "txn-123-100"
    }
    assert guide_app.receipts == ["txn-123-100"]


def test_request_context_outside_a_workflow(client: FlaskClient) -> None:
    body = client.get("/info", headers={"dbos-request-id": "custom-request-123"}).json
    assert body == {"is_workflow": False, "request_id": "custom-request-123"}


def test_request_id_is_generated_and_echoed(client: FlaskClient) -> None:
    response = client.get("/info")
    generated = response.json["request_id"]
    assert uuid.UUID(generated) and response.headers["dbos-request-id"] == generated
    assert client.get("/info", headers={"x-request-id": "from-proxy"}).json["request_id"] == "from-proxy"


def test_request_is_stored_with_the_workflow(client: FlaskClient) -> None:
    client.get("/process/1", headers={"dbos-request-id": "req-1", "dbos-idempotency-key": "wf-req-1"})
    status = DBOS.get_workflow_status("wf-req-1")
    assert status is not None and status.request is not None
    assert (status.request["request_id"], status.request["method"], status.request["path"]) == (
        "req-1",
        "GET",
        "/process/1",
    )


def test_recovery_sample_second_call_is_a_new_workflow(client: FlaskClient) -> None:
    key = str(uuid.uuid4())
    first = client.get("/test/data", headers={"dbos-idempotency-key": key}).json
    assert first["result1"] == first["result2"] == "DATA"
    assert first["id1"] == key and first["same_workflow"] is False  # see the guide note in guide_app.py
    again = client.get("/test/data", headers={"dbos-idempotency-key": key}).json
    assert again["id1"] == key and again["result1"] == "DATA"


def test_error_handling_sample(client: FlaskClient) -> None:
    bad = client.get("/data/abc")
    assert bad.status_code == 400
    assert bad.json == {"error": "Invalid ID format", "code": "INVALID_ID"}
    assert client.get("/data/12").json == {"data": 12}


def test_lifecycle_needs_no_launch_and_explicit_launch_is_harmless(client: FlaskClient) -> None:
    assert not hasattr(Flask, "before_first_request")  # why the guide's sample is replaced
    DBOS.launch()
    DBOS.launch()
    guide_app.teardowns.clear()
    assert client.get("/process/9").status_code == 200
    assert guide_app.teardowns == [None]


def test_testing_sample(client: FlaskClient) -> None:
    # guide: its sample calls "/endpoint/a/b"; the route it defines is "/workflow/<var1>/<var2>".
    response = client.get("/workflow/a/b")
    assert response.status_code == 200
    assert response.json == {"result": "a1b"}


def test_configuration_sample_is_accepted() -> None:
    config = DBOSConfig(
        name="my-flask-app",
        application_database_url="postgresql://localhost/mydb",
        log_level="INFO",
        admin_port=8080,
        enable_otlp=True,
        otlp_traces_endpoints=["http://localhost:4318/v1/traces"],
    )
    DBOS.destroy()
    try:
        DBOS(flask=Flask(__name__), config=config)  # validated now; nothing connects before launch
        assert DBOS.config.admin_port == 8080 and DBOS.config.enable_otlp
        bad = dict(config, admin_prot=8080)
        DBOS.destroy()
        with pytest.raises(error.DBOSException, match="unknown key 'admin_prot'"):
            DBOS(config=bad)  # type: ignore[arg-type]
    finally:
        DBOS.destroy()


def test_complete_example_creates_and_reads_an_order(orders_client: FlaskClient) -> None:
    headers = {"dbos-idempotency-key": str(uuid.uuid4())}
    # guide: its testing sample posts only user_id, which the handler's data["items"] cannot accept.
    created = orders_client.post("/orders", json={"user_id": "123", "items": ["book"]}, headers=headers)
    assert created.status_code == 200
    workflow_id = created.json["order_id"]
    assert workflow_id == headers["dbos-idempotency-key"]
    result = DBOS.retrieve_workflow(workflow_id).get_result(timeout_seconds=20)
    assert result["status"] == "completed"
    order = orders_client.get(f"/orders/{result['order_id']}")
    assert order.status_code == 200
    assert order.json == {"order_id": int(result["order_id"]), "user_id": "123", "status": "pending"}
    missing = orders_client.get("/orders/999999")
    assert missing.status_code == 404 and missing.json == {"error": "Order not found"}
