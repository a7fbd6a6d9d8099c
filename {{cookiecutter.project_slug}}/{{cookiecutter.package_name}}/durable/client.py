"""``DBOSClient``: DBOS 2.x's client, for programs that are not the service (a worker script, another
service, a notebook).

It opens the system database the way an operator's command does (``runtime.Runtime`` with
``runs_workflows=False``): no background thread, no executor of its own, so it never runs a workflow.
It enqueues workflows by name for the service's queues, sends messages, reads events and streams,
and lists, cancels, resumes and forks workflows through the modules that do each job for ``DBOS``
too; a workflow it resumes or forks is handed to the service's queues. The client needs no workflow
code: it names workflows and queues as strings, and its arguments must be values the service's codec
can rebuild (the same JSON checkpoints).
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any, TypedDict

from . import listing, management, messaging, streams
from .config import DBOSConfig, resolve_config
from .context import SetWorkflowID
from .enqueue import QUEUE_KEY
from .error import DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError
from .handles import StepInfo, WorkflowHandle, WorkflowStatus
from .runtime import Runtime
from .store.base import NewWorkflow, WorkflowStatusString
from .store.queue_store import DuplicateDeduplicationID


class _EnqueueRequired(TypedDict):
    queue_name: str
    workflow_name: str


class EnqueueOptions(_EnqueueRequired, total=False):
    """What ``DBOSClient.enqueue`` needs to know (DBOS 2.31.1's keys; others are refused)."""

    workflow_id: str
    app_version: str
    workflow_timeout: float
    deduplication_id: str
    priority: int
    queue_partition_key: str
    class_name: str
    instance_name: str
    workflow_class_name: str
    workflow_config_name: str


_KNOWN_OPTIONS = frozenset(EnqueueOptions.__annotations__) | frozenset(_EnqueueRequired.__annotations__)


class DBOSClient:
    """Talk to a DBOS application's system database from outside the application."""

    def __init__(self, database_url: str | None = None, *, system_database_url: str | None = None,
                 application_database_url: str | None = None, dbos_system_schema: str | None = "dbos",
                 system_database_pool_size: int | None = None, application_name: str | None = None,
                 **_unsupported: Any) -> None:
        """Connect (the system tables must exist: a DBOS application creates them)."""
        app_url = application_database_url or database_url
        sys_url = system_database_url or app_url
        if not sys_url:
            raise DBOSException("DBOSClient needs system_database_url (or application_database_url)")
        config = DBOSConfig(name=application_name or "dbos-client", system_database_url=sys_url,
                            application_database_url=app_url or sys_url, run_migrations=False)
        if dbos_system_schema and dbos_system_schema != "dbos":
            config["dbos_system_schema"] = dbos_system_schema
        if system_database_pool_size:
            config["sys_db_pool_size"] = system_database_pool_size
        self._rt = Runtime(resolve_config(config), None, runs_workflows=False)

    def destroy(self) -> None:
        """Close the client's connections."""
        self._rt.drain(0)
        self._rt.close()

    # -- starting workflows ----------------------------------------------------------------------

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue the workflow ``workflow_name`` on ``queue_name`` for the service to run."""
        unknown = sorted(set(options) - _KNOWN_OPTIONS)
        if unknown:
            raise DBOSException(f"EnqueueOptions has unknown key {unknown[0]!r}")
        for required in ("queue_name", "workflow_name"):
            if not options.get(required):
                raise DBOSException(f"EnqueueOptions needs {required}")
        rt = self._rt
        workflow_id = options.get("workflow_id") or str(uuid.uuid4())
        timeout = options.get("workflow_timeout")
        name = options["workflow_name"]
        row = NewWorkflow(
            workflow_id=workflow_id, name=name, status=WorkflowStatusString.ENQUEUED.value,
            inputs=rt.codec.encode({"args": list(args), "kwargs": kwargs}, what=f"workflow {name!r} input"),
            executor_id="", application_version=options.get("app_version") or rt.settings.application_version,
            application_id=rt.settings.name, queue_name=options["queue_name"],
            class_name=options.get("workflow_class_name") or options.get("class_name"),
            config_name=options.get("workflow_config_name") or options.get("instance_name"),
            workflow_timeout_ms=int(timeout * 1000) if timeout else None,
            priority=int(options.get("priority") or 0), deduplication_id=options.get("deduplication_id"),
            queue_partition_key=options.get("queue_partition_key"),
        )
        try:
            rt.queue_store.enqueue(row, QUEUE_KEY)
        except DuplicateDeduplicationID:
            raise DBOSQueueDeduplicatedError(workflow_id, row.queue_name or "", row.deduplication_id or "") from None
        return WorkflowHandle(rt, workflow_id)

    # -- messages, events, streams ----------------------------------------------------------------

    def send(self, destination_id: str, message: Any, topic: str | None = None,
             idempotency_key: str | None = None) -> None:
        """Deliver ``message`` to a workflow's ``topic`` (once per ``idempotency_key``)."""
        messaging.send(self._rt, destination_id, message, topic, idempotency_key)

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The value a workflow set under ``key``, waiting up to ``timeout_seconds`` (else None)."""
        return messaging.get_event(self._rt, workflow_id, key, timeout_seconds)

    def read_stream(self, workflow_id: str, key: str, *, timeout_seconds: float | None = None,
                    polling_interval_sec: float | None = None) -> Generator[Any, None, None]:
        """The values a workflow writes to stream ``key``, until it is closed or the workflow ends."""
        return streams.read_stream(self._rt, workflow_id, key, timeout_seconds=timeout_seconds,
                                   polling_interval_sec=polling_interval_sec)

    # -- reading workflows ------------------------------------------------------------------------

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing workflow; raise if there is none."""
        if listing.workflow_status(self._rt, workflow_id) is None:
            raise DBOSNonExistentWorkflowError("workflow", workflow_id)
        return WorkflowHandle(self._rt, workflow_id)

    def list_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        """``DBOS.list_workflows``, with the same keyword filters."""
        return listing.list_workflows(self._rt, **filters)

    def list_queued_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        """``DBOS.list_queued_workflows``, with the same keyword filters."""
        return listing.list_workflows(self._rt, **filters, queues_only=True)

    def list_workflow_steps(self, workflow_id: str) -> list[StepInfo]:
        return listing.list_steps(self._rt, workflow_id)

    # -- acting on workflows ----------------------------------------------------------------------

    def cancel_workflow(self, workflow_id: str) -> None:
        management.cancel_workflows(self._rt, [workflow_id])

    def cancel_workflows(self, workflow_ids: list[str]) -> None:
        management.cancel_workflows(self._rt, list(workflow_ids))

    def resume_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """Run a cancelled or failed workflow again from its checkpoints (the service runs it)."""
        handle = management.resume_workflow(self._rt, workflow_id)
        return WorkflowHandle(self._rt, handle.workflow_id)

    def fork_workflow(self, workflow_id: str, start_step: int, *, application_version: str | None = None,
                      forked_workflow_id: str | None = None) -> WorkflowHandle[Any]:
        """A copy of a workflow that reuses the checkpoints before ``start_step`` (the service runs it)."""
        with SetWorkflowID(forked_workflow_id or str(uuid.uuid4())):
            handle = management.fork_workflow(self._rt, workflow_id, start_step,
                                              application_version=application_version)
        return WorkflowHandle(self._rt, handle.workflow_id)
