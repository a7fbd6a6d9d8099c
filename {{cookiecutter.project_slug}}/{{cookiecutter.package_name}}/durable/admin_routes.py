"""The admin endpoints: DBOS 2.31.1's paths, each calling the runtime's one implementation of its job.

    GET  /dbos-healthz                      "healthy" (no token needed)
    GET  /deactivate                        stop this process's schedules; it finishes what it runs
    POST /dbos-workflow-recovery[?force=true]  ["executor-id", ...] -> IDs of the workflows adopted
    GET  /dbos-workflow-queues-metadata     the declared queues and their limits
    POST /dbos-garbage-collect              {"cutoff_epoch_timestamp_ms", "rows_threshold"} -> deleted
    POST /dbos-global-timeout               {"cutoff_epoch_timestamp_ms"} -> cancelled
    POST /workflows                         filters -> workflows
    POST /queues                            filters -> queued workflows (ENQUEUED or PENDING)
    GET  /workflows/<id>                    one workflow
    GET  /workflows/<id>/steps              its checkpointed steps
    POST /workflows/<id>/cancel|resume      -> {"workflow_id"}
    POST /workflows/<id>/restart            fork from step 1 -> {"workflow_id"} (the new one)
    POST /workflows/<id>/fork               {"start_step", "new_workflow_id", "application_version"}
    GET  /metrics                           Prometheus metrics, when the app installed an exporter (observe.py)
    GET  /openapi.json                      this list as an OpenAPI 3.1 document (``openapi.py``)

Workflows answer in ``WorkflowStatus``'s fields with JSON values (DBOS's server stringifies them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request

from . import listing, management, observe, operations
from .admin_input import BadInput, cutoff_request, executor_ids, fork_request, parse_filters, plain_text
from .context import SetWorkflowID
from .error import DBOSConflictingWorkflowError, DBOSNonExistentWorkflowError
from .json_view import as_dict, plain
from .openapi import openapi_document
from .queues import declared_queues
from .runtime import Runtime

HEALTH_PATH = "/dbos-healthz"


class AdminActions:
    """What the admin endpoints do, on one runtime; ``deactivate`` comes from the lifecycle (it owns threads)."""

    def __init__(self, rt: Runtime, deactivate: Callable[[], None] = lambda: None) -> None:
        self.rt = rt
        self.deactivate = deactivate

    def live_executors(self, ids: list[str]) -> list[str]:
        return operations.live_executors(self.rt, ids)

    def recover_executors(self, ids: list[str]) -> list[str]:
        return operations.recover(self.rt, ids, force=True)

    def list_workflows(self, **filters: Any) -> list[Any]:
        return listing.list_workflows(self.rt, **filters)

    def list_queued(self, **filters: Any) -> list[Any]:
        return listing.list_workflows(self.rt, **filters, queues_only=True)

    def get_workflow(self, workflow_id: str) -> Any:
        return listing.workflow_status(self.rt, workflow_id)

    def list_steps(self, workflow_id: str) -> list[Any]:
        return listing.list_steps(self.rt, workflow_id)

    def cancel(self, workflow_id: str) -> None:
        management.cancel_workflows(self.rt, [workflow_id])

    def resume(self, workflow_id: str) -> str:
        return management.resume_workflow(self.rt, workflow_id).workflow_id

    def fork(self, workflow_id: str, start_step: int, new_id: str | None, version: str | None) -> str:
        if new_id is None:
            return management.fork_workflow(self.rt, workflow_id, start_step, application_version=version).workflow_id
        with SetWorkflowID(new_id):
            return management.fork_workflow(self.rt, workflow_id, start_step, application_version=version).workflow_id

    def garbage_collect(self, cutoff_epoch_ms: int | None, rows_threshold: int | None) -> int:
        return operations.garbage_collect(self.rt, cutoff_epoch_ms=cutoff_epoch_ms, rows_threshold=rows_threshold)

    def global_timeout(self, cutoff_epoch_ms: int) -> list[str]:
        return operations.global_timeout(self.rt, cutoff_epoch_ms)






def json_response(payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(json.dumps(payload, default=plain), status=status, headers=list(headers),
                    mimetype="application/json")


def error_response(status: int, message: str, **extra: Any) -> Response:
    headers = [("WWW-Authenticate", "Bearer")] if status == 401 else []
    return json_response({"error": message, "status": status, **extra}, status, headers)


def _workflow_id(raw: str) -> str:
    return plain_text(raw, "the workflow ID")


def register_routes(app: Flask, actions: AdminActions) -> None:
    """Add every endpoint above to the admin app."""

    @app.get(HEALTH_PATH)
    def healthz() -> str:
        return "healthy"

    @app.get("/openapi.json")
    def openapi() -> Response:
        return json_response(openapi_document())

    @app.get("/metrics")
    def metrics() -> Response:
        found = observe.exposition()
        if found is None:
            return error_response(404, "no metrics exporter is installed; the app's metrics module installs one")
        body, content_type = found
        return Response(body, 200, {"Content-Type": content_type})

    @app.get("/deactivate")
    def deactivate() -> Response:
        actions.deactivate()
        return json_response({"status": "deactivated"})

    @app.post("/dbos-workflow-recovery")
    def recover() -> Response:
        ids = executor_ids(request.get_data())
        live = actions.live_executors(ids)
        if live and request.args.get("force", "").lower() not in ("1", "true", "yes"):
            return error_response(409, "these executors are alive (their heartbeat is fresh): recovering them "
                                       "would run their workflows twice; add ?force=true if you know they are gone",
                                  alive=live)
        return json_response(actions.recover_executors(ids))

    @app.get("/dbos-workflow-queues-metadata")
    def queues_metadata() -> Response:
        found = []
        for queue in declared_queues():
            entry = {"name": queue.name, "concurrency": queue.concurrency,
                     "workerConcurrency": queue.worker_concurrency, "rateLimit": queue.limiter}
            found.append({k: v for k, v in entry.items() if v is not None})  # DBOS leaves out unset limits
        return json_response(found)

    @app.post("/dbos-garbage-collect")
    def garbage_collect() -> Response:
        cutoff, rows = cutoff_request(request.get_data(), rows=True)
        return json_response({"deleted": actions.garbage_collect(cutoff, rows)})

    @app.post("/dbos-global-timeout")
    def global_timeout() -> Response:
        cutoff, _ = cutoff_request(request.get_data(), rows=False)
        if cutoff is None:
            raise BadInput("send {\"cutoff_epoch_timestamp_ms\": <epoch milliseconds>}")
        return json_response({"cancelled": actions.global_timeout(cutoff)})

    @app.post("/workflows")
    def workflows() -> Response:
        filters = parse_filters(request.get_data())
        return json_response([as_dict(w) for w in actions.list_workflows(**filters)])

    @app.post("/queues")
    def queued() -> Response:
        filters = parse_filters(request.get_data())
        return json_response([as_dict(w) for w in actions.list_queued(**filters)])

    @app.get("/workflows/<workflow_id>")
    def workflow(workflow_id: str) -> Response:
        found = actions.get_workflow(_workflow_id(workflow_id))
        if found is None:
            return error_response(404, f"workflow {workflow_id} does not exist")
        return json_response(as_dict(found))

    @app.get("/workflows/<workflow_id>/steps")
    def steps(workflow_id: str) -> Response:
        return json_response([as_dict(s) for s in actions.list_steps(_workflow_id(workflow_id))])

    @app.post("/workflows/<workflow_id>/cancel")
    def cancel(workflow_id: str) -> Response:
        _exists(actions, _workflow_id(workflow_id))
        actions.cancel(workflow_id)
        return json_response({"workflow_id": workflow_id})

    @app.post("/workflows/<workflow_id>/resume")
    def resume(workflow_id: str) -> Response:
        return json_response({"workflow_id": actions.resume(_workflow_id(workflow_id))})

    @app.post("/workflows/<workflow_id>/restart")
    def restart(workflow_id: str) -> Response:
        return json_response({"workflow_id": actions.fork(_workflow_id(workflow_id), 1, None, None)})

    @app.post("/workflows/<workflow_id>/fork")
    def fork(workflow_id: str) -> Response:
        start_step, new_id, version = fork_request(request.get_data())
        return json_response({"workflow_id": actions.fork(_workflow_id(workflow_id), start_step, new_id, version)})

    @app.errorhandler(DBOSNonExistentWorkflowError)
    def not_found(exc: DBOSNonExistentWorkflowError) -> Response:
        return error_response(404, str(exc))

    @app.errorhandler(DBOSConflictingWorkflowError)
    def conflict(exc: DBOSConflictingWorkflowError) -> Response:
        return error_response(409, str(exc))


def _exists(actions: AdminActions, workflow_id: str) -> None:
    if actions.get_workflow(workflow_id) is None:
        raise DBOSNonExistentWorkflowError("workflow", workflow_id)
