"""The admin server: DBOS's operator endpoints on their own port (``run_admin_server=True``).

These endpoints move work between executors and show every workflow's inputs and outputs, so:

* it binds to 127.0.0.1 (``admin_host``) unless told otherwise, and beyond loopback it refuses to
  start without an ``admin_token`` (config.py);
* with a token, every endpoint but the health probe needs ``Authorization: Bearer <token>``;
* the ``Host`` header must name this server (loopback names, the bound address, ``admin_allowed_hosts``),
  so a web page the operator opens cannot reach it through DNS rebinding;
* recovery refuses an executor whose heartbeat is fresh (it is alive: its workflows would run twice)
  unless ``?force=true`` says the operator knows better;
* every answer, errors included, is JSON; bad input is a 400 naming what is wrong.

With several gunicorn workers the first to bind the port serves it; every answer comes from the
shared database, so any worker speaks for all of them.

    GET  /dbos-healthz                    "healthy"
    POST /dbos-workflow-recovery          ["executor-id", ...] -> IDs of the workflows adopted
    POST /workflows                       {"status": ..., "name": ..., "limit": ...} -> workflows
    GET  /workflows/<id>                  one workflow's status
    GET  /workflows/<id>/steps            its checkpointed steps
    GET  /metrics                         Prometheus metrics, when the app installed an exporter (observe.py)
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import observe

logger = logging.getLogger(__name__)

HEALTH_PATH = "/dbos-healthz"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_TEXT = 4096
MAX_LIST = 1000
MAX_INT = 2**31 - 1
TEXT_FILTERS = ("workflow_id_prefix",)
TEXT_OR_LIST_FILTERS = ("status", "name", "app_version", "executor_id")
TIME_FILTERS = ("start_time", "end_time")
LIST_FILTERS = ("workflow_ids", *TEXT_OR_LIST_FILTERS, *TEXT_FILTERS, "limit", "offset", "sort_desc", *TIME_FILTERS)


class BadInput(ValueError):
    """A request the admin API cannot use; the message says which part and why."""


@dataclass(frozen=True)
class AdminActions:
    """What the admin endpoints may do, handed over by the runtime (no import of the DBOS class)."""

    recover_executors: Callable[[list[str]], list[str]]
    list_workflows: Callable[..., list[Any]]
    get_workflow: Callable[[str], Any]
    list_steps: Callable[[str], list[Any]]
    # The IDs among those given whose heartbeat is fresh: they are alive.
    live_executors: Callable[[list[str]], list[str]]


def host_name(header: str) -> str:
    """``Host`` without its port: ``[::1]:3001`` -> ``::1``, ``example.com:3001`` -> ``example.com``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def _text(value: Any, what: str) -> str:
    """A string the database can take: bounded, no control characters (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT or any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise BadInput(f"{what} must be at most {MAX_TEXT} printable characters")
    return value


def _texts(value: Any, what: str, *, single: bool) -> list[str] | str:
    if single and isinstance(value, str):
        return _text(value, what)
    if not isinstance(value, list) or len(value) > MAX_LIST:
        kind = "a string or a list of strings" if single else "a list of strings"
        raise BadInput(f"{what} must be {kind} (at most {MAX_LIST})")
    return [_text(item, f"{what}[{n}]") for n, item in enumerate(value)]


def parse_filters(raw: bytes) -> dict[str, Any]:
    """The body of ``POST /workflows``: a JSON object of known filters, each of the right type."""
    if not raw.strip():
        return {}
    try:
        filters = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadInput("the body is not JSON; send an object of filters, e.g. {\"status\": \"PENDING\"}") from None
    if not isinstance(filters, dict):
        raise BadInput("send a JSON object of filters")
    unknown = sorted(set(filters) - set(LIST_FILTERS))
    if unknown:
        raise BadInput(f"unknown filter {unknown[0][:100]!r}; known: {', '.join(LIST_FILTERS)}")
    clean: dict[str, Any] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if name == "workflow_ids":
            clean[name] = _texts(value, name, single=False)
        elif name in TEXT_OR_LIST_FILTERS:
            clean[name] = _texts(value, name, single=True)
        elif name in TEXT_FILTERS:
            clean[name] = _text(value, name)
        elif name in ("limit", "offset"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
                raise BadInput(f"{name} must be a whole number in 0-{MAX_INT}")
            clean[name] = value
        elif name == "sort_desc":
            if not isinstance(value, bool):
                raise BadInput("sort_desc must be true or false")
            clean[name] = value
        else:  # a time filter
            text = _text(value, name)
            try:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise BadInput(f"{name} must be an ISO-8601 time, e.g. 2026-01-31T12:00:00Z") from None
            clean[name] = text
    return clean


def _plain(value: Any) -> Any:
    """A value json.dumps can write: errors and unusual objects become text (never raising themselves)."""
    if isinstance(value, BaseException):
        try:
            return f"{type(value).__name__}: {value}"
        except Exception:
            return type(value).__name__
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _as_json(value: Any) -> dict[str, Any]:
    """A workflow status or step as a dict, shallowly: ``dataclasses.asdict`` deep-copies, and a stored
    exception (a SQLAlchemy DataError, say) may not survive a copy."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return dict(value)


