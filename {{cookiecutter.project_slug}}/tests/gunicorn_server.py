"""The project under real gunicorn, for tests: started on a free port, waited for, always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until ``predicate`` returns something truthy (connection errors count as "not yet")."""
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


def call(
    method: str,
    url: str,
    body: object = None,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    """One request; returns the status and the parsed JSON body (every answer must be JSON)."""
    sent = (
        {"Content-Type": "application/json"}
        | ({"dbos-idempotency-key": key} if key else {})
        | (headers or {})
    )
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@contextmanager
def running_gunicorn(database_url: str, log: Path, *args: str, **env: str) -> Iterator[tuple[str, int]]:
    """Serve the project with gunicorn.conf.py on a free port; yield its URL and the master's pid.

    ``args`` go to gunicorn's command line (another app: ``--pythonpath tests metrics_app:app``).
    """
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        **env,
    }
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *args],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: four workers importing the app on a loaded two-core CI machine took over 30 s.
        def serving() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {process.returncode}: {log.read_text()[-3000:]}")
            return call("GET", base + "/healthz")[0] == 200

        until(serving, 120, "gunicorn to serve")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def raw_exchange(base: str, request: bytes) -> tuple[int, str, bytes]:
    """Send bytes no HTTP client would send; return the status, the Content-Type and the body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), fields.get("Content-Type", ""), body
