"""A worker SIGKILLed while it runs a queued workflow: the queue must not stay jammed by the dead claim."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import RUNTIME_PARENT
from durable import DBOS
from durable.queues import QUEUES
from helpers import wait_until

WORKER = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig, Queue, SetWorkflowID

queue = Queue("crash-queue", concurrency=1)
LOG = Path(sys.argv[2])

@DBOS.workflow(name="crash_held")
def held(n):
    with LOG.open("a") as f:
        f.write(f"start {{n}} {{time.monotonic()}}\\n")
    if n == 0:
        time.sleep(120)  # the test SIGKILLs this process here
    return n

DBOS(config=DBOSConfig(name="queue-crash", application_database_url=sys.argv[1]))
DBOS.launch()
for n in range(3):
    with SetWorkflowID(f"crash-job-{{n}}"):
        queue.enqueue(held, n)
time.sleep(120)
"""

RAN: list[int] = []


@DBOS.workflow(name="crash_held")
def held_here(n: int) -> int:
    RAN.append(n)
    time.sleep(0.1)
    return n


def test_a_claim_of_a_killed_worker_is_recovered_and_the_queue_moves_on(
        dbos: type[DBOS], database_url: str, tmp_path: Path) -> None:
    RAN.clear()
    log = tmp_path / "worker.log"
    log.touch()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    try:
        worker = subprocess.Popen([sys.executable, str(script), database_url, str(log)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: "start 0" in log.read_text(), timeout=30, what="the worker to start job 0")
            # This process declares the queue only now, so that the worker (not we) claimed job 0.
            DBOS.register_queue("crash-queue", concurrency=1)
            # concurrency=1 and job 0 running in the worker: nobody may take jobs 1 and 2 yet.
            time.sleep(0.5)
            assert RAN == [] and "start 1" not in log.read_text()
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            worker.kill()
            worker.communicate(timeout=10)
        results = [DBOS.retrieve_workflow(f"crash-job-{n}").get_result(timeout_seconds=60) for n in range(3)]
        assert results == [0, 1, 2]
        assert sorted(RAN) == [0, 1, 2], "the killed worker's job ran again here, the others once"
        for n in range(3):
            status = DBOS.get_workflow_status(f"crash-job-{n}")
            assert status is not None and status.status == "SUCCESS" and status.executor_id == DBOS.executor_id
    finally:
        QUEUES.pop("crash-queue", None)  # declared by the test: the next one starts without it
