"""fork_workflow's options, resume onto a queue, resume_workflows and delete_workflow(s) (DBOS 2.31.1's)."""

from __future__ import annotations

import threading
import time

import pytest

from durable import DBOS, SetWorkflowID
from durable.error import DBOSAwaitedWorkflowCancelledError, DBOSException, DBOSNonExistentWorkflowError

CALLS: dict[str, int] = {}
GATE = threading.Event()
FACTOR = {"value": 2}


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    GATE.clear()
    FACTOR["value"] = 2


@DBOS.step()
def mo_counted(name: str) -> str:
    CALLS[name] = CALLS.get(name, 0) + 1
    return name


@DBOS.workflow()
def mo_two_steps() -> list[str]:
    return [mo_counted("one"), mo_counted("two")]


@DBOS.workflow()
def mo_waits_at_gate() -> str:
    mo_counted("before")
    while not GATE.is_set():
        DBOS.sleep(0.05)
    return mo_counted("after")


@DBOS.step()
def mo_gate_step() -> None:
    GATE.wait(10)


@DBOS.workflow()
def mo_gated_flow() -> str:
    mo_counted("before")
    mo_gate_step()
    return mo_counted("after")


@DBOS.step()
def mo_scaled(x: int) -> int:
    return x * FACTOR["value"]


@DBOS.workflow()
def mo_child(x: int) -> int:
    return mo_scaled(x)


@DBOS.workflow()
def mo_parent_of_two() -> int:
    first = DBOS.start_workflow(mo_child, 1)
    second = DBOS.start_workflow(mo_child, 10)
    return first.get_result() + second.get_result()


def wait_for_checkpoint(workflow_id: str, step_id: int) -> None:
    """Until the workflow's step ``step_id`` is recorded (its body having run is not enough)."""
    deadline = time.monotonic() + 10
    while step_id not in [s["function_id"] for s in DBOS.list_workflow_steps(workflow_id)]:
        assert time.monotonic() < deadline, f"step {step_id} of {workflow_id} never recorded"
        time.sleep(0.01)


def test_fork_marks_both_sides_and_clamps_the_start_step(dbos: type[DBOS]) -> None:
    with SetWorkflowID("orig"):
        mo_two_steps()
    with SetWorkflowID("fork-a"):
        handle = DBOS.fork_workflow("orig", -1)  # below 1: every step runs again, as in DBOS
    assert handle.get_result(timeout_seconds=10) == ["one", "two"]
    assert CALLS == {"one": 2, "two": 2}
    assert handle.get_status().forked_from == "orig"
    original = DBOS.get_workflow_status("orig")
    assert original is not None and original.was_forked_from is True
    assert [w.workflow_id for w in DBOS.list_workflows(forked_from="orig")] == ["fork-a"]
    assert [w.workflow_id for w in DBOS.list_workflows(was_forked_from=True)] == ["orig"]
    assert [w.workflow_id for w in DBOS.list_workflows(was_forked_from=False)] == ["fork-a"]


def test_fork_with_a_timeout_is_cancelled_when_it_passes(dbos: type[DBOS]) -> None:
    with SetWorkflowID("gated"):
        handle = DBOS.start_workflow(mo_waits_at_gate)
    DBOS.cancel_workflow("gated")
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    forked = DBOS.fork_workflow("gated", 1, timeout_seconds=0.2)
    assert forked.get_status().workflow_timeout_ms == 200
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        forked.get_result(timeout_seconds=10)
    with pytest.raises(DBOSException, match="Timeouts must be positive"):
        DBOS.fork_workflow("gated", 1, timeout_seconds=0)


