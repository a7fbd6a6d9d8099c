"""A process the messaging crash tests start and SIGKILL.

    python messaging_worker.py <database_url> <scenario> <workdir>

Scenarios:
  sleep-start  run "sleep-wf" (an 8 s durable sleep between two steps); killed while it sleeps.
  recv-start   run "recv-wf": receive a message, then wait for ever (file "received"), to be killed
               before its second recv.
  recover      launch (which adopts orphans), wait until the workflow named in argv[4] finishes,
               print its status and result, exit 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from worker_kit import launch_from_argv, print_when_finished

from durable import DBOS, SetWorkflowID

DEADLINE = time.monotonic() + 60
SLEEP_SEC = 8.0  # long enough for a recovering process to start on a loaded machine before it ends
RUN = {"scenario": "", "workdir": Path(".")}


@DBOS.step()
def clock() -> float:
    return time.time()


@DBOS.workflow()
def sleepy() -> dict[str, float]:
    before = clock()
    (Path(RUN["workdir"]) / "sleeping").write_text("1")
    DBOS.sleep(SLEEP_SEC)
    return {"before": before, "after": clock()}


@DBOS.workflow()
def two_messages() -> list[Any]:
    first = DBOS.recv("t", timeout_seconds=30)
    if RUN["scenario"] == "recv-start":
        (Path(RUN["workdir"]) / "received").write_text(repr(first))
        while time.monotonic() < DEADLINE:  # held here until the test kills the process
            time.sleep(0.05)
    second = DBOS.recv("t", timeout_seconds=30)
    return [first, second]


def main() -> int:
    scenario = launch_from_argv("messaging-crash-test", RUN)
    if scenario == "sleep-start":
        with SetWorkflowID("sleep-wf"):
            sleepy()
    elif scenario == "recv-start":
        with SetWorkflowID("recv-wf"):
            two_messages()
    elif scenario == "recover":
        print_when_finished(sys.argv[4], DEADLINE, with_result=True)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
