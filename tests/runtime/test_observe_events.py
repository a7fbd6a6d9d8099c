"""The runtime's events for metrics (observe.py): each one is emitted once, where it happens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask, jsonify

from conftest import make_config, reopen_as_orphan, wait_for_status
from durable import DBOS, SetWorkflowID, observe

failures: dict[str, int] = {}


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], float]] = []

    def __call__(self, event: str, labels: dict[str, str], value: float) -> None:
        self.seen.append((event, dict(labels), value))

    def count(self, event: str, **labels: str) -> float:
        return sum(v for e, got, v in self.seen if e == event and all(got.get(k) == x for k, x in labels.items()))


@pytest.fixture
def events(dbos: type[DBOS]) -> Iterator[Events]:
    found = Events()
    observe.add_listener(found)
    try:
        yield found
    finally:
        observe.remove_listener(found)


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01)
def wobbly(key: str) -> str:
    failures[key] = failures.get(key, 0) + 1
    if failures[key] < 3:
        raise ConnectionError("try again")
    return "x" * 10


@DBOS.step()
def broken() -> None:
    raise ValueError("no")


@DBOS.workflow()
def observed(key: str) -> str:
    return wobbly(key)


@DBOS.workflow()
def observed_failure() -> None:
    broken()


def test_a_workflow_reports_its_start_steps_retries_and_outcome(events: Events) -> None:
    failures.pop("a", None)  # (the test runs once per database)
    with SetWorkflowID("obs-1"):
        assert observed("a") == "x" * 10
    assert events.count("workflow_started", name="observed") == 1
    assert events.count("workflow_finished", name="observed", status="SUCCESS") == 1
    assert events.count("step_retried", name="wobbly") == 2
    [(_, labels, seconds)] = [e for e in events.seen if e[0] == "step_finished"]
    assert labels == {"name": "wobbly", "outcome": "ok"} and 0.02 <= seconds < 5
    assert events.count("checkpoint_bytes", kind="step") == len('"xxxxxxxxxx"')
    assert events.count("checkpoint_bytes", kind="workflow") == len('"xxxxxxxxxx"')
    running = [v for e, _, v in events.seen if e == "workflow_running"]
    assert running == [1, -1]
    with SetWorkflowID("obs-1"):  # the same ID again: its recorded outcome, nothing started
        observed("a")
    assert events.count("workflow_started") == 1

    with SetWorkflowID("obs-2"), pytest.raises(ValueError):
        observed_failure()
    assert events.count("workflow_finished", name="observed_failure", status="ERROR") == 1
    assert ("step_finished", {"name": "broken", "outcome": "error"}) in [(e, got) for e, got, _ in events.seen]


def test_recovery_reports_the_adoption_and_the_recovered_run(events: Events, database_url: str) -> None:
    failures["b"] = 5
    with SetWorkflowID("obs-3"):
        observed("b")
    reopen_as_orphan(database_url, "obs-3", drop_steps_from=1, owner="gone-host:1:dead")
    assert DBOS.recover_pending_workflows() >= 0
    wait_for_status("obs-3", "SUCCESS")
    assert events.count("workflow_recovered", name="observed") == 1
    assert events.count("workflow_adopted") >= 1


def test_a_listener_that_raises_never_fails_the_workflow(dbos: type[DBOS]) -> None:
    def bad(event: str, labels: dict[str, str], value: float) -> None:
        raise RuntimeError("metrics bug")

    observe.add_listener(bad)
    try:
        failures["c"] = 5
        assert observed("c") == "x" * 10
    finally:
        observe.remove_listener(bad)


def test_idempotent_replays_and_refusals_are_reported(database_url: str) -> None:
    DBOS.destroy()
    app = Flask(__name__)

    @app.post("/pay")
    def pay():  # type: ignore[no-untyped-def]
        return jsonify({"paid": True})

    DBOS(flask=app, config=make_config(database_url))
    found = Events()
    observe.add_listener(found)
    try:
        client = app.test_client()
        key = {"dbos-idempotency-key": "pay-1"}
        assert client.post("/pay", json={"a": 1}, headers=key).status_code == 200
        assert client.post("/pay", json={"a": 1}, headers=key).headers.get("Idempotent-Replayed") == "true"
        assert client.post("/pay", json={"a": 2}, headers=key).status_code == 422
    finally:
        observe.remove_listener(found)
        DBOS.destroy()
    assert Counter(e for e, _, _ in found.seen if e.startswith("idempotent")) == {
        "idempotent_replay": 1, "idempotent_refusal": 1}
    assert found.count("idempotent_refusal", status="422") == 1


def test_no_listener_no_cost() -> None:
    observe.emit("workflow_started", name="nobody")  # nothing registered: returns at once
    observe.set_exposition(None)
    assert observe.exposition() is None
    observe.set_exposition(lambda: (b"x 1\n", "text/plain"))
    try:
        assert observe.exposition() == (b"x 1\n", "text/plain")
    finally:
        observe.set_exposition(None)
