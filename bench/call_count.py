"""Python function calls per durable operation and per POST /orders: a cost that noise cannot move.

    python call_count.py --project BAKE/order-service --package order_service [--database-url URL]

Runs in the bake's ``.venv``, like ``op_cost.py``, whose workflows it calls inline; then sends
``POST /orders`` through Flask's test client to the bake's app and to ``plain_app.py``. Each figure is
``cProfile``'s count of calls (built-in ones included) per operation, over 100 operations after 50 of
warm-up. Calls are not seconds, but on a machine whose speed drifts by half between identical runs they
are the figure that still compares two versions of the runtime exactly; time them with ``op_cost.py``
and ``request_cost.py`` once the machine is quiet.
"""

from __future__ import annotations

import cProfile
import importlib
import os
import pstats
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from op_cost import SCRATCH_UPDATE, bake_arguments, enter_bake, register

BODY = {"user_id": "ada", "items": [{"sku": "book", "quantity": 2, "price_cents": 1250}]}


def calls_per(operation: Callable[[], Any], count: int = 100) -> float:
    for _ in range(count // 2):
        operation()  # warm: pools filled, statements cached, the first run's learning done
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        operation()
    profile.disable()
    return pstats.Stats(profile).total_calls / count  # type: ignore[attr-defined, no-any-return]


def main() -> None:
    args = bake_arguments().parse_args()
    url = enter_bake(args.project, args.package, args.database_url)
    os.environ["BENCH_PACKAGE"] = args.package  # plain_app's package
    durable = importlib.import_module(f"{args.package}.durable")
    workflows = register(durable.DBOS)
    app = importlib.import_module(f"{args.package}.app").create_app()
    durable_client = app.test_client()
    durable_client.get("/healthz")  # launches the runtime, as a first request does
    plain_client = importlib.import_module("plain_app").create_app().test_client()
    engine = sa.create_engine(url)

    def plain_transaction() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(SCRATCH_UPDATE))

    print(f"runtime {durable.__version__}")
    print(f"{'operation':26s} {'calls':>7s}")
    with app.app_context():
        for name, call in [*workflows.items(), ("plain SQLAlchemy commit", plain_transaction)]:
            print(f"{name:26s} {calls_per(call):7.0f}")
    durable_calls = calls_per(lambda: durable_client.post("/orders", json=BODY))
    plain_calls = calls_per(lambda: plain_client.post("/orders", json=BODY))
    print(f"{'POST /orders, durable':26s} {durable_calls:7.0f}")
    print(f"{'POST /orders, plain':26s} {plain_calls:7.0f}")
    print(f"{'plain / durable':26s} {plain_calls / durable_calls:7.2f}")


if __name__ == "__main__":
    main()
