"""``flask workflow ...`` as an operator runs it: a separate process, beside a served app (gunicorn).

The service has real failed, pending and cancelled workflows. The CLI process finds them, shows why
one failed, forks it from the failed step and waits for it, resumes a cancelled one, and keeps working
once the service is down. It runs no workflow itself: what it forks or resumes is run by the service
(the workflow's executor is the service's).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import RUNTIME_PARENT
from helpers import free_port, http_status, stop_process, wait_until

SERVICE = f"""
import os, sys
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from flask import Flask
from durable import DBOS, DBOSConfig, Queue, SetWorkflowID

app = Flask(__name__)
jobs = Queue("jobs")
admin_port = int(os.environ.get("ADMIN_PORT") or 0)
DBOS(flask=app, config=DBOSConfig(name="svc", application_database_url=os.environ["DATABASE_URL"],
                                  executor_heartbeat_sec=0.5, executor_timeout_sec=5,
                                  run_admin_server=bool(admin_port), admin_port=admin_port or 3001))

@DBOS.step()
def reserve(x):
    return x + 1

@DBOS.step()
def charge(x):
    if os.path.exists(os.environ["DECLINE"]):
        raise RuntimeError("card declined")
    return x * 2

@DBOS.workflow()
def checkout(x):
    return charge(reserve(x))

@DBOS.workflow()
def parked():
    return DBOS.recv("go", timeout_seconds=120)

@app.post("/checkout/<workflow_id>")
def start_checkout(workflow_id):
    with SetWorkflowID(workflow_id):
        DBOS.start_workflow(checkout, 1)
    return {{"workflow_id": workflow_id}}

@app.post("/park/<workflow_id>")
def park(workflow_id):
    with SetWorkflowID(workflow_id):
        DBOS.start_workflow(parked)
    return {{"workflow_id": workflow_id}}

@app.post("/go/<workflow_id>")
def go(workflow_id):
    DBOS.send(workflow_id, "went", "go")
    return {{}}

@app.get("/executor")
def executor():
    return {{"executor_id": DBOS.executor_id}}
"""

HOOKS = """
def post_worker_init(worker):
    from durable import DBOS
    DBOS.launch()

def worker_exit(server, worker):
    from durable import DBOS
    DBOS.destroy()
"""


class Operator:
    """Runs ``flask --app svc ...`` in its own process, as an operator's shell does."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "svc", *args], cwd=self.folder,
                              env=self.env, capture_output=True, text=True, timeout=90, check=False)

    def json(self, *args: str) -> Any:
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)


def serve(database_url: str, tmp_path: Path, workers: int = 1, **extra_env: str) -> Iterator[tuple[str, Operator, Any]]:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "hooks.py").write_text(HOOKS)
    decline = tmp_path / "decline"
    decline.touch()
    env = dict(os.environ, DATABASE_URL=database_url, DECLINE=str(decline),
               PYTHONPATH=f"{RUNTIME_PARENT}{os.pathsep}{tmp_path}", **extra_env)
    env.pop("FLASK_APP", None)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--config",
         str(tmp_path / "hooks.py"), "--graceful-timeout", "5", "svc:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_status(base + "/nowhere") == 404, timeout=30, what="gunicorn to serve")
        yield base, Operator(tmp_path, env), lambda: stop_process(server, timeout=15)
    finally:
        stop_process(server, timeout=15)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Operator, Any]]:
    yield from serve(database_url, tmp_path)


