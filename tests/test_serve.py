"""A real gunicorn, configured by the generated gunicorn.conf.py, serves the default project."""

from __future__ import annotations

import json
import subprocess
import urllib.request

from baking import DEFAULT_COMBINATION, Bakery
from helpers import free_port, output_of, project_env, run, stop_process, wait_until


def get_json(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_gunicorn_serves_health_and_readiness(bakery: Bakery) -> None:
    baked = bakery.get(DEFAULT_COMBINATION)
    migrated = run([baked.bin("alembic"), "upgrade", "head"], baked.path, env=project_env())
    assert migrated.returncode == 0, output_of(migrated)
    port = free_port()
    log = baked.path / "gunicorn.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [baked.bin("gunicorn"), "--config", "gunicorn.conf.py"],
            cwd=baked.path, env=project_env(BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2"),
            stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: get_json(f"{base}/healthz"), timeout=30, what="gunicorn to answer /healthz") == (
            200, {"status": "ok"},
        )
        assert get_json(f"{base}/readyz") == (200, {"status": "ready"})
    finally:
        stop_process(server, timeout=45)  # gunicorn's graceful_timeout is 30s
    text = log.read_text()
    assert server.returncode == 0, text[-4000:]
    assert "Traceback" not in text, text[-4000:]  # the post_fork/post_worker_init/worker_exit hooks ran cleanly
