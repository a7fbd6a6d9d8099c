"""Workflow attributes: caller-chosen key-value pairs stored with a workflow, listed and filtered by.

``with SetWorkflowAttributes({...}):`` attaches them to the workflows started or enqueued in the block
(not to their children); ``DBOS.update_workflow_attributes`` replaces them later, as a step when a
workflow calls it, so a replay does not repeat it. They are plain JSON, checked at the call.
"""

from __future__ import annotations

import json
from typing import Any

from .context import DBOSContext, _current, current_context, workflow_body
from .error import DBOSException
from .runtime import Runtime
from .steps import replay_step
from .store.base import now_ms

UPDATE_ATTRIBUTES = "DBOS.updateWorkflowAttributes"


def validate_workflow_attributes(attributes: Any) -> None:
    """Attributes are a dict of JSON values (or None): refused here, not later when the row is written."""
    if attributes is not None and not isinstance(attributes, dict):
        raise DBOSException(f"Invalid workflow attributes {attributes}. Attributes must be a dict.")
    if attributes is not None:
        try:
            json.dumps(attributes)
        except (TypeError, ValueError) as exc:
            raise DBOSException(
                f"Invalid workflow attributes {attributes}. Attributes must be JSON-serializable.") from exc


def attributes_json(ctx: DBOSContext | None) -> str | None:
    """The JSON text of the attributes a workflow started now gets from its caller's block, if any."""
    attributes = ctx.workflow_attributes if ctx is not None else None
    return json.dumps(attributes) if attributes is not None else None


class SetWorkflowAttributes:
    """``with SetWorkflowAttributes({"customer": "acme"}):`` attaches them to the workflows started in the block."""

    def __init__(self, attributes: dict[str, Any] | None) -> None:
        validate_workflow_attributes(attributes)
        self.attributes = dict(attributes) if attributes is not None else None
        self._saved: dict[str, Any] | None = None
        self._token: Any = None

    def __enter__(self) -> SetWorkflowAttributes:
        ctx = _current.get()
        if ctx is None:
            ctx = DBOSContext()
            self._token = _current.set(ctx)
        self._saved = ctx.workflow_attributes
        ctx.workflow_attributes = self.attributes
        return self

    def __exit__(self, *exc_info: object) -> None:
        ctx = _current.get()
        if ctx is not None:
            ctx.workflow_attributes = self._saved
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def update_workflow_attributes(rt: Runtime, workflow_id: str, attributes: dict[str, Any] | None) -> None:
    """Replace a workflow's attributes (None clears them); from a workflow's body, once, as a step."""
    validate_workflow_attributes(attributes)
    text = json.dumps(attributes) if attributes is not None else None
    state = workflow_body(current_context())
    if state is None:
        rt.management_store.set_attributes(workflow_id, text)
        return
    step_id = state.allocate_step_id()
    found, _ = replay_step(rt, state, step_id, UPDATE_ATTRIBUTES)
    if found:
        return
    started = now_ms()
    rt.management_store.set_attributes(workflow_id, text)
    rt.checkpoint_store.record_step(state.workflow_id, state.generation, step_id, UPDATE_ATTRIBUTES,
                                    rt.codec.encode(None, what="attributes update"), None, started)


def decode_attributes(stored: Any) -> dict[str, Any] | None:
    """The attributes column (JSON text) as a dict."""
    return json.loads(stored) if stored is not None else None