def post(url: str) -> Any:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def test_an_operator_finds_fixes_and_watches_workflows_from_another_process(
    served: tuple[str, Operator, Any],
) -> None:
    base, operator, stop_service = served
    with urllib.request.urlopen(base + "/executor", timeout=10) as response:
        service_executor = json.loads(response.read())["executor_id"]
    post(base + "/checkout/order-1")
    post(base + "/park/parked-1")
    post(base + "/park/parked-2")
    wait_until(lambda: [w["workflow_id"] for w in operator.json("workflow", "list", "-S", "ERROR")] == ["order-1"],
               timeout=30, what="order-1 to fail")
    failed = operator.json("workflow", "get", "order-1")
    assert (failed["status"], failed["error"]) == ("ERROR", "RuntimeError: card declined")
    steps = operator.json("workflow", "steps", "order-1")
    assert [(s["function_name"], s["error"]) for s in steps] == [("reserve", None),
                                                                  ("charge", "RuntimeError: card declined")]
    table = operator.run("workflow", "list", "--status", "ERROR")
    assert table.returncode == 0 and "order-1" in table.stdout and "card declined" in table.stdout

    Path(operator.env["DECLINE"]).unlink()
    forked = operator.json("workflow", "fork", "order-1", "--step", "2", "-f", "order-1-fix", "--wait", "60")
    assert (forked["status"], forked["output"]) == ("SUCCESS", 4)
    assert forked["executor_id"] == service_executor  # the service ran it, not the operator's process

    assert operator.run("workflow", "cancel", "parked-1").returncode == 0
    assert operator.json("workflow", "get", "parked-1")["status"] == "CANCELLED"
    assert operator.json("workflow", "resume", "parked-1") == {"workflow_id": "parked-1"}

    def resumed_by_the_service() -> bool:
        found = operator.json("workflow", "get", "parked-1")
        return found["status"] == "PENDING" and found["executor_id"] == service_executor

    wait_until(resumed_by_the_service, timeout=30, what="the service to take the resumed workflow")
    post(base + "/go/parked-1")
    done = operator.json("workflow", "get", "parked-1")
    wait_until(lambda: operator.json("workflow", "get", "parked-1")["status"] == "SUCCESS", timeout=30,
               what="parked-1 to finish")
    assert done["workflow_id"] == "parked-1"

    stop_service()  # the service is down: the CLI still reads and acts
    pending = operator.json("workflow", "list", "-S", "PENDING")
    assert [w["workflow_id"] for w in pending] == ["parked-2"]
    assert operator.run("workflow", "cancel", "parked-2").returncode == 0
    statuses = {w["workflow_id"]: w["status"] for w in operator.json("workflow", "list", "--limit", "100")}
    assert statuses == {"order-1": "ERROR", "order-1-fix": "SUCCESS", "parked-1": "SUCCESS",
                        "parked-2": "CANCELLED"}
    missing = operator.run("workflow", "get", "no-such-workflow")
    assert missing.returncode == 3 and "no-such-workflow" in missing.stderr


def served_by(admin: str) -> int:
    with urllib.request.urlopen(admin + "/openapi.json", timeout=5) as response:
        return int(response.headers["X-Served-By"])


def test_under_gunicorn_one_worker_serves_the_admin_port_and_another_takes_over(
    database_url: str, tmp_path: Path,
) -> None:
    port = free_port()
    admin = f"http://127.0.0.1:{port}"
    service = serve(database_url, tmp_path, workers=2, ADMIN_PORT=str(port))
    next(service)
    try:
        first = wait_until(lambda: served_by(admin), timeout=30, what="a worker to serve the admin port")
        os.kill(first, signal.SIGKILL)  # gunicorn starts a new worker; the standing-by one takes the port

        def another_worker() -> int | None:
            pid = served_by(admin)
            return pid if pid != first else None

        wait_until(another_worker, timeout=30, what="another worker to take the admin port over")
        with urllib.request.urlopen(admin + "/dbos-healthz", timeout=5) as response:
            assert response.read() == b"healthy"
    finally:
        service.close()


CLIENT = f"""
import json, os, sys
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOSClient

client = DBOSClient(system_database_url=os.environ["DATABASE_URL"])
out = {{}}
os.unlink(os.environ["DECLINE"])  # the card is fine from now on
handle = client.enqueue({{"queue_name": "jobs", "workflow_name": "checkout", "workflow_id": "job-1"}}, 3)
out["enqueued"] = handle.get_result(timeout_seconds=60)
failed = client.list_workflows(status="ERROR")
out["failed"] = [w.workflow_id for w in failed]
out["steps"] = [[s["function_name"], str(s["error"]) if s["error"] else None]
                for s in client.list_workflow_steps("order-1")]
forked = client.fork_workflow("order-1", 2, forked_workflow_id="order-1-client")
out["forked"] = forked.get_result(timeout_seconds=60)
out["forked_by"] = forked.get_status().executor_id
client.send("parked-1", "from the client", "go")
out["parked"] = client.retrieve_workflow("parked-1").get_result(timeout_seconds=60)
client.destroy()
print(json.dumps(out))
"""


def test_a_client_in_another_process_enqueues_lists_forks_and_sends(served: tuple[str, Operator, Any]) -> None:
    base, operator, _stop = served
    with urllib.request.urlopen(base + "/executor", timeout=10) as response:
        service_executor = json.loads(response.read())["executor_id"]
    post(base + "/checkout/order-1")
    post(base + "/park/parked-1")
    wait_until(lambda: [w["workflow_id"] for w in operator.json("workflow", "list", "-S", "ERROR")] == ["order-1"],
               timeout=30, what="order-1 to fail")
    done = subprocess.run([sys.executable, "-c", CLIENT], cwd=operator.folder, env=operator.env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["enqueued"] == 8
    assert out["failed"] == ["order-1"]
    assert out["steps"] == [["reserve", None], ["charge", "card declined"]]
    assert (out["forked"], out["forked_by"]) == (4, service_executor)
    assert out["parked"] == "from the client"
