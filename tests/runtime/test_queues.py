"""Queues: enqueue as ENQUEUED, dequeue within concurrency, priority and rate limits, once across processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import RUNTIME_PARENT, wait_for_status
from durable import DBOS, Queue, SetEnqueueOptions, SetWorkflowID
from parallel import in_processes

plain_queue = Queue("test-plain")
serial_queue = Queue("test-serial", concurrency=1)
priority_queue = Queue("test-priority", concurrency=1, priority_enabled=True)
limited_queue = Queue("test-limited", limiter={"limit": 2, "period": 1.0})

STARTS: list[tuple[str, float]] = []
SPANS: list[tuple[float, float]] = []
GATE = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> None:
    STARTS.clear()
    SPANS.clear()
    GATE.clear()


@DBOS.step()
def doubled(x: int) -> int:
    return 2 * x


@DBOS.workflow()
def double_it(x: int) -> int:
    return doubled(x)


@DBOS.workflow()
def timed(seconds: float) -> None:
    start = time.monotonic()
    time.sleep(seconds)
    SPANS.append((start, time.monotonic()))


@DBOS.workflow()
def labelled(label: str) -> str:
    STARTS.append((label, time.monotonic()))
    return label


@DBOS.workflow()
def gated() -> str:
    GATE.wait(10)
    return "opened"


def test_enqueued_workflow_runs_and_returns_its_result(dbos: type[DBOS]) -> None:
    with SetWorkflowID("queued-1"):
        handle = plain_queue.enqueue(double_it, 21)
    assert handle.workflow_id == "queued-1"
    assert handle.get_result() == 42
    status = DBOS.get_workflow_status("queued-1")
    assert status is not None and status.status == "SUCCESS" and status.queue_name == "test-plain"
    other = DBOS.enqueue_workflow("test-plain", double_it, 5)
    assert other.get_result() == 10


def test_enqueue_with_an_existing_id_returns_the_first_workflow(dbos: type[DBOS]) -> None:
    with SetWorkflowID("queued-twice"):
        first = plain_queue.enqueue(double_it, 1)
    assert first.get_result() == 2
    with SetWorkflowID("queued-twice"):
        second = plain_queue.enqueue(double_it, 100)
    assert second.get_result() == 2


def test_global_concurrency_one_runs_workflows_one_at_a_time(dbos: type[DBOS]) -> None:
    handles = [serial_queue.enqueue(timed, 0.15) for _ in range(4)]
    for handle in handles:
        handle.get_result()
    spans = sorted(SPANS)
    assert len(spans) == 4
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), spans


def test_lower_priority_number_is_dequeued_first(dbos: type[DBOS]) -> None:
    blocker = priority_queue.enqueue(gated)
    wait_for_status(blocker.workflow_id, "PENDING")
    handles = []
    for priority in (5, 1, 3):
        with SetEnqueueOptions(priority=priority):
            handles.append(priority_queue.enqueue(labelled, f"p{priority}"))
    GATE.set()
    assert blocker.get_result() == "opened"
    for handle in handles:
        handle.get_result()
    assert [label for label, _ in STARTS] == ["p1", "p3", "p5"]


def test_priority_is_recorded_on_any_queue(dbos: type[DBOS]) -> None:
    """As in DBOS 2.31, priorities need no flag: priority_enabled is accepted and changes nothing."""
    with SetEnqueueOptions(priority=7):
        handle = plain_queue.enqueue(double_it, 1)
    assert handle.get_result() == 2
    status = DBOS.get_workflow_status(handle.workflow_id)
    assert status is not None and status.priority == 7


def test_bad_enqueue_options_are_refused_with_the_value(dbos: type[DBOS]) -> None:
    with pytest.raises(ValueError, match="Invalid priority 0"):
        SetEnqueueOptions(priority=0)
    with pytest.raises(ValueError, match="deduplication_id must be a non-empty string"):
        SetEnqueueOptions(deduplication_id="")


def test_rate_limiter_caps_starts_per_period(dbos: type[DBOS], database_url: str) -> None:
    handles = [limited_queue.enqueue(labelled, str(i)) for i in range(5)]
    for handle in handles:
        handle.get_result()
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            times = [row[0] for row in conn.exec_driver_sql(
                f"SELECT started_at_epoch_ms FROM {prefix}workflow_status WHERE queue_name = 'test-limited' "
                "ORDER BY started_at_epoch_ms").all()]
    finally:
        engine.dispose()
    assert len(times) == 5
    # At most 2 dequeues in any 1 s: the third of any run of three comes a full period after the first.
    for first, third in zip(times, times[2:], strict=False):
        assert third - first >= 1000, times


PROCESS = f"""
import os, sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig, Queue, SetWorkflowID

queue = Queue("shared-queue", worker_concurrency=2)
LOG = sys.argv[2]

@DBOS.step()
def note(n):
    time.sleep(0.02)
    with open(LOG, "a") as f:
        f.write(f"{{n}} {{os.getpid()}}\\n")
    return n

@DBOS.workflow()
def job(n):
    return note(n)

DBOS(config=DBOSConfig(name="queues", application_database_url=sys.argv[1]))
DBOS.launch()
me = int(sys.argv[3])
for i in range(10):
    with SetWorkflowID(f"job-{{me}}-{{i}}"):
        queue.enqueue(job, f"{{me}}-{{i}}")
deadline = time.monotonic() + 60
ids = [f"job-{{p}}-{{i}}" for p in (0, 1) for i in range(10)]
while time.monotonic() < deadline:
    statuses = [DBOS.get_workflow_status(w) for w in ids]
    if all(s is not None and s.status == "SUCCESS" for s in statuses):
        break
    time.sleep(0.1)
DBOS.destroy(workflow_completion_timeout_sec=5)
print("ok")
"""


def test_two_processes_dequeue_one_queue_without_running_a_workflow_twice(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    log.touch()
    procs = []
    for me in (0, 1):
        script = tmp_path / f"proc{me}.py"
        script.write_text(PROCESS)
        procs.append((script, me))
    results: list[object] = []
    threads = [threading.Thread(target=lambda s=s, m=m: results.extend(
        in_processes(s, [database_url, str(log), str(m)], count=1))) for s, m in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(getattr(r, "returncode", 1) == 0 for r in results), [getattr(r, "stderr", "")[-3000:] for r in results]
    runs = log.read_text().split()
    names = runs[0::2]
    assert sorted(names) == sorted(f"{p}-{i}" for p in (0, 1) for i in range(10))
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT status, COUNT(*) FROM {prefix}workflow_status GROUP BY status").all()
    finally:
        engine.dispose()
    assert rows == [("SUCCESS", 20)]
