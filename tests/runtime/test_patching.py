"""DBOS.patch / DBOS.deprecate_patch: code changes that older executions still replay, on SQLite and PostgreSQL.

A deploy is simulated by registering new code under the same workflow name. The new code is always
registered before the workflow is made to look orphaned, because the background recovery sweep may
adopt it at any moment: whichever path replays it must meet the new code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import make_config, reopen_as_orphan
from durable import DBOS, SetWorkflowID, error

WORKFLOW = "patching-checkout"
calls: dict[str, int] = {}


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    calls.clear()


@pytest.fixture
def patching_dbos(dbos: type[DBOS], database_url: str) -> Iterator[type[DBOS]]:
    """The `dbos` fixture's fresh database, with ``enable_patching=True`` (the `dbos` fixture destroys it)."""
    DBOS.destroy()
    DBOS(config=make_config(database_url, enable_patching=True))
    DBOS.launch()
    yield DBOS


@DBOS.step()
def charge_old(x: int) -> str:
    calls["charge_old"] = calls.get("charge_old", 0) + 1
    return f"old:{x}"


@DBOS.step()
def charge_new(x: int) -> str:
    calls["charge_new"] = calls.get("charge_new", 0) + 1
    return f"new:{x}"


@DBOS.step()
def ship(charged: str) -> str:
    calls["ship"] = calls.get("ship", 0) + 1
    return f"{charged}:shipped"


def deploy_v1() -> Callable[[int], str]:
    @DBOS.workflow(name=WORKFLOW)
    def checkout(x: int) -> str:
        return ship(charge_old(x))

    return checkout


def deploy_v2_patched() -> Callable[[int], str]:
    @DBOS.workflow(name=WORKFLOW)
    def checkout(x: int) -> str:
        charged = charge_new(x) if DBOS.patch("v2-fix") else charge_old(x)
        return ship(charged)

    return checkout


def deploy_v3_deprecated() -> Callable[[int], str]:
    @DBOS.workflow(name=WORKFLOW)
    def checkout(x: int) -> str:
        assert DBOS.deprecate_patch("v2-fix") is True
        return ship(charge_new(x))

    return checkout


def steps(workflow_id: str) -> list[tuple[int, str, Any]]:
    return [(s["function_id"], s["function_name"], s["output"]) for s in DBOS.list_workflow_steps(workflow_id)]


def recover(workflow_id: str) -> Any:
    DBOS.recover_pending_workflows()
    return DBOS.retrieve_workflow(workflow_id).get_result(timeout_seconds=10)


MARKER = "DBOS.patch-v2-fix"


def test_new_execution_takes_the_patch_and_records_a_marker(patching_dbos: type[DBOS]) -> None:
    checkout = deploy_v2_patched()
    with SetWorkflowID("fresh"):
        assert checkout(1) == "new:1:shipped"
    assert steps("fresh") == [(1, MARKER, None), (2, "charge_new", "new:1"), (3, "ship", "new:1:shipped")]
    assert calls == {"charge_new": 1, "ship": 1}


def test_old_workflow_replays_the_old_branch_under_patched_code(patching_dbos: type[DBOS], database_url: str) -> None:
    checkout_v1 = deploy_v1()
    with SetWorkflowID("started-before-patch"):
        assert checkout_v1(2) == "old:2:shipped"
    deploy_v2_patched()
    reopen_as_orphan(database_url, "started-before-patch", drop_steps_from=2)  # died after charge_old
    calls.clear()
    assert recover("started-before-patch") == "old:2:shipped"  # no DBOSUnexpectedStepError
    # patch() saw charge_old at step 1: it returned False without taking a step ID or writing a marker.
    assert steps("started-before-patch") == [(1, "charge_old", "old:2"), (2, "ship", "old:2:shipped")]
    assert calls == {"ship": 1}  # charge_old replayed from its checkpoint


def test_old_workflow_that_died_before_the_patch_point_takes_the_patch(
    patching_dbos: type[DBOS], database_url: str
) -> None:
    """As in DBOS: with nothing recorded at the patch's position, the new code path is safe to take."""
    checkout_v1 = deploy_v1()
    with SetWorkflowID("died-early"):
        checkout_v1(3)
    deploy_v2_patched()
    reopen_as_orphan(database_url, "died-early", drop_steps_from=1)
    assert recover("died-early") == "new:3:shipped"
    assert steps("died-early")[0] == (1, MARKER, None)


