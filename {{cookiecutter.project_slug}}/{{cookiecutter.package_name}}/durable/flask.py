"""Maps HTTP to workflows: WSGI middleware, the request snapshot, app context, launch timing.

``DBOS(flask=app)`` wraps ``app.wsgi_app`` with ``FlaskMiddleware``. For every request it records the
request (ID, URL, method, client IP, a few headers) where workflows started by the request can read
it (``DBOS.request``) and store it, makes a ``dbos-idempotency-key`` header the ID of the first workflow
the request starts (``idempotency.py`` decides replays; ``set_idempotency_scope`` names the caller),
and echoes the request ID back. The first request launches the runtime if nothing
launched it before (gunicorn's ``post_worker_init`` hook normally does), so ``flask run`` works and
users never need to call ``DBOS.launch()``.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from .context import DBOSContext, RequestInfo, current_context, entered
from .current import current_runtime
from .error import DBOSException, DBOSFencedError
from .idempotency import MAX_KEYED_BODY_BYTES, RETRY_AFTER_SEC, json_response, key_problem, serve_idempotently
from .serialization import register_type
from .tracing import span

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "dbos-request-id"
# DBOS itself reads x-request-id, and proxies set it; the guide names dbos-request-id. Either works.
REQUEST_ID_ENVIRON_KEYS = ("HTTP_DBOS_REQUEST_ID", "HTTP_X_REQUEST_ID")
# A request ID is echoed in a header, stored with workflows and written to logs: only short, plain ones
# are kept; any other is replaced by a generated one.
PLAIN_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
IDEMPOTENCY_ENVIRON_KEY = "HTTP_DBOS_IDEMPOTENCY_KEY"
# Headers worth keeping with a workflow. Never credentials or cookies: the snapshot is stored.
RECORDED_HEADERS = ("user-agent", "content-type", "referer", "x-forwarded-for", "x-forwarded-proto",
                    "dbos-idempotency-key")

StartResponse = Callable[..., Any]
SCOPE_EXTENSION = "durable.idempotency_scope"
IdempotencyScope = Callable[[WerkzeugRequest], "str | None"]


def set_idempotency_scope(app: Flask, scope: IdempotencyScope | None) -> None:
    """Name the caller of each request that sends a ``dbos-idempotency-key``.

    ``scope(request)`` gets the request (headers; the body is readable too) and returns who is calling,
    e.g. the user behind its ``Authorization`` header, or None for "anyone". A key is then replayed
    only to the same caller, and another caller reusing it gets ``422``, never the first caller's
    response. Without a hook every caller shares one scope: fine for an API with a single client, or
    when keys are random UUIDs nobody else learns.
    """
    app.extensions[SCOPE_EXTENSION] = scope


def client_ip(environ: dict[str, Any], trusted_proxies: int) -> str | None:
    """The client's address; ``X-Forwarded-For`` is believed only as far as ``trusted_proxies`` hops."""
    remote: str | None = environ.get("REMOTE_ADDR")
    if trusted_proxies <= 0:
        return remote
    header: str = environ.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part.strip() for part in header.split(",") if part.strip()]
    if len(forwarded) >= trusted_proxies:
        return forwarded[-trusted_proxies]
    return remote


def request_id_of(environ: dict[str, Any]) -> str:
    """The client's request ID if it is plain (``PLAIN_REQUEST_ID``), else a new UUID; a replacement is logged."""
    sent: str | None = next((environ[k] for k in REQUEST_ID_ENVIRON_KEYS if environ.get(k)), None)
    if sent is not None and PLAIN_REQUEST_ID.fullmatch(sent):
        return sent
    generated = str(uuid.uuid4())
    if sent is not None:
        logger.warning("request ID %.80r (%d characters) is not 1-128 of A-Z a-z 0-9 . _ : -; replaced by %s",
                       sent, len(sent), generated)
    return generated


def request_info(environ: dict[str, Any], trusted_proxies: int) -> RequestInfo:
    """Snapshot the parts of a WSGI request that a workflow may need after a restart."""
    request_id = request_id_of(environ)
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    headers = {}
    for name in RECORDED_HEADERS:
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        if environ.get(key):
            headers[name] = environ[key]
    return RequestInfo(
        request_id=request_id,
        url=f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
        path=path,
        method=environ.get("REQUEST_METHOD", "GET"),
        client_ip=client_ip(environ, trusted_proxies),
        headers=headers,
    )


