"""What callers hold on to: workflow handles, status snapshots, and step listings (DBOS's shapes)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

from .context import current_context
from .error import (
    DBOSFencedError,
    DBOSNonExistentWorkflowError,
    DBOSNotLaunchedError,
    DBOSShutdownError,
    DBOSWorkflowCancelledError,
)
from .executor import wait_for_result
from .recorded_calls import GET_RESULT, GET_STATUS, as_step
from .runtime import Runtime
from .store.base import StepRecord, WorkflowRow

R = TypeVar("R")
# The step DBOS records when a workflow waits for the first of several.
WAIT_FIRST = "DBOS.waitFirst"
# Statuses of a workflow that has not finished yet.
WAITING = frozenset({"PENDING", "ENQUEUED", "DELAYED"})


@dataclass
class WorkflowStatus:
    """A workflow's row as DBOS's ``WorkflowStatus`` presents it (times in epoch milliseconds)."""

    workflow_id: str
    status: str
    name: str
    class_name: str | None
    config_name: str | None
    input: dict[str, Any] | None
    output: Any
    error: BaseException | None
    created_at: int | None
    updated_at: int | None
    completed_at: int | None
    executor_id: str | None
    app_version: str | None
    app_id: str | None
    recovery_attempts: int
    queue_name: str | None
    parent_workflow_id: str | None
    request: dict[str, Any] | None
    workflow_version: str = ""
    workflow_deadline_epoch_ms: int | None = None
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None
    schedule_name: str | None = None  # the stored schedule that enqueued it
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: list[str] | None = None
    workflow_timeout_ms: int | None = None
    forked_from: str | None = None
    was_forked_from: bool = False
    dequeued_at: int | None = None  # when a queue last dequeued it (epoch ms)
    attributes: dict[str, Any] | None = None
    delay_until_epoch_ms: int | None = None  # a DELAYED workflow's not-before time

    @classmethod
    def from_row(cls, rt: Runtime, row: WorkflowRow, *, load_input: bool = True, load_output: bool = True) -> WorkflowStatus:
        decode = rt.codec.decode_shown
        return cls(
            workflow_id=row.workflow_id,
            status=row.status,
            name=row.name,
            class_name=row.class_name,
            config_name=row.config_name,
            input=_inputs(rt, decode(row.inputs)) if load_input and row.inputs is not None else None,
            output=decode(row.output) if load_output and row.output is not None else None,
            error=decode(row.error) if load_output and row.error is not None else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
            executor_id=row.executor_id,
            app_version=row.application_version,
            app_id=row.application_id,
            # DBOS counts executions (the first run is attempt 1; a row still waiting on its queue has
            # none); the table counts recoveries.
            recovery_attempts=row.recovery_attempts + (0 if row.status == "ENQUEUED" else 1),
            queue_name=row.queue_name,
            parent_workflow_id=row.parent_workflow_id,
            request=decode(row.request) if row.request is not None else None,
            workflow_version=row.workflow_version,
            workflow_deadline_epoch_ms=row.workflow_deadline_epoch_ms,
            priority=row.priority,
            deduplication_id=row.deduplication_id,
            queue_partition_key=row.queue_partition_key,
            schedule_name=row.schedule_name,
            workflow_timeout_ms=row.workflow_timeout_ms,
            forked_from=row.forked_from,
            was_forked_from=bool(row.was_forked_from),
            dequeued_at=row.started_at_epoch_ms,
            delay_until_epoch_ms=row.delay_until_epoch_ms,
            authenticated_user=row.authenticated_user,
            assumed_role=row.assumed_role,
            authenticated_roles=json.loads(row.authenticated_roles) if row.authenticated_roles is not None else None,
            attributes=json.loads(row.attributes) if row.attributes is not None else None,
        )


def _inputs(rt: Runtime, inputs: Any) -> Any:
    """A workflow's recorded inputs as DBOS shows them: positional arguments as a tuple.

    They are stored as a JSON list; a custom serializer's own shape is left as it made it.
    """
    if rt.codec.serializer is None and isinstance(inputs, dict) and isinstance(inputs.get("args"), list):
        return {**inputs, "args": tuple(inputs["args"])}
    return inputs


class StepInfo(TypedDict):
    """One checkpointed step, as ``DBOS.list_workflow_steps`` returns it."""

    function_id: int
    function_name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None


def workflow_status(rt: Runtime, workflow_id: str) -> WorkflowStatus | None:
    rt.write_pending_rows(workflow_id)  # a new run here whose row waits for its first transaction shows
    row = rt.checkpoint_store.get_workflow(workflow_id)
    return WorkflowStatus.from_row(rt, row) if row is not None else None


def result_of(rt: Runtime, workflow_id: str, timeout_seconds: float | None = None) -> Any:
    """``DBOS.get_result``: wait for a workflow by ID and return its outcome (a step in a workflow)."""
    return as_step(rt, GET_RESULT, lambda: wait_for_result(rt, workflow_id, timeout_seconds),
                   child_workflow_id=workflow_id, record_errors=True)


def step_info(rt: Runtime, record: StepRecord, *, load_output: bool = True) -> StepInfo:
    return StepInfo(
        function_id=record.function_id,
        function_name=record.function_name,
        output=rt.codec.decode_shown(record.output) if load_output and record.output is not None else None,
        error=rt.codec.decode_shown(record.error) if load_output and record.error is not None else None,
        child_workflow_id=record.child_workflow_id,
        started_at_epoch_ms=record.started_at_epoch_ms,
        completed_at_epoch_ms=record.completed_at_epoch_ms,
    )


class WorkflowHandle(Generic[R]):
    """A started (or earlier) workflow: its ID, its status, and its result when it has one."""

    def __init__(self, rt: Runtime, workflow_id: str, future: Future[Any] | None = None) -> None:
        self._rt = rt
        self.workflow_id = workflow_id
        self._future = future

    def get_workflow_id(self) -> str:
        return self.workflow_id

    def get_result(self, *, timeout_seconds: float | None = None, polling_interval_sec: float | None = None) -> R:
        """Wait for the workflow to finish; return its value or raise its error.

        In a workflow's body this is its step ``DBOS.getResult``: replay returns the recorded outcome.
        """
        return as_step(self._rt, GET_RESULT, lambda: self._wait(timeout_seconds),
                       child_workflow_id=self.workflow_id, record_errors=True)

    def _wait(self, timeout_seconds: float | None) -> R:
        if self._rt.stopping.is_set():
            ctx = current_context()
            if ctx is not None and ctx.workflow is not None:
                raise DBOSShutdownError(ctx.workflow.workflow_id)  # not the waiting workflow's outcome
            raise DBOSNotLaunchedError(f"DBOS was destroyed: the handle of workflow {self.workflow_id} is no longer "
                                       "usable; DBOS.retrieve_workflow() it from a launched DBOS")
        if self._future is not None:
            try:
                return self._future.result(timeout_seconds)  # type: ignore[no-any-return]
            except (DBOSFencedError, DBOSWorkflowCancelledError, DBOSShutdownError):
                # Another executor took it over, or it was cancelled: the database has the outcome
                # (a cancelled workflow raises DBOSAwaitedWorkflowCancelledError from there).
                pass
        return wait_for_result(self._rt, self.workflow_id, timeout_seconds)  # type: ignore[no-any-return]

    def get_status(self) -> WorkflowStatus:
        """The workflow's status now (in a workflow's body: its step ``DBOS.getStatus``)."""
        found = as_step(self._rt, GET_STATUS, lambda: workflow_status(self._rt, self.workflow_id))
        if found is None:
            raise DBOSNonExistentWorkflowError("target", self.workflow_id)
        return found

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"