def _json(payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(json.dumps(payload, default=_plain), status=status, headers=list(headers),
                    mimetype="application/json")


def _error(status: int, message: str, **extra: Any) -> Response:
    headers = [("WWW-Authenticate", "Bearer")] if status == 401 else []
    return _json({"error": message, "status": status, **extra}, status, headers)


def build_admin_app(actions: AdminActions, *, token: str | None = None,
                    allowed_hosts: Iterable[str] = ()) -> Flask:
    app = Flask("durable-admin")
    app.url_map.merge_slashes = app.url_map.strict_slashes = False  # no HTML redirects: 404 JSON instead
    hosts = LOOPBACK_NAMES | {host_name(h) if h != "*" else h for h in allowed_hosts}
    expected = f"Bearer {token}".encode() if token else None

    @app.before_request
    def guard() -> Response | None:
        if request.path == HEALTH_PATH:
            return None  # a probe may come from anywhere and learns nothing
        if "*" not in hosts and host_name(request.host) not in hosts:
            return _error(403, "this Host is not allowed; add it to admin_allowed_hosts if it names this server")
        sent = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if expected is not None and not hmac.compare_digest(sent, expected):
            return _error(401, "send Authorization: Bearer <the admin token>")
        return None

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput) -> Response:
        return _error(400, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        logger.exception("admin request %s %s failed", request.method, request.path)
        return _error(500, "internal error; see the service's log")

    @app.get(HEALTH_PATH)
    def healthz() -> str:
        return "healthy"

    @app.post("/dbos-workflow-recovery")
    def recover() -> Response:
        try:
            executor_ids = json.loads(request.get_data() or b"null")
        except (ValueError, RecursionError):
            executor_ids = None
        if not isinstance(executor_ids, list) or len(executor_ids) > MAX_LIST:
            raise BadInput("send a JSON list of executor IDs")
        ids = [_text(e, f"executor ID [{n}]") for n, e in enumerate(executor_ids)]
        live = actions.live_executors(ids)
        if live and request.args.get("force", "").lower() not in ("1", "true", "yes"):
            return _error(409, "these executors are alive (their heartbeat is fresh): recovering them would run "
                               "their workflows twice; add ?force=true if you know they are gone", alive=live)
        return _json(actions.recover_executors(ids))

    @app.post("/workflows")
    def workflows() -> Response:
        filters = parse_filters(request.get_data())
        return _json([_as_json(w) for w in actions.list_workflows(**filters)])

    @app.get("/workflows/<workflow_id>")
    def workflow(workflow_id: str) -> Response:
        found = actions.get_workflow(_text(workflow_id, "the workflow ID"))
        if found is None:
            return _error(404, f"workflow {workflow_id} does not exist")
        return _json(_as_json(found))

    @app.get("/metrics")
    def metrics() -> Response:
        found = observe.exposition()
        if found is None:
            return _error(404, "no metrics exporter is installed; the app's metrics module installs one")
        body, content_type = found
        return Response(body, 200, {"Content-Type": content_type})

    @app.get("/workflows/<workflow_id>/steps")
    def steps(workflow_id: str) -> Response:
        return _json([_as_json(s) for s in actions.list_steps(_text(workflow_id, "the workflow ID"))])

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("admin: " + format, *args)


class AdminServer:
    """The admin app on a daemon thread; ``start`` returns False when another process has the port."""

    def __init__(self, actions: AdminActions, port: int, host: str = "127.0.0.1", *, token: str | None = None,
                 allowed_hosts: Iterable[str] = ()) -> None:
        bound = [] if host in ("", "0.0.0.0", "::") else [host]  # a wildcard names no host to expect
        self.app = build_admin_app(actions, token=token, allowed_hosts=[*bound, *allowed_hosts])
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
