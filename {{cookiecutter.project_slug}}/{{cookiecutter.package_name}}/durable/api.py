"""The ``DBOS`` class: DBOS Transact's names, each delegating in a few lines to the module that does the job.

``DBOS(config=..., flask=app)`` configures the process (``lifecycle.py``); nothing connects until
``DBOS.launch()``, which gunicorn's worker hook, the first request, or the first durable call runs.
No SQL, no threads and no logic of its own here: a new method finds (or gets) the module that owns
its job and calls it with ``current_runtime()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Unpack

from . import attributes as attributes_module
from . import auth, cli, decorators, lifecycle, listing, management, messaging, patching, registered_queues
from .api_results import ResultsAPI
from .api_schedules import ScheduleMethods
from .api_streams import StreamsAPI
from .config import DBOSConfig, RuntimeSettings, resolve_config
from .context import RequestInfo, current_context, refuse_in_event_loop
from .current import current_runtime
from .delays import set_workflow_delay
from .enqueue import open_transaction
from .enqueue_by_name import enqueue_with_options
from .enqueue_options import refuse_outside_queue
from .error import DBOSException, DBOSNonExistentWorkflowError, DBOSNotLaunchedError
from .executor import start_workflow
from .handles import StepInfo, WorkflowHandle, WorkflowStatus, result_of
from .listing import QueuedWorkflowFilters, WorkflowFilters
from .portable import WorkflowSerializationFormat
from .queues import INTERNAL_QUEUE, Queue, QueueRateLimit
from .recovery import recover_executors, recover_orphans, recover_pending
from .registry import REGISTRY, workflow_of
from .runtime import SystemDatabase
from .wait_first import wait_first

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class classproperty(Generic[T]):  # noqa: N801 - reads as a property, as in DBOS
    """A read-only property of the class itself (``DBOS.workflow_id``)."""

    def __init__(self, getter: Callable[[Any], T]) -> None:
        self.getter = getter

    def __get__(self, _obj: Any, owner: Any) -> T:
        return self.getter(owner)


def _filters(arguments: dict[str, Any]) -> dict[str, Any]:
    """A method's keyword arguments, to pass on to the module that does the job."""
    return {key: value for key, value in arguments.items() if key != "cls"}


