"""The guide's "Complete Example" (a Flask orders service), with only the import line changed."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, jsonify, request

from {{ cookiecutter.package_name }}.durable import DBOS

app = Flask(__name__)
app.config["TESTING"] = False
# guide: `config = DBOSConfig(name="flask-orders", application_database_url=...)` and
# `DBOS(flask=app, config=config)` run in the test fixture, which knows the test's database.


# Routes
@app.route("/orders", methods=["POST"])
def create_order() -> dict:
    """Create a new order - starts a durable workflow"""
    data = request.get_json()
    handle = DBOS.start_workflow(
        process_order_workflow,
        data["user_id"],
        data["items"]
    )
    return jsonify({
        "order_id": handle.workflow_id,
        "status": "processing"
    })


@app.route("/orders/<order_id>")
@DBOS.transaction()
def get_order(order_id: str) -> dict:
    """Get order details from database"""
    result = DBOS.sql_session.execute(
        sa.text("SELECT * FROM orders WHERE id = :id"),
        {"id": order_id}
    ).fetchone()

    if not result:
        return {"error": "Order not found"}, 404

    return jsonify({
        "order_id": result[0],
        "user_id": result[1],
        "status": result[2]
    })


# Workflows and Steps
@DBOS.workflow()
def process_order_workflow(user_id: str, items: list) -> dict:
    """Durable workflow for order processing"""
    # Save to database
    order_id = save_order_txn(user_id, items)

    # External API calls (retriable)
    payment_result = process_payment_step(order_id, user_id)

    if payment_result["success"]:
        notify_user_step(user_id, order_id)
        return {"order_id": order_id, "status": "completed"}
    else:
        return {"order_id": order_id, "status": "payment_failed"}


@DBOS.transaction()
def save_order_txn(user_id: str, items: list) -> str:
    """Transactional database operation"""
    result = DBOS.sql_session.execute(
        sa.text(
            "INSERT INTO orders (user_id, items, status) "
            "VALUES (:user, :items, 'pending') RETURNING id"
        ),
        {"user": user_id, "items": str(items)}
    ).fetchone()
    return str(result[0])


@DBOS.step()
def process_payment_step(order_id: str, user_id: str) -> dict:
    """External payment processing - automatically retried on failure"""
    print(f"Processing payment for order {order_id}")
    # Call payment API
    return {"success": True, "transaction_id": "txn_123"}


@DBOS.step()
def notify_user_step(user_id: str, order_id: str) -> None:
    """Send notification - automatically retried on failure"""
    print(f"Notifying user {user_id} about order {order_id}")
    # Send email/SMS
