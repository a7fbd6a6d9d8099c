"""``DBOSClient``: DBOS 2.x's client, for programs that are not the service (a worker script, another
service, a notebook).

It opens the system database the way an operator's command does (``runtime.Runtime`` with
``runs_workflows=False``): no background thread, no executor of its own, so it never runs a workflow.
It enqueues workflows by name for the service's queues, sends messages, reads events and streams,
and lists, cancels, resumes and forks workflows through the modules that do each job for ``DBOS``
too; a workflow it resumes or forks is handed to the service's queues. The client needs no workflow
code: it names workflows and queues as strings, and its arguments must be values the service's codec
can rebuild (the same JSON checkpoints). It never migrates: the service creates the tables.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import listing, management, messaging, streams
from .attributes import update_workflow_attributes, validate_workflow_attributes
from .client_schedules import ClientScheduleMethods
from .config import DBOSConfig, resolve_config
from .context import SetWorkflowID, client_side, outside_workflows
from .enqueue import QUEUE_KEY
from .enqueue_options import MAX_PRIORITY, SetEnqueueOptions
from .error import (
    DBOSException,
    DBOSInitializationError,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
)
from .handles import StepInfo, WorkflowHandle, WorkflowStatus
from .ids import time_ordered_uuid
from .messaging import SendMessage
from .runtime import Runtime, SystemDatabase
from .store.base import NewWorkflow, WorkflowStatusString
from .store.queue_store import DuplicateDeduplicationID
from .wait_first import wait_first

_ACTIVE = ["ENQUEUED", "PENDING", "DELAYED"]


class _ClientSystemDatabase(SystemDatabase):
    """The client's ``_sys_db``: its engine, and its notification listener's connection (DBOS's names)."""

    def __init__(self, rt: Runtime, engine: sa.Engine) -> None:
        super().__init__(engine)
        self._rt = rt
        self._listener_thread_lock = threading.Lock()

    @property
    def notification_conn(self) -> Any:
        return self._rt.wakeups.listener_connection()


class _EnqueueRequired(TypedDict):
    queue_name: str
    workflow_name: str


class EnqueueOptions(_EnqueueRequired, total=False):
    """What ``DBOSClient.enqueue`` needs to know (DBOS 2.31.1's keys; an unknown one is refused)."""

    workflow_id: str
    app_version: str
    workflow_timeout: float
    delay_seconds: float
    deduplication_id: str
    duplication_policy: str
    priority: int
    max_recovery_attempts: int
    queue_partition_key: str
    authenticated_user: str
    authenticated_roles: list[str]
    serialization_type: Any
    class_name: str
    instance_name: str
    attributes: dict[str, Any]
    application_name: str | None
    otel_context: Any
    workflow_class_name: str
    workflow_config_name: str


# max_recovery_attempts, serialization_type, application_name and otel_context are
# accepted and not acted on here (the compatibility table in README.md says so).
_KNOWN_OPTIONS = frozenset(EnqueueOptions.__annotations__) | frozenset(_EnqueueRequired.__annotations__)


def _database_error(exc: DBOSInitializationError) -> BaseException:
    """The driver's own error when the database could not be reached (DBOS raises that one), else ``exc``."""
    cause = exc.__cause__
    return cause if isinstance(cause, sa.exc.DBAPIError) else exc


class DBOSClient(ClientScheduleMethods):
    """Talk to a DBOS application's system database from outside the application."""

    def __init__(self, database_url: str | None = None, *, system_database_url: str | None = None,
                 application_database_url: str | None = None, dbos_system_schema: str | None = "dbos",
                 system_database_pool_size: int | None = None, application_name: str | None = None,
                 use_listen_notify: bool = False, lazy: bool = False, retry_connection_errors: bool = True,
                 serializer: Any = None, **_unsupported: Any) -> None:
        """Connect now (unless ``lazy``); the system tables must exist."""
        if lazy and use_listen_notify:
            raise DBOSException("A DBOSClient cannot be both lazy and use_listen_notify: the notification "
                                "listener connects immediately.")
        app_url = application_database_url or database_url
        sys_url = system_database_url or app_url
        if not sys_url:
            raise DBOSException("DBOSClient needs system_database_url (or application_database_url)")
        config = DBOSConfig(name=application_name or "dbos-client", system_database_url=sys_url,
                            application_database_url=sys_url, run_migrations=False)
        if dbos_system_schema and dbos_system_schema != "dbos":
            config["dbos_system_schema"] = dbos_system_schema
        if system_database_pool_size:
            config["sys_db_pool_size"] = system_database_pool_size
        if serializer is not None:  # must be the service's, as in DBOS
            config["serializer"] = serializer
        self._settings = resolve_config(config)
        self._runtime: Runtime | None = None
        self._transactional: _ClientSystemDatabase | None = None
        self._lock = threading.Lock()
        # DBOS's client starts a listener thread with use_listen_notify; here waits use the runtime's wake-ups.
        self._notification_listener_thread: threading.Thread | None = None
        if not lazy:
            self.check_connection()
        if use_listen_notify:  # waits wake on PostgreSQL's notifications from now on, as DBOS's client's do
            self._notification_listener_thread = self._rt.wakeups.listen_now()

    @property
    def _rt(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                try:
                    self._runtime = Runtime(self._settings, None, runs_workflows=False)
                except DBOSInitializationError as exc:
                    raise _database_error(exc) from exc
            return self._runtime

    @property
    def _sys_db(self) -> _ClientSystemDatabase:
        rt = self._rt
        with self._lock:
            if self._transactional is None:
                self._transactional = _ClientSystemDatabase(rt, rt.sys_dialect.create_engine(
                    self._settings.sys_db_url, pool_size=2, autocommit=False))
            return self._transactional

    def check_connection(self) -> None:
        """Raise if the system database cannot be reached (or has no system tables)."""
        self._rt.checkpoint_store.get_workflow("")

    async def check_connection_async(self) -> None:
        await asyncio.to_thread(self.check_connection)

    def destroy(self) -> None:
        """Close the client's connections."""
        with self._lock:
            rt, self._runtime = self._runtime, None
            transactional, self._transactional = self._transactional, None
        if transactional is not None:
            transactional.engine.dispose()
        if rt is not None:
            rt.drain(0)
            rt.close()

    # -- starting workflows ----------------------------------------------------------------------

    @client_side
    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue the workflow ``workflow_name`` on ``queue_name`` for the service to run."""
        self._check(options)
        policy = options.get("duplication_policy")
        rt = self._rt
        row = self._row(rt, options, args, kwargs)
        try:
            rt.queue_store.enqueue(row, QUEUE_KEY)
        except DuplicateDeduplicationID:
            holder = self._dedup_holder(row.queue_name or "", row.deduplication_id or "")
            if policy == "return-existing" and holder is not None:
                return WorkflowHandle(rt, holder)
            raise DBOSQueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None
        return WorkflowHandle(rt, row.workflow_id)

    @client_side
    def enqueue_in_transaction(self, conn_or_session: sa.Connection | Session, options: EnqueueOptions,
                               *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue through the caller's open transaction on the system database: it exists once that commits."""
        if options.get("duplication_policy") == "return-existing":
            raise DBOSException("duplication_policy 'return-existing' is not supported by enqueue_in_transaction. "
                                "Use enqueue instead.")
        self._check(options)
        rt = self._rt
        row = self._row(rt, options, args, kwargs)
        connection = conn_or_session.connection() if isinstance(conn_or_session, Session) else conn_or_session
        try:
            rt.queue_store.enqueue_in(connection, row, QUEUE_KEY)
        except DuplicateDeduplicationID:
            raise DBOSQueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None
        return WorkflowHandle(rt, row.workflow_id)

    def _check(self, options: EnqueueOptions) -> None:
        unknown = sorted(set(options) - _KNOWN_OPTIONS)
        if unknown:
            raise DBOSException(f"EnqueueOptions has unknown key {unknown[0]!r}")
        for required in ("queue_name", "workflow_name"):
            if not options.get(required):
                raise DBOSException(f"EnqueueOptions needs {required}")
        priority = options.get("priority")
        if priority is not None and not 0 <= priority <= MAX_PRIORITY:
            raise DBOSException(f"Invalid priority {priority}. Priority must be between 0~{MAX_PRIORITY}.")
        policy = options.get("duplication_policy")
        if policy not in (None, "reject", "return-existing"):
            raise DBOSException(f"Invalid duplication_policy {policy}. Must be either 'reject' or 'return-existing'.")
        if policy == "return-existing" and not options.get("deduplication_id"):
            raise DBOSException("duplication_policy 'return-existing' requires a deduplication_id")
        validate_workflow_attributes(options.get("attributes"))

    def _row(self, rt: Runtime, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]) -> NewWorkflow:
        name = options["workflow_name"]
        timeout = options.get("workflow_timeout")
        roles = options.get("authenticated_roles")
        attributes = options.get("attributes")
        delay = options.get("delay_seconds")  # checked as SetEnqueueOptions checks it; DELAYED until then
        delay_until = SetEnqueueOptions(delay_seconds=delay).options.delay_until_epoch_ms if delay is not None else None
        return NewWorkflow(
            workflow_id=options.get("workflow_id") or time_ordered_uuid(), name=name,
            status=WorkflowStatusString.ENQUEUED.value if delay_until is None else "DELAYED",
            delay_until_epoch_ms=delay_until,
            inputs=rt.codec.encode({"args": list(args), "kwargs": kwargs}, what=f"workflow {name!r} input"),
            executor_id="", application_version=options.get("app_version") or None,
            application_id=rt.settings.name, queue_name=options["queue_name"],
            class_name=options.get("workflow_class_name") or options.get("class_name"),
            config_name=options.get("workflow_config_name") or options.get("instance_name"),
            workflow_timeout_ms=int(timeout * 1000) if timeout else None,
            priority=int(options.get("priority") or 0), deduplication_id=options.get("deduplication_id"),
            queue_partition_key=options.get("queue_partition_key"),
            attributes=json.dumps(attributes) if attributes is not None else None,
            authenticated_user=options.get("authenticated_user"),
            authenticated_roles=json.dumps(roles) if roles is not None else None,
        )

    def _dedup_holder(self, queue_name: str, deduplication_id: str) -> str | None:
        for found in listing.list_workflows(self._rt, queue_name=queue_name, status=_ACTIVE, load_input=False,
                                            load_output=False):
            if found.deduplication_id == deduplication_id:
                return found.workflow_id
        return None

    # -- messages, events, streams, attributes ----------------------------------------------------

    @client_side
    def send(self, destination_id: str, message: Any, topic: str | None = None,
             idempotency_key: str | None = None, **_options: Any) -> None:
        """Deliver ``message`` to a workflow's ``topic`` (once per ``idempotency_key``)."""
        messaging.send(self._rt, destination_id, message, topic, idempotency_key)

    @client_side
    def send_in_transaction(self, conn_or_session: sa.Connection | Session, destination_id: str, message: Any,
                            topic: str | None = None, idempotency_key: str | None = None, **_options: Any) -> None:
        """Send through the caller's open transaction on the system database: delivered once that commits."""
        connection = conn_or_session.connection() if isinstance(conn_or_session, Session) else conn_or_session
        messaging.send_through(self._rt, connection, destination_id, message, topic, idempotency_key)

    @client_side
    def send_bulk_in_transaction(self, conn_or_session: sa.Connection | Session, messages: Iterable[Any],
                                 **_options: Any) -> None:
        for m in messages:
            self.send_in_transaction(conn_or_session, m.destination_id, m.message, getattr(m, "topic", None),
                                     getattr(m, "idempotency_key", None))

    @client_side
    def send_bulk(self, messages: Iterable[Any], **_options: Any) -> None:
        """Send the messages (``destination_id``, ``message``, ``topic``, ``idempotency_key``): all or none."""
        messaging.send_bulk(self._rt, [SendMessage(m.destination_id, m.message, getattr(m, "topic", None),
                                                   getattr(m, "idempotency_key", None)) for m in messages])

    @client_side
    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The value a workflow set under ``key``, waiting up to ``timeout_seconds`` (else None)."""
        return messaging.get_event(self._rt, workflow_id, key, timeout_seconds)

    def read_stream(self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None,
                    polling_interval_sec: float | None = None) -> Generator[Any]:
        """The values a workflow writes to stream ``key``, until it is closed or the workflow ends."""
        values = streams.read_stream(self._rt, workflow_id, key, offset=offset, timeout_seconds=timeout_seconds,
                                     polling_interval_sec=polling_interval_sec)
        while True:
            with outside_workflows():  # each read runs on the client's side, even from a workflow's body
                try:
                    value = next(values)
                except StopIteration:
                    return
            yield value

    @client_side
    def read_stream_offset(self, workflow_id: str, key: str, offset: int, *, timeout_seconds: float | None = None,
                           polling_interval_sec: float | None = None) -> Any:
        return streams.read_stream_offset(self._rt, workflow_id, key, offset, timeout_seconds=timeout_seconds,
                                          polling_interval_sec=polling_interval_sec)

    @client_side
    def update_workflow_attributes(self, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        update_workflow_attributes(self._rt, workflow_id, attributes)

    # -- reading workflows ------------------------------------------------------------------------

    @client_side
    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing workflow; raise if there is none."""
        if listing.workflow_status(self._rt, workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(self._rt, workflow_id)

    @client_side
    def wait_first(self, handles: list[WorkflowHandle[Any]], *, polling_interval_sec: float = 1.0) -> WorkflowHandle[Any]:
        """Wait until one of the workflows has finished (any outcome) and return its handle."""
        return wait_first(self._rt, handles, polling_interval_sec)

    @client_side
    def list_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        """``DBOS.list_workflows``, with the same keyword filters."""
        return listing.list_workflows(self._rt, **filters)

    @client_side
    def list_queued_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        """``DBOS.list_queued_workflows``, with the same keyword filters."""
        return listing.list_workflows(self._rt, **filters, queues_only=True)

    @client_side
    def list_workflow_steps(self, workflow_id: str, **options: Any) -> list[StepInfo]:
        return listing.list_steps(self._rt, workflow_id, **options)

    # -- acting on workflows ----------------------------------------------------------------------

    @client_side
    def cancel_workflow(self, workflow_id: str) -> None:
        management.cancel_workflows(self._rt, [workflow_id])

    @client_side
    def cancel_workflows(self, workflow_ids: list[str]) -> None:
        management.cancel_workflows(self._rt, list(workflow_ids))

    @client_side
    def delete_workflow(self, workflow_id: str, *, delete_children: bool = False) -> None:
        """Delete a workflow and everything recorded for it."""
        management.delete_workflows(self._rt, [workflow_id], delete_children=delete_children)

    @client_side
    def delete_workflows(self, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        management.delete_workflows(self._rt, list(workflow_ids), delete_children=delete_children)

    @client_side
    def resume_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """Run a cancelled or failed workflow again from its checkpoints (the service runs it)."""
        handle = management.resume_workflow(self._rt, workflow_id)
        return WorkflowHandle(self._rt, handle.workflow_id)

    @client_side
    def fork_workflow(self, workflow_id: str, start_step: int, *, application_version: str | None = None,
                      forked_workflow_id: str | None = None) -> WorkflowHandle[Any]:
        """A copy of a workflow that reuses the checkpoints before ``start_step`` (the service runs it)."""
        if forked_workflow_id is None:  # the ID a SetWorkflowID block around the call chose, else a new one
            handle = management.fork_workflow(self._rt, workflow_id, start_step,
                                              application_version=application_version)
        else:
            with SetWorkflowID(forked_workflow_id):
                handle = management.fork_workflow(self._rt, workflow_id, start_step,
                                                  application_version=application_version)
        return WorkflowHandle(self._rt, handle.workflow_id)
