"""Workflows, steps and the DBOS API surface, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

import durable
from conftest import make_config, reopen_as_orphan
from helpers import wait_until
from durable import DBOS, DBOSConfig, DBOSConfiguredInstance, SetWorkflowID, error

calls: dict[str, int] = {}
lock = threading.Lock()


def count(name: str) -> None:
    with lock:
        calls[name] = calls.get(name, 0) + 1


@pytest.fixture(autouse=True)
def reset_calls() -> None:
    calls.clear()


@DBOS.step()
def add_one(x: int) -> int:
    count("add_one")
    return x + 1


@DBOS.step()
def where_am_i() -> tuple[str | None, int | None]:
    return DBOS.workflow_id, DBOS.step_id


@DBOS.workflow()
def adds_twice(x: int) -> dict[str, object]:
    count("adds_twice")
    return {"value": add_one(add_one(x)), "id": DBOS.workflow_id, "inside": where_am_i()}


class PaymentDeclined(Exception):
    pass


@DBOS.step()
def decline(amount: int) -> None:
    count("decline")
    raise PaymentDeclined(f"declined {amount}")


@DBOS.workflow()
def pays(amount: int) -> str:
    decline(amount)
    return "paid"


def test_public_names_are_pinned() -> None:
    assert sorted(durable.__all__) == [
        "DBOS", "DBOSClient", "DBOSConfig", "DBOSConfiguredInstance", "DBOSContext", "DBOSContextSetAuth",
        "DBOSPortableJSONSerializer", "Debouncer", "EnqueueInTransaction", "EnqueueOptions", "PortableWorkflowError",
        "Queue", "RequestInfo", "ScheduleInput", "SendMessage", "Serializer", "SetEnqueueOptions", "SetWorkflowAttributes",
        "SetWorkflowID", "SetWorkflowTimeout", "StepInfo", "WorkflowHandle", "WorkflowSchedule", "WorkflowSerializationFormat",
        "WorkflowStatus", "WorkflowStatusString",
        "assert_current_dbos_context", "error",
    ]
    assert all(getattr(durable, name) is not None for name in durable.__all__)
    assert error.DBOSException("x", dbos_error_code="X", status_code=400).status_code == 400


def test_unknown_config_key_is_an_error_that_names_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    DBOS.destroy()
    config = DBOSConfig(name="app-x", application_database_url=f"sqlite:///{tmp_path}/a.db")
    config["applicaton_version"] = "1"  # type: ignore[typeddict-unknown-key]
    with pytest.raises(error.DBOSConfigError, match="'applicaton_version'"):
        DBOS(config=config)


def test_workflow_returns_its_value_and_checkpoints_each_step(dbos: type[DBOS]) -> None:
    result = adds_twice(1)
    assert result["value"] == 3
    assert result["inside"] == (result["id"], 3)
    steps = DBOS.list_workflow_steps(str(result["id"]))
    assert [(s["function_id"], s["function_name"], s["output"]) for s in steps] == [
        (1, "add_one", 2), (2, "add_one", 3), (3, "where_am_i", (result["id"], 3))]
    status = DBOS.get_workflow_status(str(result["id"]))
    assert status is not None and status.status == "SUCCESS" and status.input == {"args": (1,), "kwargs": {}}


def test_same_workflow_id_runs_the_body_once(dbos: type[DBOS]) -> None:
    with SetWorkflowID("order-42"):
        first = adds_twice(10)
    with SetWorkflowID("order-42"):
        second = adds_twice(10)
    assert first == second and first["id"] == "order-42"
    assert calls == {"adds_twice": 1, "add_one": 2}


def test_set_workflow_id_is_taken_by_the_first_workflow_only(dbos: type[DBOS]) -> None:
    with SetWorkflowID("only-first"):
        a = adds_twice(1)
        b = adds_twice(1)
    assert a["id"] == "only-first" and b["id"] != "only-first"


def test_recorded_error_is_raised_again_with_its_type(dbos: type[DBOS]) -> None:
    for _ in range(2):
        with SetWorkflowID("pay-1"), pytest.raises(PaymentDeclined, match="declined 7"):
            pays(7)
    assert calls == {"decline": 1}
    status = DBOS.get_workflow_status("pay-1")
    assert status is not None and status.status == "ERROR" and isinstance(status.error, PaymentDeclined)


def test_start_workflow_returns_a_handle(dbos: type[DBOS]) -> None:
    handle = DBOS.start_workflow(adds_twice, 5)
    assert handle.get_result()["value"] == 7
    assert handle.get_status().status == "SUCCESS"
    again = DBOS.retrieve_workflow(handle.workflow_id)
    assert again.get_result()["value"] == 7


def test_retrieving_an_unknown_workflow_raises(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSNonExistentWorkflowError):
        DBOS.retrieve_workflow("no-such-workflow")
    assert DBOS.get_workflow_status("no-such-workflow") is None


def test_list_workflows_filters(dbos: type[DBOS]) -> None:
    for i in range(3):
        with SetWorkflowID(f"list-{i}"):
            adds_twice(i)
    with SetWorkflowID("list-err"), pytest.raises(PaymentDeclined):
        pays(1)
    assert [w.workflow_id for w in DBOS.list_workflows(status="SUCCESS")] == ["list-0", "list-1", "list-2"]
    assert [w.workflow_id for w in DBOS.list_workflows(status=["ERROR"])] == ["list-err"]
    assert [w.workflow_id for w in DBOS.list_workflows(name="adds_twice", limit=2, sort_desc=True)] == [
        "list-2", "list-1"]
    assert [w.workflow_id for w in DBOS.list_workflows(workflow_id_prefix="list-", offset=3)] == ["list-err"]


def test_steps_retry_then_give_up(dbos: type[DBOS]) -> None:
    attempts: list[int] = []

    @DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01, backoff_rate=1.0)
    def flaky_then_dead() -> None:
        attempts.append(1)
        raise ConnectionError("payment API down")

    @DBOS.workflow()
    def calls_flaky() -> None:
        flaky_then_dead()

    with pytest.raises(error.DBOSMaxStepRetriesExceeded, match="payment API down"):
        calls_flaky()
    assert len(attempts) == 3


def test_step_retry_succeeds_on_a_later_attempt(dbos: type[DBOS]) -> None:
    attempts: list[int] = []

    @DBOS.step(retries_allowed=True, max_attempts=4, interval_seconds=0.01)
    def works_third_time() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return "ok"

    @DBOS.workflow()
    def retrying() -> str:
        return works_third_time()

    assert retrying() == "ok" and len(attempts) == 3


def test_changed_workflow_code_fails_loudly_on_replay(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("changed-code"):
        adds_twice(1)

    @DBOS.step()
    def another_step() -> int:
        return 0

    # The new code is registered before the workflow looks orphaned, because the background recovery
    # sweep may adopt it at any moment: whichever path replays it must meet the new code.
    @DBOS.workflow(name="adds_twice")
    def adds_twice_v2(x: int) -> int:
        return another_step()

    reopen_as_orphan(database_url, "changed-code")  # as if the first execution died after its steps
    try:
        DBOS.recover_pending_workflows()
        with pytest.raises(error.DBOSUnexpectedStepError, match="add_one was recorded when .*another_step"):
            DBOS.retrieve_workflow("changed-code").get_result()
        status = DBOS.get_workflow_status("changed-code")
        assert status is not None and status.status == "ERROR"
    finally:
        durable.registry.REGISTRY.add_workflow(adds_twice.__durable_info__)  # type: ignore[attr-defined]


def test_recovery_leaves_a_workflow_whose_code_it_lacks_to_a_process_that_has_it(
    dbos: type[DBOS], database_url: str
) -> None:
    """Another service (or a newer deploy) shares the database: adopting its orphan here would fail it for good."""
    with SetWorkflowID("known-code"):
        adds_twice(1)
    with SetWorkflowID("foreign-code"):
        adds_twice(2)
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {prefix}workflow_status SET name = 'billing_run' WHERE workflow_uuid = :id"),
                         {"id": "foreign-code"})
        reopen_as_orphan(database_url, "foreign-code", owner="gone-host:1:dead")
        reopen_as_orphan(database_url, "known-code", owner="gone-host:1:dead", drop_steps_from=0)
        DBOS.recover_pending_workflows()
        assert DBOS.retrieve_workflow("known-code").get_result()["value"] == 3
        with engine.connect() as conn:
            row = conn.execute(sa.text(f"SELECT status, executor_id, recovery_attempts FROM {prefix}workflow_status "
                                       "WHERE workflow_uuid = 'foreign-code'")).one()
    finally:
        engine.dispose()
    assert tuple(row) == ("PENDING", "gone-host:1:dead", 0)  # untouched: no attempt spent on it here


def test_one_sweep_adopts_every_orphan_batch_by_batch_past_ones_it_must_leave(
    dbos: type[DBOS], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adoption walks the PENDING rows in batches, each from where the last ended: none is missed or taken twice.

    Orphans whose code is elsewhere sit between and before them, so a batch that stopped at the wrong
    place, or a walk that restarted at the first row, would show as a missed orphan or a second attempt.
    """
    monkeypatch.setattr(durable.recovery, "ADOPT_BATCH", 2)
    ids = [f"batch-{i}" for i in range(7)]
    foreign = [f"batch-foreign-{i}" for i in range(3)]
    for i, workflow_id in enumerate([foreign[0], *ids[:3], foreign[1], *ids[3:], foreign[2]]):
        with SetWorkflowID(workflow_id):
            adds_twice(i)
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {prefix}workflow_status SET name = 'billing_run' "
                                 "WHERE workflow_uuid LIKE 'batch-foreign-%'"))
            # Two share one created_at: the walk's position is (created_at, workflow_uuid), not created_at.
            conn.execute(sa.text(f"UPDATE {prefix}workflow_status SET created_at = (SELECT created_at FROM "
                                 f"{prefix}workflow_status WHERE workflow_uuid = 'batch-1') WHERE workflow_uuid = 'batch-2'"))
        for workflow_id in [*ids, *foreign]:
            reopen_as_orphan(database_url, workflow_id, owner="gone-host:1:dead", drop_steps_from=0)
        def attempts() -> dict[str, int]:
            with engine.connect() as conn:
                return dict(conn.execute(sa.text(f"SELECT workflow_uuid, recovery_attempts FROM {prefix}workflow_status"
                                                 " WHERE workflow_uuid LIKE 'batch-%'")).all())

        wanted = {**dict.fromkeys(ids, 1), **dict.fromkeys(foreign, 0)}
        DBOS.recover_pending_workflows()
        # All adopted by this call (a background sweep's batch in flight may commit a moment later): one
        # missed would wait for the next sweep, 5 s away.
        wait_until(lambda: attempts() == wanted, timeout=1.0, what="every orphan adopted once", interval=0.02)
        for workflow_id in ids:
            assert DBOS.retrieve_workflow(workflow_id).get_result()["value"] is not None
        assert attempts() == wanted
    finally:
        engine.dispose()