def test_patched_workflow_recovered_midway_replays_with_the_patch(
    patching_dbos: type[DBOS], database_url: str
) -> None:
    checkout = deploy_v2_patched()
    with SetWorkflowID("patched-midway"):
        assert checkout(4) == "new:4:shipped"
    reopen_as_orphan(database_url, "patched-midway", drop_steps_from=3)  # died after charge_new
    calls.clear()
    assert recover("patched-midway") == "new:4:shipped"
    assert calls == {"ship": 1}  # the marker and charge_new replayed
    assert steps("patched-midway") == [(1, MARKER, None), (2, "charge_new", "new:4"), (3, "ship", "new:4:shipped")]


def test_deprecate_patch_replays_marked_workflows_and_records_no_marker(
    patching_dbos: type[DBOS], database_url: str
) -> None:
    patched = deploy_v2_patched()
    with SetWorkflowID("took-patch"):
        patched(5)
    deprecated = deploy_v3_deprecated()
    with SetWorkflowID("after-deprecation"):
        assert deprecated(6) == "new:6:shipped"
    assert steps("after-deprecation") == [(1, "charge_new", "new:6"), (2, "ship", "new:6:shipped")]

    reopen_as_orphan(database_url, "took-patch", drop_steps_from=3)
    reopen_as_orphan(database_url, "after-deprecation", drop_steps_from=2)
    calls.clear()
    assert recover("took-patch") == "new:5:shipped"  # deprecate_patch stepped over the recorded marker
    assert recover("after-deprecation") == "new:6:shipped"
    assert calls == {"ship": 2}  # both charge_new checkpoints replayed at their own step IDs
    assert steps("took-patch") == [(1, MARKER, None), (2, "charge_new", "new:5"), (3, "ship", "new:5:shipped")]
    assert steps("after-deprecation") == [(1, "charge_new", "new:6"), (2, "ship", "new:6:shipped")]


def test_another_patch_name_at_a_marker_is_false_and_takes_no_step_id(
    patching_dbos: type[DBOS], database_url: str
) -> None:
    checkout = deploy_v2_patched()
    with SetWorkflowID("named"):
        checkout(7)

    @DBOS.workflow(name=WORKFLOW)
    def checkout_v4(x: int) -> str:
        other = DBOS.patch("v3-other")  # step 1 holds v2-fix's marker: an execution older than v3-other
        assert DBOS.deprecate_patch("v3-other") is True  # no v3-other marker: takes nothing
        fix = DBOS.patch("v2-fix")
        return f"{other}:{fix}:" + ship(charge_new(x))

    reopen_as_orphan(database_url, "named", drop_steps_from=3)
    assert recover("named") == "False:True:new:7:shipped"
    assert [name for _, name, _ in steps("named")] == [MARKER, "charge_new", "ship"]


def test_outside_a_workflow_patch_raises_as_in_dbos(patching_dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException) as raised:
        DBOS.patch("v2-fix")
    assert raised.value.message == "DBOS.patch must be called from a workflow"
    with pytest.raises(error.DBOSException) as raised:
        DBOS.deprecate_patch("v2-fix")
    assert raised.value.message == "DBOS.deprecate_patch must be called from a workflow"

    @DBOS.step()
    def patches_in_a_step() -> bool:
        return DBOS.patch("v2-fix")

    @DBOS.workflow(name="patching-step-caller")
    def calls_the_step() -> bool:
        return patches_in_a_step()

    with pytest.raises(error.DBOSException, match="must be called from a workflow"):
        calls_the_step()


def test_patching_needs_enable_patching(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException, match="enable_patching must be True in DBOS configuration"):
        DBOS.patch("v2-fix")  # checked first, as in DBOS
    with pytest.raises(error.DBOSException, match="enable_patching must be True in DBOS configuration"):
        DBOS.deprecate_patch("v2-fix")
    checkout = deploy_v2_patched()
    with pytest.raises(error.DBOSException, match="enable_patching must be True"):
        checkout(1)
    assert DBOS.config.application_version == ""


def test_enable_patching_sets_dbos_application_version(patching_dbos: type[DBOS], database_url: str) -> None:
    assert DBOS.config.enable_patching is True
    assert DBOS.config.application_version == "PATCHING_ENABLED"
    checkout = deploy_v2_patched()
    with SetWorkflowID("versioned"):
        checkout(1)
    status = DBOS.get_workflow_status("versioned")
    assert status is not None and status.app_version == "PATCHING_ENABLED"
    DBOS.destroy()
    DBOS(config=make_config(database_url, enable_patching=True, application_version="7"))
    assert DBOS.config.application_version == "7"  # an explicit version wins, as in DBOS
