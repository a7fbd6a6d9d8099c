"""Real gunicorn workers: duplicates across workers run once; a worker killed after the workflow
finished but before it answered leaves nothing to run twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import RUNTIME_PARENT
from helpers import free_port, http_status, stop_process, wait_until

SERVICE = f"""
import os, signal, sys
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
import sqlalchemy as sa
from flask import Flask, jsonify, request
from durable import DBOS, DBOSConfig

app = Flask(__name__)
DBOS(flask=app, config=DBOSConfig(name="svc", application_database_url=os.environ["DATABASE_URL"],
                                  executor_heartbeat_sec=0.5, executor_timeout_sec=5, idempotency_wait_sec=15))

@DBOS.transaction()
def record_charge(amount):
    DBOS.sql_session.execute(sa.text("INSERT INTO charges (amount) VALUES (:a)"), {{"a": amount}})
    return amount

@DBOS.step()
def slow_step():
    import time
    time.sleep(0.5)

@DBOS.workflow()
def checkout(amount):
    slow_step()
    return {{"charged": record_charge(amount), "workflow_id": DBOS.workflow_id, "pid": os.getpid()}}

@app.post("/checkout")
def handle():
    body = request.get_json()
    result = checkout(body["amount"])
    marker = os.environ["CRASH_MARKER"]
    if body.get("crash") and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # the workflow is done; the response is never sent
    return jsonify({{k: v for k, v in result.items() if k != "pid"}}), 201
"""

HOOKS = """
def post_worker_init(worker):
    from durable import DBOS
    DBOS.launch()

def worker_exit(server, worker):
    from durable import DBOS
    DBOS.destroy()
"""


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[str]:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE charges (amount INTEGER NOT NULL)")
    engine.dispose()
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "hooks.py").write_text(HOOKS)
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, CRASH_MARKER=str(tmp_path / "crashed"),
               PYTHONPATH=f"{RUNTIME_PARENT}{os.pathsep}{tmp_path}")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "--config",
         str(tmp_path / "hooks.py"), "--graceful-timeout", "5", "svc:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_status(base + "/nowhere") == 404, timeout=30, what="gunicorn to serve")
        yield base
    finally:
        stop_process(server, timeout=15)


def post(url: str, body: dict[str, object], key: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "dbos-idempotency-key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def charges(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM charges").scalar())
    finally:
        engine.dispose()


def test_duplicates_across_workers_run_the_workflow_once(service: str, database_url: str) -> None:
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def send() -> None:
        status, _, body = post(service + "/checkout", {"amount": 7}, "dup-key")
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [status for status, _ in results] == [201] * 8
    assert len({body for _, body in results}) == 1
    assert charges(database_url) == 1


def test_worker_killed_before_answering_is_retried_without_running_twice(service: str, database_url: str) -> None:
    url = service + "/checkout"
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        post(url, {"amount": 3, "crash": True}, "crash-key")  # the worker dies after the workflow ends
    assert charges(database_url) == 1

    def retried() -> bytes | None:
        status, _, body = post(url, {"amount": 3, "crash": True}, "crash-key")
        return body if status == 201 else None  # 409 while the dead worker still looks alive

    body = wait_until(retried, timeout=30, what="the retry to be answered", interval=0.5)
    assert json.loads(body) == {"charged": 3, "workflow_id": "crash-key"}
    status, headers, replayed = post(url, {"amount": 3, "crash": True}, "crash-key")
    assert (status, headers.get("Idempotent-Replayed"), replayed) == (201, "true", body)
    assert charges(database_url) == 1
