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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"))

from durable import DBOS, DBOSConfig, SetWorkflowID  # noqa: E402

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


def status_of(workflow_id: str) -> str | None:
    status = DBOS.get_workflow_status(workflow_id)
    return status.status if status else None


def main() -> int:
    url, scenario, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    RUN.update(scenario=scenario, workdir=workdir)
    DBOS(config=DBOSConfig(name="stream-test", application_database_url=url, executor_heartbeat_sec=0.2,
                           executor_timeout_sec=5))
    DBOS.launch()
    if scenario == "write-slow":
        with SetWorkflowID("slow-writer"):
            slow_writer()
    elif scenario == "write-start":
        with SetWorkflowID("crash-writer"):
            crash_writer()
    elif scenario == "recover":
        target = sys.argv[4]
        while status_of(target) in (None, "PENDING") and time.monotonic() < DEADLINE:
            time.sleep(0.05)
        print(status_of(target), flush=True)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
