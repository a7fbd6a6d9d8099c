"""Workflows on classes: @DBOS.dbos_class, DBOSConfiguredInstance, and DBOS's recovery hook.

A method's ``self`` (or ``cls``) is not an input: the row records the class's registered name (and
the instance's config name), and recovery finds the registered instance or class by them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from conftest import make_config, reopen_as_orphan
from durable import DBOS, DBOSConfiguredInstance, SetWorkflowID
from durable.error import DBOSConflictingWorkflowError, DBOSException
from durable.registry import REGISTRY
from helpers import wait_until


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Classes and instances registered here are local to each test."""
    yield
    DBOS.destroy()
    for name in [n for n in REGISTRY.classes if "test_" in n or n.startswith("Renamed")]:
        del REGISTRY.classes[name]
    for key in [k for k in REGISTRY.instances if "test_" in k[0] or k[0].startswith("Renamed")]:
        del REGISTRY.instances[key]


def launch(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url))
    DBOS.launch()


def test_an_instance_workflow_records_its_class_and_config_name_and_recovers_onto_that_instance(
    database_url: str,
) -> None:
    ran_on: list[str] = []

    @DBOS.dbos_class()
    class Greeter(DBOSConfiguredInstance):
        def __init__(self, name: str, greeting: str) -> None:
            self.greeting = greeting
            super().__init__(name)

        @DBOS.workflow()
        def greet(self, who: str) -> str:
            ran_on.append(self.config_name)
            return f"{self.greeting}, {who}"

    launch(database_url)
    english, french = Greeter("en", "Hello"), Greeter("fr", "Bonjour")
    with SetWorkflowID("greet-fr"):
        assert french.greet("Ada") == "Bonjour, Ada"
    english.greet("Bob")
    status = DBOS.get_workflow_status("greet-fr")
    assert status is not None and status.config_name == "fr"
    assert status.class_name is not None and status.class_name.endswith("Greeter")
    assert status.input is not None and tuple(status.input["args"]) == ("Ada",)  # self is not an input

    reopen_as_orphan(database_url, "greet-fr", owner="dead-executor")
    DBOS.recover_executors(["dead-executor"])
    wait_until(lambda: (s := DBOS.get_workflow_status("greet-fr")) and s.status == "SUCCESS", 10, "the recovery")
    assert ran_on == ["fr", "en", "fr"]
    assert DBOS.retrieve_workflow("greet-fr").get_result() == "Bonjour, Ada"


def test_static_methods_record_no_class_class_methods_do(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class(class_name="RenamedMixed")
    class Mixed:
        @classmethod
        @DBOS.workflow()
        def on_class(cls, x: int) -> str:
            return f"{cls.__name__}:{x}"

        @staticmethod
        @DBOS.workflow()
        def on_nothing(x: int) -> int:
            return x

    on_class = DBOS.start_workflow(Mixed.on_class, 1)
    on_nothing = DBOS.start_workflow(Mixed.on_nothing, 2)
    assert (on_class.get_result(), on_nothing.get_result()) == ("Mixed:1", 2)
    assert (on_class.get_status().class_name, on_class.get_status().config_name) == ("RenamedMixed", None)
    assert (on_nothing.get_status().class_name, on_nothing.get_status().config_name) == (None, None)


def test_steps_and_transactions_of_an_instance_start_as_one_step_workflows(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class()
    class Counter(DBOSConfiguredInstance):
        def __init__(self) -> None:
            self.calls = 0
            super().__init__("counter")

        @DBOS.step()
        def bump(self, by: int) -> int:
            self.calls += by
            return self.calls

        @DBOS.transaction()
        def read(self, x: int) -> int:
            return x * 10

    counter = Counter()
    assert counter.bump(1) == 1  # outside a workflow a step is a plain call
    handle = DBOS.start_workflow(counter.bump, 2)
    assert handle.get_result() == 3
    assert handle.get_status().name.startswith("<temp>.") and handle.get_status().config_name == "counter"
    assert counter.read(4) == 40
    assert DBOS.start_workflow(counter.read, 5).get_result() == 50


def test_registration_mistakes_are_refused_with_dbos_messages(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class()
    class Twice(DBOSConfiguredInstance):
        def __init__(self) -> None:
            super().__init__("one")

    with pytest.raises(Exception, match="^Duplicate type registration for class '.*Twice'$"):
        @DBOS.dbos_class()
        class Twice(DBOSConfiguredInstance):  # type: ignore[no-redef]  # noqa: F811
            pass

    Twice()
    with pytest.raises(Exception, match="^Duplicate instance registration for class '.*Twice' instance 'one'$"):
        Twice()

    class Forgotten(DBOSConfiguredInstance):
        def __init__(self) -> None:
            super().__init__("forgotten")

        @DBOS.workflow()
        def run(self) -> str:
            return "never"

        @classmethod
        @DBOS.workflow()
        def run_on_class(cls) -> str:
            return "never"

    with pytest.raises(DBOSException, match="class instance, but is not properly registered"):
        Forgotten().run()
    with pytest.raises(DBOSException, match="a class, but is not properly registered"):
        Forgotten.run_on_class()

    @DBOS.dbos_class()
    class Nameless:
        @DBOS.workflow()
        def run(self) -> str:
            return "never"

    with pytest.raises(DBOSException, match="does not have `config_name` set"):
        Nameless().run()
    assert DBOS.list_workflows() == []  # nothing was recorded for any of them


def test_an_id_reused_by_another_instance_is_a_conflict_naming_the_config_names(dbos: type[DBOS]) -> None:
    @DBOS.dbos_class()
    class Named(DBOSConfiguredInstance):
        @DBOS.workflow()
        def run(self) -> str:
            return self.config_name

    first, second = Named("first"), Named("second")
    with SetWorkflowID("shared-id"):
        assert first.run() == "first"
    with SetWorkflowID("shared-id"), pytest.raises(DBOSConflictingWorkflowError,
                                                   match="different config name: first, but the provided"):
        second.run()


def test_the_recovery_hook_awaits_running_workflows_and_resumes_interrupted_ones(dbos: type[DBOS]) -> None:
    release = threading.Event()
    runs: list[str] = []

    @DBOS.workflow()
    def blocked() -> str:
        runs.append("blocked")
        release.wait(10)
        return "done"

    interrupt = True

    @DBOS.workflow()
    def interrupted() -> str:
        runs.append("interrupted")
        if interrupt:
            raise KeyboardInterrupt  # not an outcome: the workflow stays PENDING here
        return "resumed"

    handle = DBOS.start_workflow(blocked)
    with SetWorkflowID("interrupted-1"), pytest.raises(KeyboardInterrupt):
        interrupted()
    interrupt = False
    handles = DBOS._recover_pending_workflows()
    assert sorted(h.workflow_id for h in handles) == sorted([handle.workflow_id, "interrupted-1"])
    release.set()
    assert {h.workflow_id: h.get_result() for h in handles} == {handle.workflow_id: "done",
                                                                 "interrupted-1": "resumed"}
    assert sorted(runs) == ["blocked", "interrupted", "interrupted"]  # the running one ran once
