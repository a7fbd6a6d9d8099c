"""A DBOS Transact 2.x program as its users write it: queues, events, messages and a schedule.

The only line changed from DBOS is the import of the runtime below (``from dbos import ...``). The
test runs it as its own process: ``python dbos_program.py DATABASE_URL`` prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime

from {{ cookiecutter.package_name }}.durable import DBOS, DBOSConfig, Queue, SetWorkflowID

config: DBOSConfig = {"name": "dbos-program", "application_database_url": sys.argv[1]}
DBOS(config=config)

work_queue = Queue("work", concurrency=2)
ticks: list[datetime] = []
tick_lock = threading.Lock()


@DBOS.step()
def square(x: int) -> int:
    return x * x


@DBOS.workflow()
def square_task(x: int) -> int:
    return square(x)


@DBOS.workflow()
def fan_out(n: int) -> int:
    handles = [work_queue.enqueue(square_task, i) for i in range(n)]
    total = sum(handle.get_result() for handle in handles)
    DBOS.set_event("progress", {"done": n, "total": total})
    return total


@DBOS.workflow()
def wait_for_approval() -> str:
    DBOS.set_event("state", "waiting")
    decision = DBOS.recv("approval", timeout_seconds=30)
    DBOS.set_event("state", "decided")
    return f"approved by {decision}"


@DBOS.scheduled("* * * * * *")  # every second (DBOS's cron takes an optional seconds field)
@DBOS.workflow()
def every_second(scheduled_time: datetime, actual_time: datetime) -> None:
    with tick_lock:
        ticks.append(scheduled_time)


def main() -> None:
    DBOS.launch()
    with SetWorkflowID("fan-out-1"):
        total = fan_out(5)
    with SetWorkflowID("fan-out-1"):
        replayed = fan_out(5)  # the same workflow ID: the recorded result, nothing runs again
    progress = DBOS.get_event("fan-out-1", "progress")

    handle = DBOS.start_workflow(wait_for_approval)
    state = DBOS.get_event(handle.workflow_id, "state", timeout_seconds=30)
    DBOS.send(handle.workflow_id, "ada", topic="approval")
    approval = handle.get_result()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(ticks) < 2:
        time.sleep(0.1)
    steps = DBOS.list_workflow_steps("fan-out-1")
    print(
        json.dumps(
            {
                "total": total,
                "replayed": replayed,
                "progress": progress,
                "state_before_send": state,
                "approval": approval,
                "children": len(DBOS.list_workflows(name="square_task")),
                "first_steps": [s["function_name"] for s in steps][:2],
                "ticks": len(ticks) >= 2,
                "queue_status": handle.get_status().status,
            },
            sort_keys=True,
        )
    )
    DBOS.destroy()


if __name__ == "__main__":
    main()
