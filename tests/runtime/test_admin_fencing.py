"""Two real gunicorn servers on one database: the admin server of one takes over the other's workflow.

Recovery refuses a live executor unless forced; when forced, the request waiting on the workflow in
the first server ends promptly with a JSON 409 (it used to wait for the new owner's run, up to
gunicorn's worker timeout, and the client got gunicorn's HTML 500), and its retry gets the outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from conftest import RUNTIME_PARENT
from helpers import free_port, http_status, stop_process, wait_until

SERVICE = f"""
import os, sys, time
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from flask import Flask
from durable import DBOS, DBOSConfig

app = Flask(__name__)
admin_port = int(os.environ.get("ADMIN_PORT") or 0)
DBOS(flask=app, config=DBOSConfig(name="svc", application_database_url=os.environ["DATABASE_URL"],
                                  executor_heartbeat_sec=0.5, executor_timeout_sec=5,
                                  run_admin_server=bool(admin_port), admin_port=admin_port or 3001))

@DBOS.step()
def side_effect():
    with open(os.environ["LEDGER"], "a") as ledger:
        ledger.write(os.environ["ROLE"] + "\\n")
    hold = os.environ["HOLD"]
    deadline = time.monotonic() + 60
    while os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.environ["ROLE"]

@DBOS.workflow()
def held():
    return {{"step_ran_in": side_effect()}}

@app.post("/held")
def route():
    return held(), 201
"""

HOOKS = """
def post_worker_init(worker):
    from durable import DBOS
    DBOS.launch()

def worker_exit(server, worker):
    from durable import DBOS
    DBOS.destroy()
"""


@contextmanager
def gunicorn(tmp_path: Path, database_url: str, role: str, **env: str) -> Iterator[str]:
    port = free_port()
    environment = dict(os.environ, DATABASE_URL=database_url, ROLE=role, HOLD=str(tmp_path / f"hold-{role}"),
                       LEDGER=str(tmp_path / "ledger"), PYTHONPATH=f"{RUNTIME_PARENT}{os.pathsep}{tmp_path}", **env)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}", "--timeout", "120",
         "--config", str(tmp_path / "hooks.py"), "--graceful-timeout", "5", "svc:app"],
        cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{role}.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_status(base + "/nowhere") == 404, timeout=30, what=f"gunicorn {role} to serve")
        yield base
    finally:
        stop_process(server, timeout=20)


def post(url: str, body: bytes = b"{}", key: str | None = None) -> tuple[int, dict[str, str], object]:
    headers = {"Content-Type": "application/json"} | ({"dbos-idempotency-key": key} if key else {})
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return int(response.status), dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def owner_of(database_url: str, workflow_id: str) -> str | None:
    engine = sa.create_engine(database_url)
    table = "dbos.workflow_status" if engine.dialect.name == "postgresql" else "dbos_workflow_status"
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"SELECT executor_id FROM {table} WHERE workflow_uuid = :id"),
                                {"id": workflow_id}).scalar()
    finally:
        engine.dispose()


def test_forced_recovery_of_a_live_executor_ends_its_waiting_request_promptly(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "hooks.py").write_text(HOOKS)
    ledger, hold_a, hold_b = tmp_path / "ledger", tmp_path / "hold-a", tmp_path / "hold-b"
    hold_a.touch()
    hold_b.touch()
    admin_port = free_port()
    with gunicorn(tmp_path, database_url, "a") as server_a, \
            gunicorn(tmp_path, database_url, "b", ADMIN_PORT=str(admin_port)):
        admin = f"http://127.0.0.1:{admin_port}"
        wait_until(lambda: http_status(admin + "/dbos-healthz") == 200, timeout=30, what="the admin server")
        answers: list[tuple[float, int, dict[str, str], object]] = []

        def waiting_request() -> None:
            answers.append((time.monotonic(), *post(server_a + "/held", key="fenced-1")))

        client = threading.Thread(target=waiting_request)
        client.start()
        wait_until(lambda: ledger.exists() and ledger.read_text() == "a\n", timeout=30, what="a's step to start")
        executor_a = owner_of(database_url, "fenced-1")
        assert executor_a is not None

        body = json.dumps([executor_a]).encode()
        status, _, refused = post(admin + "/dbos-workflow-recovery", body)
        assert status == 409 and refused["alive"] == [executor_a]  # type: ignore[index]
        status, _, adopted = post(admin + "/dbos-workflow-recovery?force=true", body)
        assert (status, adopted) == (200, ["fenced-1"])
        wait_until(lambda: ledger.read_text() == "a\nb\n", timeout=30, what="b to run the step again")

        released = time.monotonic()
        hold_a.unlink()  # a's step returns; its checkpoint is refused: the workflow is b's now
        client.join(timeout=30)
        assert answers, "the fenced request did not end within 30 s"
        answered_at, status, headers, answer = answers[0]
        assert answered_at - released < 15, "the fenced request waited for the new owner"
        assert (status, headers["Content-Type"], headers["Retry-After"]) == (409, "application/json", "1")
        assert answer["code"] == 101 and "owned by another executor" in answer["error"]  # type: ignore[index]

        hold_b.unlink()
        def retried() -> object:
            status, headers, body = post(server_a + "/held", key="fenced-1")
            return body if status == 201 else None
        assert wait_until(retried, timeout=30, what="the retry to get b's outcome") == {"step_ran_in": "b"}
