"""@DBOS.scheduled: one run per cron tick across processes, no backfill across downtime, a clean stop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import RUNTIME_PARENT, make_config
from durable import DBOS, current, lifecycle
from durable.error import DBOSException
from durable.queues import INTERNAL_QUEUE_NAME
from durable.registry import REGISTRY, FunctionInfo
from durable.scheduler import Scheduler, scheduled_workflow_id
from helpers import wait_until
from parallel import in_processes

RUNS: list[tuple[datetime, datetime]] = []
RUNS_LOCK = threading.Lock()


@pytest.fixture(autouse=True)
def _no_schedules_outside_this_test() -> Iterator[None]:
    """Schedules are process-wide: one left registered would fire in every later test's runtime."""
    RUNS.clear()
    REGISTRY.schedules.clear()
    yield
    DBOS.destroy()
    REGISTRY.schedules.clear()


@DBOS.workflow()
def ticked(scheduled_time: datetime, actual_time: datetime) -> None:
    with RUNS_LOCK:
        RUNS.append((scheduled_time, actual_time))


def launch(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url))
    DBOS.launch()


def info_of(func: object) -> FunctionInfo:
    info: FunctionInfo = func.__durable_info__  # type: ignore[attr-defined]
    return info


class FakeClock:
    """``now`` and ``wait`` for a Scheduler: a wait moves time on; past ``stop_at`` it says stop."""

    def __init__(self, start: datetime, stop_at: datetime) -> None:
        self.current = start
        self.stop_at = stop_at
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.current

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.current += timedelta(seconds=seconds)
        return self.current >= self.stop_at


# -- declaring ------------------------------------------------------------------------------------


def test_a_bad_cron_expression_is_refused_at_decoration_naming_it_and_the_workflow() -> None:
    for bad in ("every minute", "61 * * * * *", "* * * *"):
        with pytest.raises(ValueError) as caught:
            DBOS.scheduled(bad)(ticked)
        assert repr(bad) in str(caught.value) and "ticked" in str(caught.value)
    assert REGISTRY.schedules == []


def test_only_a_workflow_taking_two_times_can_be_scheduled() -> None:
    def plain(scheduled_time: datetime, actual_time: datetime) -> None: ...

    with pytest.raises(DBOSException, match="above @DBOS.workflow"):
        DBOS.scheduled("* * * * * *")(plain)

    @DBOS.workflow()
    def one_argument(scheduled_time: datetime) -> None: ...

    with pytest.raises(DBOSException, match="scheduled_time, actual_time"):
        DBOS.scheduled("* * * * * *")(one_argument)
    assert REGISTRY.schedules == []


def test_five_and_six_field_crons_are_accepted_and_returned_unchanged() -> None:
    assert DBOS.scheduled("*/5 * * * * *")(ticked) is ticked
    assert DBOS.scheduled("0 * * * *")(ticked) is ticked
    DBOS.scheduled("0 * * * *")(ticked)  # the same pair again (a module imported twice) counts once
    assert [(info.name, cron) for info, cron in REGISTRY.schedules] == [
        ("ticked", "*/5 * * * * *"), ("ticked", "0 * * * *")]


# -- ticks, with an injected clock ----------------------------------------------------------------


def test_each_tick_is_enqueued_once_under_its_deterministic_id_even_from_two_schedulers(dbos: type[DBOS]) -> None:
    rt = current.current_runtime()
    start = datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    schedule = [(info_of(ticked), "*/5 * * * * *")]
    for _process in range(2):  # the second plays another process over the same ticks
        clock = FakeClock(start, stop_at=start + timedelta(seconds=16))
        Scheduler(rt, schedule, now=clock.now, wait=clock.wait).run()
        assert clock.waits == [4.5, 5.0, 5.0, 5.0]
    ticks = [datetime(2030, 1, 1, 0, 0, s, tzinfo=UTC) for s in (5, 10, 15)]
    ids = [scheduled_workflow_id(info_of(ticked), t) for t in ticks]
    assert ids[0] == "sched-ticked-2030-01-01T00:00:05+00:00"
    wait_until(lambda: all((s := dbos.get_workflow_status(i)) and s.status == "SUCCESS" for i in ids), 10,
               "the scheduled workflows to finish")
    assert sorted(RUNS) == [(t, t) for t in ticks]  # the fake clock stood still at each tick
    statuses = dbos.list_workflows(workflow_id_prefix="sched-")
    assert [s.workflow_id for s in statuses] == ids
    assert {s.queue_name for s in statuses} == {INTERNAL_QUEUE_NAME}


