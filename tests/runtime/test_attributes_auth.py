"""Workflow attributes, authentication and role checks, on real SQLite files and PostgreSQL."""

from __future__ import annotations

import pytest

from durable import DBOS, DBOSConfiguredInstance, DBOSContextSetAuth, SetWorkflowAttributes, SetWorkflowID, error


@DBOS.workflow()
def child() -> list[str] | None:
    return DBOS.authenticated_roles


@DBOS.workflow()
def parent() -> tuple[str | None, list[str] | None]:
    return DBOS.authenticated_user, child()


@DBOS.required_roles(["admin", "auditor"])
@DBOS.workflow()
def guarded() -> str | None:
    return DBOS.assumed_role


def test_attributes_are_stored_with_the_started_workflow_only(dbos: type[DBOS]) -> None:
    with SetWorkflowAttributes({"customer": "acme", "tier": 3}), SetWorkflowID("attr"):
        parent()
    assert DBOS.get_workflow_status("attr").attributes == {"customer": "acme", "tier": 3}  # type: ignore[union-attr]
    assert DBOS.get_workflow_status("attr-1").attributes is None  # type: ignore[union-attr]
    DBOS.update_workflow_attributes("attr", {"customer": "bigco"})
    assert DBOS.get_workflow_status("attr").attributes == {"customer": "bigco"}  # type: ignore[union-attr]
    forked = DBOS.fork_workflow("attr", 1)
    forked.get_result()
    assert forked.get_status().attributes == {"customer": "bigco"}


def test_attributes_are_checked_at_the_call(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException, match="must be a dict"):
        SetWorkflowAttributes(["x"])  # type: ignore[arg-type]
    with pytest.raises(error.DBOSException, match="must be JSON-serializable"):
        DBOS.update_workflow_attributes("attr", {"x": object()})


def test_filtering_by_attributes(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowAttributes({"customer": "acme", "meta": {"region": "eu"}}), SetWorkflowID("a"):
        child()
    with SetWorkflowAttributes({"customer": "bigco"}), SetWorkflowID("b"):
        child()
    if database_url.startswith("sqlite"):
        with pytest.raises(error.DBOSException, match="not supported on SQLite"):
            DBOS.list_workflows(attributes={"customer": "acme"})
        return
    assert [s.workflow_id for s in DBOS.list_workflows(attributes={"customer": "acme"})] == ["a"]
    assert [s.workflow_id for s in DBOS.list_workflows(attributes={"meta": {"region": "eu"}})] == ["a"]
    assert DBOS.list_workflows(attributes={"customer": "other"}) == []


def test_the_authenticated_user_is_recorded_and_inherited(dbos: type[DBOS]) -> None:
    with DBOSContextSetAuth("alice", ["admin"]), SetWorkflowID("authed"):
        assert parent() == ("alice", ["admin"])
    status = DBOS.get_workflow_status("authed-1")
    assert status is not None and (status.authenticated_user, status.authenticated_roles) == ("alice", ["admin"])


def test_required_roles_refuse_and_assume(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSNotAuthorizedError, match="without authentication"):
        guarded()
    with DBOSContextSetAuth("bob", ["viewer"]), pytest.raises(error.DBOSNotAuthorizedError):
        guarded()
    with DBOSContextSetAuth("carol", ["auditor"]), SetWorkflowID("guarded"):
        assert guarded() == "auditor"
    assert DBOS.get_workflow_status("guarded").assumed_role == "auditor"  # type: ignore[union-attr]


@DBOS.default_required_roles(["staff"])  # registers the class, as @DBOS.dbos_class() does
class Desk(DBOSConfiguredInstance):  # an instance method's workflow needs a config name, as in DBOS
    @DBOS.workflow()
    def serve(self) -> str | None:
        return DBOS.assumed_role

    @classmethod
    @DBOS.required_roles([])
    @DBOS.workflow()
    def open_to_all(cls) -> str:
        return "open"


DESK = Desk("front-desk")  # registered once: a second instance under the same name is refused


def test_class_default_roles_apply_unless_a_method_names_its_own(dbos: type[DBOS]) -> None:
    desk = DESK
    with pytest.raises(error.DBOSNotAuthorizedError):
        desk.serve()
    with DBOSContextSetAuth("dan", ["staff"]):
        assert desk.serve() == "staff"
    assert Desk.open_to_all() == "open"


@DBOS.workflow(name="ext2_options_target")
def options_target(x: int) -> int:
    return x


def test_enqueue_with_options_merges_attributes_and_keeps_the_callers_auth(dbos: type[DBOS]) -> None:
    DBOS.register_queue("ext2_options_queue")
    options = {"workflow_name": "ext2_options_target", "queue_name": "ext2_options_queue",
               "attributes": {"explicit": "b"}}
    with DBOSContextSetAuth("erin", ["ops"]), SetWorkflowAttributes({"ambient": "a"}):
        handle = DBOS.enqueue_workflow_with_options(options, 7)  # type: ignore[arg-type]
    assert handle.get_result() == 7
    status = handle.get_status()
    assert status.attributes == {"ambient": "a", "explicit": "b"}
    assert (status.authenticated_user, status.authenticated_roles) == ("erin", ["ops"])
