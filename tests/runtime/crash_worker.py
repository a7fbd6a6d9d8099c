"""A process the crash tests start and SIGKILL: it runs workflows against a database given on argv.

    python crash_worker.py <database_url> <scenario> <workdir>

Scenarios:
  start     start workflow "wf-1" (two steps); the first step records a side effect and becomes durable
            (the event the body sets next commits its held checkpoint), then the process waits for ever
            between the two steps, to be killed.
  recover   launch (which adopts orphans), wait until "wf-1" finishes, print its result, exit 0.
  held      start workflow "wf-held": a step records a side effect, and its checkpoint is still held
            (no durable write since) when the next step blocks for ever, to be killed.
  recover-held  launch, wait until "wf-held" finishes, print its result, exit 0.
  suicide   run "wf-dead", whose step kills this very process (recovery keeps crashing).
  adopt     launch and wait until "wf-dead" leaves PENDING, then exit 0.
Side effects are rows in a plain table, so a test can count how often each step really ran.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from worker_kit import launch_from_argv, print_when_finished

from durable import DBOS, SetWorkflowID
from durable import recovery as durable_recovery

DEADLINE = time.monotonic() + 60
# Set by main() from argv; a test that imports this module sets them itself.
RUN = {"url": "", "scenario": "", "workdir": Path(".")}
_engines: dict[str, sa.Engine] = {}


def side_effect(name: str) -> None:
    url = str(RUN["url"])
    engine = _engines.get(url) or _engines.setdefault(url, sa.create_engine(url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS side_effects (name VARCHAR(50))")
        conn.execute(sa.text("INSERT INTO side_effects (name) VALUES (:n)"), {"n": name})


@DBOS.step()
def first_step(x: int) -> int:
    side_effect("first")
    return x + 1


@DBOS.transaction()
def second_step(x: int) -> int:
    DBOS.sql_session.execute(sa.text("INSERT INTO side_effects (name) VALUES ('second')"))
    return x * 10


@DBOS.workflow()
def two_steps(x: int) -> dict[str, int]:
    a = first_step(x)
    DBOS.set_event("first", a)  # a durable write: first_step's checkpoint commits with it
    if RUN["scenario"] == "start":
        (Path(RUN["workdir"]) / "between-steps").write_text("1")
        while time.monotonic() < DEADLINE:  # held here until the test kills the process
            time.sleep(0.05)
    b = second_step(a)
    return {"a": a, "b": b}


@DBOS.step()
def blocks_when_held() -> None:
    if RUN["scenario"] == "held":
        (Path(RUN["workdir"]) / "held").write_text("1")
        while time.monotonic() < DEADLINE:  # held here until the test kills the process
            time.sleep(0.05)


@DBOS.workflow()
def held_then_blocked(x: int) -> dict[str, int]:
    a = first_step(x)  # its checkpoint is held: nothing durable happens before the kill
    blocks_when_held()
    b = second_step(a)  # on recovery: the transaction's commit carries the steps' checkpoints
    return {"a": a, "b": b}


@DBOS.step()
def kill_myself() -> None:
    side_effect("suicide")
    os.kill(os.getpid(), signal.SIGKILL)


@DBOS.workflow(max_recovery_attempts=2)
def doomed() -> None:
    kill_myself()


def main() -> int:
    SCENARIO = launch_from_argv("crash-test", RUN)
    if SCENARIO == "start":
        with SetWorkflowID("wf-1"):
            two_steps(1)
    elif SCENARIO == "held":
        # The recovery sweep writes checkpoints held over MAX_HELD_AGE_SEC; the test kills inside that window
        # on purpose, so keep it open however slowly the test's poll sees the marker.
        durable_recovery.MAX_HELD_AGE_SEC = 3600.0
        with SetWorkflowID("wf-held"):
            held_then_blocked(1)
    elif SCENARIO == "suicide":
        with SetWorkflowID("wf-dead"):
            doomed()
    elif SCENARIO in ("recover", "recover-held", "adopt"):
        target = {"recover": "wf-1", "recover-held": "wf-held", "adopt": "wf-dead"}[SCENARIO]
        print_when_finished(target, DEADLINE, with_result=SCENARIO != "adopt")
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
