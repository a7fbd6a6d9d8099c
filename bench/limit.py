"""The ceiling: single-row INSERT + COMMIT per second, straight through the driver.

Every durable step pays at least one such commit, so these numbers bound what any runtime can do on
this disk and this PostgreSQL. SQLite is set up as the runtime sets it up (WAL, synchronous=FULL).

    python limit.py --pg-url postgresql://postgres@127.0.0.1:5432/DB --sqlite-path FILE [--seconds S] [--reps N]
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from common import emit, latency_summary

PAYLOAD = '{"output": 42, "note": "a checkpoint-sized payload of some sixty-four bytes"}'
MAX_COMMITS = 200_000  # a bound on count as well as on time


def pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


def sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def prepare(kind: str, target: str) -> None:
    if kind == "pg":
        with pg_connect(target) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_limit")
            conn.execute("CREATE TABLE bench_limit (id bigserial PRIMARY KEY, payload text NOT NULL)")
    else:
        conn = sqlite_connect(target)
        conn.execute("DROP TABLE IF EXISTS bench_limit")
        conn.execute("CREATE TABLE bench_limit (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        conn.close()


def measure(kind: str, target: str, threads: int, seconds: float) -> dict[str, float]:
    """Each thread: its own connection, one autocommit INSERT after another, until time runs out."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start_gate = threading.Barrier(threads + 1)
    stop_at = [0.0]
    placeholder = "%s" if kind == "pg" else "?"
    sql = f"INSERT INTO bench_limit (payload) VALUES ({placeholder})"
    connect: Callable[[str], Any] = pg_connect if kind == "pg" else sqlite_connect

    def worker(mine: list[float]) -> None:
        conn = connect(target)
        cursor = conn.cursor()
        start_gate.wait()
        per_thread_cap = MAX_COMMITS // threads
        while time.perf_counter() < stop_at[0] and len(mine) < per_thread_cap:
            began = time.perf_counter()
            cursor.execute(sql, (PAYLOAD,))  # autocommit: the statement is its own transaction
            mine.append(time.perf_counter() - began)
        conn.close()

    pool = [threading.Thread(target=worker, args=(latencies[i],)) for i in range(threads)]
    for t in pool:
        t.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_gate.wait()
    for t in pool:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - began
    flat = [x for mine in latencies for x in mine]
    return {"commits_per_s": len(flat) / elapsed, "commits": len(flat), **latency_summary(flat)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", required=True)
    parser.add_argument("--sqlite-path", required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, list[dict[str, float]]] = {}
    for kind, target in (("pg", args.pg_url), ("sqlite", args.sqlite_path)):
        prepare(kind, target)
        for threads in (1, 8):
            result[f"{kind}_{threads}"] = [measure(kind, target, threads, args.seconds) for _ in range(args.reps)]
    emit(result)


if __name__ == "__main__":
    main()
