"""A process the messaging crash tests start and SIGKILL.

    python messaging_worker.py <database_url> <scenario> <workdir>

Scenarios:
  sleep-start  run "sleep-wf" (a 3 s durable sleep between two steps); killed while it sleeps.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "{{cookiecutter.package_name}}"))

from durable import DBOS, DBOSConfig, SetWorkflowID  # noqa: E402

DEADLINE = time.monotonic() + 60
SLEEP_SEC = 3.0
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


def status_of(workflow_id: str) -> str | None:
    status = DBOS.get_workflow_status(workflow_id)
    return status.status if status else None


def main() -> int:
    url, scenario, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    RUN.update(scenario=scenario, workdir=workdir)
    DBOS(config=DBOSConfig(name="messaging-crash-test", application_database_url=url, executor_heartbeat_sec=0.2,
                           executor_timeout_sec=5))
    DBOS.launch()
    if scenario == "sleep-start":
        with SetWorkflowID("sleep-wf"):
            sleepy()
    elif scenario == "recv-start":
        with SetWorkflowID("recv-wf"):
            two_messages()
    elif scenario == "recover":
        target = sys.argv[4]
        while status_of(target) in (None, "PENDING") and time.monotonic() < DEADLINE:
            time.sleep(0.05)
        print(status_of(target), flush=True)
        print(repr(DBOS.retrieve_workflow(target).get_result()), flush=True)
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
