"""The admin server: DBOS's operator endpoints (``admin_routes.py``) on their own port (``run_admin_server=True``).

These endpoints move work between executors and show every workflow's inputs and outputs, so:

* it binds to 127.0.0.1 (``admin_host``) unless told otherwise, and beyond loopback it refuses to
  start without an ``admin_token`` (config.py);
* with a token, every endpoint but the health probe needs ``Authorization: Bearer <token>``;
* the ``Host`` header must name this server (loopback names, the bound address, ``admin_allowed_hosts``),
  so a web page the operator opens cannot reach it through DNS rebinding;
* a request a browser sends on a page's behalf (``Origin``, or ``Sec-Fetch-Site`` other than ``none``)
  is refused: operators use curl, scripts and ``flask workflow``, never a web page;
* recovery refuses an executor whose heartbeat is fresh (it is alive: its workflows would run twice)
  unless ``?force=true`` says the operator knows better;
* every answer, errors included, is JSON; bad input is a 400 naming what is wrong.

Under gunicorn every worker starts an ``AdminServer``; the first to bind the port serves it and the
others stand by, trying to bind again every ``STANDBY_RETRY_SEC``, so when the serving worker exits
(a restart, ``max_requests``, a crash) another one takes the port over. Every answer comes from the
shared database, so any worker speaks for all of them; ``X-Served-By`` names the serving process.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from .admin_input import BadInput
from .admin_routes import HEALTH_PATH, AdminActions, error_response, register_routes

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
# How often a standby worker tries to take the admin port over.
STANDBY_RETRY_SEC = 2.0

__all__ = ["AdminActions", "AdminServer", "build_admin_app", "host_name"]


def host_name(header: str) -> str:
    """``Host`` without its port: ``[::1]:3001`` -> ``::1``, ``example.com:3001`` -> ``example.com``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def from_a_browser(headers: Any) -> bool:
    """True for a request a browser makes for a web page (fetch, a form, an image): it sends ``Origin``
    or ``Sec-Fetch-Site``; a URL typed in the address bar says ``Sec-Fetch-Site: none``."""
    site = headers.get("Sec-Fetch-Site")
    return headers.get("Origin") is not None or (site is not None and site != "none")


def build_admin_app(actions: AdminActions, *, token: str | None = None,
                    allowed_hosts: Iterable[str] = ()) -> Flask:
    app = Flask("durable-admin")
    app.url_map.merge_slashes = app.url_map.strict_slashes = False  # no HTML redirects: 404 JSON instead
    hosts = LOOPBACK_NAMES | {host_name(h) if h != "*" else h for h in allowed_hosts}
    expected = f"Bearer {token}".encode() if token else None
    served_by = str(os.getpid())

    @app.before_request
    def guard() -> Response | None:
        if request.path == HEALTH_PATH:
            return None  # a probe may come from anywhere and learns nothing
        if "*" not in hosts and host_name(request.host) not in hosts:
            return error_response(403, "this Host is not allowed; add it to admin_allowed_hosts if it names this "
                                       "server")
        if from_a_browser(request.headers):
            return error_response(403, "requests from web pages are refused; use curl, a script or flask workflow")
        sent = request.headers.get("Authorization", "").encode("latin-1", "replace")
        if expected is not None and not hmac.compare_digest(sent, expected):
            return error_response(401, "send Authorization: Bearer <the admin token>")
        return None

    @app.after_request
    def name_the_process(response: Response) -> Response:
        response.headers["X-Served-By"] = served_by
        return response

    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput) -> Response:
        return error_response(400, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return error_response(exc.code or 500, exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        logger.exception("admin request %s %s failed", request.method, request.path)
        return error_response(500, "internal error; see the service's log")

    register_routes(app, actions)
    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        logger.debug("admin: " + format, *args)


class AdminServer:
    """The admin app on a daemon thread. ``start`` returns whether this process got the port now; with
    ``standby`` a process that did not keeps trying in the background until ``stop``."""

    def __init__(self, actions: AdminActions, port: int, host: str = "127.0.0.1", *, token: str | None = None,
                 allowed_hosts: Iterable[str] = ()) -> None:
        bound = [] if host in ("", "0.0.0.0", "::") else [host]  # a wildcard names no host to expect
        self.app = build_admin_app(actions, token=token, allowed_hosts=[*bound, *allowed_hosts])
        self.host, self.port = host, port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._standby: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def serving(self) -> bool:
        return self._server is not None

    def _bind(self) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            try:
                self._server = make_server(self.host, self.port, self.app, _ThreadingServer, _QuietHandler)
            except OSError:
                return False
            self._thread = threading.Thread(target=self._server.serve_forever, name="durable-admin", daemon=True)
            self._thread.start()
        logger.info("admin server on http://%s:%d (pid %d)", self.host, self.port, os.getpid())
        return True

    def start(self, *, standby: bool = False) -> bool:
        if self._bind():
            return True
        logger.info("admin port %s:%d is taken (another worker serves it)%s", self.host, self.port,
                    "; standing by" if standby else "")
        if standby:
            self._standby = threading.Thread(target=self._stand_by, name="durable-admin-standby", daemon=True)
            self._standby.start()
        return False

    def _stand_by(self) -> None:
        while not self._stopping.wait(STANDBY_RETRY_SEC):
            if self._bind():
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._standby is not None:
            self._standby.join(timeout=5)
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
