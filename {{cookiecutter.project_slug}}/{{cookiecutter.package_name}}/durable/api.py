"""The ``DBOS`` class: decorators and class methods with DBOS Transact's names. No SQL, no threads.

``DBOS(config=..., flask=app)`` creates the process-wide instance; nothing connects until
``DBOS.launch()``, which gunicorn's worker hook, the first request, or the first durable call runs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import management, messaging, patching
from .admin import AdminActions, AdminServer
from .config import DBOSConfig, RuntimeSettings, resolve_config
from .context import ContextLogFilter, RequestInfo, current_context
from .dequeuer import Dequeuer
from .error import DBOSException, DBOSNonExistentWorkflowError, DBOSNotLaunchedError
from .executor import call_workflow, run_step, start_workflow
from .handles import StepInfo, WorkflowHandle, WorkflowStatus, step_info
from .queues import (
    INTERNAL_QUEUE_NAME,
    QUEUES,
    Queue,
    QueueRateLimit,
    enqueue_workflow,
    find_queue,
    open_transaction,
    queue_settings,
    register_queue,
)
from .recovery import RecoveryLoop, recover_executors, recover_orphans
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime
from .step_timeouts import check_timeout
from .transactions import run_transaction

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

PACKAGE_LOGGER = logging.getLogger(__name__.rpartition(".")[0])
PACKAGE_LOGGER.addFilter(ContextLogFilter())

_instance: DBOS | None = None
_instance_lock = threading.RLock()


class classproperty(Generic[T]):  # noqa: N801 - reads as a property, as in DBOS
    """A read-only property of the class itself (``DBOS.workflow_id``)."""

    def __init__(self, getter: Callable[[Any], T]) -> None:
        self.getter = getter

    def __get__(self, _obj: Any, owner: Any) -> T:
        return self.getter(owner)


def _info_of(func: Callable[..., Any]) -> tuple[FunctionInfo, tuple[Any, ...]]:
    """The registered workflow behind ``func`` (a bound method passes its ``self`` along)."""
    bound: tuple[Any, ...] = ()
    target = func
    if hasattr(func, "__self__") and hasattr(func, "__func__"):
        bound, target = (func.__self__,), func.__func__
    info: FunctionInfo | None = getattr(target, "__durable_info__", None)
    if info is None:
        raise DBOSException(f"{getattr(func, '__qualname__', func)!r} is not a @DBOS.workflow() function")
    if info.kind == "transaction":
        info = target.__durable_temp_workflow__  # type: ignore[attr-defined]
    return info, bound


def _runtime() -> Runtime:
    """The launched runtime, launching it on first use."""
    instance = _instance
    if instance is None:
        raise DBOSNotLaunchedError(
            "DBOS is not configured: create it with DBOS(config=DBOSConfig(name=...)) before running workflows"
        )
    runtime = instance._runtime
    return runtime if runtime is not None else instance._launch()


class DBOS:
    """Durable workflows, steps and transactions, with DBOS Transact's Python API."""

    settings: RuntimeSettings
    _runtime: Runtime | None
    _recovery: RecoveryLoop | None
    _dequeuer: Dequeuer | None
    _flask_apps: list[Flask]
    _admin: AdminServer | None

    def __new__(cls, *, config: DBOSConfig, flask: Flask | None = None, **_ignored: Any) -> DBOS:
        global _instance
        with _instance_lock:
            settings = resolve_config(config)
            if _instance is not None:
                if _instance.settings != settings:
                    raise DBOSException(
                        "DBOS is already configured with other settings in this process; "
                        "call DBOS.destroy() before configuring it again"
                    )
            else:
                instance = super().__new__(cls)
                instance.settings = settings
                instance._runtime = None
                instance._recovery = None
                instance._dequeuer = None
                instance._flask_apps = []
                instance._admin = None
                PACKAGE_LOGGER.setLevel(settings.log_level)
                _instance = instance
            if flask is not None:
                _instance._attach_flask(flask)
            return _instance

    def __init__(self, *, config: DBOSConfig, flask: Flask | None = None, **_ignored: Any) -> None:
        """All set-up happens in ``__new__``, which returns the one instance."""

    def _attach_flask(self, app: Flask) -> None:
        from .flask import install

        install(app, trusted_proxies=self.settings.trusted_proxies, runtime=_runtime)
        if app not in self._flask_apps:
            self._flask_apps.append(app)

    def _launch(self) -> Runtime:
        with _instance_lock:
            if self._runtime is not None:
                return self._runtime
            app = self._flask_apps[0] if self._flask_apps else None
            runtime = Runtime(self.settings, app.app_context if app is not None else None)
            recovery = RecoveryLoop(runtime)
            self._runtime = runtime
            self._recovery = recovery
            recovery.start()
            self._dequeuer = Dequeuer(runtime)
            self._dequeuer.start()
            if REGISTRY.schedules:
                from .scheduler import Scheduler

                runtime.scheduler = Scheduler(runtime, REGISTRY.schedules)
                runtime.scheduler.start()
            if self.settings.run_admin_server:
                self._admin = _admin_server(self.settings.admin_port)
            if self.settings.enable_otlp:
                from .tracing import enable_tracing

                enable_tracing(self.settings)
            PACKAGE_LOGGER.info("durable runtime launched as executor %s", runtime.executor_id)
            return runtime

    # -- lifecycle ------------------------------------------------------------------------------------

    @classmethod
    def init_app(cls, app: Flask) -> None:
        """Attach an app to a runtime configured earlier with ``DBOS(config=...)`` (the extension pattern)."""
        instance = _instance
        if instance is None:
            raise DBOSNotLaunchedError("call DBOS(config=DBOSConfig(...)) before DBOS.init_app(app)")
        instance._attach_flask(app)

    @classmethod
    def launch(cls) -> None:
        """Connect, prepare the system tables and start recovery. Safe to call more than once."""
        _ensure_launched()

    @classmethod
    def destroy(cls, *, destroy_registry: bool = False, workflow_completion_timeout_sec: float = 0) -> None:
        """Stop this process's runtime; its unfinished workflows become free for others to adopt."""
        global _instance
        with _instance_lock:
            instance, _instance = _instance, None
        if instance is None:
            return
        if instance._admin is not None:
            instance._admin.stop()
        if instance._dequeuer is not None:
            instance._dequeuer.stop()
        # Drain first, release last: another executor must not adopt workflows still running here.
        if instance._recovery is not None:
            instance._recovery.stop()
        if instance._runtime is not None:
            left = instance._runtime.drain(workflow_completion_timeout_sec)
            if left:
                PACKAGE_LOGGER.warning("%d workflow(s) still running at shutdown; other executors adopt them", left)
        if instance._recovery is not None:
            instance._recovery.release()
        if instance._runtime is not None:
            instance._runtime.close()
        if destroy_registry:
            REGISTRY.__init__()  # type: ignore[misc]

    @classmethod
    def after_fork(cls) -> None:
        """In a forked worker: forget connections and threads inherited from a preloading master."""
        instance = _instance
        if instance is not None and instance._runtime is not None:
            instance._runtime.forget_after_fork()
            instance._runtime = None
            instance._recovery = None
            instance._dequeuer = None
            instance._admin = None  # the master's listening socket is the master's

    @classmethod
    def recover_executors(cls, executor_ids: list[str]) -> list[WorkflowHandle[Any]]:
        """Adopt the unfinished workflows of executors known to be dead, now; return their handles."""
        rt = _runtime()
        return [WorkflowHandle(rt, workflow_id) for workflow_id in recover_executors(rt, executor_ids)]

    @classmethod
    def recover_pending_workflows(cls) -> int:
        """Adopt and restart orphaned workflows now, instead of at the next sweep; return how many."""
        return recover_orphans(_runtime())

    # -- decorators -----------------------------------------------------------------------------------

    @classmethod
    def workflow(
        cls, *, name: str | None = None, max_recovery_attempts: int | None = None, version: str | None = None
    ) -> Callable[[F], F]:
        """Make a function a durable workflow: its steps are checkpointed and it resumes after a crash.

        ``version`` marks the code explicitly: bump it when the sequence of steps changes, and keep
        the old version registered (same ``name``) until the workflows it started have finished.
        """

        def decorator(func: F) -> F:
            info = FunctionInfo(name or func.__qualname__, func, "workflow",
                                {"max_recovery_attempts": max_recovery_attempts}, version=version or "")
            REGISTRY.add_workflow(info)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return call_workflow(_runtime(), info, args, kwargs)

            info.wrapper = wrapper
            wrapper.__durable_info__ = info  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

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

        def decorator(func: F) -> F:
            step_name = name or func.__qualname__
            check_timeout(step_name, timeout_seconds)
            info = FunctionInfo(step_name, func, "step", {
                "retries_allowed": retries_allowed, "interval_seconds": interval_seconds,
                "max_attempts": max_attempts, "backoff_rate": backoff_rate,
                "should_retry": should_retry, "timeout_seconds": timeout_seconds,
            })

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = current_context()
                if ctx is None or ctx.workflow is None or ctx.step_kind is not None:
                    return func(*args, **kwargs)  # outside a workflow a step is a plain call, as in DBOS
                return run_step(_runtime(), info, func, args, kwargs)

            info.wrapper = wrapper
            wrapper.__durable_info__ = info  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    @classmethod
    def transaction(cls, isolation_level: str = "SERIALIZABLE", *, name: str | None = None) -> Callable[[F], F]:
        """Make a function a transaction: its writes and its checkpoint commit together, exactly once."""

        def decorator(func: F) -> F:
            txn_name = name or func.__qualname__
            info = FunctionInfo(txn_name, func, "transaction", {"isolation_level": isolation_level})

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = current_context()
                if ctx is not None and ctx.workflow is not None:
                    return run_transaction(_runtime(), info, func, args, kwargs)
                # Outside a workflow, DBOS runs a transaction as a one-step workflow of its own.
                return call_workflow(_runtime(), temp_info, args, kwargs)

            def temp_workflow(*args: Any, **kwargs: Any) -> Any:
                return wrapper(*args, **kwargs)

            temp_info = FunctionInfo(f"<temp>.{txn_name}", temp_workflow, "workflow")
            REGISTRY.add_workflow(temp_info)
            info.wrapper = wrapper
            wrapper.__durable_info__ = info  # type: ignore[attr-defined]
            wrapper.__durable_temp_workflow__ = temp_info  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    @classmethod
    def scheduled(cls, cron: str) -> Callable[[F], F]:
        """Run a workflow once per tick of ``cron`` across all processes (six fields, seconds first; or five).

        Stack it above ``@DBOS.workflow()``; the workflow takes ``(scheduled_time, actual_time)``.
        """
        from .scheduler import declare_schedule  # on use: a project without schedules never loads it

        def decorator(func: F) -> F:
            declare_schedule(func, cron)
            return func

        return decorator

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[type[T]], type[T]]:
        """Register a class whose methods are workflows, so recovery can find them again."""

        def decorator(klass: type[T]) -> type[T]:
            REGISTRY.add_class(klass)
            for attr in vars(klass).values():
                if isinstance(attr, classmethod):
                    func, kind = attr.__func__, "class"
                elif isinstance(attr, staticmethod):
                    func, kind = attr.__func__, "static"
                elif callable(attr):
                    func, kind = attr, "instance"
                else:
                    continue
                info: FunctionInfo | None = getattr(func, "__durable_info__", None)
                if info is not None:
                    info.class_name = klass.__qualname__
                    info.method_kind = kind
            return klass

        return decorator

    @classmethod
    def register_instance(cls, instance: Any) -> None:
        """Register a configured instance (``DBOSConfiguredInstance`` does this in its constructor)."""
        REGISTRY.add_instance(instance)

    # -- starting and inspecting workflows -----------------------------------------------------------

    @classmethod
    def start_workflow(cls, func: Callable[..., T], *args: Any, **kwargs: Any) -> WorkflowHandle[T]:
        """Start a workflow in the background; its row is durable before this returns.

        Inside an open transaction it is enqueued through that transaction instead, so it starts
        only if the transaction commits.
        """
        if open_transaction(current_context()) is not None:
            return cls.enqueue_workflow(INTERNAL_QUEUE_NAME, func, *args, **kwargs)
        info, bound = _info_of(func)
        rt = _runtime()
        workflow_id, future = start_workflow(rt, info, (*bound, *args), kwargs)
        return WorkflowHandle(rt, workflow_id, future)

    @classmethod
    def enqueue_workflow(cls, queue_name: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> WorkflowHandle[T]:
        """Enqueue a workflow on a declared ``Queue``; its row is durable (ENQUEUED) before this returns."""
        queue = find_queue(queue_name)
        info, bound = _info_of(func)
        rt = _runtime()
        workflow_id = enqueue_workflow(rt, queue, info, (*bound, *args), kwargs)
        with rt.running_lock:
            future = rt.running.get(workflow_id)
        return WorkflowHandle(rt, workflow_id, future)

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
        """Declare a queue in this process, or give a declared one these limits (DBOS 2.31's spelling).

        Every process declares its queues from the same code, so the limits live with the code, not
        in a table: ``on_conflict="never_update"`` keeps a declared queue's limits; the other modes
        replace them.
        """
        if on_conflict not in ("update_if_latest_version", "always_update", "never_update"):
            raise ValueError(f"on_conflict must be 'update_if_latest_version', 'always_update' or 'never_update', "
                             f"got {on_conflict!r}")
        settings = queue_settings(
            name, concurrency=concurrency, global_concurrency=global_concurrency,
            worker_concurrency=worker_concurrency, limiter=limiter, partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency, partition_limiter=partition_limiter,
            partition_queue=partition_queue, polling_interval_sec=polling_interval_sec,
        )
        return register_queue(name, settings, update=on_conflict != "never_update")

    @classmethod
    def retrieve_queue(cls, name: str) -> Queue | None:
        """The queue declared under ``name`` in this process, if any."""
        return QUEUES.get(name)

    @classmethod
    def retrieve_workflow(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle to a workflow by ID; raise if it does not exist (unless ``existing_workflow=False``)."""
        rt = _runtime()
        if existing_workflow and rt.checkpoint_store.get_workflow(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("workflow", workflow_id)
        with rt.running_lock:
            future = rt.running.get(workflow_id)
        return WorkflowHandle(rt, workflow_id, future)

    @classmethod
    def get_workflow_status(cls, workflow_id: str) -> WorkflowStatus | None:
        rt = _runtime()
        row = rt.checkpoint_store.get_workflow(workflow_id)
        return WorkflowStatus.from_row(rt, row) if row is not None else None

    @classmethod
    def list_workflows(
        cls,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        executor_id: str | list[str] | None = None,
        workflow_id_prefix: str | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        load_input: bool = True,
        load_output: bool = True,
    ) -> list[WorkflowStatus]:
        """Workflows matching every filter given, oldest first (or newest with ``sort_desc``)."""
        return _list_workflows(locals(), queues_only=False)

    @classmethod
    def list_queued_workflows(
        cls,
        *,
        workflow_ids: list[str] | None = None,
        status: str | list[str] | None = None,
        start_time: str | None = None,
        end_time: str | None = None,
        name: str | list[str] | None = None,
        app_version: str | list[str] | None = None,
        executor_id: str | list[str] | None = None,
        workflow_id_prefix: str | None = None,
        queue_name: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_desc: bool = False,
        load_input: bool = True,
        load_output: bool = True,
    ) -> list[WorkflowStatus]:
        """Workflows of queues; without a ``status`` filter, only those still waiting or running."""
        return _list_workflows(locals(), queues_only=True)

    @classmethod
    def list_workflow_steps(cls, workflow_id: str) -> list[StepInfo]:
        rt = _runtime()
        return [step_info(rt, record) for record in rt.checkpoint_store.load_steps(workflow_id).values()]

    # -- sleep, messages and events (messaging.py) ---------------------------------------------------

    @classmethod
    def sleep(cls, seconds: float) -> None:
        """Sleep durably: a workflow records its wake-up time, so after a crash it wakes at that time.

        Outside a workflow (or inside a step) this is ``time.sleep``.
        """
        ctx = current_context()
        in_workflow = ctx is not None and ctx.workflow is not None and ctx.step_kind is None
        messaging.sleep(_runtime() if in_workflow else None, seconds)

    @classmethod
    def send(
        cls, destination_id: str, message: Any, topic: str | None = None, *, idempotency_key: str | None = None
    ) -> None:
        """Send ``message`` to the workflow ``destination_id``; exactly once from a workflow, or per ``idempotency_key``."""
        messaging.send(_runtime(), destination_id, message, topic, idempotency_key)

    @classmethod
    def recv(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """In a workflow: the oldest message sent to it on ``topic``, waiting up to ``timeout_seconds`` (else None)."""
        return messaging.recv(_runtime(), topic, timeout_seconds)

    @classmethod
    def set_event(cls, key: str, value: Any) -> None:
        """In a workflow: publish ``value`` under ``key`` for ``get_event`` callers (the latest value wins)."""
        messaging.set_event(_runtime(), key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The value a workflow set under ``key``, waiting up to ``timeout_seconds`` for it (else None)."""
        return messaging.get_event(_runtime(), workflow_id, key, timeout_seconds)

    # -- patching (patching.py) -----------------------------------------------------------------------

    @classmethod
    def patch(cls, patch_name: str) -> bool:
        """In a workflow: True on the new code path (a marker step is recorded), False when replaying an
        execution that an older deploy started. Needs ``enable_patching=True``."""
        return patching.patch(cls.config, _runtime, patch_name)

    @classmethod
    def deprecate_patch(cls, patch_name: str) -> bool:
        """True always: the patch's old branch is gone, but markers recorded earlier still replay."""
        return patching.deprecate_patch(cls.config, patch_name)

    # -- cancel, resume, fork (management.py) ---------------------------------------------------------

    @classmethod
    def cancel_workflow(cls, workflow_id: str, *, cancel_children: bool = False) -> None:
        """Cancel a workflow that has not finished: it stops at its next step and is not recovered."""
        management.cancel_workflows(_runtime(), [workflow_id], cancel_children=cancel_children)

    @classmethod
    def cancel_workflows(cls, workflow_ids: list[str], *, cancel_children: bool = False) -> None:
        management.cancel_workflows(_runtime(), list(workflow_ids), cancel_children=cancel_children)

    @classmethod
    def resume_workflow(cls, workflow_id: str) -> WorkflowHandle[Any]:
        """Run a cancelled, failed or dead-lettered workflow again from its checkpoints, in this process."""
        return management.resume_workflow(_runtime(), workflow_id)

    @classmethod
    def fork_workflow(
        cls, workflow_id: str, start_step: int, *, application_version: str | None = None
    ) -> WorkflowHandle[Any]:
        """Start a copy of a workflow under a new ID that reuses the checkpoints of steps before ``start_step``."""
        return management.fork_workflow(_runtime(), workflow_id, start_step, application_version)

    # -- what is running now --------------------------------------------------------------------------

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
        return PACKAGE_LOGGER

    @classproperty
    def executor_id(cls) -> str:
        """This process's executor ID (``host:pid:random``), once launched."""
        return _runtime().executor_id

    @classproperty
    def application_version(cls) -> str:
        """The version recorded on the workflows this process starts (``application_version``)."""
        return _runtime().settings.application_version

    @classproperty
    def sql_session(cls) -> Session:
        ctx = current_context()
        if ctx is None or ctx.sql_session is None:
            raise DBOSException("DBOS.sql_session is only available inside a @DBOS.transaction() function")
        return ctx.sql_session

    @classproperty
    def config(cls) -> RuntimeSettings:
        if _instance is None:
            raise DBOSNotLaunchedError("DBOS is not configured")
        return _instance.settings


class DBOSConfiguredInstance:
    """Base for classes whose instances hold workflow methods: the config name finds the instance again."""

    def __init__(self, config_name: str) -> None:
        self.config_name = config_name
        DBOS.register_instance(self)


def _admin_server(port: int) -> AdminServer | None:
    """Start the admin server if this process gets the port (one gunicorn worker does)."""
    actions = AdminActions(
        recover_executors=lambda ids: [h.workflow_id for h in DBOS.recover_executors(ids)],
        list_workflows=DBOS.list_workflows,
        get_workflow=DBOS.get_workflow_status,
        list_steps=DBOS.list_workflow_steps,
    )
    server = AdminServer(actions, port)
    return server if server.start() else None


def _ensure_launched() -> None:
    instance = _instance
    if instance is not None and instance._runtime is None:
        instance._launch()


def _list_workflows(filters: dict[str, Any], *, queues_only: bool) -> list[WorkflowStatus]:
    rt = _runtime()
    status = _as_list(filters["status"])
    if queues_only and status is None:
        status = ["ENQUEUED", "PENDING"]
    rows = rt.checkpoint_store.list_workflows(
        workflow_ids=filters["workflow_ids"],
        status=status,
        name=_as_list(filters["name"]),
        app_version=_as_list(filters["app_version"]),
        executor_id=_as_list(filters["executor_id"]),
        queue_name=_as_list(filters["queue_name"]),
        queues_only=queues_only,
        start_time_ms=_epoch_ms(filters["start_time"]),
        end_time_ms=_epoch_ms(filters["end_time"]),
        workflow_id_prefix=filters["workflow_id_prefix"],
        limit=filters["limit"],
        offset=filters["offset"],
        sort_desc=filters["sort_desc"],
    )
    load_input, load_output = filters["load_input"], filters["load_output"]
    return [WorkflowStatus.from_row(rt, r, load_input=load_input, load_output=load_output) for r in rows]


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _epoch_ms(value: str | None) -> int | None:
    """DBOS takes ISO-8601 timestamps for time filters."""
    if value is None:
        return None
    from datetime import datetime

    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
