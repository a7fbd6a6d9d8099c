"""``flask workflow ...`` through Flask's CliRunner, in the process that runs the workflows.

The operator's own process (no threads, work handed to the service) is tested in test_operate_served.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from conftest import make_config, wait_for_status
from durable import DBOS, Queue, SetWorkflowID, current, lifecycle
from durable.cli_output import (
    EXIT_CONFLICT,
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    EXIT_WAIT_TIMEOUT,
    EXIT_WORKFLOW_FAILED,
)

DECLINE = {"card": True}
cli_queue = Queue("cli-queue", concurrency=1)


@DBOS.step()
def reserve(x: int) -> int:
    return x + 1


@DBOS.step()
def charge(x: int) -> int:
    if DECLINE["card"]:
        raise RuntimeError("card declined")
    return x * 2


@DBOS.workflow()
def checkout(x: int) -> int:
    return charge(reserve(x))


@DBOS.workflow()
def waits_for_go() -> Any:
    return DBOS.recv("go", timeout_seconds=60)


@pytest.fixture
def runner(database_url: str) -> Iterator[FlaskCliRunner]:
    DECLINE["card"] = True
    DBOS.destroy()
    app = Flask("cli-test")
    DBOS(flask=app, config=make_config(database_url))
    DBOS.launch()
    try:
        yield app.test_cli_runner()
    finally:
        DBOS.destroy()


def invoke(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=list(args))
    return result.exit_code, result.output


def as_json(runner: FlaskCliRunner, *args: str) -> Any:
    code, output = invoke(runner, *args, "--json")
    assert code == 0, output
    return json.loads(output)


def failed_checkout(workflow_id: str) -> None:
    with SetWorkflowID(workflow_id), pytest.raises(RuntimeError, match="card declined"):
        checkout(1)


def test_find_a_failed_workflow_see_why_and_fork_it_from_the_failed_step(runner: FlaskCliRunner) -> None:
    failed_checkout("order-1")
    with SetWorkflowID("order-2"):
        DECLINE["card"] = False
        checkout(5)
        DECLINE["card"] = True
    listed = as_json(runner, "workflow", "list", "--status", "ERROR")
    assert [w["workflow_id"] for w in listed] == ["order-1"]
    assert as_json(runner, "workflow", "list", "--status", "ERROR", "--user", "nobody") == []
    assert listed[0]["error"] == "RuntimeError: card declined"
    code, table = invoke(runner, "workflow", "list", "-S", "error", "-n", "checkout")
    assert code == 0 and "order-1" in table and "card declined" in table and "order-2" not in table
    steps = as_json(runner, "workflow", "steps", "order-1")
    assert [(s["function_name"], s["output"], s["error"]) for s in steps] == [
        ("reserve", 2, None), ("charge", None, "RuntimeError: card declined")]
    code, table = invoke(runner, "workflow", "steps", "order-1")
    assert code == 0 and "charge" in table and "error" in table
    assert as_json(runner, "workflow", "get", "order-1")["status"] == "ERROR"
    code, shown = invoke(runner, "workflow", "get", "order-1")
    assert code == 0 and "card declined" in shown and "checkout" in shown

    code, output = invoke(runner, "workflow", "resume", "order-1", "--wait", "20")
    assert code == EXIT_WORKFLOW_FAILED, output  # the recorded error of step 2 replays, as in DBOS
    DECLINE["card"] = False
    code, output = invoke(runner, "workflow", "fork", "order-1", "--step", "2", "--wait", "20")
    assert code == 0 and "SUCCESS" in output, output


def test_fork_from_a_step_keeps_the_earlier_checkpoints(runner: FlaskCliRunner) -> None:
    failed_checkout("order-3")
    DECLINE["card"] = False
    forked = as_json(runner, "workflow", "fork", "order-3", "--step", "2", "-f", "order-3-retry",
                     "--wait", "20")
    assert (forked["workflow_id"], forked["status"], forked["output"]) == ("order-3-retry", "SUCCESS", 4)
    steps = as_json(runner, "workflow", "steps", "order-3-retry")
    assert [(s["function_name"], s["error"]) for s in steps] == [("reserve", None), ("charge", None)]
    code, output = invoke(runner, "workflow", "fork", "order-3", "--step", "2", "-f", "order-3-retry")
    assert code == EXIT_CONFLICT, output  # the ID is taken
    code, output = invoke(runner, "workflow", "fork", "order-3", "--step", "0")
    assert code == EXIT_USAGE, output


def test_cancel_a_pending_workflow_and_time_out_the_rest(runner: FlaskCliRunner) -> None:
    with SetWorkflowID("waiting-1"):
        DBOS.start_workflow(waits_for_go)
    with SetWorkflowID("waiting-2"):
        DBOS.start_workflow(waits_for_go)
    wait_for_status("waiting-1", "PENDING")
    assert [w["workflow_id"] for w in as_json(runner, "workflow", "list", "-S", "PENDING")] == [
        "waiting-1", "waiting-2"]
    code, output = invoke(runner, "workflow", "cancel", "waiting-1")
    assert (code, output.strip()) == (0, "cancelled waiting-1")
    wait_for_status("waiting-1", "CANCELLED")
    code, output = invoke(runner, "workflow", "resume", "waiting-1", "--wait", "0.5")
    assert code == EXIT_WAIT_TIMEOUT, output  # it runs again, waiting for its message
    DBOS.send("waiting-1", "go!", "go")
    resumed = as_json(runner, "workflow", "resume", "waiting-1", "--wait", "20")  # running: nothing to do
    assert (resumed["status"], resumed["output"]) == ("SUCCESS", "go!")
    assert as_json(runner, "workflow", "timeout", "--older-than", "0s") == ["waiting-2"]
    wait_for_status("waiting-2", "CANCELLED")


def test_queue_list_shows_what_waits(runner: FlaskCliRunner) -> None:
    gate = threading.Event()
    with SetWorkflowID("queued-1"):
        cli_queue.enqueue(waits_for_go)
    with SetWorkflowID("queued-2"):
        cli_queue.enqueue(waits_for_go)
    wait_for_status("queued-1", "PENDING")
    listed = as_json(runner, "queue", "list", "-q", "cli-queue")
    assert [(w["workflow_id"], w["status"]) for w in listed] == [("queued-1", "PENDING"), ("queued-2", "ENQUEUED")]
    assert as_json(runner, "workflow", "queue", "list", "-S", "ENQUEUED")[0]["workflow_id"] == "queued-2"
    gate.set()
    DBOS.cancel_workflows(["queued-1", "queued-2"])


def test_recover_refuses_a_live_executor_unless_forced(runner: FlaskCliRunner) -> None:
    rt = current.current_runtime()
    rt.checkpoint_store.register_executor("live-host:1:alive", "live-host", 1, "")
    code, output = invoke(runner, "workflow", "recover", "live-host:1:alive")
    assert code == EXIT_CONFLICT and "alive" in output, output
    assert invoke(runner, "workflow", "recover", "live-host:1:alive", "--force") == (0, "recovered 0 workflow(s)\n")


BAD_USAGE = [
    ("workflow", "list", "--status", "BOGUS"),
    ("workflow", "list", "--start-time", "yesterday"),
    ("workflow", "list", "--limit", "-1"),
    ("workflow", "timeout", "--older-than", "soon"),
    ("workflow", "timeout"),
    ("workflow", "get"),
    ("workflow", "recover"),
    ("workflow", "no-such-verb"),
]


@pytest.mark.parametrize("args", BAD_USAGE, ids=lambda a: " ".join(a))
def test_bad_usage_exits_2_and_says_why(runner: FlaskCliRunner, args: tuple[str, ...]) -> None:
    code, output = invoke(runner, *args)
    assert code == EXIT_USAGE and "Error" in output, output


def test_an_unknown_workflow_exits_3(runner: FlaskCliRunner) -> None:
    for verb in ("get", "steps", "cancel", "resume", "fork"):
        code, output = invoke(runner, "workflow", verb, "no-such-workflow")
        assert code == EXIT_NOT_FOUND and "no-such-workflow" in output, (verb, output)


def test_without_dbos_configured_the_cli_says_so(database_url: str) -> None:
    DBOS.destroy()
    app = Flask("cli-test")
    DBOS(flask=app, config=make_config(database_url))
    runner = app.test_cli_runner()
    DBOS.destroy()  # the commands stay on the app; the runtime is gone
    code, output = invoke(runner, "workflow", "list")
    assert code == EXIT_UNAVAILABLE and "not configured" in output, output


def test_an_unreachable_database_exits_5(tmp_path: Any) -> None:
    DBOS.destroy()
    app = Flask("cli-test")
    DBOS(flask=app, config=make_config("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    try:
        code, output = invoke(app.test_cli_runner(), "workflow", "list")
        assert code == EXIT_UNAVAILABLE and "cannot reach the database" in output, output
    finally:
        DBOS.destroy()


def test_the_operator_runtime_starts_no_background_thread(database_url: str) -> None:
    DBOS.destroy()
    app = Flask("cli-test")
    DBOS(flask=app, config=make_config(database_url))
    try:
        code, output = invoke(app.test_cli_runner(), "workflow", "list")
        assert (code, output.strip()) == (0, "(none)")
        assert lifecycle.configured() is None  # the command closed the runtime it opened
        DBOS(flask=app, config=make_config(database_url))
        rt = lifecycle.open_for_operator()
        assert not rt.runs_workflows
        DBOS.launch()  # a later launch keeps the operator's runtime: still no thread
        names = {t.name for t in threading.enumerate()}
        assert not {"durable-recovery", "durable-queues", "durable-scheduler", "durable-admin"} & names, names
    finally:
        DBOS.destroy()


def test_the_hand_off_names_the_queue_and_wake_key_the_dequeuer_uses() -> None:
    from durable import enqueue
    from durable.store import operations_store

    assert operations_store.HANDOFF_QUEUE == enqueue.INTERNAL_QUEUE_NAME
    assert operations_store.HANDOFF_WAKE_KEY == enqueue.QUEUE_KEY


def test_gc_prunes_finished_workflows_in_batches_and_keeps_unfinished_ones(runner: FlaskCliRunner) -> None:
    DECLINE["card"] = False
    for n in range(5):
        with SetWorkflowID(f"done-{n}"):
            checkout(n)
    with SetWorkflowID("still-waiting"):
        DBOS.start_workflow(waits_for_go)
    wait_for_status("still-waiting", "PENDING")
    with SetWorkflowID("done-last"):
        checkout(9)
    assert as_json(runner, "workflow", "gc", "--keep", "3", "--batch-size", "2") == {"deleted": 4}
    left = {w["workflow_id"] for w in as_json(runner, "workflow", "list", "--limit", "100")}
    assert left == {"done-4", "still-waiting", "done-last"}  # the newest three
    assert DBOS.list_workflow_steps("done-0") == []
    assert as_json(runner, "workflow", "gc", "--older-than", "0s", "--batch-size", "1") == {"deleted": 2}
    assert [w["workflow_id"] for w in as_json(runner, "workflow", "list")] == ["still-waiting"]
    code, output = invoke(runner, "workflow", "gc")
    assert code == EXIT_USAGE and "--older-than" in output, output
    DBOS.cancel_workflow("still-waiting")


def test_delete_refuses_an_unfinished_workflow_unless_forced(runner: FlaskCliRunner) -> None:
    failed_checkout("to-delete")
    with SetWorkflowID("running"):
        DBOS.start_workflow(waits_for_go)
    wait_for_status("running", "PENDING")
    assert invoke(runner, "workflow", "delete", "to-delete") == (0, "deleted 1 workflow(s)\n")
    assert DBOS.get_workflow_status("to-delete") is None
    code, output = invoke(runner, "workflow", "delete", "running")
    assert code == EXIT_CONFLICT and "has not finished" in output, output
    DBOS.cancel_workflow("running")
    wait_for_status("running", "CANCELLED")
    assert as_json(runner, "workflow", "delete", "running") == ["running"]
    assert invoke(runner, "workflow", "delete", "running")[0] == EXIT_NOT_FOUND
