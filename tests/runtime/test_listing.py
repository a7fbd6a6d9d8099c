"""list_workflows / list_queued_workflows filters and list_workflow_steps paging, as DBOS 2.31.1 has them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from durable import DBOS, SetWorkflowID
from durable.error import DBOSException


@DBOS.step()
def listing_echo(value: str) -> str:
    return value


@DBOS.workflow()
def listing_leaf(value: str) -> str:
    return listing_echo(value)


@DBOS.workflow()
def listing_failing() -> None:
    raise RuntimeError("boom")


@DBOS.workflow()
def listing_parent() -> str:
    return listing_leaf("from-parent")


@DBOS.workflow()
def listing_three_steps() -> list[str]:
    return [listing_echo("a"), listing_echo("b"), listing_echo("c")]


def ids(statuses: list[object]) -> list[str]:
    return [s.workflow_id for s in statuses]  # type: ignore[attr-defined]


def iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat()


def test_filters_by_parent_and_prefix(dbos: type[DBOS]) -> None:
    with SetWorkflowID("p-1"):
        listing_parent()
    with SetWorkflowID("alone_1"):
        listing_leaf("x")
    assert ids(DBOS.list_workflows(parent_workflow_id="p-1")) == ["p-1-1"]
    assert ids(DBOS.list_workflows(parent_workflow_id=["nope", "p-1"])) == ["p-1-1"]
    assert ids(DBOS.list_workflows(has_parent=True)) == ["p-1-1"]
    assert ids(DBOS.list_workflows(has_parent=False)) == ["p-1", "alone_1"]
    # A prefix is text, not a pattern: "_" matches only itself.
    assert ids(DBOS.list_workflows(workflow_id_prefix="alone_")) == ["alone_1"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="alone%")) == []
    assert ids(DBOS.list_workflows(workflow_id_prefix=["p-", "alone"])) == ["p-1", "p-1-1", "alone_1"]
    assert ids(DBOS.list_workflows(workflow_id_prefix=[])) == []


def test_completed_and_created_bounds_tell_before_from_after(dbos: type[DBOS]) -> None:
    before = datetime.now().isoformat()  # naive: local time, as DBOS reads it
    with SetWorkflowID("done"):
        listing_leaf("x")
    between = datetime.now().isoformat()
    with SetWorkflowID("later"), pytest.raises(RuntimeError):
        listing_failing()
    after = datetime.now().isoformat()
    # Each stamping call returns only once its millisecond is over, so these hold every time.
    assert ids(DBOS.list_workflows(start_time=before, end_time=between)) == ["done"]
    assert ids(DBOS.list_workflows(start_time=between, end_time=after)) == ["later"]
    assert ids(DBOS.list_workflows(completed_after=before, completed_before=between)) == ["done"]
    assert ids(DBOS.list_workflows(completed_after=between)) == ["later"]
    assert ids(DBOS.list_workflows(completed_before=before)) == []


def test_a_whole_millisecond_end_bound_is_inclusive(dbos: type[DBOS]) -> None:
    with SetWorkflowID("exact"):
        listing_leaf("x")
    found = DBOS.get_workflow_status("exact")
    assert found is not None and found.created_at is not None and found.completed_at is not None
    assert ids(DBOS.list_workflows(start_time=iso(found.created_at), end_time=iso(found.created_at))) == ["exact"]
    assert ids(DBOS.list_workflows(end_time=iso(found.created_at - 1))) == []
    assert ids(DBOS.list_workflows(completed_before=iso(found.completed_at))) == ["exact"]
    # A bound 0.5 ms past the stamp can only have been read after the stamping call returned.
    assert ids(DBOS.list_workflows(end_time=iso(found.created_at + 0.5))) == []


def test_dequeued_filters_and_dequeued_at(dbos: type[DBOS]) -> None:
    queue = DBOS.register_queue("listing-q")
    before = datetime.now(UTC).isoformat()
    with SetWorkflowID("queued-1"):
        handle = queue.enqueue(listing_leaf, "q")
    assert handle.get_result(timeout_seconds=10) == "q"
    with SetWorkflowID("direct-1"):
        listing_leaf("d")
    status = DBOS.get_workflow_status("queued-1")
    assert status is not None and status.dequeued_at is not None and status.created_at is not None
    assert status.dequeued_at >= status.created_at
    assert ids(DBOS.list_workflows(dequeued_after=before)) == ["queued-1"]
    assert ids(DBOS.list_workflows(dequeued_before=before)) == []
    assert DBOS.get_workflow_status("direct-1").dequeued_at is None  # type: ignore[union-attr]
    assert ids(DBOS.list_queued_workflows(status="SUCCESS")) == ["queued-1"]
    assert DBOS.list_queued_workflows() == []


def test_list_workflow_steps_pages_and_skips_outputs(dbos: type[DBOS]) -> None:
    with SetWorkflowID("steps"):
        listing_three_steps()
    assert [s["output"] for s in DBOS.list_workflow_steps("steps")] == ["a", "b", "c"]
    assert [s["output"] for s in DBOS.list_workflow_steps("steps", limit=2)] == ["a", "b"]
    assert [s["output"] for s in DBOS.list_workflow_steps("steps", limit=1, offset=1)] == ["b"]
    assert [s["function_id"] for s in DBOS.list_workflow_steps("steps", offset=2)] == [3]
    unloaded = DBOS.list_workflow_steps("steps", load_output=False)
    assert [(s["function_name"], s["output"]) for s in unloaded] == [(listing_echo.__qualname__, None)] * 3


def test_bad_filters_are_refused_with_a_clear_message(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSException, match="not an ISO-8601 time"):
        DBOS.list_workflows(start_time="yesterday")
    with pytest.raises(DBOSException, match="limit must be a whole number"):
        DBOS.list_workflows(limit=-1)
    with pytest.raises(DBOSException, match="does not record application names"):
        DBOS.list_workflows(application_name="billing")
    with pytest.raises(TypeError, match="colour"):
        DBOS.list_workflows(colour="red")  # type: ignore[call-arg]


def test_status_times_are_consistent(dbos: type[DBOS]) -> None:
    started = time.time() * 1000
    with SetWorkflowID("timed"):
        listing_leaf("x")
    found = DBOS.get_workflow_status("timed")
    assert found is not None and found.created_at is not None and found.completed_at is not None
    assert started - 1 <= found.created_at < found.completed_at <= time.time() * 1000
    assert found.workflow_timeout_ms is None and found.forked_from is None and found.was_forked_from is False
    assert DBOS.list_workflows(start_time=iso(started + timedelta(days=1).total_seconds() * 1000)) == []


@DBOS.workflow()
def listing_parent_naming_its_child(child_id: str) -> str:
    with SetWorkflowID(child_id):
        return listing_leaf("child")


def test_a_child_is_stamped_after_its_parent_though_the_parent_did_not_wait_at_its_start(dbos: type[DBOS]) -> None:
    # A workflow called inline skips the wait for its start's millisecond to end; its first child waits
    # instead. The child's ID sorts first, so a tie in created_at would list it before its parent.
    for i in range(20):
        with SetWorkflowID(f"z-parent-{i}"):
            listing_parent_naming_its_child(f"a-child-{i}")
        parent, child = DBOS.get_workflow_status(f"z-parent-{i}"), DBOS.get_workflow_status(f"a-child-{i}")
        assert parent is not None and child is not None
        assert parent.created_at is not None and child.created_at is not None
        assert child.created_at > parent.created_at
        assert ids(DBOS.list_workflows(workflow_id_prefix=[f"z-parent-{i}", f"a-child-{i}"])) == [
            f"z-parent-{i}",
            f"a-child-{i}",
        ]
