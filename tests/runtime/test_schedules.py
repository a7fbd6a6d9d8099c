"""Schedules stored in the database (DBOS.create_schedule and friends): checked, fired once per tick
across processes, paused, replaced, backfilled, triggered, and recorded as steps inside a workflow."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import RUNTIME_PARENT, make_config
from durable import DBOS, DBOSConfiguredInstance
from durable.error import DBOSException
from durable.registry import REGISTRY
from helpers import wait_until

RUNS: list[tuple[datetime, Any]] = []
RUNS_LOCK = threading.Lock()


@DBOS.workflow()
def every_tick(scheduled_at: datetime, context: Any) -> None:
    with RUNS_LOCK:
        RUNS.append((scheduled_at, context))


@DBOS.workflow()
def other_workflow(scheduled_at: datetime, context: Any) -> None: ...


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    RUNS.clear()
    yield
    DBOS.destroy()
    # Classes defined in a test body are registered again by its next parametrization.
    for name in [n for n in REGISTRY.classes if "<locals>" in n]:
        del REGISTRY.classes[name]
    for key in [k for k in REGISTRY.instances if "<locals>" in k[0]]:
        del REGISTRY.instances[key]


def launch(database_url: str, **extra: object) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url, **extra))
    DBOS.launch()


def far_daily_cron() -> str:
    """A daily cron about 12 hours away: it cannot fire during a test."""
    t = datetime.now(UTC) + timedelta(hours=12)
    return f"{t.minute} {t.hour} * * *"


# -- checking and storing -------------------------------------------------------------------------


def test_schedules_are_stored_listed_filtered_paused_and_deleted(dbos: type[DBOS]) -> None:
    DBOS.create_schedule(schedule_name="eu-report", workflow_fn=every_tick, schedule="0 2 * * *",
                         context={"region": "eu"}, cron_timezone="Europe/Paris")
    DBOS.create_schedule(schedule_name="us-report", workflow_fn=other_workflow, schedule="0 3 * * *")
    DBOS.pause_schedule("us-report")
    eu = DBOS.get_schedule("eu-report")
    assert eu is not None
    assert {k: eu[k] for k in ("workflow_name", "schedule", "status", "context", "cron_timezone",  # type: ignore[misc]
                               "workflow_class_name", "queue_name", "automatic_backfill", "last_fired_at")} == {
        "workflow_name": "every_tick", "schedule": "0 2 * * *", "status": "ACTIVE", "context": {"region": "eu"},
        "cron_timezone": "Europe/Paris", "workflow_class_name": None, "queue_name": None,
        "automatic_backfill": False, "last_fired_at": None}
    assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["eu-report", "us-report"]
    assert [s["schedule_name"] for s in DBOS.list_schedules(status="PAUSED")] == ["us-report"]
    assert [s["schedule_name"] for s in DBOS.list_schedules(workflow_name=["every_tick"])] == ["eu-report"]
    assert len(DBOS.list_schedules(schedule_name_prefix=["eu-", "us-"])) == 2
    assert DBOS.list_schedules(schedule_name_prefix="%") == []  # a prefix is literal, not a LIKE pattern
    DBOS.resume_schedule("us-report")
    assert DBOS.list_schedules(status="PAUSED") == []
    DBOS.delete_schedule("us-report")
    DBOS.delete_schedule("no-such-schedule")  # no error, as in DBOS
    assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["eu-report"]
    assert DBOS.get_schedule("us-report") is None


def test_bad_schedules_are_refused_with_dbos_messages_and_store_nothing(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class()
    class Configured(DBOSConfiguredInstance):
        @DBOS.workflow()
        def run(self, scheduled_at: datetime, context: Any) -> None: ...

    def plain(scheduled_at: datetime, context: Any) -> None: ...

    cases: list[tuple[dict[str, Any], str]] = [
        ({"schedule": "not a cron"}, "Invalid cron schedule: 'not a cron'"),
        ({"cron_timezone": "Mars/Olympus"}, "Invalid timezone: 'Mars/Olympus'"),
        ({"queue_name": "undeclared"}, "Queue 'undeclared' is not declared"),
        ({"workflow_fn": plain}, "is not registered"),
        ({"workflow_fn": Configured("c1").run}, "Configured instance methods cannot be used"),
    ]
    for change, message in cases:
        fields: dict[str, Any] = {"schedule_name": "s", "workflow_fn": every_tick, "schedule": "* * * * *", **change}
        with pytest.raises(DBOSException, match=message):
            DBOS.create_schedule(**fields)
    assert DBOS.list_schedules() == []
    DBOS.create_schedule(schedule_name="s", workflow_fn=every_tick, schedule="* * * * *")
    with pytest.raises(DBOSException, match="Schedule 's' already exists"):
        DBOS.create_schedule(schedule_name="s", workflow_fn=other_workflow, schedule="0 0 * * *")
    with pytest.raises(DBOSException, match="Schedule entry 1 is missing required field 'schedule'"):
        DBOS.apply_schedules([{"schedule_name": "a", "workflow_fn": every_tick, "schedule": "* * * * *"},
                              {"schedule_name": "b", "workflow_fn": every_tick}])
    assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["s"]  # nothing of the refused batch
    with pytest.raises(DBOSException, match="does not exist"):
        DBOS.trigger_schedule("missing")
    with pytest.raises(DBOSException, match="does not exist"):
        DBOS.backfill_schedule("missing", datetime(2025, 1, 1), datetime(2025, 1, 2))


def test_apply_replaces_definitions_but_keeps_id_status_and_last_firing(dbos: type[DBOS]) -> None:
    entry: Any = {"schedule_name": "kept", "workflow_fn": every_tick, "schedule": "0 0 * * *", "context": 1}
    DBOS.apply_schedules([entry])
    first = DBOS.get_schedule("kept")
    assert first is not None
    DBOS.pause_schedule("kept")
    DBOS.apply_schedules([{**entry, "schedule": "0 1 * * *", "context": 2, "automatic_backfill": True}])
    second = DBOS.get_schedule("kept")
    assert second is not None
    assert (second["schedule_id"], second["status"]) == (first["schedule_id"], "PAUSED")
    assert (second["schedule"], second["context"], second["automatic_backfill"]) == ("0 1 * * *", 2, True)


# -- firing in one process ------------------------------------------------------------------------


def test_a_schedule_fires_with_its_context_stops_when_paused_and_takes_a_new_context_live(dbos: type[DBOS]) -> None:
    DBOS.create_schedule(schedule_name="live", workflow_fn=every_tick, schedule="* * * * * *", context="v1")
    wait_until(lambda: len(RUNS) >= 2, 10, "two runs")
    assert {c for _, c in RUNS} == {"v1"}
    schedule = DBOS.get_schedule("live")
    assert schedule is not None and schedule["last_fired_at"] is not None
    runs = DBOS.list_workflows(schedule_name="live")
    assert runs and all(r.workflow_id.startswith("sched-live-") and r.schedule_name == "live" for r in runs)
    DBOS.pause_schedule("live")
    time.sleep(1.5)  # a run enqueued just before the pause may still finish
    paused_at = len(RUNS)
    time.sleep(2)
    assert len(RUNS) == paused_at
    DBOS.resume_schedule("live")
    DBOS.apply_schedules([{"schedule_name": "live", "workflow_fn": every_tick, "schedule": "* * * * * *",
                           "context": "v2"}])
    wait_until(lambda: [c for _, c in RUNS[paused_at:]].count("v2") >= 2, 10, "two runs with the new context")
    ticks = [t for t, _ in RUNS]
    assert len(ticks) == len(set(ticks))


def test_ticks_are_read_in_the_schedules_time_zone(dbos: type[DBOS]) -> None:
    DBOS.create_schedule(schedule_name="ny-midnight", workflow_fn=every_tick, schedule="0 0 * * *",
                         cron_timezone="America/New_York")
    start, end = datetime(2024, 12, 31, 23, 0, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)
    handles = DBOS.backfill_schedule("ny-midnight", start, end)
    assert [h.workflow_id for h in handles] == ["sched-ny-midnight-2025-01-01T00:00:00-05:00",
                                                "sched-ny-midnight-2025-01-02T00:00:00-05:00"]
    for handle in handles:
        handle.get_result()
    assert sorted(t.astimezone(UTC).hour for t, _ in RUNS) == [5, 5]
    assert {t.utcoffset() for t, _ in RUNS} == {timedelta(hours=-5)}  # the tick keeps its zone


def test_backfill_enqueues_each_tick_once_and_naive_times_are_utc(dbos: type[DBOS]) -> None:
    DBOS.create_schedule(schedule_name="hourly", workflow_fn=every_tick, schedule="0 * * * *", context=[1])
    handles = DBOS.backfill_schedule("hourly", datetime(2025, 1, 1, 0, 30), datetime(2025, 1, 1, 3, 30))
    for handle in handles:
        handle.get_result()
    again = DBOS.backfill_schedule("hourly", datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
                                   datetime(2025, 1, 1, 3, 30, tzinfo=UTC))
    assert [h.workflow_id for h in again] == [h.workflow_id for h in handles]
    time.sleep(0.5)
    assert sorted(t for t, _ in RUNS) == [datetime(2025, 1, 1, h, tzinfo=UTC) for h in (1, 2, 3)]
    assert all(c == [1] for _, c in RUNS)
    with pytest.raises(DBOSException, match="more than 10000 runs"):
        DBOS.backfill_schedule("hourly", datetime(2000, 1, 1), datetime(2025, 1, 1))


def test_trigger_runs_now_on_the_schedules_queue_and_class_methods_get_their_class(dbos: type[DBOS]) -> None:
    DBOS.register_queue("reports")
    seen: list[tuple[str, Any, str | None]] = []

    @DBOS.dbos_class()
    class Reports:
        @classmethod
        @DBOS.workflow()
        def nightly(cls, scheduled_at: datetime, context: Any) -> None:
            status = DBOS.get_workflow_status(DBOS.workflow_id or "")
            seen.append((cls.__name__, context, status.queue_name if status else None))

    DBOS.create_schedule(schedule_name="nightly", workflow_fn=Reports.nightly, schedule=far_daily_cron(),
                         context={"k": 1}, queue_name="reports")
    stored = DBOS.get_schedule("nightly")
    assert stored is not None and stored["workflow_class_name"] == Reports.__qualname__
    handle = DBOS.trigger_schedule("nightly")
    assert handle.workflow_id.startswith("sched-nightly-trigger-")
    handle.get_result()
    assert seen == [("Reports", {"k": 1}, "reports")]


def test_automatic_backfill_catches_up_the_ticks_missed_while_down(database_url: str) -> None:
    launch(database_url)
    DBOS.create_schedule(schedule_name="catch-up", workflow_fn=every_tick, schedule="0 * * * *",
                         automatic_backfill=True)
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3, minutes=1)
    DBOS.destroy()
    _set_last_fired(database_url, "catch-up", three_hours_ago.isoformat())
    launch(database_url)
    wait_until(lambda: len(RUNS) >= 3, 15, "the missed hourly ticks")
    assert all(three_hours_ago < t <= datetime.now(UTC) and t.minute == 0 for t, _ in RUNS)


def _set_last_fired(database_url: str, name: str, value: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    table = "dbos.workflow_schedules" if engine.dialect.name == "postgresql" else "dbos_workflow_schedules"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {table} SET last_fired_at = :v WHERE schedule_name = :n"),
                         {"v": value, "n": name})
    finally:
        engine.dispose()


def test_inside_a_workflow_schedule_calls_are_steps_and_replay(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def manage() -> int:
        DBOS.create_schedule(schedule_name="from-wf", workflow_fn=every_tick, schedule=far_daily_cron())
        count = len(DBOS.list_schedules())
        DBOS.delete_schedule("from-wf")
        return count

    handle = DBOS.start_workflow(manage)
    assert handle.get_result() == 1
    steps = DBOS.list_workflow_steps(handle.workflow_id)
    assert [s["function_name"] for s in steps] == ["DBOS.createSchedule", "DBOS.listSchedules",
                                                    "DBOS.deleteSchedule"]
    forked = DBOS.fork_workflow(handle.workflow_id, 3)
    assert forked.get_result() == 1  # the list replayed; the schedule is gone
    assert DBOS.list_schedules() == []

    @DBOS.workflow()
    def refused() -> None:
        DBOS.trigger_schedule("anything")

    with pytest.raises(DBOSException, match="cannot be called from within a workflow"):
        DBOS.start_workflow(refused).get_result()


# -- several processes ----------------------------------------------------------------------------

WORKER = f"""
import os, sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig

