"""The example's routes answer hostile input with a 4xx JSON error, never a 500 or an HTML page.

Each case was a 500 once: numbers past the integer column, NUL and lone surrogates (PostgreSQL cannot
store them), a body that is not an object, nesting Python's JSON parser cannot follow, IDs past the
column's range. Random bodies, paths and headers are tried in test_orders_properties.py.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from {{ cookiecutter.package_name }}.db import get_db

ITEM = {"sku": "book", "quantity": 1, "price_cents": 100}


def order(**changes: Any) -> bytes:
    return json.dumps({"user_id": "ada", "items": [ITEM], **changes}).encode()


def order_with_item(**changes: Any) -> bytes:
    return order(items=[{**ITEM, **changes}])


BODIES = {  # name: (path, body, status, the field the error names)
    "quantity-10e30": ("/orders", order_with_item(quantity=10**30), 422, "items[0].quantity"),
    "price-10e30": ("/orders", order_with_item(price_cents=10**30), 422, "items[0].price_cents"),
    "total-past-the-integer-column": (
        "/orders",
        order_with_item(quantity=10_000, price_cents=100_000_000),
        422,
        "items",
    ),
    "fractional-quantity": ("/orders", order_with_item(quantity=1.5), 422, "items[0].quantity"),
    "infinite": ("/orders", order_with_item(quantity=float("inf")), 422, "items[0].quantity"),
    "5000-digit-number": (
        "/orders",
        b'{"user_id": "a", "items": [{"sku": "b", "quantity": 1' + b"0" * 5000 + b"}]}",
        400,
        None,
    ),
    "nul-in-user-id": ("/orders", order(user_id="ada\x00"), 422, "user_id"),
    "nul-in-sku": ("/orders", order_with_item(sku="bo\x00ok"), 422, "items[0].sku"),
    "lone-surrogate": ("/orders", order(user_id="\ud800"), 422, "user_id"),
    "newline-in-user-id": ("/orders", order(user_id="ada\n2026-01-01 INFO forged"), 422, "user_id"),
    "long-sku": ("/orders", order_with_item(sku="x" * 10_000), 422, "items[0].sku"),
    "list-body": ("/orders", b"[1, 2]", 400, "body"),
    "string-body": ("/orders", b'"an order"', 400, "body"),
    "100k-nested-brackets": ("/orders", b"[" * 100_000 + b"]" * 100_000, 400, "body"),
    "50k-nested-objects": ("/orders", b'{"user_id": ' * 50_000, 400, "body"),
    "payment-list-body": ("/payments", b"[1, 2]", 400, "body"),
    "payment-string-body": ("/payments", b'"pay me"', 400, "body"),
    "payment-null-body": ("/payments", b"null", 400, "body"),
    "payment-amount-10e30": (
        "/payments",
        json.dumps({"amount": 10**30, "user_id": "ada"}).encode(),
        422,
        "amount",
    ),
    "payment-nul-user-id": (
        "/payments",
        json.dumps({"amount": 5, "user_id": "a\x00"}).encode(),
        422,
        "user_id",
    ),
}


def orders_count(app: Flask) -> int:
    with app.app_context(), get_db().engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one())


def test_hostile_bodies_are_json_4xx_naming_the_field(app: Flask, client: FlaskClient) -> None:
    """One database for every case (each one costs a CREATE DATABASE on PostgreSQL otherwise)."""
    for name, (path, body, status, field) in BODIES.items():
        response = client.post(path, data=body, content_type="application/json")
        assert (response.status_code, response.mimetype) == (status, "application/json"), (
            name,
            response.data[:300],
        )
        if field is not None:
            assert response.get_json()["field"] == field, name
    assert orders_count(app) == 0


def test_body_over_the_limit_is_a_json_413(client: FlaskClient) -> None:
    response = client.post(
        "/orders", data=order(user_id="a" * (2 * 1024 * 1024)), content_type="application/json"
    )
    assert (response.status_code, response.mimetype) == (413, "application/json")


def test_out_of_range_ids_are_a_json_404(client: FlaskClient) -> None:
    for path in [
        "/orders/99999999999999999999",
        "/orders/99999999999999999999/workflow",
        "/orders/2147483648",
        "/orders/-1",
        "/payments/" + "k" * 3000,
        "/payments/%00",
        "/payments/%C3%A9",
        "/payments/a%0Ab",
    ]:
        response = client.get(path)
        assert (response.status_code, response.mimetype) == (404, "application/json"), path


def test_largest_order_is_accepted(client: FlaskClient) -> None:
    items = [{"sku": "s" * 64, "quantity": 10_000, "price_cents": 2_147}] * 100
    response = client.post("/orders", json={"user_id": "u" * 64, "items": items})
    assert response.status_code == 201, response.json
    order_id = response.json["order_id"]
    assert client.get(f"/orders/{order_id}").json["total_cents"] == 100 * 10_000 * 2_147


def test_key_naming_another_orders_workflow_gets_422_not_that_order(client: FlaskClient) -> None:
    """Workflow IDs are in every order response: as a key, one must not fetch that order's result."""
    ada = client.post("/orders", json={"user_id": "ada", "items": [ITEM]}).json
    stolen = client.post(
        "/orders",
        json={"user_id": "mallory", "items": [ITEM]},
        headers={"dbos-idempotency-key": ada["workflow_id"]},
    )
    assert (stolen.status_code, stolen.mimetype) == (422, "application/json")
    assert ada["transaction_id"] not in stolen.get_data(as_text=True)


def test_keys_are_checked_and_a_255_character_key_fits_the_orders_table(client: FlaskClient) -> None:
    for bad in ("k" * 256, "k" * 3000, "with space", ""):
        response = client.post(
            "/orders", json={"user_id": "ada", "items": [ITEM]}, headers={"dbos-idempotency-key": bad}
        )
        assert (response.status_code, response.mimetype) == (400, "application/json"), len(bad)
    key = "k" * 255
    created = client.post(
        "/orders", json={"user_id": "ada", "items": [ITEM]}, headers={"dbos-idempotency-key": key}
    )
    assert created.status_code == 201, created.json
    assert client.get(f"/orders/{created.json['order_id']}").json["workflow_id"] == key
