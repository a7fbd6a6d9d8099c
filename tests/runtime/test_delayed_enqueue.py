"""Delayed enqueues, set_workflow_delay, duplication_policy, enqueue by name, and the Debouncer."""

from __future__ import annotations

import threading
import time

import pytest

from durable import DBOS, Debouncer, SetEnqueueOptions, SetWorkflowID
from durable.error import DBOSException, DBOSQueueDeduplicatedError

RUNS: list[tuple[str, float]] = []
GATE = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> None:
    RUNS.clear()
    GATE.clear()


@DBOS.workflow()
def delay_noted(label: str) -> str:
    RUNS.append((label, time.time()))
    return label


@DBOS.workflow()
def delay_gated(label: str) -> str:
    GATE.wait(20)
    return label


def test_a_delayed_workflow_waits_its_delay_then_runs(dbos: type[DBOS]) -> None:
    DBOS.register_queue("delay-plain")
    before = int(time.time() * 1000)
    with SetEnqueueOptions(delay_seconds=1.5):
        handle = DBOS.enqueue_workflow("delay-plain", delay_noted, "late")
    status = handle.get_status()
    assert status is not None and status.status == "DELAYED"
    assert status.delay_until_epoch_ms is not None and status.delay_until_epoch_ms >= before + 1500
    time.sleep(0.7)
    assert RUNS == [], "a delayed workflow ran before its time"
    assert handle.get_result(timeout_seconds=10) == "late"
    done = handle.get_status()
    assert done is not None and done.dequeued_at is not None and done.dequeued_at >= status.delay_until_epoch_ms
    assert RUNS[0][1] - before / 1000 < 4, "it ran much later than its delay"


def test_delayed_workflows_still_obey_priority_and_the_rate_limiter(dbos: type[DBOS]) -> None:
    DBOS.register_queue("delay-limited", global_concurrency=1, limiter={"limit": 1, "period": 1.0})
    handles = {}
    for label, priority in (("low", 9), ("high", 1), ("middle", 5)):
        with SetEnqueueOptions(delay_seconds=600, priority=priority):
            handles[label] = DBOS.enqueue_workflow("delay-limited", delay_noted, label)
    due = int(time.time() * 1000) + 500  # all three due at once: priority decides, the limiter spaces them
    for handle in handles.values():
        DBOS.set_workflow_delay(handle.workflow_id, delay_until_epoch_ms=due)
    low, high, middle = handles["low"], handles["high"], handles["middle"]
    for handle in (low, high, middle):
        handle.get_result(timeout_seconds=15)
    assert [label for label, _ in RUNS] == ["high", "middle", "low"]
    starts = [t for _, t in RUNS]
    assert all(b - a >= 0.9 for a, b in zip(starts, starts[1:], strict=False)), starts


def test_set_workflow_delay_cancel_and_resume_of_delayed_workflows(dbos: type[DBOS]) -> None:
    DBOS.register_queue("delay-managed")
    with SetEnqueueOptions(delay_seconds=600):
        shortened = DBOS.enqueue_workflow("delay-managed", delay_noted, "shortened")
        cancelled = DBOS.enqueue_workflow("delay-managed", delay_noted, "cancelled")
        resumed = DBOS.enqueue_workflow("delay-managed", delay_noted, "resumed")
    DBOS.set_workflow_delay(shortened.workflow_id, delay_seconds=0.3)
    assert shortened.get_result(timeout_seconds=10) == "shortened"
    DBOS.cancel_workflow(cancelled.workflow_id)
    assert [w.workflow_id for w in DBOS.list_queued_workflows()] == [resumed.workflow_id]
    DBOS.resume_workflow(resumed.workflow_id)
    assert resumed.get_result(timeout_seconds=10) == "resumed"
    status = cancelled.get_status()
    assert status is not None and status.status == "CANCELLED"
    with pytest.raises(DBOSException, match="either delay_seconds or delay_until_epoch_ms"):
        DBOS.set_workflow_delay(resumed.workflow_id)


