"""The orders example under real gunicorn: workers killed with SIGKILL in the middle of a checkout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ORDER = {"user_id": "ada", "items": [{"sku": "book", "quantity": 1, "price_cents": 900}]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(method: str, url: str, body: object = None, key: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"} | ({"dbos-idempotency-key": key} if key else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def workers_of(master: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


@pytest.fixture
def server(
    tmp_path: Path, alembic_config: Config, database_url: str
) -> Iterator[tuple[str, Path, Path, int]]:
    command.upgrade(alembic_config, "head")
    port = free_port()
    ledger, hold = tmp_path / "ledger.jsonl", tmp_path / "hold"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        FLASK_PAYMENT_LEDGER=str(ledger),
        FLASK_NOTIFY_HOLD_FILE=str(hold),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "gunicorn.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: call("GET", base + "/healthz")[0] == 200, 30, "gunicorn to serve")
        yield base, ledger, hold, process.pid
    finally:
        hold.unlink(missing_ok=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_checkout_killed_mid_workflow_finishes_once(server: tuple[str, Path, Path, int]) -> None:
    base, ledger, hold, master = server
    hold.touch()  # the notifier waits: the checkout stops after the payment, before the notification

    def first_attempt() -> None:
        try:
            call("POST", base + "/orders", ORDER, key="killed-checkout")
        except OSError:
            pass  # its worker is killed before it answers

    client = threading.Thread(target=first_attempt)
    client.start()
    until(lambda: ledger.exists() and ledger.read_text().count("\n") == 1, 30, "the payment to be charged")
    killed_at = time.monotonic()
    for pid in workers_of(master):
        os.kill(pid, signal.SIGKILL)
    client.join(timeout=30)
    hold.unlink()

    # gunicorn starts new workers; they find the dead workers' checkout and finish it.
    status, body = until(
        lambda: (r := call("POST", base + "/orders", ORDER, key="killed-checkout"))[0] == 201 and r,
        60,
        "the retried request to be answered",
    )
    recovered_in = time.monotonic() - killed_at
    assert body["status"] == "paid" and body["workflow_id"] == "killed-checkout"
    assert ledger.read_text().count("\n") == 1, "the card was charged twice"
    status, workflow = call("GET", f"{base}/orders/{body['order_id']}/workflow")
    assert workflow["status"] == "SUCCESS"
    assert [s["name"] for s in workflow["steps"]] == [
        "save_order",
        "charge_payment",
        "set_order_status",
        "notify_user",
    ]
    assert recovered_in < 60