def test_fork_and_resume_onto_a_queue(dbos: type[DBOS]) -> None:
    DBOS.register_queue("mgmt-q")
    with SetWorkflowID("on-q"):
        handle = DBOS.start_workflow(mo_gated_flow)
    wait_for_checkpoint("on-q", 1)
    DBOS.cancel_workflow("on-q")
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    resumed = DBOS.resume_workflow("on-q", queue_name="mgmt-q")
    assert resumed.get_result(timeout_seconds=10) == "after"
    status = resumed.get_status()
    assert status.queue_name == "mgmt-q" and status.dequeued_at is not None
    forked = DBOS.fork_workflow("on-q", 2, queue_name="mgmt-q", queue_partition_key="k")
    assert forked.get_result(timeout_seconds=10) == "after"
    forked_status = forked.get_status()
    assert (forked_status.queue_name, forked_status.queue_partition_key) == ("mgmt-q", "k")
    assert CALLS["before"] == 1  # step 1 was kept by the resume and the fork


def test_fork_replaces_children_in_the_kept_steps(dbos: type[DBOS]) -> None:
    with SetWorkflowID("fam"):
        assert mo_parent_of_two() == 2 + 20
    first_child = "fam-1"
    FACTOR["value"] = 100
    new_child = DBOS.fork_workflow(first_child, 1)
    assert new_child.get_result(timeout_seconds=10) == 100
    # Steps 1 and 2 start the children; the fork keeps them, with the first mo_child replaced, and
    # awaits the children again: the replacement's 100, and the second mo_child's recorded 20.
    forked = DBOS.fork_workflow("fam", 3, replacement_children={first_child: new_child.workflow_id})
    assert forked.get_result(timeout_seconds=10) == 100 + 20
    recorded = {s["function_id"]: s["child_workflow_id"] for s in DBOS.list_workflow_steps(forked.workflow_id)}
    assert recorded[1] == new_child.workflow_id and recorded[2] == "fam-2"


def test_resume_workflows_refuses_unknown_ids_before_resuming_any(dbos: type[DBOS]) -> None:
    with SetWorkflowID("r1"):
        handle = DBOS.start_workflow(mo_gated_flow)
    wait_for_checkpoint("r1", 1)
    DBOS.cancel_workflows(["r1"])
    GATE.set()
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout_seconds=10)
    with pytest.raises(DBOSNonExistentWorkflowError, match="missing"):
        DBOS.resume_workflows(["r1", "missing"])
    assert DBOS.get_workflow_status("r1").status == "CANCELLED"  # type: ignore[union-attr]
    [resumed] = DBOS.resume_workflows(["r1"])
    assert resumed.get_result(timeout_seconds=10) == "after"


def test_delete_takes_the_workflow_and_optionally_its_descendants(dbos: type[DBOS]) -> None:
    with SetWorkflowID("del"):
        mo_parent_of_two()
    DBOS.delete_workflow("del")
    assert DBOS.get_workflow_status("del") is None
    assert DBOS.list_workflow_steps("del") == []
    assert {w.workflow_id for w in DBOS.list_workflows()} == {"del-1", "del-2"}
    with SetWorkflowID("del2"):
        mo_parent_of_two()
    DBOS.delete_workflows(["del2"], delete_children=True)
    assert {w.workflow_id for w in DBOS.list_workflows()} == {"del-1", "del-2"}
    DBOS.delete_workflows([])  # nothing to do
    assert DBOS.list_workflow_steps("del2-1") == []


def test_resume_takes_an_enqueued_workflow_off_its_queues_wait(dbos: type[DBOS]) -> None:
    queue = DBOS.register_queue("mgmt-one-at-a-time", concurrency=1)
    blocked = queue.enqueue(mo_gated_flow)
    wait_for_checkpoint(blocked.workflow_id, 1)
    with SetWorkflowID("waiting"):
        waiting = queue.enqueue(mo_two_steps)
    assert waiting.get_status().status == "ENQUEUED"
    DBOS.resume_workflow("waiting")
    assert waiting.get_result(timeout_seconds=10) == ["one", "two"]  # while the queue's one slot is taken
    assert blocked.get_status().status == "PENDING"
    GATE.set()
    assert blocked.get_result(timeout_seconds=10) == "after"
