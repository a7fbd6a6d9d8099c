"""Recovery: 10,000 PENDING workflows left by a SIGKILLed process; time until all are done after restart.

The doomed process launches, starts one workflow whose first step blocks, clones its rows to make
``--count`` PENDING workflows owned by that process, says READY and is SIGKILLed. A new process then
launches the same runtime, and we time until no workflow is PENDING.

    python recovery.py --runtime ours --package order_service --url sqlite:///bench.db [--count N]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid

from adapters import define_workflows, load_runtime
from bulk import clone_workflow, count_status
from common import emit, median_min_max

READY = "DOOMED-READY"


def doomed(args: argparse.Namespace) -> None:
    """Leave ``count`` PENDING workflows owned by this process, then wait to be killed."""
    os.environ["BENCH_BLOCK_FIRST_STEP"] = "1"
    rt = load_runtime(args.runtime, args.url, args.package)
    wf = define_workflows(rt.dbos)
    rt.launch()
    template = f"doomed-{uuid.uuid4().hex[:8]}"
    with rt.set_workflow_id(template):
        rt.dbos.start_workflow(wf.three_steps, 7)  # the row is durable when this returns
    clone_workflow(rt, template, args.count - 1, f"{template}-")
    print(READY, flush=True)
    time.sleep(600)  # the parent SIGKILLs us long before this


def restarted(args: argparse.Namespace) -> None:
    """Launch and wait until nothing is PENDING; print seconds since launch began."""
    rt = load_runtime(args.runtime, args.url, args.package)
    define_workflows(rt.dbos)
    began = time.perf_counter()
    rt.launch()
    deadline = began + args.timeout
    # One engine for all the polls: a new engine every 50 ms took an eighth of this process's GIL time
    # (py-spy), time the runtime under test then did not get.
    counter = rt.sql_engine()
    left = count_status(rt, counter, "PENDING")
    while left and time.perf_counter() < deadline:
        time.sleep(0.05)
        left = count_status(rt, counter, "PENDING")
    print(f"RECOVERED {time.perf_counter() - began:.3f} {left}", flush=True)
    os._exit(0)  # don't wait for a graceful shutdown: the measurement is over


def one_round(args: argparse.Namespace) -> dict[str, float]:
    me = [sys.executable, os.path.abspath(__file__), "--runtime", args.runtime, "--url", args.url,
          "--count", str(args.count), "--timeout", str(args.timeout)]
    me += ["--package", args.package] if args.package else []
    doomed_proc = subprocess.Popen([*me, "--role", "doomed"], stdout=subprocess.PIPE, text=True)
    assert doomed_proc.stdout is not None
    ready = False
    for line in doomed_proc.stdout:  # the doomed process prints READY within seconds, or dies
        if line.startswith(READY):
            ready = True
            break
    doomed_proc.send_signal(signal.SIGKILL)
    doomed_proc.wait(10)
    if not ready:
        raise SystemExit("the doomed process died before leaving its PENDING workflows")
    spawned = time.perf_counter()
    out = subprocess.run([*me, "--role", "restarted"], capture_output=True, text=True, timeout=args.timeout + 60)
    total = time.perf_counter() - spawned
    line = next((x for x in out.stdout.splitlines() if x.startswith("RECOVERED")), None)
    if line is None:
        raise SystemExit(f"restarted process said nothing:\n{out.stderr[-2000:]}")
    _, since_launch, left = line.split()
    return {"seconds_from_spawn": total, "seconds_from_launch": float(since_launch), "left_pending": float(left)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", choices=["ours", "dbos"], required=True)
    parser.add_argument("--package")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--role", choices=["doomed", "restarted", "driver"], default="driver")
    args = parser.parse_args()
    if args.role == "doomed":
        doomed(args)
    elif args.role == "restarted":
        restarted(args)
    else:
        rounds = [one_round(args) for _ in range(args.reps)]
        emit({"rounds": rounds, "seconds": median_min_max([r["seconds_from_spawn"] for r in rounds])})


if __name__ == "__main__":
    main()
