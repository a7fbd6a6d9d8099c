"""The ``DBOS`` methods that wait for the first of several workflows, read their events and send in bulk (``api.py`` inherits them).

Each delegates to the module that owns the job: ``handles.py`` (results), ``messaging.py`` (events, sends).
"""

from __future__ import annotations

from typing import Any

from . import messaging
from .context import StepStatus, current_context, refuse_in_event_loop
from .current import current_runtime
from .messaging import SendMessage


class _ClassProperty:
    """A read-only property of the class itself (``DBOS.step_status``)."""

    def __init__(self, getter: Any) -> None:
        self.getter = getter

    def __get__(self, _obj: Any, owner: Any) -> Any:
        return self.getter(owner)


def _step_status(_cls: Any) -> StepStatus | None:
    ctx = current_context()
    return ctx.step_status if ctx is not None and ctx.step_kind == "step" else None


class ResultsAPI:
    """``DBOS.get_all_events``, ``send_bulk`` and ``step_status``."""

    step_status = _ClassProperty(_step_status)
    """Inside a step: its ID and, for a retrying step, the attempt running (from 0) and the cap; else None."""


    @classmethod
    def get_all_events(cls, workflow_id: str) -> dict[str, Any]:
        """The latest value of every event a workflow has set, by key."""
        refuse_in_event_loop("get_all_events")
        return messaging.get_all_events(current_runtime(), workflow_id)

    @classmethod
    def send_bulk(cls, messages: list[SendMessage], *, serialization_type: Any = None, send_to_forks: bool = False) -> None:
        """Send many messages in one transaction: all are delivered or none (one step in a workflow)."""
        refuse_in_event_loop("send_bulk")
        messaging.send_bulk(current_runtime(), list(messages), send_to_forks=send_to_forks)
