"""Messages across processes: a workflow in one process answers pings sent from another.

The responder process runs a workflow that, ``--count`` times, waits in ``DBOS.recv`` and answers
with ``DBOS.set_event``. This process sends each ping with ``DBOS.send`` and waits in
``DBOS.get_event`` for the answer: one round trip is two cross-process wake-ups (send -> recv,
set_event -> get_event), as between two gunicorn workers. Half the round trip is the one-way wake-up.

    python messages.py --runtime ours --package order_service --url sqlite:///bench.db --count 50
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from adapters import load_runtime
from common import emit, latency_summary

READY = "RESPONDER-READY"
WORKFLOW_ID = "bench-responder"


def define(dbos: Any, count: int) -> Any:
    @dbos.workflow(name="bench_responder")
    def responder() -> int:
        for i in range(count):
            ping = dbos.recv("ping", timeout_seconds=60)
            dbos.set_event(f"pong-{i}", ping)
        return count

    return responder


def respond(args: argparse.Namespace) -> None:
    rt = load_runtime(args.runtime, args.url, args.package)
    responder = define(rt.dbos, args.count)
    rt.launch()
    with rt.set_workflow_id(WORKFLOW_ID):
        handle = rt.dbos.start_workflow(responder)
    print(READY, flush=True)
    handle.get_result()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", choices=["ours", "dbos"], required=True)
    parser.add_argument("--package")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--role", default="pinger")
    args = parser.parse_args()
    if args.role == "responder":
        respond(args)
        return
    me = [sys.executable, os.path.abspath(__file__), "--runtime", args.runtime, "--url", args.url,
          "--count", str(args.count), "--role", "responder"] + (["--package", args.package] if args.package else [])
    child = subprocess.Popen(me, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if READY not in line:
            raise SystemExit(f"the responder did not start: {line!r}")
        rt = load_runtime(args.runtime, args.url, args.package)
        define(rt.dbos, args.count)  # the same registrations in both processes, as DBOS wants
        rt.launch()
        trips = []
        for i in range(args.count):
            t0 = time.perf_counter()
            rt.dbos.send(WORKFLOW_ID, i, "ping")
            answer = rt.dbos.get_event(WORKFLOW_ID, f"pong-{i}", timeout_seconds=60)
            trips.append(time.perf_counter() - t0)
            if answer != i:
                raise SystemExit(f"ping {i} got {answer!r}")
        child.wait(timeout=60)
        emit({"runtime": rt.label, "count": args.count, **latency_summary(trips)})
    finally:
        child.kill()


if __name__ == "__main__":
    main()
    os._exit(0)  # skip a graceful shutdown: the measurement is over