def test_ticks_passed_while_the_thread_was_late_are_enqueued_in_order(dbos: type[DBOS]) -> None:
    rt = current.current_runtime()
    start = datetime(2030, 1, 1, tzinfo=UTC)

    class LateClock(FakeClock):
        def wait(self, seconds: float) -> bool:  # the first wait overslept by 3 s
            return super().wait(seconds + (3 if not self.waits else 0))

    clock = LateClock(start, stop_at=start + timedelta(seconds=6))
    Scheduler(rt, [(info_of(ticked), "* * * * * *")], now=clock.now, wait=clock.wait).run()
    ticks = [start + timedelta(seconds=s) for s in (1, 2, 3, 4, 5)]
    wait_until(lambda: len(RUNS) == 5, 10, "five runs")
    assert sorted(t for t, _ in RUNS) == ticks
    assert {actual for _, actual in RUNS} == {start + timedelta(seconds=4), start + timedelta(seconds=5)}


# -- the thread in a launched runtime -------------------------------------------------------------


def test_a_restart_keeps_scheduling_from_the_next_tick_without_backfilling(database_url: str) -> None:
    DBOS.scheduled("* * * * * *")(ticked)
    launch(database_url)
    wait_until(lambda: len(RUNS) >= 2, 10, "two ticks before the restart")
    DBOS.destroy()
    stopped_at = datetime.now(UTC)
    time.sleep(1.5)  # at least one tick passes while no process is up
    relaunched_at = datetime.now(UTC)
    launch(database_url)
    wait_until(lambda: sum(t > relaunched_at for t, _ in RUNS) >= 2, 10, "two ticks after the restart")
    DBOS.destroy()
    ticks = [t for t, _ in RUNS]
    assert len(ticks) == len(set(ticks)), Counter(ticks).most_common(3)
    assert not [t for t in ticks if stopped_at < t < relaunched_at], "a tick missed while down was backfilled"


def test_destroy_does_not_wait_for_the_next_tick(database_url: str) -> None:
    DBOS.scheduled("0 0 1 1 *")(ticked)  # next New Year
    launch(database_url)
    configured = lifecycle.configured()
    assert configured is not None
    scheduler = configured.scheduler
    assert scheduler is not None and scheduler._thread.is_alive()
    started = time.monotonic()
    DBOS.destroy()
    assert time.monotonic() - started < 2
    assert not scheduler._thread.is_alive()


def test_one_scheduler_thread_even_without_schedules_since_stored_ones_may_come(dbos: type[DBOS]) -> None:
    configured = lifecycle.configured()
    assert configured is not None and configured.scheduler is not None
    assert [t.name for t in threading.enumerate()].count("durable-scheduler") == 1
    time.sleep(1.2)  # it looked at the (empty) schedules table at least once, and enqueued nothing
    assert dbos.list_workflows() == []


def test_a_step_or_transaction_can_be_scheduled_and_a_decorator_after_launch_joins_at_once(
    dbos: type[DBOS],
) -> None:
    calls: list[str] = []

    @DBOS.scheduled("* * * * * *")
    @DBOS.step()
    def step_tick(scheduled_time: datetime, actual_time: datetime) -> None:
        calls.append("step")

    @DBOS.scheduled("* * * * * *")
    @DBOS.transaction()
    def transaction_tick(scheduled_time: datetime, actual_time: datetime) -> None:
        calls.append("transaction")

    wait_until(lambda: calls.count("step") >= 2 and calls.count("transaction") >= 2, 10, "both scheduled twice")
    names = {s.name for s in dbos.list_workflows(workflow_id_prefix="sched-")}
    assert names == {"<temp>." + step_tick.__qualname__, "<temp>." + transaction_tick.__qualname__}


