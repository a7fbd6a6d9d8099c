"""gunicorn settings: `.venv/bin/gunicorn --config gunicorn.conf.py`.

Every value can be overridden from the environment (BIND or PORT, WEB_CONCURRENCY) so the same file
serves a laptop, Docker and a platform that assigns the port.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import gunicorn.glogging  # type: ignore[import-untyped]  # gunicorn ships no type hints
import gunicorn.util  # type: ignore[import-untyped]

wsgi_app = "{{ cookiecutter.package_name }}:create_app()"
# PORT is how platforms (Heroku, Cloud Run, Render) assign a port, and they route from outside the
# container, hence all interfaces; BIND is the explicit form; locally we stay on loopback.
bind = os.environ.get("BIND") or (
    f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:8000"
)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
accesslog = "-"
errorlog = "-"
graceful_timeout = 30
timeout = 60

# Prometheus' multiprocess mode ({{ cookiecutter.package_name }}/metrics.py): each worker writes its counters to
# files in this folder and a scrape of any worker adds them up. Set here, in the master, before any worker
# imports prometheus_client (it reads the variable at import). A folder of our own unless one is given.
METRICS_DIR_OWNED = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if METRICS_DIR_OWNED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own error answers (a malformed request line, headers over the limits: 400, 414, 431;
    a worker that died mid-request: 500) as JSON in the app's shape, instead of an HTML page."""
    body = json.dumps({"error": reason, "message": mesg, "status": status_int}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn offers no setting for this; its workers call util.write_error, looked up at each call.
gunicorn.util.write_error = write_json_error


class JsonLogger(gunicorn.glogging.Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's own lines (its errors, the access log) as JSON objects too, when LOG_FORMAT=json, so
    that every line the service writes parses as one (the app's are set up in log.py)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from pythonjsonlogger.json import JsonFormatter

        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(
                    JsonFormatter(
                        "%(levelname)s %(name)s %(process)s %(message)s",
                        rename_fields={"levelname": "level", "name": "logger"},
                        timestamp=True,
                    )
                )


if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
    logger_class = JsonLogger


def on_starting(server: Any) -> None:
    """Start counting from zero: files left by an earlier run would be added to this one's counts."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live gauges (in-flight workflows); its counters still count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    if METRICS_DIR_OWNED:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


def post_fork(server: Any, worker: Any) -> None:
    """Drop database connections inherited from a preloading master: a pool must not cross a fork."""
    if "{{ cookiecutter.package_name }}.durable" not in sys.modules:
        # Nothing was imported before the fork (no --preload), so nothing was inherited. Importing
        # here would only widen the window in which the new worker still has the master's signal
        # handlers, and a SIGTERM then is lost: the worker would run until killed.
        return
    from {{ cookiecutter.package_name }}.durable import DBOS

    DBOS.after_fork()


def post_worker_init(worker: Any) -> None:
    """Connect and start recovery in each worker now, rather than on its first request."""
    from {{ cookiecutter.package_name }}.durable import DBOS
    from {{ cookiecutter.package_name }}.durable.error import DBOSException

    try:
        DBOS.launch()
    except DBOSException as exc:
        # Database down: boot anyway, so /healthz answers and gunicorn does not crash-loop; each
        # request tries to launch again until the database is back.
        worker.log.warning("durable runtime not launched yet: %s", exc)


def worker_exit(server: Any, worker: Any) -> None:
    """Drain: let background workflows finish within the graceful timeout, then release the rest
    so that another worker adopts them at once."""
    from {{ cookiecutter.package_name }}.durable import DBOS

    DBOS.destroy(workflow_completion_timeout_sec=graceful_timeout / 2)
