"""Crash tests for durable sleep and recv: a real process is SIGKILLed mid-wait, another recovers."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from durable import DBOS, SetWorkflowID
from helpers import wait_until

WORKER = Path(__file__).with_name("messaging_worker.py")


def start(database_url: str, scenario: str, workdir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), database_url, scenario, str(workdir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, out, err


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def query(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql.replace("{p}", prefix)), params)]
    finally:
        engine.dispose()


def send(database_url: str, tmp_path: Path, destination: str, message: int) -> None:
    """DBOS.send from a process of its own (so the receiver is woken across processes).

    It imports the worker's workflows: should it adopt an orphan before exiting, it can run it.
    """
    code = (f"import sys; sys.path.insert(0, {str(WORKER.parent)!r}); import messaging_worker as w; "
            f"from durable import DBOS, DBOSConfig; "
            f"DBOS(config=DBOSConfig(name='sender', application_database_url={database_url!r})); "
            f"DBOS.send({destination!r}, {message!r}, 't'); DBOS.destroy()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_sleep_interrupted_by_sigkill_wakes_at_its_original_time(database_url: str, tmp_path: Path) -> None:
    worker = start(database_url, "sleep-start", tmp_path)
    try:
        wait_until(lambda: bool(query(database_url, "SELECT 1 FROM {p}operation_outputs WHERE workflow_uuid = "
                                      "'sleep-wf' AND function_name = 'DBOS.sleep'")),
                   timeout=30, what="the sleep's wake-up time to be recorded")
        kill(worker)  # about a second into the 8 s sleep
    finally:
        worker.kill()
    (wake_text,) = query(database_url, "SELECT output FROM {p}operation_outputs WHERE workflow_uuid = 'sleep-wf' "
                                       "AND function_name = 'DBOS.sleep'")[0]
    wake_at = float(json.loads(wake_text) if isinstance(wake_text, str) else wake_text)

    code, out, err = finish(start(database_url, "recover", tmp_path, "sleep-wf"))

    assert code == 0, err
    status, result = out.splitlines()[:2]
    times = ast.literal_eval(result)
    assert status == "SUCCESS"
    assert wake_at - times["before"] >= 7.9  # the recorded wake-up time is the first run's now + 8 s
    assert 0 <= times["after"] - wake_at < 1.0, "the recovered sleep did not wake at the recorded time"


def test_recv_interrupted_by_sigkill_consumes_each_message_once(database_url: str, tmp_path: Path) -> None:
    worker = start(database_url, "recv-start", tmp_path)
    try:
        wait_until(lambda: bool(query(database_url, "SELECT 1 FROM {p}operation_outputs WHERE workflow_uuid = "
                                      "'recv-wf' AND function_name = 'DBOS.sleep'")),
                   timeout=30, what="the receiver to wait")
        send(database_url, tmp_path, "recv-wf", 1)
        wait_until(lambda: (tmp_path / "received").exists(), timeout=30, what="the first message to be received")
        kill(worker)
    finally:
        worker.kill()
    assert (tmp_path / "received").read_text() == "1"

    recovering = start(database_url, "recover", tmp_path, "recv-wf")
    try:
        wait_until(lambda: query(database_url, "SELECT recovery_attempts FROM {p}workflow_status "
                                 "WHERE workflow_uuid = 'recv-wf'")[0][0] >= 1, timeout=30, what="adoption")
        send(database_url, tmp_path, "recv-wf", 2)
        code, out, err = finish(recovering)
    finally:
        recovering.kill()

    assert code == 0, err
    assert out.splitlines()[:2] == ["SUCCESS", "[1, 2]"]
    consumed = query(database_url, "SELECT consumed FROM {p}notifications WHERE destination_uuid = 'recv-wf'")
    assert sorted(c for (c,) in consumed) == [1, 1]


@DBOS.workflow()
def waiting_receiver() -> Any:
    return DBOS.recv("t", timeout_seconds=30)


def test_recv_is_woken_by_a_send_from_another_process(dbos: type[DBOS], database_url: str, tmp_path: Path) -> None:
    with SetWorkflowID("listening"):
        handle = DBOS.start_workflow(waiting_receiver)
    wait_until(lambda: bool(query(database_url, "SELECT 1 FROM {p}operation_outputs WHERE workflow_uuid = "
                                  "'listening' AND function_name = 'DBOS.sleep'")), timeout=30, what="the wait")
    send(database_url, tmp_path, "listening", 7)
    sent = time.monotonic()
    assert handle.get_result(timeout_seconds=30) == 7
    # PostgreSQL: LISTEN/NOTIFY (the safety re-read is 5 s away); SQLite: the 100 ms poll.
    assert time.monotonic() - sent < 1.5
