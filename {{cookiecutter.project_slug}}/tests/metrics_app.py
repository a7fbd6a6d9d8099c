"""The service with a few workflows of its own, for the tests that serve it under real gunicorn.

``gunicorn --config gunicorn.conf.py --pythonpath tests metrics_app:app``: the project's own
gunicorn.conf.py (workers, metrics folder, hooks), this module's app.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from flask import Response, jsonify

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.durable import DBOS, Queue

held = Queue("metrics-held", concurrency=1)
log = logging.getLogger("metrics_app")


@DBOS.step()
def measure(n: int) -> int:
    time.sleep(0.05)  # long enough that concurrent requests spread over the workers
    return n * 2


@DBOS.step()
def refuse_odd(n: int) -> int:
    if n % 4 == 3:
        raise ValueError(f"{n} is refused")
    return n


@DBOS.workflow()
def metered(n: int) -> int:
    log.info("metering %d", n)
    return refuse_odd(measure(n) // 2)


@DBOS.workflow()
def wait_for_release(hold_file: str) -> str:
    while Path(hold_file).exists():
        time.sleep(0.05)
    return "released"


app = create_app()


@app.post("/work/<int:n>")
def work(n: int) -> tuple[Response, int]:
    try:
        return jsonify({"result": metered(n), "pid": os.getpid()}), 200
    except ValueError as exc:
        return jsonify({"error": str(exc), "pid": os.getpid()}), 422


@app.get("/pid")
def pid() -> Response:
    time.sleep(0.1)  # held long enough that concurrent calls reach every worker that is ready
    return jsonify({"pid": os.getpid()})


@app.post("/hold/<int:count>")
def hold(count: int) -> Response:
    hold_file = app.config["HOLD_FILE"]
    return jsonify([held.enqueue(wait_for_release, hold_file).workflow_id for _ in range(count)])
