"""The rows the checkpoint store reads and writes, as plain records the rest of the runtime uses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class WorkflowStatusString(StrEnum):
    """A workflow's status, spelled as DBOS spells it."""

    PENDING = "PENDING"
    ENQUEUED = "ENQUEUED"
    DELAYED = "DELAYED"  # enqueued with a delay: becomes ENQUEUED at delay_until_epoch_ms
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"


def now_ms() -> int:
    return int(time.time() * 1000)


def settle_past(stamp_ms: int) -> None:
    """Return only once the clock has left the millisecond ``stamp_ms`` (at most ~1 ms of waiting).

    Called after a row's created_at or completed_at is committed, before the caller gets control back.
    So a time read by the caller afterwards lies in a later millisecond than the stamp, and a time read
    before the call in the same or an earlier one: a time filter (``listing.py``) can then tell
    "before" from "after" exactly, although stamps are whole milliseconds.
    """
    remaining = (stamp_ms + 1) / 1000 - time.time()
    if remaining > 0:
        time.sleep(remaining)


@dataclass(frozen=True)
class PendingRow:
    """A new workflow's row that waits for its first transaction to carry it (``row_flush.py``)."""

    row: NewWorkflow
    created_ms: int


@dataclass(frozen=True)
class StepRecord:
    """A checkpointed step: its output, or the error it raised (as stored JSON, not yet decoded)."""

    function_id: int
    function_name: str
    output: Any
    error: Any
    child_workflow_id: str | None = None
    started_at_epoch_ms: int | None = None
    completed_at_epoch_ms: int | None = None
    attempts: int | None = None  # a step's runs, retries included (None: not a retried kind, or older)


@dataclass(frozen=True)
class StepCheckpoint:
    """A step's checkpoint that commits together with other writes (a message, an event, a transaction)."""

    workflow_id: str
    generation: int  # the fence: refused unless the workflow is still PENDING at this generation
    step_id: int
    name: str
    output: str | None
    error: str | None
    started_ms: int
    child_workflow_id: str | None = None
    attempts: int | None = None
    inputs: str | None = None  # the call's arguments as JSON (step_inputs.py), for the dashboard only
    # When the step finished, if it was held (``held_steps.py``): its completed_at and the deadline fence's
    # "now", so writing it later neither moves its time nor cancels a workflow that was within its timeout.
    completed_ms: int | None = None


@dataclass(frozen=True)
class NewWorkflow:
    """What the store writes when a workflow starts."""

    workflow_id: str
    name: str
    inputs: str
    executor_id: str
    # None: any executor may run it (a client's enqueue, enqueue_workflow_with_options); the one that
    # dequeues it records its own.
    application_version: str | None
    application_id: str
    status: str = WorkflowStatusString.PENDING.value
    class_name: str | None = None
    config_name: str | None = None
    request: str | None = None
    parent_workflow_id: str | None = None
    queue_name: str | None = None
    workflow_version: str = ""
    workflow_timeout_ms: int | None = None
    workflow_deadline_epoch_ms: int | None = None
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None
    schedule_name: str | None = None  # the stored schedule that enqueued it (DBOS.create_schedule)
    attributes: str | None = None  # JSON text (SetWorkflowAttributes)
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: str | None = None  # JSON text: a list of role names
    delay_until_epoch_ms: int | None = None  # set on a DELAYED enqueue
    is_debounced: int = 0  # 0/1: a Debouncer's workflow (its deduplication ID is the debounce key)
    debounce_deadline_epoch_ms: int | None = None


@dataclass(frozen=True)
class WorkflowRow:
    """One row of the workflow table (JSON columns not yet decoded)."""

    workflow_id: str
    status: str
    name: str
    class_name: str | None
    config_name: str | None
    inputs: Any
    output: Any
    error: Any
    request: Any
    executor_id: str | None
    owner_generation: int
    application_version: str | None
    application_id: str | None
    recovery_attempts: int
    queue_name: str | None
    parent_workflow_id: str | None
    created_at: int
    updated_at: int
    completed_at: int | None
    workflow_version: str
    workflow_deadline_epoch_ms: int | None = None
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None
    schedule_name: str | None = None
    workflow_timeout_ms: int | None = None
    started_at_epoch_ms: int | None = None  # when a queue last dequeued it (DBOS's ``dequeued_at``)
    forked_from: str | None = None
    was_forked_from: int = 0  # 0/1: another workflow was forked from this one
    attributes: Any = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: Any = None
    delay_until_epoch_ms: int | None = None


WORKFLOW_COLUMNS = tuple(WorkflowRow.__dataclass_fields__)
# The row's field names match the table's columns except the first.
WORKFLOW_SELECT = ", ".join("workflow_uuid" if c == "workflow_id" else c for c in WORKFLOW_COLUMNS)
STEP_SELECT = ", ".join(StepRecord.__dataclass_fields__)
# Statements more than one store runs.
GET_WORKFLOW = f"SELECT {WORKFLOW_SELECT} FROM {{workflow_status}} WHERE workflow_uuid = ?"
WORKFLOW_EXISTS = "SELECT 1 FROM {workflow_status} WHERE workflow_uuid = ?"
