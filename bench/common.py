"""Helpers every bench script shares. Standard library only: each script runs in a different venv."""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

LOOPBACK = "127.0.0.1"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; enough for p50/p99 of a few thousand samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p99 in milliseconds."""
    return {"p50_ms": percentile(seconds, 50) * 1000, "p99_ms": percentile(seconds, 99) * 1000}


def reps(count: int, run: Callable[[int], dict[str, float]]) -> list[dict[str, float]]:
    """Run a measurement ``count`` times; each returns a dict of figures."""
    return [run(i) for i in range(count)]


def median_min_max(samples: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON the orchestrator reads back from this process (last line of stdout)."""
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def require_loopback(host: str) -> None:
    """Every benchmark talks to this machine only."""
    if host not in (LOOPBACK, "localhost"):
        raise SystemExit(f"refusing to send traffic to {host!r}: benchmarks use {LOOPBACK} only")


Worker = Callable[[int, threading.Barrier, list[float], list[float]], None]


def run_together(threads: int, work: Worker, seconds: float, join_slack: float) -> tuple[float, list[float]]:
    """Run ``work(n, gate, stop, latencies)`` on ``threads`` threads released at once through ``gate``.

    ``stop[0]`` is the deadline (perf_counter) the workers watch. Returns the elapsed seconds and
    every latency the workers appended.
    """
    latencies: list[list[float]] = [[] for _ in range(threads)]
    gate = threading.Barrier(threads + 1)
    stop = [0.0]
    pool = [threading.Thread(target=work, args=(n, gate, stop, latencies[n]), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    began = time.perf_counter()
    stop[0] = began + seconds
    gate.wait()
    for t in pool:
        t.join(seconds + join_slack)
    return time.perf_counter() - began, [x for mine in latencies for x in mine]