FORKED = f"""
import os, sys, threading, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig

RUNS = []

@DBOS.scheduled("* * * * * *")
@DBOS.workflow()
def ticked(scheduled_time, actual_time):
    RUNS.append(scheduled_time)

DBOS(config=DBOSConfig(name="forked", application_database_url=sys.argv[1]))
DBOS.launch()  # the parent's scheduler thread runs
pid = os.fork()
if pid == 0:
    code = 1
    try:
        DBOS.after_fork()
        inherited = [t.name for t in threading.enumerate()].count("durable-scheduler")
        DBOS.launch()
        deadline = time.monotonic() + 10
        while not RUNS and time.monotonic() < deadline:
            time.sleep(0.05)
        threads = [t.name for t in threading.enumerate()].count("durable-scheduler")
        print("child", inherited, threads, len(RUNS) > 0, flush=True)
        DBOS.destroy()
        code = 0
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
DBOS.destroy()
print("parent", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_forked_child_starts_its_own_scheduler_thread(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "forked.py"
    script.write_text(FORKED)
    [done] = in_processes(script, [database_url], count=1, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.split("\n")
    # The child inherits no running thread, starts one at its launch, and runs ticks itself.
    assert "child 0 1 True" in lines and "parent 0" in lines, done.stdout + done.stderr[-3000:]


# -- several processes on one database -------------------------------------------------------------

TICKING_SEC = 3.5  # how long all three processes run the schedule together
PROCESS = f"""
import os, sys, time
from datetime import datetime
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig

from pathlib import Path

LOG, READY, COUNT = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])

@DBOS.scheduled("* * * * * *")
@DBOS.workflow()
def every_second(scheduled_time, actual_time):
    with open(LOG, "a") as f:
        f.write(f"{{scheduled_time.isoformat()}} {{os.getpid()}}\\n")

def tick_of(workflow_id):
    return datetime.fromisoformat(workflow_id.split("-", 2)[2]).timestamp()

DBOS(config=DBOSConfig(name="scheduled", application_database_url=sys.argv[1]))
DBOS.launch()
# Run until 3.5 s after the last of the processes is up, however slowly they started.
(READY / str(os.getpid())).touch()
deadline = time.monotonic() + 60
while len(list(READY.iterdir())) < COUNT and time.monotonic() < deadline:
    time.sleep(0.05)
STOP_AT = max(p.stat().st_mtime for p in READY.iterdir()) + {TICKING_SEC}
time.sleep(max(0.0, STOP_AT - time.time()))
# Every tick before STOP_AT ran somewhere before this process stops (another may have run it).
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    rows = DBOS.list_workflows(workflow_id_prefix="sched-", load_input=False, load_output=False)
    due = [r for r in rows if tick_of(r.workflow_id) < STOP_AT]
    if due and all(r.status == "SUCCESS" for r in due):
        break
    time.sleep(0.1)
DBOS.destroy(workflow_completion_timeout_sec=5)
print("ok")
"""


def test_three_processes_run_each_tick_exactly_once(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "proc.py"
    script.write_text(PROCESS)
    log = tmp_path / "runs.log"
    log.touch()
    ready = tmp_path / "ready"
    ready.mkdir()
    results = in_processes(script, [database_url, str(log), str(ready), "3"], count=3, timeout=90)
    assert all(r.returncode == 0 for r in results), [r.stderr[-3000:] for r in results]
    stop_at = max(p.stat().st_mtime for p in ready.iterdir()) + TICKING_SEC  # as the processes computed it
    ticks = [datetime.fromisoformat(line.split()[0]) for line in log.read_text().splitlines()]
    repeated = [t for t, n in Counter(ticks).items() if n > 1]
    assert not repeated, f"ticks run more than once: {repeated}"
    before_stop = sorted(t for t in ticks if t.timestamp() < stop_at)
    assert len(before_stop) >= 2, ticks
    # Some process was up from the first tick to STOP_AT: no tick in between is missing.
    assert [(b - a).total_seconds() for a, b in zip(before_stop, before_stop[1:], strict=False)] == \
        [1.0] * (len(before_stop) - 1), before_stop
