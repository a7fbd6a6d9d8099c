"""The baseline: the example's POST /orders with durability removed (plain SQLAlchemy writes).

Same validation, same fake payment gateway and notifier, same engine set-up (WAL and BEGIN
IMMEDIATE on SQLite), same two business writes (insert pending, update paid); no workflow row, no
checkpoints. Served by the baked project's gunicorn:

    BENCH_PACKAGE=order_service gunicorn --config gunicorn.conf.py --pythonpath bench 'plain_app:create_app()'
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify, request


def create_app() -> Flask:
    package = os.environ.get("BENCH_PACKAGE", "order_service")
    settings = importlib.import_module(f"{package}.settings").Settings.from_env()
    validation = importlib.import_module(f"{package}.orders.validation")
    services = importlib.import_module(f"{package}.orders.services")
    runtime = importlib.import_module(f"{package}.durable.runtime")
    app = Flask(__name__)
    services.install_fakes(app)
    engines: dict[str, sa.Engine] = {}  # made on first request, after gunicorn forks

    def engine() -> sa.Engine:
        if "app" not in engines:
            engines["app"] = runtime.create_app_engine(settings.database_url)
        return engines["app"]

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        return {"status": "ok"}, 200

    @app.post("/orders")
    def create_order() -> Any:
        order = validation.parse_order(request.get_json(silent=True))
        with engine().begin() as conn:
            order_id = conn.execute(
                sa.text("INSERT INTO orders (user_id, items, total_cents, status) "
                        "VALUES (:u, :i, :t, 'pending') RETURNING id"),
                {"u": order.user_id, "i": json.dumps(order.items), "t": order.total_cents},
            ).scalar_one()
        payment = services.payment_gateway().charge(order_id, order.user_id, order.total_cents)
        with engine().begin() as conn:
            conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = :id"), {"id": order_id})
        services.notifier().notify(order.user_id, f"Your order {order_id} is confirmed")
        return jsonify({"order_id": order_id, "status": "paid",
                        "transaction_id": payment["transaction_id"]}), 201

    return app