class FlaskMiddleware:
    """WSGI middleware that gives every request a durable context (see the module docstring)."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], *, trusted_proxies: int = 0, launch: bool = False,
        flask_app: Flask | None = None,
    ) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self._launch = launch  # DBOS(flask=app): launch on the first request; off when used on its own
        self.flask_app = flask_app  # its config and extensions are read per request: they may change after

    def _scope(self, environ: dict[str, Any]) -> str | None:
        hook = self.flask_app.extensions.get(SCOPE_EXTENSION) if self.flask_app is not None else None
        return hook(WerkzeugRequest(environ)) if hook is not None else None

    def _max_body(self) -> int:
        limit = self.flask_app.config.get("MAX_CONTENT_LENGTH") if self.flask_app is not None else None
        return min(limit, MAX_KEYED_BODY_BYTES) if isinstance(limit, int) else MAX_KEYED_BODY_BYTES

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        rt = None
        if self._launch:
            try:
                rt = current_runtime()
            except DBOSException as exc:
                # The database may be down: health probes must still answer, and durable calls fail
                # on their own with this error. The next request tries to launch again.
                logger.warning("durable runtime unavailable: %s", exc)
        info = request_info(environ, self.trusted_proxies)
        ctx = DBOSContext(request=info)
        key: str | None = environ.get(IDEMPOTENCY_ENVIRON_KEY)

        def start_response_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not any(name.lower() == REQUEST_ID_HEADER for name, _ in headers):
                headers.append((REQUEST_ID_HEADER, info.request_id))
            return start_response(status, headers, exc_info)

        # The request's span is the parent of the workflows it runs or starts (tracing.py).
        with entered(ctx), span(f"{info.method} {info.path}", request_id=info.request_id,
                                **{"http.request.method": info.method, "url.path": info.path}):
            if key is None:
                return self.app(environ, start_response_with_id)
            problem = key_problem(key)
            if problem is not None:  # checked before any lookup: a 3,000-character key overflows an index row
                return json_response(start_response_with_id, "400 Bad Request", {"error": problem})
            ctx.next_workflow_id = key
            ctx.in_set_workflow_id_block = True
            if rt is None:
                return self.app(environ, start_response_with_id)
            try:
                return serve_idempotently(rt, self.app, environ, start_response_with_id, key, scope=self._scope,
                                          max_body=self._max_body())
            except DBOSException as exc:
                # The key's row was out of reach (the database away past the store's retries). The
                # handler's own DBOS errors never get here: the app's error handler answers them.
                return _key_store_failed(start_response_with_id, exc, info.request_id)


def _key_store_failed(start_response: StartResponse, exc: DBOSException, request_id: str) -> list[bytes]:
    """A keyed request whose key could not be read or written: JSON with Retry-After, as ``error_response``
    answers, not the server's own error page. Nothing ran, or the retry replays the workflow."""
    logger.warning("idempotency key store failed: %s", exc)
    status = exc.status_code if exc.status_code in (500, 503) else 500
    line = "503 Service Unavailable" if status == 503 else "500 Internal Server Error"
    body = {"error": "service unavailable" if status == 503 else "internal error", "code": exc.dbos_error_code,
            "request_id": request_id}
    return json_response(start_response, line, body, [("Retry-After", str(RETRY_AFTER_SEC))])


def setup_flask_middleware(app: Flask, *, trusted_proxies: int = 0, launch: bool = False) -> None:
    """Wrap ``app.wsgi_app`` with ``FlaskMiddleware`` (what ``DBOS(flask=app)`` does); idempotent."""
    if not isinstance(app.wsgi_app, FlaskMiddleware):
        app.wsgi_app = FlaskMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, trusted_proxies=trusted_proxies, launch=launch, flask_app=app)


def error_response(exc: DBOSException) -> Response:
    """A ``DBOSException`` as JSON with its status code; the request ID lets a client quote it to support."""
    ctx = current_context()
    status = exc.status_code or 500
    # A 5xx message may name hosts or internals: the client gets a generic one, the log the rest.
    hidden = "service unavailable" if status == 503 else "internal error"
    if status >= 500 and status != 503:
        logger.error("request failed: %s", exc, exc_info=exc)
    body = {"error": exc.message if status < 500 else hidden, "code": exc.dbos_error_code,
            "request_id": ctx.request_id if ctx else None}
    response = jsonify(body)
    response.status_code = status
    if isinstance(exc, DBOSFencedError):  # not the outcome: the retry gets the new owner's (not stored either)
        response.headers["Retry-After"] = str(RETRY_AFTER_SEC)
    return response


def _response_to_json(response: WerkzeugResponse) -> dict[str, Any]:
    # A cookie belongs to the client it was set for: a replay to a retry must not hand it out again.
    headers = [[k, v] for k, v in response.headers.items() if k.lower() not in ("content-length", "set-cookie")]
    return {"status": response.status_code, "headers": headers,
            "body": base64.b64encode(response.get_data()).decode("ascii")}


def _response_from_json(data: dict[str, Any]) -> Response:
    return Response(base64.b64decode(data["body"]), status=data["status"], headers=[tuple(h) for h in data["headers"]])


def install(app: Flask, *, trusted_proxies: int) -> None:
    """Everything ``DBOS(flask=app)`` does to an app: middleware that launches, response checkpoints, error JSON."""
    setup_flask_middleware(app, trusted_proxies=trusted_proxies, launch=True)
    # A route that is itself a workflow returns a Response (jsonify); replay must hand it back.
    register_type("flask.response", WerkzeugResponse, _response_to_json, _response_from_json)
    # A default only: the app's own handler (the guide registers one) must win, whenever it was added.
    handlers = app.error_handler_spec[None][None]
    if DBOSException not in handlers:
        app.register_error_handler(DBOSException, error_response)
    app.extensions["durable"] = True
