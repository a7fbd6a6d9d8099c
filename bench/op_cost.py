"""What each durable operation costs in CPU, in one process, without HTTP: the runtime's own overhead.

    python op_cost.py --project BAKE/order-service --package order_service [--database-url URL] [--calls 1000]

Runs in the bake's ``.venv``. Registers a few workflows (none; one step; two steps; one transaction;
two transactions), launches the bake's app on a copy of its SQLite file (or on ``--database-url``), and
calls each inline ``--calls`` times, three times over. Prints the best repetition's CPU per call (user
and system: on this machine a flushed commit costs system time too) and wall time, next to the same
write done with plain SQLAlchemy. Subtracting rows gives a step's and a transaction's cost; the first
row is a workflow's start and end. A tool for finding where the time goes, not part of ``bench/run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

SCRATCH_UPDATE = "UPDATE orders SET status = status WHERE id = (SELECT MAX(id) FROM orders)"


def register(dbos: Any) -> dict[str, Callable[[], Any]]:
    """The measured workflows, registered before the app launches the runtime."""

    @dbos.step()
    def step() -> int:
        return 1

    @dbos.transaction()
    def transaction() -> int:
        dbos.sql_session.execute(sa.text(SCRATCH_UPDATE))
        return 1

    @dbos.workflow()
    def no_step() -> int:
        return 1

    @dbos.workflow()
    def one_step() -> int:
        return step()

    @dbos.workflow()
    def two_steps() -> int:
        step()
        return step()

    @dbos.workflow()
    def one_transaction() -> int:
        return transaction()

    @dbos.workflow()
    def two_transactions() -> int:
        transaction()
        return transaction()

    return {"workflow, no step": no_step, "+ 1 step": one_step, "+ 2 steps": two_steps,
            "+ 1 transaction": one_transaction, "+ 2 transactions": two_transactions}


def best_of(call: Callable[[], Any], calls: int, repeats: int = 3) -> tuple[float, float, float]:
    """(user, system, wall) seconds per call of the repetition with the least CPU."""
    for _ in range(min(calls, 200)):
        call()  # warm: pools filled, statements prepared, the first run's learning done
    best: tuple[float, float, float] | None = None
    for _ in range(repeats):
        before, start = os.times(), time.perf_counter()
        for _ in range(calls):
            call()
        after, wall = os.times(), time.perf_counter() - start
        figure = ((after.user - before.user) / calls, (after.system - before.system) / calls, wall / calls)
        if best is None or figure[0] + figure[1] < best[0] + best[1]:
            best = figure
    assert best is not None
    return best


def bake_arguments() -> argparse.ArgumentParser:
    """The options of a tool that runs inside a bake: its folder, its package, the database."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--database-url", help="default: a copy of the bake's SQLite file")
    return parser


def enter_bake(project: Path, package: str, database_url: str | None) -> str:
    """Work from the bake's folder with its package importable and ``DATABASE_URL`` set; return that URL
    (by default a copy of the bake's SQLite file, so its own database is never written)."""
    os.chdir(project)
    sys.path.insert(0, str(project))
    url = database_url
    if url is None:
        copy = Path(tempfile.mkdtemp()) / "bench.db"
        shutil.copy(project / "instance" / f"{package}.db", copy)
        url = f"sqlite:///{copy}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return url


def main() -> None:
    parser = bake_arguments()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    url = enter_bake(args.project, args.package, args.database_url)
    durable = importlib.import_module(f"{args.package}.durable")
    workflows = register(durable.DBOS)
    app = importlib.import_module(f"{args.package}.app").create_app()
    app.test_client().get("/healthz")  # launches the runtime, as a first request does
    engine = sa.create_engine(url)

    def plain_transaction() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(SCRATCH_UPDATE))

    with app.app_context():
        print(f"{'operation':24s} {'CPU us/call':>12s} {'user':>6s} {'sys':>6s} {'wall':>7s}")
        for name, call in [*workflows.items(), ("plain SQLAlchemy commit", plain_transaction)]:
            user, system, wall = best_of(call, args.calls)
            print(f"{name:24s} {1e6 * (user + system):12.0f} {1e6 * user:6.0f} {1e6 * system:6.0f} {1e6 * wall:7.0f}")


if __name__ == "__main__":
    main()
