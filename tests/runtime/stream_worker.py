"""A process the stream tests start (and sometimes SIGKILL).

    python stream_worker.py <database_url> <scenario> <workdir> [workflow_id]

Scenarios:
  write-slow   run "slow-writer": five values 0.3 s apart, then close; exit when done.
  write-start  run "crash-writer": two values, then wait for ever (file "written"), to be killed.
  recover      launch (which adopts orphans), wait until the workflow named in argv[4] finishes,
               print its status, exit 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from worker_kit import launch_from_argv, print_when_finished

from durable import DBOS, SetWorkflowID

DEADLINE = time.monotonic() + 60
RUN = {"scenario": "", "workdir": Path(".")}


@DBOS.workflow()
def slow_writer() -> None:
    for i in range(5):
        DBOS.write_stream("numbers", i)
        DBOS.sleep(0.3)
    DBOS.close_stream("numbers")


@DBOS.workflow()
def crash_writer() -> None:
    DBOS.write_stream("numbers", 0)
    DBOS.write_stream("numbers", 1)
    if RUN["scenario"] == "write-start":
        (Path(RUN["workdir"]) / "written").write_text("1")
        while time.monotonic() < DEADLINE:  # held here until the test kills the process
            time.sleep(0.05)
    DBOS.write_stream("numbers", 2)
    DBOS.close_stream("numbers")


def main() -> int:
    scenario = launch_from_argv("stream-test", RUN)
    if scenario == "write-slow":
        with SetWorkflowID("slow-writer"):
            slow_writer()
    elif scenario == "write-start":
        with SetWorkflowID("crash-writer"):
            crash_writer()
    elif scenario == "recover":
        print_when_finished(sys.argv[4], DEADLINE)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
