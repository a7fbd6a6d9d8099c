"""The checkout workflow: save the order, charge it, tell the user. Each part is checkpointed.

After a crash the workflow resumes at the first unfinished part: the order is saved once (a
transaction), the card is charged at most once per successful step, the user is notified once the
charge is recorded.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..durable import DBOS
from ..durable.error import DBOSMaxStepRetriesExceeded
from .services import notifier, payment_gateway


@DBOS.transaction()
def save_order(user_id: str, items: list[dict[str, Any]], total_cents: int) -> int:
    """Insert the order as ``pending``; its ID comes back from the database."""
    result = DBOS.sql_session.execute(
        sa.text(
            "INSERT INTO orders (user_id, items, total_cents, status, workflow_id) "
            "VALUES (:user_id, :items, :total, 'pending', :workflow_id) RETURNING id"
        ),
        {
            "user_id": user_id,
            "items": json.dumps(items),
            "total": total_cents,
            "workflow_id": DBOS.workflow_id,
        },
    )
    return int(result.scalar_one())


@DBOS.transaction()
def set_order_status(order_id: int, status: str) -> None:
    DBOS.sql_session.execute(
        sa.text("UPDATE orders SET status = :s WHERE id = :id"), {"s": status, "id": order_id}
    )


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.2, backoff_rate=2.0)
def charge_payment(order_id: int, user_id: str, total_cents: int) -> dict[str, Any]:
    """Call the payment gateway; transient failures are retried, the outcome is checkpointed."""
    return payment_gateway().charge(order_id, user_id, total_cents)


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.2, backoff_rate=2.0)
def notify_user(user_id: str, order_id: int) -> None:
    notifier().notify(user_id, f"Your order {order_id} is confirmed")


@DBOS.workflow()
def checkout(user_id: str, items: list[dict[str, Any]], total_cents: int) -> dict[str, Any]:
    """Process one order from start to end; returns the order's final state."""
    order_id = save_order(user_id, items, total_cents)
    try:
        payment = charge_payment(order_id, user_id, total_cents)
    except DBOSMaxStepRetriesExceeded:
        payment = {"success": False, "transaction_id": None, "reason": "payment gateway unavailable"}
    if not payment["success"]:
        set_order_status(order_id, "payment_failed")
        return {
            "order_id": order_id,
            "status": "payment_failed",
            "reason": payment["reason"],
            "workflow_id": DBOS.workflow_id,
        }
    set_order_status(order_id, "paid")
    notify_user(user_id, order_id)
    return {
        "order_id": order_id,
        "status": "paid",
        "transaction_id": payment["transaction_id"],
        "workflow_id": DBOS.workflow_id,
    }


@DBOS.workflow()
def pay(amount_cents: int, user_id: str) -> dict[str, Any]:
    """The guide's payment workflow: charge once, then send a receipt."""
    payment = charge_payment(0, user_id, amount_cents)
    if payment["success"]:
        notify_user(user_id, 0)
    return {"success": payment["success"], "transaction_id": payment["transaction_id"]}
