"""The admin server: DBOS's operator endpoints on their own port (``run_admin_server=True``).

Bound to 127.0.0.1 (``admin_port``, 3001 by default): these endpoints move work between executors,
so they are for operators and sidecars on the host, never for the public. With several gunicorn
workers the first to bind the port serves it; every answer comes from the shared database, so any
worker speaks for all of them.

    GET  /dbos-healthz                    "healthy"
    POST /dbos-workflow-recovery          ["executor-id", ...] -> IDs of the workflows adopted
    POST /workflows                       {"status": ..., "name": ..., "limit": ...} -> workflows
    GET  /workflows/<id>                  one workflow's status
    GET  /workflows/<id>/steps            its checkpointed steps
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, Response, jsonify, request

logger = logging.getLogger(__name__)

LIST_FILTERS = ("workflow_ids", "status", "name", "app_version", "executor_id", "workflow_id_prefix", "limit",
                "offset", "sort_desc", "start_time", "end_time")


@dataclass(frozen=True)
class AdminActions:
    """What the admin endpoints may do, handed over by the runtime (no import of the DBOS class)."""

    recover_executors: Callable[[list[str]], list[str]]
    list_workflows: Callable[..., list[Any]]
    get_workflow: Callable[[str], Any]
    list_steps: Callable[[str], list[Any]]


def _as_json(value: Any) -> Any:
    """Workflow statuses and steps, with errors and unusual outputs turned into text."""
    data = asdict(value) if hasattr(value, "__dataclass_fields__") else dict(value)
    for key, item in data.items():
        if isinstance(item, BaseException):
            data[key] = f"{type(item).__name__}: {item}"
        elif not isinstance(item, (str, int, float, bool, list, dict, type(None))):
            data[key] = repr(item)
    return data


def build_admin_app(actions: AdminActions) -> Flask:
    app = Flask("durable-admin")

    @app.get("/dbos-healthz")
    def healthz() -> str:
        return "healthy"

    @app.post("/dbos-workflow-recovery")
    def recover() -> Response | tuple[Response, int]:
        executor_ids = request.get_json(silent=True)
        if not isinstance(executor_ids, list) or not all(isinstance(e, str) for e in executor_ids):
            return jsonify({"error": "send a JSON list of executor IDs"}), 400
        return jsonify(actions.recover_executors(executor_ids))

    @app.post("/workflows")
    def workflows() -> Response | tuple[Response, int]:
        filters = request.get_json(silent=True) or {}
        if not isinstance(filters, dict):
            return jsonify({"error": "send a JSON object of filters"}), 400
        unknown = sorted(set(filters) - set(LIST_FILTERS))
        if unknown:
            return jsonify({"error": f"unknown filter {unknown[0]!r}; known: {', '.join(LIST_FILTERS)}"}), 400
        return jsonify([_as_json(w) for w in actions.list_workflows(**filters)])

    @app.get("/workflows/<workflow_id>")
    def workflow(workflow_id: str) -> Response | tuple[Response, int]:
        found = actions.get_workflow(workflow_id)
        if found is None:
            return jsonify({"error": f"workflow {workflow_id} does not exist"}), 404
        return jsonify(_as_json(found))

    @app.get("/workflows/<workflow_id>/steps")
    def steps(workflow_id: str) -> Response:
        return jsonify([_as_json(s) for s in actions.list_steps(workflow_id)])

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("admin: " + format, *args)


class AdminServer:
    """The admin app on a daemon thread; ``start`` returns False when another process has the port."""

    def __init__(self, actions: AdminActions, port: int, host: str = "127.0.0.1") -> None:
        self.app = build_admin_app(actions)
        self.host, self.port = host, port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        try:
            self._server = make_server(self.host, self.port, self.app, _ThreadingServer, _QuietHandler)
        except OSError as exc:
            logger.info("admin server not started on %s:%d (%s); another worker serves it", self.host, self.port, exc)
            return False
        self._thread = threading.Thread(target=self._server.serve_forever, name="durable-admin", daemon=True)
        self._thread.start()
        logger.info("admin server on http://%s:%d", self.host, self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
