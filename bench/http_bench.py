"""HTTP: the example's POST /orders under gunicorn (2 sync workers; gthread 2x8), durable vs plain.

Also the resident memory of one gunicorn worker after 10,000 durable orders. Loopback only; every
server started here is stopped here.

    python http_bench.py --project DIR --package order_service [--seconds 4] [--reps 3] [--rss-orders 10000]
        [--keyed] [--variants durable,plain]

``--keyed`` sends a new ``dbos-idempotency-key`` with every request (both variants; the plain app ignores
it); ``--variants durable`` skips the baseline (paired runs of one runtime against another).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import LOOPBACK, emit, median_min_max
from load import run_load

BENCH_DIR = Path(__file__).resolve().parent
BODY = b'{"user_id": "ada", "items": [{"sku": "book", "quantity": 2, "price_cents": 1250}]}'
MODES = {  # name -> (gunicorn flags, client connections)
    "sync-2": (["--workers", "2", "--worker-class", "sync"], 4),
    "gthread-2x8": (["--workers", "2", "--worker-class", "gthread", "--threads", "8"], 16),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(project: Path, package: str, flags: list[str], plain: bool) -> Iterator[tuple[int, int]]:
    """A gunicorn serving the durable example (or the plain baseline); yields (port, master pid)."""
    port = free_port()
    argv = [str(project / ".venv/bin/gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"{LOOPBACK}:{port}",
            "--access-logfile", "/dev/null", *flags]
    if plain:
        argv += ["--pythonpath", str(BENCH_DIR), "plain_app:create_app()"]
    env = {**os.environ, "BENCH_PACKAGE": package, "LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)  # the baked default names this bake's database
    log = open(project / f"gunicorn-{port}.log", "w")
    proc = subprocess.Popen(argv, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{LOOPBACK}:{port}/healthz", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not come up; see {log.name}") from None
                time.sleep(0.1)
        run_load(LOOPBACK, port, "/orders", BODY, 2, 50, 10)  # warm both workers' pools and runtimes
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(c) for c in children]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--count", type=int, default=20_000, help="cap on requests per repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rss-orders", type=int, default=10_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--variants", default="durable,plain")
    parser.add_argument("--keyed", action="store_true", help="a new dbos-idempotency-key on every request")
    args = parser.parse_args()
    result: dict[str, object] = {}
    for mode in args.modes.split(","):
        flags, connections = MODES[mode]
        for plain in [v == "plain" for v in args.variants.split(",")]:
            with gunicorn(args.project, args.package, flags, plain) as (port, _):
                rounds = [run_load(LOOPBACK, port, "/orders", BODY, connections, args.count, args.seconds,
                                   args.keyed) for _ in range(args.reps)]
            result[f"{mode}-{'plain' if plain else 'durable'}"] = rounds
    # One sync worker, so that every order lands in the worker we measure.
    if args.rss_orders > 0:
        one_sync_worker = ["--workers", "1", "--worker-class", "sync"]
        with gunicorn(args.project, args.package, one_sync_worker, False) as (port, master):
            worker = worker_pids(master)[0]
            before = rss_kib(worker)
            done = run_load(LOOPBACK, port, "/orders", BODY, 2, args.rss_orders, 300)
            after = rss_kib(worker)
        result["rss"] = {"orders": done["requests"], "errors": done["errors"], "before_kib": before,
                         "after_kib": after}
    result["summary"] = {k: median_min_max([r["rps"] for r in v]) for k, v in result.items()
                         if isinstance(v, list)}
    emit(result)


if __name__ == "__main__":
    main()
