"""The orders example through its HTTP API: success, retries, failures, validation, idempotent repeats."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from {{ cookiecutter.package_name }}.orders.services import PaymentUnavailable

ORDER = {"user_id": "ada", "items": [{"sku": "book", "quantity": 2, "price_cents": 1250}]}


class ScriptedGateway:
    """Fails transiently ``failures`` times, then approves; counts every call."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[int] = []

    def charge(self, order_id: int, user_id: str, amount_cents: int) -> dict[str, object]:
        self.calls.append(order_id)
        if len(self.calls) <= self.failures:
            raise PaymentUnavailable("gateway timeout")
        return {"success": True, "transaction_id": f"txn-{len(self.calls)}", "reason": None}


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, user_id: str, message: str) -> None:
        self.sent.append((user_id, message))


@pytest.fixture
def gateway(app: Flask) -> ScriptedGateway:
    app.extensions["payment_gateway"] = fake = ScriptedGateway()
    return fake


@pytest.fixture
def notifier(app: Flask) -> RecordingNotifier:
    app.extensions["notifier"] = fake = RecordingNotifier()
    return fake


def test_order_is_saved_paid_and_notified(
    client: FlaskClient, gateway: ScriptedGateway, notifier: RecordingNotifier
) -> None:
    response = client.post("/orders", json=ORDER)
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    assert body["status"] == "paid" and body["transaction_id"] == "txn-1"
    order = client.get(f"/orders/{body['order_id']}").json
    assert order == {
        "id": body["order_id"],
        "user_id": "ada",
        "items": ORDER["items"],
        "total_cents": 2500,
        "status": "paid",
        "workflow_id": body["workflow_id"],
    }
    workflow = client.get(f"/orders/{body['order_id']}/workflow").json
    assert workflow["status"] == "SUCCESS"
    assert [s["name"] for s in workflow["steps"]] == [
        "save_order",
        "charge_payment",
        "set_order_status",
        "notify_user",
    ]
    assert notifier.sent == [("ada", f"Your order {body['order_id']} is confirmed")]


def test_transient_payment_failures_are_retried(
    client: FlaskClient, gateway: ScriptedGateway, notifier: RecordingNotifier
) -> None:
    gateway.failures = 2
    body = client.post("/orders", json=ORDER).json
    assert body["status"] == "paid" and len(gateway.calls) == 3


def test_payment_that_never_succeeds_fails_the_order(
    client: FlaskClient, gateway: ScriptedGateway, notifier: RecordingNotifier
) -> None:
    gateway.failures = 10
    body = client.post("/orders", json=ORDER).json
    assert body["status"] == "payment_failed" and body["reason"] == "payment gateway unavailable"
    assert client.get(f"/orders/{body['order_id']}").json["status"] == "payment_failed"
    assert notifier.sent == []


def test_declined_card_fails_the_order(client: FlaskClient, notifier: RecordingNotifier) -> None:
    body = client.post("/orders", json={**ORDER, "user_id": "declined-bob"}).json
    assert (body["status"], body["reason"]) == ("payment_failed", "card declined")


def test_repeated_request_with_idempotency_key_runs_once(
    client: FlaskClient, gateway: ScriptedGateway, notifier: RecordingNotifier
) -> None:
    headers = {"dbos-idempotency-key": "checkout-7"}
    first = client.post("/orders", json=ORDER, headers=headers)
    second = client.post("/orders", json=ORDER, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json == second.json and first.json["workflow_id"] == "checkout-7"
    assert len(gateway.calls) == 1 and len(notifier.sent) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (None, 400, "body"),
        ({"items": ORDER["items"]}, 422, "user_id"),
        ({"user_id": "ada", "items": []}, 422, "items"),
        (
            {"user_id": "ada", "items": [{"sku": "x", "quantity": "2", "price_cents": 1}]},
            422,
            "items[0].quantity",
        ),
        (
            {"user_id": "ada", "items": [{"sku": "x", "quantity": 1, "price_cents": -5}]},
            422,
            "items[0].price_cents",
        ),
    ],
)
def test_bad_order_requests_name_the_field(client: FlaskClient, body: Any, status: int, field: str) -> None:
    if body is None:
        response = client.post("/orders", data="{not json", content_type="application/json")
    else:
        response = client.post("/orders", json=body)
    assert response.status_code == status
    assert response.json["field"] == field


def test_unknown_order_is_404(client: FlaskClient) -> None:
    assert client.get("/orders/999").status_code == 404
    assert client.get("/orders/999/workflow").status_code == 404


def test_payment_runs_in_the_background_and_can_be_polled(
    client: FlaskClient, gateway: ScriptedGateway, notifier: RecordingNotifier
) -> None:
    started = client.post("/payments", json={"amount": 100, "user_id": "123"})
    assert started.status_code == 202
    url = started.json["status_url"]
    deadline = time.monotonic() + 20
    while (polled := client.get(url).json)["status"] != "SUCCESS":
        assert time.monotonic() < deadline, polled
        time.sleep(0.05)
    assert polled["result"] == {"success": True, "transaction_id": "txn-1"}
    assert client.get("/payments/not-a-payment").status_code == 404
