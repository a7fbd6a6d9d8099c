"""The runtime under load: a 3-step workflow sequentially, from 8 threads, and fanned out 1,000 wide.

Also counts what one workflow costs the database (statements at the driver, commits on the server
or in SQLite's trace) and how many bytes a step checkpoint takes. Run once per runtime and database,
in that runtime's venv:

    python workflows.py --runtime ours --package order_service --url sqlite:///bench.db
    python workflows.py --runtime dbos --url postgresql://postgres@127.0.0.1:5432/DB
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import limit
import sqlalchemy as sa
from adapters import (
    COUNTERS,
    QueuedProbe,
    Runtime,
    Workflows,
    define_queued_probe,
    define_workflows,
    install_counters,
    load_runtime,
)
from common import emit, latency_summary, percentile, run_together


def sequential(wf: Workflows, count: int, seconds: float) -> dict[str, float]:
    """One thread, one workflow after another: throughput and latency of the hot path."""
    wf.step_seconds.clear()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    began = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        wf.three_steps(i)
        latencies.append(time.perf_counter() - t0)
        if t0 > stop:
            break
    elapsed = time.perf_counter() - began
    steps = list(wf.step_seconds)
    return {"wf_per_s": len(latencies) / elapsed, "workflows": len(latencies), **latency_summary(latencies),
            "step_p50_ms": percentile(steps, 50) * 1000, "step_p99_ms": percentile(steps, 99) * 1000}


def threaded(wf: Workflows, threads: int, count: int, seconds: float) -> dict[str, float]:
    """``threads`` callers running workflows inline, as request threads of a gthread worker would."""
    def caller(n: int, gate: threading.Barrier, stop: list[float], mine: list[float]) -> None:
        gate.wait()
        for i in range(count // threads):
            t0 = time.perf_counter()
            wf.three_steps(n * 1_000_000 + i)
            mine.append(time.perf_counter() - t0)
            if t0 > stop[0]:
                break

    elapsed, flat = run_together(threads, caller, seconds, join_slack=120)
    return {"wf_per_s": len(flat) / elapsed, "workflows": len(flat), **latency_summary(flat)}


def fan_out(rt: Runtime, wf: Workflows, count: int, timeout: float) -> dict[str, float]:
    """``start_workflow`` ``count`` times from one thread, then wait for every result."""
    began = time.perf_counter()
    handles = [rt.dbos.start_workflow(wf.three_steps, i) for i in range(count)]
    started = time.perf_counter() - began
    for handle in handles:
        handle.get_result()
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"fan-out of {count} not done after {timeout}s")
    elapsed = time.perf_counter() - began
    return {"wf_per_s": count / elapsed, "seconds": elapsed, "start_seconds": started}


def queue_latency(probe: QueuedProbe, count: int) -> dict[str, float]:
    """Enqueue on an idle queue, wait for the result, repeat: how long a queued workflow waits to start.

    The enqueuing process also dequeues (one process, as in one gunicorn worker), so this is the
    wake-up path; DBOS polls its queues every second instead.
    """
    waits = []
    for key in range(count):
        t0 = time.perf_counter()
        probe.enqueue(key).get_result()
        waits.append(probe.started[key] - t0)
    return {"count": count, **latency_summary(waits)}


def server_commits(url: str) -> int | None:
    """This database's committed transactions, read from the maintenance database so the read adds none."""
    if not url.startswith("postgresql"):
        return None
    base, _, name = url.rpartition("/")
    engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
                              poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        value = conn.exec_driver_sql("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)).scalar()
    engine.dispose()
    return int(value or 0)


# An idle PostgreSQL backend may hold its statistics for up to 10 s; one that exits flushes them.
# So the counting window opens and closes with every runtime connection closed.
EXIT_SETTLE_SEC = 0.5


def launched_window(relaunch: Callable[[], Runtime], body: Callable[[Runtime], None]) -> tuple[int, int, int]:
    """(server commits, statements, SQLite commits) from launch to destroy, with ``body`` in between."""
    time.sleep(EXIT_SETTLE_SEC)
    rt = relaunch()
    before = server_commits(rt.url)
    COUNTERS.reset()
    rt.launch()
    body(rt)
    rt.destroy()
    statements, sqlite_commits = COUNTERS.statements, COUNTERS.sqlite_commits
    time.sleep(EXIT_SETTLE_SEC)
    after = server_commits(rt.url)
    return (after - before if before is not None and after is not None else -1), statements, sqlite_commits


def cost_per_workflow(relaunch: Callable[[], Runtime], wf: Workflows, count: int) -> dict[str, float]:
    """Statements (client side) and commits (server side on PostgreSQL, traced on SQLite) per workflow.

    Two windows, launch to destroy: one empty, one running ``count`` workflows; the difference
    removes what launch, shutdown and background threads cost.
    """
    empty = launched_window(relaunch, lambda rt: None)

    def run(rt: Runtime) -> None:
        for i in range(count):
            wf.three_steps(10_000_000 + i)

    busy = launched_window(relaunch, run)
    server = (busy[0] - empty[0]) / count if busy[0] >= 0 else None
    return {"statements_per_wf": (busy[1] - empty[1]) / count,
            "commits_per_wf": server if server is not None else (busy[2] - empty[2]) / count,
            "commit_source": "pg_stat_database.xact_commit" if server is not None else "sqlite3 trace"}


def checkpoint_bytes(rt: Runtime) -> dict[str, float]:
    """Average stored size of a step row and of a workflow row, as the database reports it."""
    engine = rt.sql_engine()
    steps, workflows = rt.table("operation_outputs"), rt.table("workflow_status")
    with engine.connect() as conn:
        if rt.url.startswith("postgresql"):
            step = conn.exec_driver_sql(f"SELECT avg(pg_column_size(o.*)) FROM {steps} o").scalar()
            row = conn.exec_driver_sql(f"SELECT avg(pg_column_size(w.*)) FROM {workflows} w").scalar()
        else:
            step = conn.exec_driver_sql(_sqlite_row_size(conn, steps)).scalar()
            row = conn.exec_driver_sql(_sqlite_row_size(conn, workflows)).scalar()
    engine.dispose()
    return {"step_bytes": float(step or 0), "workflow_row_bytes": float(row or 0)}


def _sqlite_row_size(conn: sa.Connection, table: str) -> str:
    """SQL for the average summed length of every column: SQLite has no per-row size function."""
    columns = [r[1] for r in conn.exec_driver_sql(f'PRAGMA table_info("{table}")')]
    total = " + ".join(f'coalesce(length(CAST("{c}" AS BLOB)), 0)' for c in columns)
    return f'SELECT avg({total}) FROM "{table}"'


def capture_hot_path(rt: Runtime, wf: Workflows, package: str) -> tuple[str, list[tuple[str, Any]]]:
    """The statements one workflow sends, recorded at the driver, with the workflow ID they name."""
    template = f"floor-{uuid.uuid4().hex}"
    COUNTERS.capture = []
    try:
        with rt.set_workflow_id(template):
            wf.three_steps(1)
    finally:
        captured, COUNTERS.capture = COUNTERS.capture, None
    # BEGIN/COMMIT name no workflow but bound a transaction of its own (held step checkpoints and the outcome).
    return template, [(sql, params) for sql, params in captured
                      if template in sql or template in repr(params) or _is_transaction_control(sql)]


def _is_transaction_control(sql: str) -> bool:
    return sql.strip().upper() in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")


def statement_floor(rt: Runtime, wf: Workflows, package: str, seconds: float, count: int) -> dict[str, float]:
    """Ours only: the statements one workflow sent, replayed through the bare driver with fresh IDs.

    Same SQL, same tables, one connection in autocommit, no runtime code: the gap between this and
    ``sequential`` is the runtime's Python; the gap between this and the raw ceiling is the cost of
    its rows and indexes.
    """
    template, statements = capture_hot_path(rt, wf, package)
    engine = rt.sql_engine()
    pooled = engine.raw_connection()  # keep it referenced: dropping it closes the driver connection
    conn = pooled.dbapi_connection
    if rt.url.startswith("sqlite"):
        conn.isolation_level = None  # autocommit, as the runtime runs them
        conn.execute("PRAGMA synchronous = FULL")  # per connection; WAL mode is already in the file
    else:
        conn.autocommit = True
    cursor = conn.cursor()
    began = time.perf_counter()
    stop = began + seconds
    done = 0
    for _ in range(count):
        fresh = f"floor-{uuid.uuid4().hex}"
        for sql, params in statements:
            if params is None:
                cursor.execute(sql.replace(template, fresh))
            else:
                cursor.execute(sql, [fresh if p == template else p for p in params])
        done += 1
        if time.perf_counter() > stop:
            break
    elapsed = time.perf_counter() - began
    cursor.close()
    pooled.close()
    engine.dispose()
    return {"wf_per_s": done / elapsed, "workflows": done, "statements": len(statements)}


def probe_target(url: str) -> tuple[str, str]:
    """Where the raw-commit probe writes: the same PostgreSQL database, or a file beside the SQLite one."""
    if url.startswith("postgresql"):
        return "pg", url
    return "sqlite", url[len("sqlite:///"):] + ".probe"


def paired(
    probe: tuple[str, str], threads: int, seconds: float, run: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """One repetition, preceded by the raw-commit ceiling measured right then on the same database.

    The machine is shared: pairing each repetition with its own ceiling makes workflows/s over
    ceiling a ratio that survives a neighbour's load coming and going.
    """
    ceiling = limit.measure(probe[0], probe[1], threads, seconds)
    figures = run()
    figures["ceiling_commits_per_s"] = ceiling["commits_per_s"]
    figures["ceiling_p50_ms"] = ceiling["p50_ms"]
    figures["per_ceiling"] = figures["wf_per_s"] / (ceiling["commits_per_s"] / 5)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", choices=["ours", "dbos"], required=True)
    parser.add_argument("--package")
    parser.add_argument("--url", required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seq", type=int, default=600, help="workflows per sequential repetition")
    parser.add_argument("--threaded", type=int, default=1200, help="workflows per 8-thread repetition")
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--count", type=int, default=200, help="workflows in the cost-counting window")
    parser.add_argument("--seconds", type=float, default=4.0, help="time cap of one repetition")
    parser.add_argument("--fanout-reps", type=int, default=None, help="default: --reps")
    parser.add_argument("--queue-count", type=int, default=100, help="enqueue-to-start samples")
    parser.add_argument("--probe-seconds", type=float, default=0.6, help="raw-commit probe before each repetition")
    args = parser.parse_args()

    install_counters()
    rt = load_runtime(args.runtime, args.url, args.package)
    wf = define_workflows(rt.dbos)
    queued = define_queued_probe(rt)
    rt.launch()
    try:
        for i in range(min(50, args.seq)):  # warm pools and caches
            wf.three_steps(-i)
        result: dict[str, Any] = {"runtime": rt.label}
        probe = probe_target(args.url)
        limit.prepare(*probe)
        result["sequential"] = [paired(probe, 1, args.probe_seconds, lambda: sequential(wf, args.seq, args.seconds))
                                for _ in range(args.reps)]
        result["threads8"] = [paired(probe, 8, args.probe_seconds, lambda: threaded(wf, 8, args.threaded, args.seconds))
                              for _ in range(args.reps)]
        result["queue_latency"] = queue_latency(queued, args.queue_count)
        result["fanout"] = [fan_out(rt, wf, args.fanout, 120.0) for _ in range(args.fanout_reps or args.reps)]
        if args.runtime == "ours":
            result["statement_floor"] = [statement_floor(rt, wf, args.package, args.seconds / 2, args.seq)
                                         for _ in range(args.reps)]
        result["bytes"] = checkpoint_bytes(rt)
    finally:
        rt.destroy()
    result["cost"] = cost_per_workflow(lambda: load_runtime(args.runtime, args.url, args.package), wf, args.count)
    emit(result)


if __name__ == "__main__":
    main()
