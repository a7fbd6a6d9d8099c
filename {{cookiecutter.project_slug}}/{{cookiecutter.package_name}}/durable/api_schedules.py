"""The ``DBOS`` class's schedule methods (DBOS 2.31.1's names), each delegating to ``schedules.py``.

A mixin of ``DBOS`` (``api.py``), so the facade stays small; nothing here but delegation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from . import schedules as stored
from .current import current_runtime
from .handles import WorkflowHandle
from .schedules import ScheduleInput, WorkflowSchedule


class ScheduleMethods:
    """``DBOS.create_schedule``, ``list_schedules``, ``get_schedule``, ``delete_schedule``, ``pause_schedule``,
    ``resume_schedule``, ``apply_schedules``, ``backfill_schedule`` and ``trigger_schedule``."""

    @classmethod
    def create_schedule(
        cls,
        *,
        schedule_name: str,
        workflow_fn: Callable[..., Any],
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
    ) -> None:
        """Store a schedule that runs ``workflow_fn(tick, context)`` at each tick of ``schedule`` in every process.

        ``schedule`` is cron (six fields put seconds first), read in ``cron_timezone`` (UTC by default);
        runs go to ``queue_name`` (a declared queue) or the internal queue. ``automatic_backfill`` enqueues
        the ticks missed while no process ran it. Inside a workflow this is a step.
        """
        stored.create_schedule(
            current_runtime(), schedule_name=schedule_name, workflow_fn=workflow_fn, schedule=schedule,
            context=context, automatic_backfill=automatic_backfill, cron_timezone=cron_timezone,
            queue_name=queue_name,
        )

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | list[str] | None = None,
        workflow_name: str | list[str] | None = None,
        schedule_name_prefix: str | list[str] | None = None,
    ) -> list[WorkflowSchedule]:
        """Stored schedules matching every filter given (each a value or a list), oldest first."""
        return stored.list_schedules(current_runtime(), status=status, workflow_name=workflow_name,
                                        schedule_name_prefix=schedule_name_prefix)

    @classmethod
    def get_schedule(cls, name: str) -> WorkflowSchedule | None:
        return stored.get_schedule(current_runtime(), name)

    @classmethod
    def delete_schedule(cls, name: str) -> None:
        """Delete a schedule (no error if there is none): no process fires it after its next look."""
        stored.delete_schedule(current_runtime(), name)

    @classmethod
    def pause_schedule(cls, name: str) -> None:
        stored.set_schedule_status(current_runtime(), name, "PAUSED")

    @classmethod
    def resume_schedule(cls, name: str) -> None:
        stored.set_schedule_status(current_runtime(), name, "ACTIVE")

    @classmethod
    def apply_schedules(cls, schedules: Sequence[ScheduleInput]) -> None:
        """Create or replace several schedules in one transaction (not from inside a workflow)."""
        stored.apply_schedules(current_runtime(), schedules)

    @classmethod
    def backfill_schedule(cls, schedule_name: str, start: datetime, end: datetime) -> list[WorkflowHandle[None]]:
        """Enqueue the ticks strictly between ``start`` and ``end``; ticks that already ran are not run again."""
        return stored.backfill_schedule(current_runtime(), schedule_name, start, end)

    @classmethod
    def trigger_schedule(cls, schedule_name: str) -> WorkflowHandle[None]:
        """Enqueue one run of the schedule now."""
        return stored.trigger_schedule(current_runtime(), schedule_name)
