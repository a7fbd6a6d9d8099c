"""Decides idempotency for HTTP: a request with a ``dbos-idempotency-key`` header runs once, end to end.

DBOS only makes the key the first workflow's ID. Here the key also guards the whole response:

* the first request with a key claims it, runs, and stores its response (status, headers, body);
* a retry after that gets the stored response back byte for byte, marked ``Idempotent-Replayed: true``;
* a duplicate that arrives while the first still runs gets ``409 Conflict`` with ``Retry-After``
  (or waits up to ``idempotency_wait_sec`` for the first to finish, then gets its response);
* the same key with another method, path, body or caller gets ``422`` naming what differs (the caller
  is whatever the app's scope hook names: ``flask.set_idempotency_scope``; by default there is none);
* a key naming a workflow that a request with another fingerprint started (or that was started
  without a key) gets ``422`` too, and never that workflow's result: the key is the workflow's ID, and
  workflow IDs are no secret;
* a key must be 1-255 visible ASCII characters, else ``400``;
* a key whose first request died with its process is taken over by the retry, which runs the
  handler again: its workflow, already checkpointed under the key, replays instead of re-running;
* 5xx responses, and responses that ask for a retry (``Retry-After``), are not stored, so a retry
  after a transient failure runs again (the workflow still runs once); ``Set-Cookie`` is never stored
  (a cookie belongs to one client); keys expire after ``idempotency_ttl_sec`` and a bounded sweep
  deletes them.

Keyed responses are buffered to be stored, so they do not stream.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .context import RequestInfo, current_context
from .observe import emit
from .runtime import Runtime
from .store.base import now_ms
from .store.idempotency_store import Claimed, KeyRecord

logger = logging.getLogger(__name__)

REPLAY_HEADER = "Idempotent-Replayed"
MAX_KEYED_BODY_BYTES = 10 * 1024 * 1024
RETRY_AFTER_SEC = 1
MAX_KEY_LENGTH = 255
# The key becomes a workflow ID, a primary key, a log field and a URL segment: visible ASCII only.
KEY_PATTERN = re.compile(rf"[!-~]{{1,{MAX_KEY_LENGTH}}}")
# Never stored: a cookie belongs to the client it was set for, a request ID to one request.
UNSTORED_HEADERS = frozenset({"set-cookie", "dbos-request-id"})
StartResponse = Callable[..., Any]
Scope = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class Fingerprint:
    """What makes two requests "the same request": method, path with query, a hash of the body, and the
    caller as the app's scope hook names it (hashed: the digest is stored, the scope never is)."""

    method: str
    path: str
    body_sha256: str
    scope: str | None = None

    @property
    def digest(self) -> str:
        text = f"{self.method}\n{self.path}\n{self.body_sha256}"
        if self.scope is not None:  # unscoped digests stay what they were before scopes existed
            text += "\n" + hashlib.sha256(self.scope.encode("utf-8", "surrogatepass")).hexdigest()
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an idempotency key, or None. The key itself is not echoed: it may be anything."""
    if KEY_PATTERN.fullmatch(key):
        return None
    return (f"the dbos-idempotency-key header must be 1-{MAX_KEY_LENGTH} visible ASCII characters (no spaces); "
            f"this one has {len(key)} characters")


def read_body(environ: dict[str, Any], limit: int = MAX_KEYED_BODY_BYTES) -> bytes:
    """Read the request body (up to ``limit`` + 1 bytes) and put it back, so the app can still read it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream: Any = environ.get("wsgi.input")
    body: bytes
    if stream is not None and length > 0:
        body = stream.read(min(length, limit + 1))
    elif stream is not None and environ.get("wsgi.input_terminated"):  # chunked: no length, read to the end
        body = stream.read(limit + 1)
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def fingerprint_of(environ: dict[str, Any], body: bytes, scope: str | None = None) -> Fingerprint:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    if environ.get("QUERY_STRING"):
        path += "?" + environ["QUERY_STRING"]
    return Fingerprint(environ.get("REQUEST_METHOD", "GET"), path, hashlib.sha256(body).hexdigest(), scope)


def json_response(start_response: StartResponse, status: str, body: dict[str, Any],
                  extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    payload = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))] + (extra or [])
    start_response(status, headers)
    return [payload]


def _mismatch(record: KeyRecord, fp: Fingerprint) -> str:
    differs = []
    if record.method != fp.method:
        differs.append(f"method {record.method} != {fp.method}")
    if record.path != fp.path:
        differs.append(f"path {record.path} != {fp.path}")
    if not differs:
        differs.append("request body differs, or the caller does")
    return "; ".join(differs)


