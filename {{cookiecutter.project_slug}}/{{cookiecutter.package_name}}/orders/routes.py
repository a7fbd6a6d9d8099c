"""HTTP API of the example: create orders, read them, and look inside their workflows."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request, url_for

from ..db import get_db
from ..durable import DBOS
from .services import install_fakes
from .validation import InvalidOrder, parse_order, parse_payment
from .workflows import checkout, pay

blueprint = Blueprint("orders", __name__)
MAX_ORDER_ID = 2**31 - 1  # orders.id is an INTEGER: a larger ID names no order (and would overflow the query)
MAX_WORKFLOW_ID = 255
blueprint.record_once(lambda state: install_fakes(state.app))


def _problem(status: int, message: str, field: str | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": message, "status": status}
    if field:
        body["field"] = field
    return jsonify(body), status


def _json_body() -> Any:
    """The parsed body; too-deep nesting reads as None too (the app's JSON provider sees to it)."""
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidOrder("body", "must be JSON with Content-Type: application/json")
    return body


def _plausible_workflow_id(workflow_id: str) -> bool:
    """Workflow IDs are UUIDs or idempotency keys: 1-255 printable ASCII characters."""
    return 0 < len(workflow_id) <= MAX_WORKFLOW_ID and all(" " <= char <= "~" for char in workflow_id)


@blueprint.errorhandler(InvalidOrder)
def invalid_order(exc: InvalidOrder) -> tuple[Response, int]:
    status = 400 if exc.field == "body" else 422
    return _problem(status, str(exc), exc.field)


@blueprint.post("/orders")
def create_order() -> tuple[Response, int]:
    """Run checkout durably. Send ``dbos-idempotency-key`` to make a retried request run it once."""
    order = parse_order(_json_body())
    result = checkout(order.user_id, order.items, order.total_cents)
    return jsonify(result), 201


def _order_row(order_id: int) -> dict[str, Any] | None:
    with get_db().engine.connect() as conn:
        row = (
            conn.execute(
                sa.text(
                    "SELECT id, user_id, items, total_cents, status, workflow_id FROM orders WHERE id = :id"
                ),
                {"id": order_id},
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    return {**row, "items": json.loads(row["items"])}


@blueprint.get(f"/orders/<int(max={MAX_ORDER_ID}):order_id>")
def get_order(order_id: int) -> tuple[Response, int]:
    order = _order_row(order_id)
    if order is None:
        return _problem(404, f"order {order_id} does not exist")
    return jsonify(order), 200


@blueprint.get(f"/orders/<int(max={MAX_ORDER_ID}):order_id>/workflow")
def get_order_workflow(order_id: int) -> tuple[Response, int]:
    """The order's workflow: status, and each checkpointed step."""
    order = _order_row(order_id)
    if order is None:
        return _problem(404, f"order {order_id} does not exist")
    status = DBOS.get_workflow_status(order["workflow_id"])
    if status is None:
        return _problem(404, f"workflow {order['workflow_id']} does not exist")
    steps = [
        {
            "step_id": s["function_id"],
            "name": s["function_name"],
            "error": repr(s["error"]) if s["error"] is not None else None,
        }
        for s in DBOS.list_workflow_steps(status.workflow_id)
    ]
    return jsonify({"workflow_id": status.workflow_id, "status": status.status, "steps": steps}), 200


@blueprint.post("/payments")
def start_payment() -> tuple[Response, int]:
    """The guide's /payment, done so it works: start in the background, return where to poll."""
    payment = parse_payment(_json_body())
    handle = DBOS.start_workflow(pay, payment.amount_cents, payment.user_id)
    status_url = url_for("orders.get_payment", workflow_id=handle.workflow_id)
    return jsonify({"workflow_id": handle.workflow_id, "status_url": status_url}), 202


@blueprint.get("/payments/<workflow_id>")
def get_payment(workflow_id: str) -> tuple[Response, int]:
    status = DBOS.get_workflow_status(workflow_id) if _plausible_workflow_id(workflow_id) else None
    if status is None or status.name != pay.__qualname__:
        return _problem(404, f"payment {workflow_id} does not exist")
    body: dict[str, Any] = {"workflow_id": workflow_id, "status": status.status}
    if status.status == "SUCCESS":
        body["result"] = status.output
    return jsonify(body), 200