class DBOS(ResultsAPI, StreamsAPI, ScheduleMethods):
    """Durable workflows, steps and transactions, with DBOS Transact's Python API."""

    _facade: DBOS | None = None

    def __new__(cls, *, config: DBOSConfig, flask: Flask | None = None, **_ignored: Any) -> DBOS:
        lifecycle.configure(resolve_config(config), flask)
        if flask is not None:
            cli.install_commands(flask)  # flask workflow ..., flask queue ...
        if DBOS._facade is None:
            DBOS._facade = super().__new__(cls)  # stateless: the process's state lives in lifecycle.py
        return DBOS._facade

    def __init__(self, *, config: DBOSConfig, flask: Flask | None = None, **_ignored: Any) -> None:
        """All set-up happens in ``__new__``."""

    # -- lifecycle (lifecycle.py) ---------------------------------------------------------------------

    @classmethod
    def init_app(cls, app: Flask) -> None:
        """Attach an app to a runtime configured earlier with ``DBOS(config=...)`` (the extension pattern)."""
        configured = lifecycle.configured()
        if configured is None:
            raise DBOSNotLaunchedError("call DBOS(config=DBOSConfig(...)) before DBOS.init_app(app)")
        configured.attach_flask(app)
        cli.install_commands(app)

    @classmethod
    def launch(cls) -> None:
        """Connect, prepare the system tables and start recovery. Safe to call more than once."""
        lifecycle.launch()

    @classmethod
    def destroy(cls, *, destroy_registry: bool = False, workflow_completion_timeout_sec: float = 0) -> None:
        """Stop this process's runtime; its unfinished workflows become free for others to adopt."""
        lifecycle.destroy(destroy_registry=destroy_registry,
                          workflow_completion_timeout_sec=workflow_completion_timeout_sec)

    @classmethod
    def after_fork(cls) -> None:
        """In a forked worker: forget connections and threads inherited from a preloading master."""
        lifecycle.after_fork()

    # -- recovery (recovery.py) -----------------------------------------------------------------------

    @classmethod
    def recover_executors(cls, executor_ids: list[str]) -> list[WorkflowHandle[Any]]:
        """Adopt the unfinished workflows of executors known to be dead, now; return their handles."""
        rt = current_runtime()
        return [WorkflowHandle(rt, workflow_id) for workflow_id in recover_executors(rt, executor_ids)]

    @classmethod
    def _recover_pending_workflows(cls, executor_ids: list[str] | None = None) -> list[WorkflowHandle[Any]]:
        """DBOS's recovery hook: run the PENDING workflows of these executors (default ``["local"]``: this
        process) again where they are not running; return handles to all of them."""
        rt = current_runtime()
        return [WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))
                for workflow_id in recover_pending(rt, executor_ids or ["local"])]

    @classmethod
    def recover_pending_workflows(cls) -> int:
        """Adopt and restart orphaned workflows now, instead of at the next sweep; return how many."""
        return recover_orphans(current_runtime())

    # -- decorators (decorators.py) -------------------------------------------------------------------

    @classmethod
    def workflow(
        cls, *, name: str | None = None, max_recovery_attempts: int | None = None, version: str | None = None,
        serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT,
    ) -> Callable[[F], F]:
        """Make a function a durable workflow: its steps are checkpointed and it resumes after a crash.

        ``version`` marks the code explicitly: bump it when the sequence of steps changes, and keep
        the old version registered (same ``name``) until the workflows it started have finished.
        ``serialization_type=WorkflowSerializationFormat.PORTABLE`` checkpoints it as plain JSON.
        """
        return decorators.workflow(name, max_recovery_attempts, version, serialization_type)

    @classmethod
    def step(
        cls,
        *,
        name: str | None = None,
        retries_allowed: bool = False,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: Callable[[BaseException], bool] | None = None,
        timeout_seconds: float | None = None,
    ) -> Callable[[F], F]:
        """Make a function a step: inside a workflow its result is checkpointed and never recomputed.

        ``should_retry(exc)`` returning False raises the error at once; ``timeout_seconds`` bounds each
        attempt (``step_timeouts.py``: the workflow stops waiting, the body cannot be stopped).
        """
        return decorators.step(name, {
            "retries_allowed": retries_allowed, "interval_seconds": interval_seconds,
            "max_attempts": max_attempts, "backoff_rate": backoff_rate,
            "should_retry": should_retry, "timeout_seconds": timeout_seconds,
        })

    @classmethod
    def transaction(cls, isolation_level: str = "SERIALIZABLE", *, name: str | None = None) -> Callable[[F], F]:
        """Make a function a transaction: its writes and its checkpoint commit together, exactly once."""
        return decorators.transaction(isolation_level, name)

    @classmethod
    def scheduled(cls, cron: str) -> Callable[[F], F]:
        """Run a workflow once per tick of ``cron`` across all processes (six fields, seconds first; or five).

        Stack it above ``@DBOS.workflow()``; the workflow takes ``(scheduled_time, actual_time)``.
        """
        return decorators.scheduled(cron)

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[type[T]], type[T]]:
        """Register a class whose methods are workflows, so recovery can find them again."""
        return decorators.dbos_class(class_name)

    @classmethod
    def register_instance(cls, instance: Any) -> None:
        """Register a configured instance (``DBOSConfiguredInstance`` does this in its constructor)."""
        REGISTRY.add_instance(instance)

    # -- starting and inspecting workflows (executor.py, enqueue.py, listing.py) ----------------------

    @classmethod
    def start_workflow(cls, func: Callable[..., T], *args: Any, **kwargs: Any) -> WorkflowHandle[T]:
        """Start a workflow in the background; its row is durable before this returns.

        Inside an open transaction it is enqueued through that transaction instead, so it starts
        only if the transaction commits.
        """
        refuse_outside_queue()
        if open_transaction(current_context()) is not None:
            return INTERNAL_QUEUE.enqueue(func, *args, **kwargs)
        info, bound = workflow_of(func)
        rt = current_runtime()
        workflow_id, future = start_workflow(rt, info, (*bound, *args), kwargs)
        return WorkflowHandle(rt, workflow_id, future)

    @classmethod
    def enqueue_workflow(cls, queue_name: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> WorkflowHandle[T]:
        """Enqueue a workflow on a queue by name; its row is durable (ENQUEUED) before this returns.

        The queue need not be served yet: the workflow waits until some process registers it.
        """
        return registered_queues.queue_for_enqueue(queue_name).enqueue(func, *args, **kwargs)

    @classmethod
    def wait_first(cls, handles: list[WorkflowHandle[Any]], *, polling_interval_sec: float = 1.0) -> WorkflowHandle[Any]:
        """The handle of the first of these workflows to finish (a step ``DBOS.waitFirst`` in a workflow)."""
        refuse_in_event_loop("wait_first")
        return wait_first(current_runtime(), list(handles), polling_interval_sec)

    @classmethod
    def enqueue_workflow_with_options(cls, options: Mapping[str, Any], *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue a workflow by name (DBOS's ``EnqueueOptions`` dict); it may be implemented by another process."""
        return enqueue_with_options(current_runtime(), options, args, kwargs)

    @classmethod
    def set_workflow_delay(cls, workflow_id: str, *, delay_seconds: float | None = None,
                           delay_until_epoch_ms: int | None = None) -> None:
        """Move a DELAYED workflow's start time (``delay_seconds`` from now, or an epoch time in ms)."""
        set_workflow_delay(current_runtime(), workflow_id, delay_seconds=delay_seconds,
                           delay_until_epoch_ms=delay_until_epoch_ms)

    @classmethod
    def register_queue(
        cls,
        name: str,
        *,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | None = None,
        limiter: QueueRateLimit | None = None,
        polling_interval_sec: float = 1.0,
        on_conflict: str = "update_if_latest_version",
        concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
    ) -> Queue:
        """Store a queue's limits in the system database (every process serves it); see ``registered_queues.py``.

        ``on_conflict`` decides what happens to an existing row: ``update_if_latest_version`` (replace
        it unless a newer application version runs), ``always_update`` or ``never_update``.
        """
        limits = _filters(locals())
        del limits["name"], limits["on_conflict"]
        return registered_queues.register_queue(current_runtime(), name, on_conflict, **limits)

    @classmethod
    def retrieve_queue(cls, name: str) -> Queue | None:
        """The queue registered under ``name`` in the system database, as stored now; None if there is none."""
        return registered_queues.retrieve_queue(current_runtime(), name)

    @classmethod
    def delete_queue(cls, name: str) -> None:
        """Remove a registered queue; its waiting workflows stay ENQUEUED until it is registered again."""
        registered_queues.delete_queue(current_runtime(), name)

    @classmethod
    def list_queues(cls, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """Every queue registered in the system database (one system database serves one application)."""
        return registered_queues.list_queues(current_runtime())

    @classmethod
    def listen_queues(cls, queues: Sequence[Queue | str]) -> None:
        """Before launch: dequeue only from these queues (Queue objects or names) and the internal one."""
        lifecycle.listen_queues(registered_queues.queue_names(queues))

    @classmethod
    def retrieve_workflow(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle to a workflow by ID; raise if it does not exist (unless ``existing_workflow=False``)."""
        rt = current_runtime()
        if existing_workflow and listing.workflow_status(rt, workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))

    @classmethod
    def get_result(cls, workflow_id: str) -> Any:
        """Wait for a workflow by ID and return its result (or raise its error)."""
        return result_of(current_runtime(), workflow_id)

    @classmethod
    def get_workflow_status(cls, workflow_id: str) -> WorkflowStatus | None:
        return listing.workflow_status(current_runtime(), workflow_id)

    @classmethod
    def list_workflows(cls, **filters: Unpack[WorkflowFilters]) -> list[WorkflowStatus]:
        """Workflows matching every filter given, oldest first (or newest with ``sort_desc``).

        The filters are DBOS 2.31.1's (``listing.WorkflowFilters``); time filters take ISO-8601 strings.
        """
        return listing.list_workflows(current_runtime(), **filters)

    @classmethod
    def list_queued_workflows(cls, **filters: Unpack[QueuedWorkflowFilters]) -> list[WorkflowStatus]:
        """Workflows of queues; without a ``status`` filter, only those still waiting or running."""
        return listing.list_workflows(current_runtime(), **filters, queues_only=True)

    @classmethod
    def list_workflow_steps(
        cls, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """A workflow's recorded steps in order (a page of them with ``limit``/``offset``)."""
        return listing.list_steps(current_runtime(), workflow_id, load_output=load_output, limit=limit, offset=offset)

    # -- sleep, messages and events (messaging.py) ---------------------------------------------------

    @classmethod
    def sleep(cls, seconds: float) -> None:
        """Sleep durably: a workflow records its wake-up time, so after a crash it wakes at that time.

        Outside a workflow (or inside a step) this is ``time.sleep``.
        """
        messaging.sleep(seconds)

    @classmethod
    def send(
        cls, destination_id: str, message: Any, topic: str | None = None, *, idempotency_key: str | None = None
    ) -> None:
        """Send ``message`` to the workflow ``destination_id``; exactly once from a workflow, or per ``idempotency_key``."""
        messaging.send(current_runtime(), destination_id, message, topic, idempotency_key)

    @classmethod
    def recv(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """In a workflow: the oldest message sent to it on ``topic``, waiting up to ``timeout_seconds`` (else None)."""
        return messaging.recv(current_runtime(), topic, timeout_seconds)

    @classmethod
    def set_event(cls, key: str, value: Any) -> None:
        """In a workflow: publish ``value`` under ``key`` for ``get_event`` callers (the latest value wins)."""
        messaging.set_event(current_runtime(), key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The value a workflow set under ``key``, waiting up to ``timeout_seconds`` for it (else None)."""
        return messaging.get_event(current_runtime(), workflow_id, key, timeout_seconds)

    # -- attributes and authentication (attributes.py, auth.py) ---------------------------------------

    @classmethod
    def update_workflow_attributes(cls, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        """Replace a workflow's attributes (None clears them); from a workflow, once, as a step."""
        refuse_in_event_loop("update_workflow_attributes")
        attributes_module.update_workflow_attributes(current_runtime(), workflow_id, attributes)

    @classmethod
    async def update_workflow_attributes_async(cls, workflow_id: str, attributes: dict[str, Any] | None) -> None:
        await asyncio.to_thread(attributes_module.update_workflow_attributes, current_runtime(), workflow_id,
                                attributes)

    @classmethod
    def required_roles(cls, roles: list[str]) -> Callable[[F], F]:
        """Refuse calls unless the authenticated user holds one of ``roles`` (``DBOSNotAuthorizedError``)."""
        return auth.required_roles(roles)

    @classmethod
    def default_required_roles(cls, roles: list[str]) -> Callable[[type[T]], type[T]]:
        """The roles every workflow, step and transaction of the class requires unless it names its own.

        It also registers the class, as ``@DBOS.dbos_class()`` does.
        """
        with_roles = auth.default_required_roles(roles)
        register = decorators.dbos_class()
        return lambda klass: with_roles(register(klass))

    @classproperty
    def authenticated_user(cls) -> str | None:
        found = auth.current_auth()
        return found.user if found else None

    @classproperty
    def authenticated_roles(cls) -> list[str] | None:
        found = auth.current_auth()
        return found.roles if found else None

    @classproperty
    def assumed_role(cls) -> str | None:
        found = auth.current_auth()
        return found.assumed_role if found else None

    # -- patching (patching.py) -----------------------------------------------------------------------

    @classmethod
    def patch(cls, patch_name: str) -> bool:
        """In a workflow: True on the new code path (a marker step is recorded), False when replaying an
        execution that an older deploy started. Needs ``enable_patching=True``."""
        return patching.patch(cls.config, patch_name)

    @classmethod
    def deprecate_patch(cls, patch_name: str) -> bool:
        """True always: the patch's old branch is gone, but markers recorded earlier still replay."""
        return patching.deprecate_patch(cls.config, patch_name)

    # -- cancel, resume, fork (management.py) ---------------------------------------------------------

    @classmethod
    def cancel_workflow(cls, workflow_id: str, *, cancel_children: bool = False) -> None:
        """Cancel a workflow that has not finished: it stops at its next step and is not recovered."""
        management.cancel_workflows(current_runtime(), [workflow_id], cancel_children=cancel_children)

    @classmethod
    def cancel_workflows(cls, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        management.cancel_workflows(current_runtime(), list(workflow_ids), cancel_children=cancel_children)

    @classmethod
    def resume_workflow(cls, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandle[Any]:
        """Run a cancelled, failed or dead-lettered workflow again from its checkpoints, here (or on ``queue_name``)."""
        return management.resume_workflow(current_runtime(), workflow_id, queue_name)

    @classmethod
    def resume_workflows(cls, workflow_ids: list[str], *, queue_name: str | None = None) -> list[WorkflowHandle[Any]]:
        return management.resume_workflows(current_runtime(), list(workflow_ids), queue_name)

    @classmethod
    def fork_workflow(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        replacement_children: Mapping[str, str] | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandle[Any]:
        """Start a copy of a workflow under a new ID that reuses the checkpoints of steps before ``start_step``."""
        options = _filters(locals())
        del options["workflow_id"], options["start_step"]
        return management.fork_workflow(current_runtime(), workflow_id, start_step, **options)

    @classmethod
    def delete_workflow(cls, workflow_id: str, *, delete_children: bool = False) -> None:
        """Delete a workflow and everything recorded for it (with ``delete_children``, its descendants too)."""
        management.delete_workflows(current_runtime(), [workflow_id], delete_children=delete_children)

    @classmethod
    def delete_workflows(cls, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        management.delete_workflows(current_runtime(), list(workflow_ids), delete_children=delete_children)

    # -- what is running now (context.py) -------------------------------------------------------------

    @classproperty
    def workflow_id(cls) -> str | None:
        ctx = current_context()
        return ctx.workflow_id if ctx else None

    @classproperty
    def step_id(cls) -> int | None:
        ctx = current_context()
        return ctx.step_id if ctx and ctx.step_kind else None

    @classproperty
    def request(cls) -> RequestInfo | None:
        ctx = current_context()
        return ctx.request if ctx else None

    @classproperty
    def logger(cls) -> logging.Logger:
        return lifecycle.PACKAGE_LOGGER

    @classproperty
    def executor_id(cls) -> str:
        """This process's executor ID (``host:pid:random``), once launched."""
        return current_runtime().executor_id

    @classproperty
    def application_version(cls) -> str:
        """The version recorded on the workflows this process starts (``application_version``)."""
        return current_runtime().settings.application_version

    @classproperty
    def sql_session(cls) -> Session:
        ctx = current_context()
        if ctx is None or ctx.sql_session is None:
            raise DBOSException("DBOS.sql_session is only available inside a @DBOS.transaction() function")
        return ctx.sql_session

    @classproperty
    def config(cls) -> RuntimeSettings:
        configured = lifecycle.configured()
        if configured is None:
            raise DBOSNotLaunchedError("DBOS is not configured")
        return configured.settings

    @property
    def _sys_db(self) -> SystemDatabase:
        """``dbos._sys_db.engine``: the launched runtime's system database, for a caller's own SQL."""
        return SystemDatabase(current_runtime().sys_engine)


class DBOSConfiguredInstance:
    """Base for classes whose instances hold workflow methods: the config name finds the instance again."""

    def __init__(self, config_name: str) -> None:
        self.config_name = config_name
        DBOS.register_instance(self)
