"""``DBOSClient``'s schedule methods (DBOS 2.31.1's): a schedule names its workflow as stored, since a
client has no workflow code; each call goes through ``schedules.py``, as ``DBOS``'s do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from . import schedules
from .context import client_side
from .error import DBOSException
from .handles import WorkflowHandle
from .runtime import Runtime
from .schedule_runs import backfill, trigger
from .schedules import WorkflowSchedule


class _ClientScheduleRequired(TypedDict):
    schedule_name: str
    workflow_name: str
    schedule: str


class ClientScheduleInput(_ClientScheduleRequired, total=False):
    """One entry of ``DBOSClient.apply_schedules``."""

    context: Any
    workflow_class_name: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None
    application_name: str | None


class ClientScheduleMethods:
    """Mixed into ``DBOSClient``, which provides ``_rt`` (its runtime, that runs no workflow)."""

    @property
    def _rt(self) -> Runtime:
        raise NotImplementedError

    @client_side
    def create_schedule(self, *, schedule_name: str, workflow_name: str, schedule: str, context: Any = None,
                        workflow_class_name: str | None = None, automatic_backfill: bool = False,
                        cron_timezone: str | None = None, queue_name: str | None = None,
                        application_name: str | None = None) -> None:
        """Store a cron schedule that runs ``workflow_name``; its name must be free."""
        rt = self._rt
        schedules.store_schedule(rt, schedules.schedule_row(
            rt, schedule_name=schedule_name, workflow_name=workflow_name, workflow_class_name=workflow_class_name,
            schedule=schedule, context=context, automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone, queue_name=queue_name))

    @client_side
    def list_schedules(self, *, status: str | Sequence[str] | None = None,
                       workflow_name: str | Sequence[str] | None = None,
                       schedule_name_prefix: str | Sequence[str] | None = None,
                       application_name: str | Sequence[str] | None = None) -> list[WorkflowSchedule]:
        return schedules.list_schedules(self._rt, status=status, workflow_name=workflow_name,
                                        schedule_name_prefix=schedule_name_prefix)

    @client_side
    def get_schedule(self, name: str) -> WorkflowSchedule | None:
        return schedules.get_schedule(self._rt, name)

    @client_side
    def delete_schedule(self, name: str) -> None:
        schedules.delete_schedule(self._rt, name)

    @client_side
    def pause_schedule(self, name: str) -> None:
        schedules.set_schedule_status(self._rt, name, "PAUSED")

    @client_side
    def resume_schedule(self, name: str) -> None:
        schedules.set_schedule_status(self._rt, name, "ACTIVE")

    @client_side
    def apply_schedules(self, entries: Sequence[ClientScheduleInput]) -> None:
        """Create or replace these schedules in one transaction (a replaced one keeps its status)."""
        rt = self._rt
        rows = []
        for i, entry in enumerate(entries):
            for required in ("schedule_name", "workflow_name", "schedule"):
                if required not in entry:
                    raise DBOSException(f"Schedule entry {i} is missing required field '{required}'")
            rows.append(schedules.schedule_row(
                rt, schedule_name=entry["schedule_name"], workflow_name=entry["workflow_name"],
                workflow_class_name=entry.get("workflow_class_name"), schedule=entry["schedule"],
                context=entry.get("context"), automatic_backfill=entry.get("automatic_backfill", False),
                cron_timezone=entry.get("cron_timezone"), queue_name=entry.get("queue_name")))
        schedules.store_schedules(rt, rows)

    @client_side
    def backfill_schedule(self, schedule_name: str, start: datetime, end: datetime) -> list[WorkflowHandle[None]]:
        """Enqueue the ticks strictly between ``start`` and ``end`` (IDs as the scheduler's: no run twice)."""
        rt = self._rt
        return [WorkflowHandle(rt, workflow_id) for workflow_id in backfill(rt, schedule_name, start, end, by_name=True)]

    @client_side
    def trigger_schedule(self, schedule_name: str) -> WorkflowHandle[None]:
        """Enqueue one run now, with the schedule's context."""
        rt = self._rt
        return WorkflowHandle(rt, trigger(rt, schedule_name, by_name=True))
