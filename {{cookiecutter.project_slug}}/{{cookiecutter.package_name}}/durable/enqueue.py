"""Enqueue workflows as ENQUEUED rows of a declared queue (``queues.py``); the dequeuer runs them.

``queue.enqueue(fn, ...)`` commits the workflow row as ENQUEUED and returns a handle.
``SetEnqueueOptions`` (``enqueue_options.py``) gives the next enqueues a priority, a deduplication ID,
a partition key, a delay (the row waits DELAYED until its time) or an application version.
Inside an open transaction (``@DBOS.transaction``, or ``EnqueueInTransaction(session)``) the row is
written through that transaction, so the workflow exists only if the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .context import DBOSContext, current_context, workflow_body
from .current import current_runtime
from .enqueue_options import EnqueueOptions, check_duplication_policy, current_enqueue_options
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
# Where start_workflow inside an open transaction puts its workflow (and where schedules enqueue).
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"


class QueueRef(Protocol):
    """What an enqueue needs of a ``Queue``."""

    @property
    def name(self) -> str: ...

    @property
    def partitioned(self) -> bool: ...

    @property
    def database_backed_queue(self) -> bool: ...


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
    options = current_enqueue_options()
    check_duplication_policy(options.duplication_policy, queue.name, options.deduplication_id)
    if options.queue_partition_key is not None and options.deduplication_id is not None:
        raise ValueError(f"Queue {queue.name!r}: deduplication is not supported for partitioned queues (as in DBOS)")
    if queue.database_backed_queue:
        return options  # a registered queue's partitioning is its row's business, read by the dequeuer
    if queue.partitioned and options.queue_partition_key is None:
        raise ValueError(f"A workflow cannot be enqueued on partitioned queue {queue.name} without a partition key: "
                         "enqueue inside SetEnqueueOptions(queue_partition_key=...)")
    if not queue.partitioned and options.queue_partition_key is not None:
        raise ValueError(f"You can only use a partition key on a partition-enabled queue. Key "
                         f"{options.queue_partition_key} was used with non-partitioned queue {queue.name}")
    return options


def open_transaction(parent: DBOSContext | None) -> Session | sa.Connection | None:
    """The application transaction an enqueue here must join, if any."""
    outer = _outer_transaction.get()
    if outer is not None:
        return outer
    return parent.sql_session if parent is not None else None


def enqueue_workflow(rt: Runtime, queue: QueueRef, info: FunctionInfo, args: tuple[Any, ...],
                     kwargs: dict[str, Any], *, unpinned: bool = False,
                     debounce_deadline_epoch_ms: int | None = None, debounced: bool = False,
                     schedule_name: str | None = None) -> str:
    """Commit an ENQUEUED (or DELAYED) workflow row, or find the one with its ID; wake the dequeuer; return its ID.

    Inside a workflow, the enqueue is a step of the parent: replay finds the same child again.
    ``unpinned`` leaves the application version unset: any executor may run it. ``debounced`` marks a
    Debouncer's workflow (``debouncer.py``), which takes later inputs until ``debounce_deadline_epoch_ms``.
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
    workflow_id, step_id, _record, _chosen = assign_workflow_id(parent, parent_state, info.name)
    timeout_ms, deadline = timeout_for(parent)
    if timeout_ms:
        deadline = None  # a queued workflow's timeout counts from its dequeue, as in DBOS
    request = parent.request if parent is not None else None
    delayed = options.delay_until_epoch_ms is not None
    row = replace(new_workflow_row(rt, call, workflow_id, request, parent_state, timeout_ms, deadline,
                                   queue_name=queue.name),
                  status="DELAYED" if delayed else "ENQUEUED", delay_until_epoch_ms=options.delay_until_epoch_ms,
                  priority=options.priority, deduplication_id=options.deduplication_id,
                  queue_partition_key=options.queue_partition_key, schedule_name=schedule_name)
    if unpinned:
        row = replace(row, application_version=None)
    if debounced:
        row = replace(row, is_debounced=1, debounce_deadline_epoch_ms=debounce_deadline_epoch_ms)
    if transaction is not None:
        if options.duplication_policy == "return-existing":
            raise DBOSException("duplication_policy 'return-existing' is not supported inside an application "
                                "transaction: the workflow holding the deduplication ID cannot be read there")
        _enqueue_in_transaction(rt, transaction, row)
        return workflow_id
    workflow_id, inserted = _insert(rt, row, options)
    if parent_state is not None and step_id is not None:
        record_child_start(rt, parent_state, step_id, info.name, workflow_id)
    if inserted:
        wake_dequeuer(rt)  # a delayed one too: the dequeuer learns when to wake for it
    return workflow_id


def _insert(rt: Runtime, row: NewWorkflow, options: EnqueueOptions) -> tuple[str, bool]:
    """Insert the row; (the workflow ID the caller gets, whether a row was inserted).

    On a held deduplication ID, ``return-existing`` attaches to the holder; if the holder finished
    between the insert and the look-up, the insert is tried again.
    """
    while True:
        try:
            existing = rt.queue_store.enqueue(row, QUEUE_KEY)
            return row.workflow_id, existing is None
        except DuplicateDeduplicationID:
            dedup_id = options.deduplication_id or ""
            if options.duplication_policy != "return-existing":
                raise DBOSQueueDeduplicatedError(row.workflow_id, row.queue_name or "", dedup_id) from None
            holder = rt.queue_store.deduplication_holder(row.queue_name or "", dedup_id)
            if holder is not None:
                return holder, False


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
