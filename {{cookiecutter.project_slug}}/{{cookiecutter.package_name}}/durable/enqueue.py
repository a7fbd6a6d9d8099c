"""Enqueue workflows as ENQUEUED rows of a declared queue (``queues.py``); the dequeuer runs them.

``queue.enqueue(fn, ...)`` commits the workflow row as ENQUEUED and returns a handle.
``SetEnqueueOptions`` gives the next enqueues a priority, a deduplication ID or a partition key.
Inside an open transaction (``@DBOS.transaction``, or ``EnqueueInTransaction(session)``) the row is
written through that transaction, so the workflow exists only if the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .context import DBOSContext, current_context, workflow_body
from .current import current_runtime
from .error import DBOSException, DBOSQueueDeduplicatedError
from .executor import assign_workflow_id, new_workflow_row, record_child_start, timeout_for
from .handles import WorkflowHandle
from .invocation import Invocation
from .registry import FunctionInfo, workflow_of
from .runtime import Runtime
from .store.base import NewWorkflow
from .store.queue_store import DuplicateDeduplicationID

# The wake-up key of the dequeuer (in-process, and the pg_notify payload).
QUEUE_KEY = '["queues"]'
MAX_PRIORITY = 2**31 - 1
# Where start_workflow inside an open transaction puts its workflow (and where schedules enqueue).
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"


class QueueRef(Protocol):
    """What an enqueue needs of a declared ``Queue``."""

    @property
    def name(self) -> str: ...

    @property
    def partitioned(self) -> bool: ...


@dataclass(frozen=True)
class EnqueueOptions:
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None


_enqueue_options: ContextVar[EnqueueOptions | None] = ContextVar("durable_enqueue_options", default=None)


class SetEnqueueOptions:
    """``with SetEnqueueOptions(...):`` applies to the workflows enqueued in the block.

    - ``priority``: a lower number runs first (1 is the highest; without one, 0, ahead of all).
    - ``deduplication_id``: while a workflow of the queue holding this ID waits or runs, another
      enqueue with it raises ``DBOSQueueDeduplicatedError``.
    - ``queue_partition_key``: the partition of a partitioned queue (required there, refused elsewhere).
    """

    def __init__(self, *, priority: int | None = None, deduplication_id: str | None = None,
                 queue_partition_key: str | None = None) -> None:
        if priority is not None and not (isinstance(priority, int) and 1 <= priority <= MAX_PRIORITY):
            raise ValueError(f"priority must be an integer from 1 to {MAX_PRIORITY}, got {priority!r}")
        for label, value in (("deduplication_id", deduplication_id), ("queue_partition_key", queue_partition_key)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{label} must be a non-empty string, got {value!r}")
        self.options = EnqueueOptions(priority or 0, deduplication_id, queue_partition_key)
        self._token: Any = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        _enqueue_options.reset(self._token)


_outer_transaction: ContextVar[Session | sa.Connection | None] = ContextVar("durable_outer_tx", default=None)


@contextmanager
def EnqueueInTransaction(transaction: Session | sa.Connection) -> Iterator[None]:  # noqa: N802 - reads as a class
    """Enqueue (or start) workflows in the block through the application's own open transaction.

    The workflow rows commit or roll back with it, so a workflow exists exactly when the business
    writes beside it do. The system tables must live in the application database.
    """
    token = _outer_transaction.set(transaction)
    try:
        yield
    finally:
        _outer_transaction.reset(token)


def _checked_options(queue: QueueRef) -> EnqueueOptions:
    options = _enqueue_options.get() or EnqueueOptions()
    if queue.partitioned and options.queue_partition_key is None:
        raise ValueError(f"Queue {queue.name!r} is partitioned: enqueue inside "
                         "SetEnqueueOptions(queue_partition_key=...)")
    if not queue.partitioned and options.queue_partition_key is not None:
        raise ValueError(f"Queue {queue.name!r} is not partitioned, so queue_partition_key "
                         f"{options.queue_partition_key!r} has no meaning there; declare it with partition limits")
    if queue.partitioned and options.deduplication_id is not None:
        raise ValueError(f"Queue {queue.name!r} is partitioned; deduplication IDs work on unpartitioned queues "
                         "only (as in DBOS)")
    return options


def open_transaction(parent: DBOSContext | None) -> Session | sa.Connection | None:
    """The application transaction an enqueue here must join, if any."""
    outer = _outer_transaction.get()
    if outer is not None:
        return outer
    return parent.sql_session if parent is not None else None


def enqueue_workflow(rt: Runtime, queue: QueueRef, info: FunctionInfo, args: tuple[Any, ...],
                     kwargs: dict[str, Any], *, schedule_name: str | None = None) -> str:
    """Commit an ENQUEUED workflow row (or find the one with its ID) and wake the dequeuer; return its ID.

    Inside a workflow, the enqueue is a step of the parent: replay finds the same child again.
    """
    options = _checked_options(queue)
    call = Invocation.of(info, args, kwargs)
    parent = current_context()
    parent_state = workflow_body(parent)
    transaction = open_transaction(parent)
    if transaction is not None and parent_state is not None:
        raise DBOSException(f"workflow {parent_state.workflow_id!r} enqueues {info.name!r} inside an application "
                            "transaction from its body; do it in a @DBOS.transaction, whose checkpoint commits "
                            "with the transaction")
    workflow_id, step_id, _record = assign_workflow_id(parent, parent_state, info.name)
    timeout_ms, deadline = timeout_for(parent)
    if timeout_ms:
        deadline = None  # a queued workflow's timeout counts from its dequeue, as in DBOS
    request = parent.request if parent is not None else None
    row = replace(new_workflow_row(rt, call, workflow_id, request, parent_state, timeout_ms, deadline,
                                   queue_name=queue.name),
                  priority=options.priority, deduplication_id=options.deduplication_id,
                  queue_partition_key=options.queue_partition_key, schedule_name=schedule_name)
    if transaction is not None:
        _enqueue_in_transaction(rt, transaction, row)
        return workflow_id
    try:
        existing = rt.queue_store.enqueue(row, QUEUE_KEY)
    except DuplicateDeduplicationID:
        raise DBOSQueueDeduplicatedError(workflow_id, queue.name, options.deduplication_id or "") from None
    if parent_state is not None and step_id is not None:
        record_child_start(rt, parent_state, step_id, info.name, workflow_id)
    if existing is None:
        wake_dequeuer(rt)
    return workflow_id


def wake_dequeuer(rt: Runtime) -> None:
    rt.queue_wakeup.set()
    rt.wakeups.wake(QUEUE_KEY)


def _enqueue_in_transaction(rt: Runtime, transaction: Session | sa.Connection, row: NewWorkflow) -> None:
    """Insert the row through the caller's transaction; a refusal leaves the transaction usable.

    No in-process wake-up: it would come before the COMMIT. PostgreSQL's NOTIFY is delivered at the
    COMMIT; on SQLite the dequeuer's short poll finds the row.
    """
    if rt.app_checkpoint_store is not None:
        raise DBOSException("a workflow can join an application transaction only when the system tables live in "
                            "the application database; with a separate system_database_url, enqueue after "
                            "the commit instead")
    connection = transaction.connection() if isinstance(transaction, Session) else transaction
    try:
        rt.queue_store.enqueue_in(connection, row, QUEUE_KEY)
    except DuplicateDeduplicationID:
        raise DBOSQueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None




def enqueue_call(queue: QueueRef, func: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> WorkflowHandle[Any]:
    """``queue.enqueue(func, *args, **kwargs)``: enqueue on the launched runtime; return the handle."""
    info, bound = workflow_of(func)
    rt = current_runtime()
    workflow_id = enqueue_workflow(rt, queue, info, (*bound, *args), kwargs)
    return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))
