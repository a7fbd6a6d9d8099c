"""The dashboard's pages and actions, server-rendered from ``templates/``; its CSS is in ``static/``.

Pages read through the runtime's public functions (``DBOS.get_workflow_status``,
``DBOS.list_workflow_steps``) and ``overview.py`` (keyset pages, queue depths, steps' attempts and
inputs, which DBOS's StepInfo does not carry); actions call
``DBOS.cancel_workflow``, ``DBOS.resume_workflow`` and ``DBOS.fork_workflow``, the functions the CLI and
the admin server call, so the dashboard has no second implementation of any of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .. import overview
from ..api import DBOS
from ..error import DBOSException
from ..step_inputs import UNRECORDED
from ..store.base import WorkflowStatusString
from .auth import CSRF_COOKIE, CSRF_FIELD, AuthHook, Csrf

STATUSES = [s.value for s in WorkflowStatusString]
CANCELLABLE = {"PENDING", "ENQUEUED"}
RESUMABLE = {"CANCELLED", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}
PAGE_SIZE = 50
SHOWN_CHARS = 20_000  # a step's output beyond this is cut on the page (the API returns all of it)
SHOWN_INPUT_CHARS = 2_000  # a step's inputs, one cell of the timeline: a preview
SHORT_INPUT_CHARS = 60  # inputs this short stay on one line (["1004"]); longer ones are indented
FILTERS = ("status", "name", "queue", "start", "end")


def create_blueprint(auth: AuthHook, csrf_secret: bytes, name: str = "durable_dashboard") -> Blueprint:
    """The dashboard as a blueprint; register it with ``url_prefix``. ``auth`` guards every route."""
    bp = Blueprint(name, __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static")
    csrf = Csrf(csrf_secret)

    @bp.before_request
    def guard() -> Response | None:
        denied = auth()
        if denied is not None:
            return denied
        if request.method == "POST":
            problem = csrf.problem()
            if problem is not None:
                return Response(problem + "\n", 403, {"Content-Type": "text/plain"})
        return None

    def page(template: str, **values: Any) -> Response:
        nonce, new = csrf.nonce()
        body = render_template(f"durable_dashboard/{template}", bp=name, csrf_field=CSRF_FIELD,
                               csrf_token=csrf.token_for(nonce), fmt_time=fmt_time, **values)
        response = Response(body, 200, {"Content-Type": "text/html; charset=utf-8",
                                        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                        "Content-Security-Policy": "default-src 'self'; style-src 'self' "
                                                                   "'unsafe-inline'; form-action 'self'"})
        if new:
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="Strict", secure=request.is_secure,
                                path=url_for(f"{name}.workflows"))
        return response

    @bp.get("/")
    def workflows() -> Response:
        args = {key: request.args.get(key, "").strip() for key in FILTERS}
        error = None
        try:
            found = overview.workflow_page(
                status=args["status"] or None, name=args["name"] or None, queue_name=args["queue"] or None,
                start_time=args["start"] or None, end_time=args["end"] or None,
                cursor=request.args.get("cursor") or None, limit=PAGE_SIZE)
        except ValueError as exc:
            found, error = overview.WorkflowPage([], None), str(exc)
        kept = {k: v for k, v in args.items() if v}
        older = f"?{urlencode({**kept, 'cursor': found.next_cursor})}" if found.next_cursor else None
        return page("workflows.html", page=found, filters=args, statuses=STATUSES, error=error, older=older,
                    newest=f"?{urlencode(kept)}" if request.args.get("cursor") else None)

    @bp.get("/workflows/<workflow_id>")
    def workflow(workflow_id: str) -> Response:
        status = DBOS.get_workflow_status(workflow_id)
        if status is None:
            abort(404)
        steps = DBOS.list_workflow_steps(workflow_id)
        attempts = overview.step_attempts(workflow_id)
        inputs = overview.step_inputs(workflow_id)
        return page("workflow.html", wf=status, steps=timeline(status, steps, attempts, inputs), shown=shown,
                    shown_inputs=shown_inputs,
                    can_cancel=status.status in CANCELLABLE, can_resume=status.status in RESUMABLE,
                    done=request.args.get("done"))

    @bp.get("/queues")
    def queues() -> Response:
        return page("queues.html", queues=overview.queue_overview())

    @bp.post("/workflows/<workflow_id>/cancel")
    def cancel(workflow_id: str) -> BaseResponse:
        DBOS.cancel_workflow(workflow_id)
        return back(workflow_id, "cancelled")

    @bp.post("/workflows/<workflow_id>/resume")
    def resume(workflow_id: str) -> BaseResponse:
        DBOS.resume_workflow(workflow_id)
        return back(workflow_id, "resumed")

    @bp.post("/workflows/<workflow_id>/fork")
    def fork(workflow_id: str) -> BaseResponse:
        try:
            start_step = int(request.form.get("start_step", ""))
        except ValueError:
            return Response("start_step must be a step number\n", 400, {"Content-Type": "text/plain"})
        try:
            handle = DBOS.fork_workflow(workflow_id, start_step)
        except DBOSException as exc:
            return Response(f"{exc}\n", 400, {"Content-Type": "text/plain"})
        return back(handle.workflow_id, f"forked from {workflow_id} at step {start_step}")

    def back(workflow_id: str, done: str) -> BaseResponse:
        # 303: the browser follows with a GET, so a reload does not post the action again.
        return redirect(url_for(f"{name}.workflow", workflow_id=workflow_id, done=done), 303)

    return bp


def fmt_time(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A value for the page: JSON when it is JSON, else its repr; long ones cut.

    Plain text: the template escapes it, so a value holding markup shows as that markup.
    """
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {value}"
    else:
        try:
            text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def shown_inputs(inputs: Any) -> str:
    """A step's recorded call for its timeline cell: the arguments, or why they were not kept."""
    if isinstance(inputs, dict) and set(inputs) == {UNRECORDED}:
        return f"not recorded: {inputs[UNRECORDED]}"
    if isinstance(inputs, dict) and set(inputs) == {"args", "kwargs"} and not inputs["kwargs"]:
        inputs = inputs["args"]  # positional only, the usual call: the list alone reads best
    try:
        compact = json.dumps(inputs, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        compact = ""
    return compact if 0 < len(compact) <= SHORT_INPUT_CHARS else shown(inputs, SHOWN_INPUT_CHARS)


def timeline(
    status: Any, steps: list[Any], attempts: dict[int, int | None], inputs: dict[int, Any] | None = None
) -> list[dict[str, Any]]:
    """Each step with its duration, attempts, inputs and its bar's place on the workflow's time line (percent)."""
    inputs = inputs or {}
    start = status.created_at or 0
    ends = [s["completed_at_epoch_ms"] or s["started_at_epoch_ms"] or start for s in steps]
    span = max([status.completed_at or status.updated_at or start, *ends]) - start or 1
    rows = []
    for step in steps:
        began = step["started_at_epoch_ms"]
        ended = step["completed_at_epoch_ms"]
        duration = (ended - began) if began is not None and ended is not None else None
        left = min(max(((began or start) - start) / span * 100, 0), 100)
        width = max((duration or 0) / span * 100, 0.5)
        rows.append({**step, "duration_ms": duration, "left": round(left, 2), "width": round(min(width, 100 - left), 2),
                     "failed": step["error"] is not None, "attempts": attempts.get(step["function_id"]),
                     "has_inputs": step["function_id"] in inputs, "inputs": inputs.get(step["function_id"])})
    return rows
