"""The admin API as an OpenAPI 3.1 document, served at ``GET /openapi.json`` (``admin_routes.py``).

Built on each request from the small tables below; the template's tests validate it with
openapi-spec-validator and check that every route of the admin app is described.
"""

from __future__ import annotations

from typing import Any

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_ONE_OR_MORE = {"oneOf": [_STRING, _STRINGS]}
_WHOLE = {"type": "integer", "minimum": 0}
_TIME = {"type": "string", "description": "ISO-8601, e.g. 2026-01-31T12:00:00Z"}
_BOOL = {"type": "boolean"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}

_FILTERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "workflow_ids": _STRINGS, "workflow_uuids": _STRINGS, "status": _ONE_OR_MORE, "name": _ONE_OR_MORE,
        "workflow_name": _ONE_OR_MORE, "app_version": _ONE_OR_MORE, "application_version": _ONE_OR_MORE,
        "executor_id": _ONE_OR_MORE, "queue_name": _ONE_OR_MORE, "user": _ONE_OR_MORE,
        "authenticated_user": _ONE_OR_MORE, "workflow_id_prefix": _STRING,
        "start_time": _TIME, "end_time": _TIME, "limit": _WHOLE, "offset": _WHOLE, "sort_desc": _BOOL,
        "load_input": _BOOL, "load_output": _BOOL,
    },
}
_WORKFLOW = {
    "type": "object",
    "required": ["workflow_id", "status", "name"],
    "properties": {
        "workflow_id": _STRING, "status": _STRING, "name": _STRING, "class_name": _NULLABLE_STRING,
        "config_name": _NULLABLE_STRING, "input": {}, "output": {}, "error": _NULLABLE_STRING,
        "created_at": _NULLABLE_INT, "updated_at": _NULLABLE_INT, "completed_at": _NULLABLE_INT,
        "executor_id": _NULLABLE_STRING, "app_version": _NULLABLE_STRING, "app_id": _NULLABLE_STRING,
        "recovery_attempts": {"type": "integer"}, "queue_name": _NULLABLE_STRING,
        "parent_workflow_id": _NULLABLE_STRING, "workflow_deadline_epoch_ms": _NULLABLE_INT,
    },
}
_STEP = {
    "type": "object",
    "required": ["function_id", "function_name"],
    "properties": {
        "function_id": {"type": "integer"}, "function_name": _STRING, "output": {}, "error": _NULLABLE_STRING,
        "child_workflow_id": _NULLABLE_STRING, "started_at_epoch_ms": _NULLABLE_INT,
        "completed_at_epoch_ms": _NULLABLE_INT,
    },
}
_QUEUE = {"type": "object", "required": ["name"], "properties": {
    "name": _STRING, "concurrency": {"type": "integer"}, "workerConcurrency": {"type": "integer"},
    "rateLimit": {"type": "object", "properties": {"limit": {"type": "integer"}, "period": {"type": "number"}}}}}
_ID = {"type": "object", "required": ["workflow_id"], "properties": {"workflow_id": _STRING}}
_ERROR = {"type": "object", "required": ["error", "status"],
          "properties": {"error": _STRING, "status": {"type": "integer"}, "alive": _STRINGS}}
_CUTOFF = {"type": "object", "additionalProperties": False, "properties": {
    "cutoff_epoch_timestamp_ms": {"type": "integer", "description": "epoch milliseconds"},
    "rows_threshold": {"type": "integer", "minimum": 1, "description": "keep at least the newest N workflows"}}}
_FORK = {"type": "object", "additionalProperties": False, "properties": {
    "start_step": {"type": "integer", "minimum": 1, "default": 1}, "new_workflow_id": _STRING,
    "application_version": _STRING}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(example: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"text/html": {"schema": {"type": "string", "example": example}}}}