LOG, SECONDS = sys.argv[2], float(sys.argv[3])

@DBOS.workflow()
def every_tick(scheduled_at, context):
    with open(LOG, "a") as f:
        f.write(f"{{scheduled_at.isoformat()}} {{context}} {{os.getpid()}}\\n")

DBOS(config=DBOSConfig(name="schedules", application_database_url=sys.argv[1]))
DBOS.launch()
print("ready", flush=True)
time.sleep(SECONDS)
DBOS.destroy(workflow_completion_timeout_sec=5)
print("ok", flush=True)
"""


def test_a_schedule_created_at_run_time_fires_in_other_processes_once_per_tick(
    database_url: str, tmp_path: Path
) -> None:
    launch(database_url)  # creates the tables before the workers start
    DBOS.destroy()
    script, log = tmp_path / "worker.py", tmp_path / "runs.log"
    script.write_text(WORKER)
    log.touch()
    workers = [subprocess.Popen([sys.executable, str(script), database_url, str(log), "9"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        # This process only creates the schedule, then stops: the workers alone fire it.
        launch(database_url)
        DBOS.create_schedule(schedule_name="shared", workflow_fn=every_tick, schedule="* * * * * *", context="ctx")
        DBOS.destroy()
        outs = [worker.communicate(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert all(w.returncode == 0 for w in workers), [err[-3000:] for _, err in outs]
    lines = [line.split() for line in log.read_text().splitlines()]
    ticks = [datetime.fromisoformat(t) for t, _, _ in lines]
    assert len(ticks) >= 3, lines
    assert not [t for t, n in Counter(ticks).items() if n > 1], "a tick ran twice"
    assert {c for _, c, _ in lines} == {"ctx"}
    assert {int(p) for _, _, p in lines} <= {w.pid for w in workers}
    ordered = sorted(ticks)[:-2]  # the last ticks may be cut short by the workers stopping
    assert all((b - a).total_seconds() == 1.0 for a, b in zip(ordered, ordered[1:], strict=False)), ordered
