"""The service also runs under `flask run` and `app.run()`, and launches its runtime by itself there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

SERVICE = """
import sys
from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.durable import DBOS

app = create_app()

@app.get("/durable")
@DBOS.workflow()
def durable_route():
    return {"workflow_id": DBOS.workflow_id}

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]))
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            get_json(url)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def service_dir(tmp_path: Path, alembic_config: Config) -> Path:
    command.upgrade(alembic_config, "head")
    (tmp_path / "svc.py").write_text(SERVICE)
    return tmp_path


def serve(argv: list[str], cwd: Path, port: int) -> Iterator[str]:
    env = dict(os.environ, PYTHONPATH=str(cwd))
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz", process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.parametrize("runner", ["flask run", "app.run()"])
def test_durable_route_works_without_gunicorn(service_dir: Path, runner: str) -> None:
    port = free_port()
    argv = (
        [sys.executable, "-m", "flask", "--app", "svc", "run", "--port", str(port)]
        if runner == "flask run"
        else [sys.executable, str(service_dir / "svc.py"), str(port)]
    )
    for base in serve(argv, service_dir, port):
        first = get_json(base + "/durable", {"dbos-idempotency-key": "served-1"})
        again = get_json(base + "/durable", {"dbos-idempotency-key": "served-1"})
        assert first == again == {"workflow_id": "served-1"}
