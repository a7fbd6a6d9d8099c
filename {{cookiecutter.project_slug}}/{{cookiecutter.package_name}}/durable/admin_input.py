"""What the admin endpoints accept: JSON bodies checked field by field, so bad input is a 400 naming the field.

Filters take DBOS's Python names (``status``, ``name``, ``app_version``...) and the admin API's
(``workflow_name``, ``workflow_uuids``, ``application_version``, ``authenticated_user``), which map
onto the same ``DBOS.list_workflows`` arguments.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from typing import Any

MAX_TEXT = 4096
MAX_LIST = 1000
MAX_INT = 2**31 - 1
MAX_EPOCH_MS = 2**53  # a JavaScript-safe integer; far beyond any real timestamp
TEXT_FILTERS = ("workflow_id_prefix",)
TEXT_OR_LIST_FILTERS = ("status", "name", "app_version", "executor_id", "queue_name", "user")
TIME_FILTERS = ("start_time", "end_time")
BOOL_FILTERS = ("sort_desc", "load_input", "load_output")
LIST_FILTERS = ("workflow_ids", *TEXT_OR_LIST_FILTERS, *TEXT_FILTERS, "limit", "offset", *BOOL_FILTERS,
                *TIME_FILTERS)
# The admin API's spelling (DBOS's admin server and Conductor) -> the Python argument.
FILTER_ALIASES = {"workflow_uuids": "workflow_ids", "workflow_name": "name", "application_version": "app_version",
                  "authenticated_user": "user"}


class BadInput(ValueError):
    """A request the admin API cannot use; the message says which part and why."""


def plain_text(value: Any, what: str) -> str:
    """A string the database can take: bounded, no control characters (PostgreSQL refuses NUL)."""
    if not isinstance(value, str):
        raise BadInput(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > MAX_TEXT or any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise BadInput(f"{what} must be at most {MAX_TEXT} printable characters")
    return value


def texts(value: Any, what: str, *, single: bool) -> list[str] | str:
    if single and isinstance(value, str):
        return plain_text(value, what)
    if not isinstance(value, list) or len(value) > MAX_LIST:
        kind = "a string or a list of strings" if single else "a list of strings"
        raise BadInput(f"{what} must be {kind} (at most {MAX_LIST})")
    return [plain_text(item, f"{what}[{n}]") for n, item in enumerate(value)]


def whole(value: Any, what: str, *, low: int = 0, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"{what} must be a whole number in {low}-{high}")
    return value


def iso_time(value: Any, what: str) -> str:
    raw = plain_text(value, what)
    try:
        datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} must be an ISO-8601 time, e.g. 2026-01-31T12:00:00Z") from None
    return raw


def json_body(raw: bytes, *, default: Any = None) -> Any:
    """The decoded body; ``default`` when it is empty."""
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BadInput("the body is not JSON") from None


def json_object(raw: bytes, known: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object (empty body: ``{}``) whose keys are all known; null values are dropped."""
    body = json_body(raw, default={})
    if not isinstance(body, dict):
        raise BadInput("send a JSON object")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise BadInput(f"unknown field {unknown[0][:100]!r}; known: {', '.join(known)}")
    return {name: value for name, value in body.items() if value is not None}


def parse_filters(raw: bytes) -> dict[str, Any]:
    """The body of ``POST /workflows`` or ``POST /queues``: known filters, each of the right type."""
    try:
        filters = json_object(raw, (*LIST_FILTERS, *FILTER_ALIASES))
    except BadInput as exc:
        if str(exc) == "the body is not JSON":
            raise BadInput("the body is not JSON; send an object of filters, e.g. {\"status\": \"PENDING\"}") from None
        raise
    clean: dict[str, Any] = {}
    for given, value in filters.items():
        name = FILTER_ALIASES.get(given, given)
        if name in clean:
            raise BadInput(f"{given} repeats another filter ({name})")
        if name == "workflow_ids":
            clean[name] = texts(value, given, single=False)
        elif name in TEXT_OR_LIST_FILTERS:
            clean[name] = texts(value, given, single=True)
        elif name in TEXT_FILTERS:
            clean[name] = plain_text(value, given)
        elif name in ("limit", "offset"):
            clean[name] = whole(value, given)
        elif name in BOOL_FILTERS:
            if not isinstance(value, bool):
                raise BadInput(f"{given} must be true or false")
            clean[name] = value
        else:  # a time filter
            clean[name] = iso_time(value, given)
    return clean


def executor_ids(raw: bytes) -> list[str]:
    """The body of ``POST /dbos-workflow-recovery``: a JSON list of executor IDs."""
    try:
        ids = json_body(raw)
    except BadInput:
        ids = None
    if not isinstance(ids, list) or len(ids) > MAX_LIST:
        raise BadInput("send a JSON list of executor IDs")
    return [plain_text(e, f"executor ID [{n}]") for n, e in enumerate(ids)]


def fork_request(raw: bytes) -> tuple[int, str | None, str | None]:
    """The body of ``POST /workflows/<id>/fork``: (start_step, new_workflow_id, application_version)."""
    body = json_object(raw, ("start_step", "new_workflow_id", "application_version"))
    start_step = whole(body.get("start_step", 1), "start_step", low=1)
    new_id = plain_text(body["new_workflow_id"], "new_workflow_id") if "new_workflow_id" in body else None
    version = plain_text(body["application_version"], "application_version") if "application_version" in body else None
    return start_step, new_id, version


def cutoff_request(raw: bytes, *, rows: bool) -> tuple[int | None, int | None]:
    """``{"cutoff_epoch_timestamp_ms": ..., "rows_threshold": ...}`` (garbage collection, global timeout)."""
    body = json_object(raw, ("cutoff_epoch_timestamp_ms", "rows_threshold") if rows else ("cutoff_epoch_timestamp_ms",))
    cutoff = body.get("cutoff_epoch_timestamp_ms")
    threshold = body.get("rows_threshold")
    return (whole(cutoff, "cutoff_epoch_timestamp_ms", high=MAX_EPOCH_MS) if cutoff is not None else None,
            whole(threshold, "rows_threshold", low=1) if threshold is not None else None)
