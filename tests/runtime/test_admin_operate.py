"""The admin API acting on workflows, over real HTTP on 127.0.0.1, with and without a token.

Find a failed workflow, read its steps and error, fork it from the failed step and watch it finish;
cancel and resume; queues; the global timeout; the OpenAPI document; requests from web pages refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from conftest import make_config, wait_for_status
from durable import DBOS, Queue, SetWorkflowID, current, lifecycle
from durable.admin import build_admin_app
from helpers import free_port, wait_until

TOKEN = "operate-admin-token-0123456789abcdef"
DECLINE = {"card": True}
admin_queue = Queue("admin-queue", concurrency=1, limiter={"limit": 5, "period": 1.0})


@DBOS.step()
def pick(x: int) -> int:
    return x + 1


@DBOS.step()
def pay(x: int) -> int:
    if DECLINE["card"]:
        raise RuntimeError("card declined")
    return x * 10


@DBOS.workflow()
def purchase(x: int) -> int:
    return pay(pick(x))


@DBOS.workflow()
def parked() -> Any:
    return DBOS.recv("go", timeout_seconds=60)


def call(base: str, path: str, body: object = None, token: str | None = None, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data=data, headers=sent,
                                     method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw, status, kind = response.read(), response.status, response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers["Content-Type"]
    return status, json.loads(raw) if "json" in kind else raw.decode()


@pytest.fixture(params=[None, TOKEN], ids=["no-token", "token"])
def admin(database_url: str, request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    DECLINE["card"] = True
    port = free_port()
    DBOS.destroy()
    DBOS(config=make_config(database_url, run_admin_server=True, admin_port=port, admin_token=request.param))
    DBOS.launch()
    try:
        yield f"http://127.0.0.1:{port}", request.param
    finally:
        DBOS.destroy()


def test_failed_workflow_steps_error_fork_and_watch_it_finish(admin: tuple[str, str | None]) -> None:
    base, token = admin
    with SetWorkflowID("buy-1"), pytest.raises(RuntimeError):
        purchase(1)
    status, failed = call(base, "/workflows", {"status": "ERROR", "workflow_name": "purchase"}, token)
    assert status == 200 and [w["workflow_id"] for w in failed] == ["buy-1"]
    assert failed[0]["error"] == "RuntimeError: card declined"
    status, steps = call(base, "/workflows/buy-1/steps", token=token)
    assert [(s["function_name"], s["error"]) for s in steps] == [("pick", None), ("pay", "RuntimeError: card declined")]
    DECLINE["card"] = False
    status, forked = call(base, "/workflows/buy-1/fork", {"start_step": 2, "new_workflow_id": "buy-1-b"}, token)
    assert (status, forked) == (200, {"workflow_id": "buy-1-b"})
    wait_until(lambda: call(base, "/workflows/buy-1-b", token=token)[1]["status"] == "SUCCESS", timeout=20,
               what="the fork to finish")
    assert call(base, "/workflows/buy-1-b", token=token)[1]["output"] == 20
    status, restarted = call(base, "/workflows/buy-1/restart", {}, token)
    assert status == 200 and restarted["workflow_id"] not in ("buy-1", "buy-1-b")
    assert DBOS.retrieve_workflow(restarted["workflow_id"]).get_result(timeout_seconds=20) == 20
    assert call(base, "/workflows/buy-1/fork", {"start_step": 2, "new_workflow_id": "buy-1-b"}, token)[0] == 409
    assert call(base, "/workflows/nope/fork", {}, token)[0] == 404
    assert call(base, "/workflows/buy-1/fork", {"start_step": 0}, token)[0] == 400


def test_cancel_resume_queues_and_global_timeout(admin: tuple[str, str | None]) -> None:
    base, token = admin
    with SetWorkflowID("park-1"):
        DBOS.start_workflow(parked)
    with SetWorkflowID("park-q1"):
        admin_queue.enqueue(parked)
    with SetWorkflowID("park-q2"):
        admin_queue.enqueue(parked)
    wait_for_status("park-1", "PENDING")
    wait_for_status("park-q1", "PENDING")
    assert call(base, "/workflows/park-1/cancel", {}, token) == (200, {"workflow_id": "park-1"})
    wait_for_status("park-1", "CANCELLED")
    assert call(base, "/workflows/nope/cancel", {}, token)[0] == 404
    assert call(base, "/workflows/park-1/resume", {}, token) == (200, {"workflow_id": "park-1"})
    DBOS.send("park-1", "resumed", "go")
    assert DBOS.retrieve_workflow("park-1").get_result(timeout_seconds=20) == "resumed"

    status, queued = call(base, "/queues", {"queue_name": "admin-queue"}, token)
    assert status == 200 and [(w["workflow_id"], w["status"]) for w in queued] == [
        ("park-q1", "PENDING"), ("park-q2", "ENQUEUED")]
    status, metadata = call(base, "/dbos-workflow-queues-metadata", token=token)
    assert {"name": "admin-queue", "concurrency": 1, "rateLimit": {"limit": 5, "period": 1.0}} in metadata

    status, answer = call(base, "/dbos-global-timeout", {"cutoff_epoch_timestamp_ms": 2**41}, token)
    assert status == 200 and sorted(answer["cancelled"]) == ["park-q1", "park-q2"]
    wait_for_status("park-q2", "CANCELLED")
    assert call(base, "/dbos-global-timeout", {}, token)[0] == 400
    status, answer = call(base, "/dbos-garbage-collect", {"cutoff_epoch_timestamp_ms": 2**41}, token)
    assert (status, answer) == (200, {"deleted": 3})  # park-1 (finished) and the two cancelled by the timeout
    assert call(base, "/dbos-garbage-collect", {"rows_threshold": 0}, token)[0] == 400
    assert call(base, "/dbos-garbage-collect", {"cutoff": 1}, token)[0] == 400
    assert call(base, "/deactivate", token=token) == (200, {"status": "deactivated"})


def test_the_token_is_required_when_set_and_web_pages_are_refused(admin: tuple[str, str | None]) -> None:
    base, token = admin
    with SetWorkflowID("t-1"):
        DBOS.start_workflow(parked)
    wait_for_status("t-1", "PENDING")
    for path in ("/workflows/t-1/cancel", "/workflows/t-1/resume", "/workflows/t-1/fork", "/queues",
                 "/dbos-global-timeout"):
        status, answer = call(base, path, {}, None if token else "x", headers={"Origin": "https://evil.example"})
        assert status == 403 and "web pages" in answer["error"], (path, answer)
        if token:
            assert call(base, path, {})[0] == 401, path
    assert call(base, "/workflows", {}, token, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert call(base, "/workflows", {}, token, headers={"Sec-Fetch-Site": "none"})[0] == 200  # typed by hand
    assert DBOS.get_workflow_status("t-1").status == "PENDING"  # type: ignore[union-attr]
    DBOS.cancel_workflow("t-1")


def test_the_openapi_document_is_valid_and_covers_every_route(admin: tuple[str, str | None]) -> None:
    base, token = admin
    status, document = call(base, "/openapi.json", token=token)
    assert status == 200
    validate(document)
    app = build_admin_app(lifecycle.admin_actions(current.current_runtime()))
    routes = {(rule.rule.replace("<", "{").replace(">", "}"), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    described = {(path, method) for path, item in document["paths"].items() for method in item
                 if method != "parameters"}
    assert routes == described
