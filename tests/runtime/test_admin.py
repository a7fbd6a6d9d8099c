"""The admin server's endpoints, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from durable import DBOS, SetWorkflowID, current, lifecycle
from durable.admin import AdminServer
from helpers import free_port


@DBOS.step()
def admin_step(x: int) -> int:
    return x * 3


@DBOS.workflow()
def admin_workflow(x: int) -> int:
    return admin_step(x)


def fetch(url: str, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw.startswith((b"[", b"{")) else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def admin(dbos: type[DBOS]) -> Iterator[str]:
    server = AdminServer(lifecycle.admin_actions(current.current_runtime()), free_port())
    assert server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_admin_endpoints(admin: str) -> None:
    with SetWorkflowID("admin-1"):
        admin_workflow(2)
    assert fetch(admin + "/dbos-healthz") == (200, "healthy")
    status, listed = fetch(admin + "/workflows", {"status": "SUCCESS", "name": "admin_workflow"})
    assert status == 200 and [w["workflow_id"] for w in listed] == ["admin-1"]  # type: ignore[union-attr]
    status, one = fetch(admin + "/workflows/admin-1")
    assert status == 200 and one["output"] == 6  # type: ignore[index]
    status, steps = fetch(admin + "/workflows/admin-1/steps")
    assert [s["function_name"] for s in steps] == ["admin_step"]  # type: ignore[union-attr]
    assert fetch(admin + "/workflows/nope")[0] == 404
    assert fetch(admin + "/dbos-workflow-recovery", ["gone:1:x"]) == (200, [])
    assert fetch(admin + "/dbos-workflow-recovery", {"not": "a list"})[0] == 400
    assert fetch(admin + "/workflows", {"colour": "red"})[0] == 400


def test_second_server_on_the_same_port_steps_aside(admin: str) -> None:
    port = int(admin.rsplit(":", 1)[1])
    other = AdminServer(lifecycle.admin_actions(current.current_runtime()), port)
    assert other.start() is False


def test_run_admin_server_serves_on_admin_port(database_url: str) -> None:
    from conftest import make_config

    port = free_port()
    DBOS.destroy()
    DBOS(config=make_config(database_url, run_admin_server=True, admin_port=port))
    try:
        DBOS.launch()
        assert fetch(f"http://127.0.0.1:{port}/dbos-healthz") == (200, "healthy")
    finally:
        DBOS.destroy()
    with pytest.raises(OSError):
        fetch(f"http://127.0.0.1:{port}/dbos-healthz")  # stopped with the runtime