def test_enqueue_options_that_need_a_queue_are_refused_on_start_workflow(dbos: type[DBOS]) -> None:
    with SetEnqueueOptions(delay_seconds=5), SetWorkflowID("no-queue"), pytest.raises(
            DBOSException, match="delay_seconds set on a workflow that is not being enqueued"):
        DBOS.start_workflow(delay_noted, "x")
    assert DBOS.get_workflow_status("no-queue") is None
    with SetEnqueueOptions(app_version="pinned-v"), SetWorkflowID("pinned"):
        DBOS.start_workflow(delay_noted, "pinned").get_result(timeout_seconds=10)
    status = DBOS.get_workflow_status("pinned")
    assert status is not None and status.app_version == "pinned-v"


def test_return_existing_attaches_to_the_holder_of_the_deduplication_id(dbos: type[DBOS]) -> None:
    DBOS.register_queue("dedup-policy")
    with SetEnqueueOptions(deduplication_id="d1", duplication_policy="return-existing"):
        first = DBOS.enqueue_workflow("dedup-policy", delay_gated, "first")
        second = DBOS.enqueue_workflow("dedup-policy", delay_gated, "second")
    assert second.workflow_id == first.workflow_id
    with SetEnqueueOptions(deduplication_id="d1"), pytest.raises(DBOSQueueDeduplicatedError):
        DBOS.enqueue_workflow("dedup-policy", delay_gated, "third")
    GATE.set()
    assert second.get_result(timeout_seconds=10) == "first"
    with pytest.raises(DBOSException, match="requires a deduplication_id"), SetEnqueueOptions(
            duplication_policy="return-existing"):
        DBOS.enqueue_workflow("dedup-policy", delay_gated, "no id")


def test_enqueue_by_name_runs_the_registered_workflow_and_records_the_runners_version(dbos: type[DBOS]) -> None:
    DBOS.register_queue("by-name")
    handle = DBOS.enqueue_workflow_with_options({"workflow_name": delay_noted.__qualname__, "queue_name": "by-name"}, "n")
    assert handle.get_result(timeout_seconds=10) == "n"
    status = handle.get_status()
    # Unset at enqueue, so any executor may take it; the one that dequeues it records its version (as DBOS).
    assert status is not None and status.app_version == DBOS.application_version and status.queue_name == "by-name"
    with pytest.raises(DBOSException, match="did you mean 'queue_name'"):
        DBOS.enqueue_workflow_with_options({"workflow_name": "x", "queue_nme": "by-name"})


def test_a_debounced_burst_runs_once_with_the_last_inputs(dbos: type[DBOS]) -> None:
    debouncer = Debouncer.create(delay_noted)
    handles = [debouncer.debounce("key", 0.6, f"call {i}") for i in range(5)]
    assert len({h.workflow_id for h in handles}) == 1
    assert handles[0].get_result(timeout_seconds=10) == "call 4"
    assert [label for label, _ in RUNS] == ["call 4"]
    later = debouncer.debounce("key", 0.1, "after")
    assert later.workflow_id != handles[0].workflow_id, "a started workflow gave up its debounce key"
    assert later.get_result(timeout_seconds=10) == "after"


def test_the_debounce_timeout_caps_how_long_calls_can_push_the_start_back(dbos: type[DBOS]) -> None:
    debouncer = Debouncer.create(delay_noted, debounce_timeout_sec=1.0)
    start = time.time()
    first = debouncer.debounce("capped", 1000, "a")
    second = debouncer.debounce("capped", 1000, "b")
    assert second.workflow_id == first.workflow_id
    assert first.get_result(timeout_seconds=10) == "b"
    assert time.time() - start < 5
    with SetEnqueueOptions(deduplication_id="mine"), pytest.raises(DBOSException, match="debounce key"):
        debouncer.debounce("capped", 1, "c")


def test_wait_first_returns_the_first_workflow_to_finish(dbos: type[DBOS]) -> None:
    DBOS.register_queue("wait-first")
    slow = DBOS.enqueue_workflow("wait-first", delay_gated, "slow")
    with SetEnqueueOptions(delay_seconds=0.2):
        quick = DBOS.enqueue_workflow("wait-first", delay_noted, "quick")
    assert DBOS.wait_first([slow, quick]).workflow_id == quick.workflow_id
    GATE.set()
    with pytest.raises(ValueError, match="must not be empty"):
        DBOS.wait_first([])
