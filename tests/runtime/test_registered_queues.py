"""Database-backed queues (DBOS.register_queue): stored limits, changed at run time, shared by processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from conftest import RUNTIME_PARENT, make_config
from durable import DBOS, Queue
from durable.error import DBOSException
from helpers import wait_until
from parallel import in_processes

IN_MEMORY = Queue("reg-in-memory", concurrency=2)
STARTED: list[str] = []
RELEASE = threading.Event()
LOCK = threading.Lock()


@pytest.fixture(autouse=True)
def _reset() -> None:
    STARTED.clear()
    RELEASE.clear()


@DBOS.workflow()
def reg_held(label: str) -> str:
    with LOCK:
        STARTED.append(label)
    RELEASE.wait(20)
    return label


@DBOS.workflow()
def reg_echo(value: str) -> str:
    return value


def started() -> int:
    with LOCK:
        return len(STARTED)


def test_a_concurrency_change_reaches_the_running_dequeuer(dbos: type[DBOS]) -> None:
    queue = DBOS.register_queue("reg-dynamic", global_concurrency=1)
    handles = [DBOS.enqueue_workflow("reg-dynamic", reg_held, str(i)) for i in range(3)]
    wait_until(lambda: started() == 1, timeout=10, what="the first workflow to start")
    time.sleep(0.5)
    assert started() == 1, "concurrency 1 let a second workflow start"
    other_view = DBOS.retrieve_queue("reg-dynamic")
    assert other_view is not None
    other_view.set_global_concurrency(3)
    assert queue.global_concurrency == 3, "a getter reads the stored row, not its own copy"
    wait_until(lambda: started() == 3, timeout=10, what="the raised limit to start the other two")
    RELEASE.set()
    assert sorted(h.get_result(timeout_seconds=10) for h in handles) == ["0", "1", "2"]


def test_setters_check_against_the_stored_row_and_refuse_in_memory_queues(dbos: type[DBOS]) -> None:
    one = DBOS.register_queue("reg-checks", global_concurrency=10)
    two = DBOS.retrieve_queue("reg-checks")
    assert two is not None
    one.set_worker_concurrency(5)
    with pytest.raises(ValueError, match="worker_concurrency must be less than or equal to concurrency"):
        two.set_global_concurrency(2)  # two's copy predates worker_concurrency=5: it re-reads first
    with pytest.raises(ValueError, match="at least 1"):
        one.set_partition_concurrency(0)
    one.set_partition_concurrency(2)
    assert one.partition_queue is True
    one.set_partition_concurrency(None)
    assert one.partition_queue is False, "clearing the last partition limit un-partitions the queue"
    with pytest.raises(DBOSException, match="only supported for queues registered"):
        IN_MEMORY.set_concurrency(3)


def test_a_queue_nobody_serves_keeps_its_work_until_registered_again(dbos: type[DBOS]) -> None:
    DBOS.register_queue("reg-deleted")
    assert DBOS.enqueue_workflow("reg-deleted", reg_echo, "first").get_result(timeout_seconds=10) == "first"
    DBOS.delete_queue("reg-deleted")
    assert DBOS.retrieve_queue("reg-deleted") is None and DBOS.list_queues() == []
    waiting = DBOS.enqueue_workflow("reg-deleted", reg_echo, "waits")
    time.sleep(1.0)
    status = waiting.get_status()
    assert status is not None and status.status == "ENQUEUED"
    DBOS.register_queue("reg-deleted", concurrency=5)
    assert waiting.get_result(timeout_seconds=10) == "waits"


def test_listen_queues_limits_what_this_process_dequeues(database_url: str) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config=make_config(database_url))
    DBOS.listen_queues(["reg-heard"])
    with pytest.raises(DBOSException, match="more than once"):
        DBOS.listen_queues(["reg-heard"])
    DBOS.launch()
    try:
        with pytest.raises(DBOSException, match="after DBOS is launched"):
            DBOS.listen_queues([])
        DBOS.register_queue("reg-heard")
        DBOS.register_queue("reg-ignored")
        heard = DBOS.enqueue_workflow("reg-heard", reg_echo, "heard")
        ignored = DBOS.enqueue_workflow("reg-ignored", reg_echo, "ignored")
        assert heard.get_result(timeout_seconds=10) == "heard"
        time.sleep(1.0)
        status = ignored.get_status()
        assert status is not None and status.status == "ENQUEUED"
    finally:
        DBOS.destroy()
    DBOS(config=make_config(database_url))  # a process listening to every queue takes it
    DBOS.launch()
    try:
        assert DBOS.retrieve_workflow(ignored.workflow_id).get_result(timeout_seconds=10) == "ignored"
    finally:
        DBOS.destroy()


WORKER = f"""
import os, sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig

LOG = sys.argv[2]

@DBOS.workflow()
def slot(n):
    with open(LOG, "a") as f:
        f.write(f"start {{n}} {{time.time()}} {{os.getpid()}}\\n")
    time.sleep(0.3)
    with open(LOG, "a") as f:
        f.write(f"end {{n}} {{time.time()}} {{os.getpid()}}\\n")
    return n

DBOS(config=DBOSConfig(name="registered", application_database_url=sys.argv[1]))
DBOS.launch()
DBOS.register_queue("reg-shared", global_concurrency=1)
if sys.argv[3] == "0":
    for i in range(6):
        DBOS.enqueue_workflow("reg-shared", slot, i)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and open(LOG).read().count("end ") < 6:
    time.sleep(0.1)
DBOS.destroy(workflow_completion_timeout_sec=5)
print("ok")
"""


def test_global_concurrency_holds_across_processes(database_url: str, tmp_path: Path) -> None:
    """Two processes serve one registered queue with global_concurrency=1: never two runs at once."""
    log = tmp_path / "slots.log"
    log.touch()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    results: list[object] = []
    threads = [threading.Thread(target=lambda me=me: results.extend(
        in_processes(script, [database_url, str(log), str(me)], count=1, timeout=90))) for me in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(getattr(r, "returncode", 1) == 0 for r in results), [getattr(r, "stderr", "")[-3000:] for r in results]
    events = sorted((float(t), kind) for kind, _n, t, _pid in (line.split() for line in log.read_text().splitlines()))
    running = peak = 0
    for _t, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 1 and sum(1 for _t, kind in events if kind == "end") == 6
