"""What one POST /orders costs under load: requests/s, and CPU per request of the workers and the database.

    python request_cost.py --project BAKE/order-service --package order_service --variant durable \
        [--mode sync-2] [--seconds 6] [--pg-database NAME]

Serves the bake with gunicorn (``http_bench.gunicorn``), warms it for a second, then loads it for
``--seconds`` while reading the CPU ticks of every gunicorn worker thread (``/proc/<pid>/task/*/stat``),
of the PostgreSQL backends whose command line names ``--pg-database``, and the machine's idle share.
A tool for paired comparisons while optimising (run A, B, A, B...), not part of ``bench/run``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from common import LOOPBACK
from http_bench import BODY, MODES, gunicorn, worker_pids
from load import run_load


def cpu_ticks(pid: int) -> int:
    """User + system ticks of every thread of ``pid`` (0 if it is gone)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except FileNotFoundError:
        pass
    return total


def machine_ticks() -> tuple[int, int]:
    """(all ticks, idle + iowait ticks) of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def backends(database: str | None) -> list[int]:
    if not database:
        return []
    found = subprocess.run(["pgrep", "-f", f"postgres: .* {database} "], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--variant", choices=["durable", "plain"], required=True)
    parser.add_argument("--mode", choices=list(MODES), default="sync-2")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pg-database", help="count the CPU of this database's PostgreSQL backends too")
    args = parser.parse_args()
    flags, connections = MODES[args.mode]
    with gunicorn(args.project, args.package, flags, args.variant == "plain") as (port, master):
        workers = worker_pids(master)
        run_load(LOOPBACK, port, "/orders", BODY, connections, 1_000_000, 1.0)
        servers = backends(args.pg_database)  # after the warm-up: the pools have their connections
        before = [sum(map(cpu_ticks, workers)), sum(map(cpu_ticks, servers)), machine_ticks()]
        done = run_load(LOOPBACK, port, "/orders", BODY, connections, 1_000_000, args.seconds)
        after = [sum(map(cpu_ticks, workers)), sum(map(cpu_ticks, servers)), machine_ticks()]
    requests = max(done["requests"], 1)
    ms_per_tick = 1000 / os.sysconf("SC_CLK_TCK")
    idle = (after[2][1] - before[2][1]) / max(after[2][0] - before[2][0], 1) * 100
    print(f"{args.variant} {args.mode}: {done['rps']:.0f} requests/s, p50 {done.get('p50_ms', 0):.1f} ms, "
          f"workers {(after[0] - before[0]) * ms_per_tick / requests:.2f} ms CPU/request, "
          f"database server {(after[1] - before[1]) * ms_per_tick / requests:.2f} ms CPU/request, "
          f"machine {idle:.0f}% idle, {done['errors']} errors")


if __name__ == "__main__":
    main()