def _refuse(start_response: StartResponse, status: str, body: dict[str, Any],
            extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    """A keyed request turned away (409 busy, 422 another request's key): counted, then answered."""
    emit("idempotent_refusal", status=status[:3])
    return json_response(start_response, status, body, extra)


def _replay(record: KeyRecord, start_response: StartResponse) -> list[bytes]:
    emit("idempotent_replay")
    headers = [tuple(h) for h in json.loads(record.response_headers or "[]")]
    start_response(record.response_status, headers + [(REPLAY_HEADER, "true")])
    return [base64.b64decode(record.response_body or "")]


def serve_idempotently(
    rt: Runtime, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: StartResponse, key: str,
    *, scope: Scope | None = None, max_body: int = MAX_KEYED_BODY_BYTES,
) -> Iterable[bytes]:
    """Serve a keyed request: run it once, replay it, or refuse it (see the module docstring).

    The caller has checked ``key`` with ``key_problem``. ``scope`` names the caller from the environ.
    """
    body = read_body(environ, max_body)
    if len(body) > max_body:
        return json_response(start_response, "413 Request Entity Too Large", {
            "error": f"the request body is over the {max_body}-byte limit"})
    try:
        caller = scope(environ) if scope is not None else None
    except Exception:
        logger.exception("the idempotency scope hook failed")
        return json_response(start_response, "500 Internal Server Error", {"error": "internal error"})
    finally:
        environ["wsgi.input"] = io.BytesIO(body)  # the hook may have read it
    fp = fingerprint_of(environ, body, caller)
    ctx = current_context()
    if ctx is not None and ctx.request is not None:  # stored with the workflows this request starts
        ctx.request = dataclasses.replace(ctx.request, idempotency_fingerprint=fp.digest)
    return _serve(rt, app, environ, start_response, key, fp)


def _serve(
    rt: Runtime, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: StartResponse, key: str,
    fp: Fingerprint,
) -> Iterable[bytes]:
    store, settings = rt.idempotency_store, rt.settings
    alive_since = rt.alive_since_ms()
    record: KeyRecord | None = None
    # Claim the key, or read who has it. A row can be missing for a moment: another thread here has
    # reserved the key but not inserted it yet, or an expired row was just deleted.
    give_up = time.monotonic() + max(settings.idempotency_wait_sec, 2.0)
    while record is None:
        if _reserve(rt, key):
            try:
                claimed = store.claim(key, fp.digest, fp.method, fp.path, rt.executor_id,
                                      int(settings.idempotency_ttl_sec * 1000))
            except BaseException:
                _unreserve(rt, key)
                raise
            if claimed is not None:
                return _run_if_ours(rt, app, environ, start_response, key, fp, claimed)
            _unreserve(rt, key)
        record = store.get(key, alive_since)
        if record is not None and record.expires_at < now_ms():
            store.delete_if_expired(key)
            record = None
        if record is None:
            if time.monotonic() > give_up:
                return _refuse(start_response, "409 Conflict", {"error": f"idempotency key {key!r} is busy"},
                                      [("Retry-After", str(RETRY_AFTER_SEC))])
            time.sleep(0.01)
    deadline = time.monotonic() + settings.idempotency_wait_sec
    while True:
        answer = _answer_from(record, key, fp, start_response)
        if answer is not None:
            return answer
        if not _in_progress(rt, key, record):
            # Read the key again before taking it over: its owner may have stored the response, and then
            # stopped serving it, after the read above.
            found = store.get(key, alive_since)
            if found is None:  # the first request failed and released the key: run this one
                return _serve(rt, app, environ, start_response, key, fp)
            record = found
            answer = _answer_from(record, key, fp, start_response)
            if answer is not None:
                return answer
            # The owner died mid-request: take the key over and run the handler again; its workflow
            # replays. Another thread or process may take it first: then wait for that one instead.
            if not _in_progress(rt, key, record) and _reserve(rt, key):
                try:
                    adopted = store.adopt(key, record.executor_id, rt.executor_id)
                except BaseException:
                    _unreserve(rt, key)
                    raise
                if adopted:
                    return _run_if_ours(rt, app, environ, start_response, key, fp)
                _unreserve(rt, key)
        if time.monotonic() >= deadline:
            return _refuse(
                start_response, "409 Conflict",
                {"error": f"a request with idempotency key {key!r} is still in progress; retry later"},
                [("Retry-After", str(RETRY_AFTER_SEC))])
        time.sleep(0.05)
        found = store.get(key, alive_since)
        if found is None:  # the first request failed and released the key: run this one
            return _serve(rt, app, environ, start_response, key, fp)
        record = found


def _answer_from(record: KeyRecord, key: str, fp: Fingerprint, start_response: StartResponse) -> Iterable[bytes] | None:
    """What the key's row already answers this request, or None while its request runs.

    Checked at every read: a key released by a failed request may be claimed by another request (another
    body or caller) before this one reads it again, and its response is not this request's.
    """
    if record.fingerprint != fp.digest:
        return _refuse(start_response, "422 Unprocessable Entity", {
            "error": f"idempotency key {key!r} was first used for another request: {_mismatch(record, fp)}"})
    if record.state == "done":
        return _replay(record, start_response)
    return None


def _run_if_ours(
    rt: Runtime, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: StartResponse, key: str,
    fp: Fingerprint, claimed: Claimed | None = None,
) -> Iterable[bytes]:
    """Run the request unless its key names a workflow that another request started; the key is ours.

    The key row does not say who started that workflow (a workflow started without a key has no row,
    and rows expire): the workflow's own stored request does. A fresh claim has read it already.
    """
    try:
        if claimed is None:
            row = rt.checkpoint_store.get_workflow(key)
            claimed = Claimed(row is not None, row.request if row is not None else None)
        foreign = _started_by_another_request(rt, claimed, fp)
    except BaseException:
        _release_quietly(rt, key)
        _unreserve(rt, key)
        raise
    if foreign:
        _release_quietly(rt, key)
        _unreserve(rt, key)
        return _refuse(start_response, "422 Unprocessable Entity", {
            "error": f"idempotency key {key!r} names a workflow that another request started; "
                     "send a new key for a new request"})
    return _run_and_store(rt, app, environ, start_response, key)


def _started_by_another_request(rt: Runtime, claimed: Claimed, fp: Fingerprint) -> bool:
    if not claimed.workflow_exists:
        return False
    request = claimed.workflow_request
    try:
        started_by = RequestInfo.from_json(rt.codec.decode(request)) if request is not None else None
    except Exception:  # unreadable: assume the worst
        return True
    return started_by is None or started_by.idempotency_fingerprint != fp.digest


def _reserve(rt: Runtime, key: str) -> bool:
    """Mark the key as served by this process before claiming it, so a duplicate arriving in between
    on another thread sees it in progress instead of taking it over."""
    with rt.running_lock:
        if key in rt.serving_keys:
            return False
        rt.serving_keys.add(key)
        return True


def _unreserve(rt: Runtime, key: str) -> None:
    with rt.running_lock:
        rt.serving_keys.discard(key)


def _in_progress(rt: Runtime, key: str, record: KeyRecord) -> bool:
    """Whether the first request with this key may still answer: else a retry takes the key over."""
    if record.executor_id == rt.executor_id:
        with rt.running_lock:
            return key in rt.serving_keys  # ours: we know whether a thread still serves it
    stale = record.created_at < now_ms() - int(rt.settings.idempotency_stale_sec * 1000)
    return record.owner_alive and not stale  # a live process may have lost the request on an error


def _run_and_store(
    rt: Runtime, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: StartResponse, key: str
) -> Iterable[bytes]:
    """Run the app, buffer its response, and store it against the key (unless it is a 5xx).

    The caller has reserved the key; it is released here, however the request ends, and only once the
    outcome is written: a duplicate waiting here must not see the key unserved but not yet done."""
    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, list(headers)
        return written.append

    try:
        try:
            result = app(environ, capture)
            try:
                body = b"".join(written) + b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except BaseException:
            _release_quietly(rt, key)
            raise
        status: str = captured["status"]
        headers: list[tuple[str, str]] = captured["headers"]
        if int(status.split(" ", 1)[0]) >= 500 or any(k.lower() == "retry-after" for k, _ in headers):
            _release_quietly(rt, key)  # not the request's outcome: a retry runs it again
        else:
            stored_headers = [[k, v] for k, v in headers if k.lower() not in UNSTORED_HEADERS]
            rt.idempotency_store.finish(key, rt.executor_id, status, json.dumps(stored_headers),
                                  base64.b64encode(body).decode("ascii"))
    finally:
        _unreserve(rt, key)
    start_response(status, headers)
    return [body]


def _release_quietly(rt: Runtime, key: str) -> None:
    """Forget the key after a failure; if the database is away too, a retry takes the key over later."""
    try:
        rt.idempotency_store.release(key, rt.executor_id)
    except Exception:
        logger.warning("could not release idempotency key %r", key, exc_info=True)