def test_step_outside_a_workflow_is_a_plain_call(dbos: type[DBOS]) -> None:
    assert add_one(1) == 2
    assert DBOS.list_workflows() == []


def test_sql_session_outside_a_transaction_is_refused(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSException, match="only available inside"):
        DBOS.sql_session  # noqa: B018


@DBOS.dbos_class()
class Greeter(DBOSConfiguredInstance):
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting
        super().__init__(config_name=greeting)

    @DBOS.workflow()
    def greet(self, name: str) -> str:
        return self.shout(f"{self.greeting}, {name}")

    @DBOS.step()
    def shout(self, text: str) -> str:
        return text.upper()

    @classmethod
    @DBOS.workflow()
    def species(cls) -> str:
        return cls.__name__

    @staticmethod
    @DBOS.workflow()
    def static_sum(a: int, b: int) -> int:
        return a + b


hello = Greeter("hello")


def test_methods_of_registered_classes_are_workflows(dbos: type[DBOS]) -> None:
    handle = DBOS.start_workflow(hello.greet, "ada")
    assert handle.get_result() == "HELLO, ADA"
    status = handle.get_status()
    assert (status.class_name, status.config_name, status.input) == ("Greeter", "hello", {"args": ("ada",), "kwargs": {}})
    assert Greeter.species() == "Greeter"
    assert Greeter.static_sum(2, 3) == 5


