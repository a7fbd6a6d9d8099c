"""Growth: get-status, list (first page, by status) and enqueue as the workflow table grows.

Rows are cloned in bulk with SQL from one real finished workflow (see ``bulk.py``); every tenth is
ERROR, the rest SUCCESS, so "first page of ERROR" has to find its rows among the others.

    python growth.py --runtime ours --package order_service --url sqlite:///bench.db [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from typing import Any

from adapters import define_workflows, load_runtime
from bulk import clone_workflow
from common import emit, latency_summary

STATUS_MIX = "CASE WHEN g.i % 10 = 0 THEN 'ERROR' ELSE 'SUCCESS' END"


def timed(calls: int, call: Any) -> dict[str, float]:
    samples = []
    for i in range(calls):
        t0 = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - t0)
    return latency_summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", choices=["ours", "dbos"], required=True)
    parser.add_argument("--package")
    parser.add_argument("--url", required=True)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    rt = load_runtime(args.runtime, args.url, args.package)
    wf = define_workflows(rt.dbos)
    rt.launch()
    result: dict[str, Any] = {"runtime": rt.label}
    try:
        template = f"grow-{uuid.uuid4().hex[:8]}"
        with rt.set_workflow_id(template):
            wf.three_steps(1)
        have = 1
        for size in (int(s) for s in args.sizes.split(",")):
            began = time.perf_counter()
            # Steps are not cloned: these calls read workflow rows only, and it keeps 1M rows to seconds.
            clone_workflow(rt, template, size - have, f"{template}-{have}-", {"status": STATUS_MIX},
                           skip=("operation_outputs",))
            fill = time.perf_counter() - began
            ids = [f"{template}-{have}-{random.randint(1, size - have)}" for _ in range(args.calls)]
            have = size
            status = timed(args.calls, lambda i: rt.dbos.get_workflow_status(ids[i]))
            listing = timed(max(10, args.calls // 10),
                            lambda i: rt.dbos.list_workflows(status="ERROR", limit=20, sort_desc=True))
            handles: list[Any] = []
            enqueue = timed(max(10, args.calls // 3),
                            lambda i: handles.append(rt.dbos.start_workflow(wf.three_steps, i)))
            for handle in handles:
                handle.get_result()
            result[str(size)] = {"fill_seconds": fill, "get_status": status, "list_first_page": listing,
                                 "enqueue": enqueue}
    finally:
        rt.destroy()
    emit(result)


if __name__ == "__main__":
    main()