def _operation(summary: str, ok: dict[str, Any], body: dict[str, Any] | None = None,
               errors: tuple[int, ...] = (), secured: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": ok}}
    for code in (*errors, *((401, 403) if secured else ())):
        operation["responses"][str(code)] = {"$ref": f"#/components/responses/E{code}"}
    if body is not None:
        operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    if not secured:
        operation["security"] = []
    return operation


_WORKFLOW_ID = {"name": "workflow_id", "in": "path", "required": True, "schema": _STRING}
_FORCE = {"name": "force", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]},
          "description": "recover executors even if their heartbeat is fresh"}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI description of every admin endpoint."""
    paths: dict[str, Any] = {
        "/dbos-healthz": {"get": _operation("Liveness probe", _text("healthy"), secured=False)},
        "/openapi.json": {"get": _operation("This document", _json({"type": "object"}))},
        "/metrics": {"get": _operation(
            "Prometheus metrics, when the app installed an exporter",
            {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}, errors=(404,))},
        "/deactivate": {"get": _operation("Stop this process's schedules; it finishes what it runs",
                                          _json({"type": "object", "properties": {"status": _STRING}}))},
        "/dbos-workflow-recovery": {"post": {
            **_operation("Adopt the PENDING workflows of executors known to be gone", _json(_STRINGS),
                         _STRINGS, errors=(400, 409)), "parameters": [_FORCE]}},
        "/dbos-workflow-queues-metadata": {"get": _operation("Declared queues and their limits",
                                                             _json({"type": "array", "items": _QUEUE}))},
        "/dbos-garbage-collect": {"post": _operation(
            "Delete finished workflows created before the cutoff (PENDING and ENQUEUED are kept)",
            _json({"type": "object", "properties": {"deleted": {"type": "integer"}}}), _CUTOFF, errors=(400,))},
        "/dbos-global-timeout": {"post": _operation(
            "Cancel every unfinished workflow created before the cutoff",
            _json({"type": "object", "properties": {"cancelled": _STRINGS}}), _CUTOFF, errors=(400,))},
        "/workflows": {"post": _operation("List workflows", _json({"type": "array", "items": _WORKFLOW}),
                                          _FILTERS, errors=(400,))},
        "/queues": {"post": _operation("List queued workflows (ENQUEUED or PENDING unless a status is given)",
                                       _json({"type": "array", "items": _WORKFLOW}), _FILTERS, errors=(400,))},
        "/workflows/{workflow_id}": {"parameters": [_WORKFLOW_ID], "get": _operation(
            "One workflow", _json(_WORKFLOW), errors=(400, 404))},
        "/workflows/{workflow_id}/steps": {"parameters": [_WORKFLOW_ID], "get": _operation(
            "A workflow's checkpointed steps", _json({"type": "array", "items": _STEP}), errors=(400,))},
    }
    actions = {
        "cancel": ("Cancel a workflow that has not finished", None),
        "resume": ("Run a cancelled or failed workflow again from its checkpoints", None),
        "restart": ("Start a copy from step 1 under a new ID", None),
        "fork": ("Start a copy under a new ID, reusing the checkpoints before start_step", _FORK),
    }
    for action, (summary, body) in actions.items():
        paths[f"/workflows/{{workflow_id}}/{action}"] = {"parameters": [_WORKFLOW_ID], "post": _operation(
            summary, _json(_ID), body, errors=(400, 404, 409))}
    responses = {f"E{code}": _json(_ERROR, text) for code, text in (
        (400, "Bad input; the message names the field"), (401, "Missing or wrong token"),
        (403, "Host not allowed, or a request from a browser"), (404, "No such workflow"),
        (409, "Conflict: a live executor, or the new workflow ID is taken"))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Durable runtime admin API", "version": "1",
                 "description": "DBOS 2.31.1's admin endpoints. Every answer is JSON but the health "
                                "probe's text and the metrics' Prometheus exposition."},
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "needed when the server has an admin_token"}},
                       "responses": responses},
        "paths": paths,
    }