def test_a_second_configuration_needs_destroy_first(dbos: type[DBOS], tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error.DBOSException, match="destroy"):
        DBOS(config=make_config(f"sqlite:///{tmp_path}/other.db"))


@DBOS.workflow(name="versioned", version="1")
def versioned_v1(x: int) -> str:
    return f"v1:{add_one(x)}"


@DBOS.workflow(name="versioned", version="2")
def versioned_v2(x: int) -> str:
    return f"v2:{add_one(add_one(x))}"


def test_recovery_runs_the_code_of_the_recorded_version(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("old-deploy"):
        assert versioned_v1(1) == "v1:2"
    with SetWorkflowID("new-deploy"):
        assert versioned_v2(1) == "v2:3"
    reopen_as_orphan(database_url, "old-deploy", drop_steps_from=1)
    reopen_as_orphan(database_url, "new-deploy", drop_steps_from=2)
    DBOS.recover_pending_workflows()
    assert DBOS.retrieve_workflow("old-deploy").get_result(timeout_seconds=20) == "v1:2"
    assert DBOS.retrieve_workflow("new-deploy").get_result(timeout_seconds=20) == "v2:3"
    assert DBOS.get_workflow_status("old-deploy").workflow_version == "1"  # type: ignore[union-attr]


def test_workflow_of_a_version_no_longer_deployed_fails_loudly(dbos: type[DBOS], database_url: str) -> None:
    with SetWorkflowID("retired"):
        versioned_v1(5)
    info = durable.registry.REGISTRY.workflows.pop(("versioned", "1"))  # before the sweep may adopt it
    reopen_as_orphan(database_url, "retired")
    try:
        DBOS.recover_pending_workflows()
        status = DBOS.get_workflow_status("retired")
        assert status is not None and status.status == "ERROR"
        assert "started by version '1' of 'versioned'" in str(status.error)
        assert "versions ['2']" in str(status.error)
    finally:
        durable.registry.REGISTRY.add_workflow(info)


def test_operator_recovers_a_named_executor_whose_heartbeat_looks_fresh(dbos: type[DBOS], database_url: str) -> None:
    """The admin trigger: an executor on another host is known dead before its heartbeat expires."""
    with SetWorkflowID("remote-work"):
        adds_twice(1)
    rt = durable.current.current_runtime()
    rt.checkpoint_store.register_executor("elsewhere:7:abc", "elsewhere", 7, "")
    reopen_as_orphan(database_url, "remote-work", drop_steps_from=2, owner="elsewhere:7:abc")
    calls.clear()
    assert DBOS.recover_pending_workflows() == 0  # its owner's heartbeat is fresh: not an orphan
    handles = DBOS.recover_executors(["elsewhere:7:abc"])
    assert [h.workflow_id for h in handles] == ["remote-work"]
    assert handles[0].get_result(timeout_seconds=20)["value"] == 3
    assert calls == {"adds_twice": 1, "add_one": 1}  # only the step without a checkpoint ran again


def test_executor_id_and_application_version_name_this_process(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url, application_version="v7"))
    try:
        with SetWorkflowID("who-ran-me"):
            adds_twice(1)
        status = DBOS.get_workflow_status("who-ran-me")
        assert status is not None
        assert status.executor_id == DBOS.executor_id and DBOS.executor_id.count(":") == 2
        assert status.app_version == DBOS.application_version == "v7"
    finally:
        DBOS.destroy()
