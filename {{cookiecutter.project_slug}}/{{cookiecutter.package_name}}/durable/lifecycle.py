"""The process lifecycle: configure, launch, destroy, after_fork; every background thread starts and stops here.

``DBOS(config=...)`` configures (nothing connects); the first durable call, the first request, gunicorn's
worker hook or ``DBOS.launch()`` launches. What launch starts, in order, and who owns it:

- the ``Runtime`` (``runtime.py``): engines, stores, the pool of workflow threads;
- ``durable-recovery`` (``recovery.py``): heartbeat, adopt orphans, cancel late workflows, clean-ups;
- ``durable-queues`` (``dequeuer.py``): claim queued workflows within their queues' limits;
- ``durable-scheduler`` (``scheduler.py``): ``@DBOS.scheduled`` ticks and the stored schedules;
- ``durable-admin`` (``admin.py``), when ``run_admin_server``: one process gets the port, the others
  stand by (``durable-admin-standby``) to take it over when it exits;
- OpenTelemetry tracing (``tracing.py``) and, with ``otlp_logs_endpoints``, log export (``otlp_logs.py``),
  when ``enable_otlp``.

The waiters' helpers start on the first wait, not at launch, so a process that never waits holds
nothing for them: ``durable-listener`` (PostgreSQL ``LISTEN``, ``store/listener.py``) and the SQLite
wake-up file watcher (``signal_file.py``); ``Runtime.close`` stops them. ``destroy()`` stops everything
in reverse, draining running workflows before this executor gives up its claim on them.

A new background thread gets ``start()``/``stop()``, a field on ``Lifecycle``, a line in ``launch``
and one in ``destroy``, and nothing to do after a fork (a forked child inherits no threads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flask import Flask

from . import current
from .admin import AdminActions, AdminServer
from .config import RuntimeSettings, log_ignored_keys
from .dequeuer import Dequeuer
from .error import DBOSException, DBOSNotLaunchedError
from .flask import install
from .otlp_logs import disable_otlp_logs, enable_otlp_logs
from .queues import forget_declared_queues
from .recovery import RecoveryLoop
from .registry import REGISTRY
from .runtime import Runtime
from .scheduler import Scheduler
from .tracing import disable_tracing, enable_tracing

# workflow_id, step_id and request_id reach records through context.ContextLogFilter, which the app puts
# on its handlers: a filter on this logger would not run for the records of its child loggers.
PACKAGE_LOGGER = logging.getLogger(__name__.rpartition(".")[0])

_lock = threading.RLock()  # configure, launch and destroy, one at a time
_configured: Lifecycle | None = None


class Lifecycle:
    """One configuration of the runtime in this process, and what its launch started."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.flask_apps: list[Flask] = []
        self.runtime: Runtime | None = None
        self.recovery: RecoveryLoop | None = None
        self.dequeuer: Dequeuer | None = None
        self.scheduler: Scheduler | None = None
        self.admin: AdminServer | None = None
        self.listening: list[str] | None = None  # DBOS.listen_queues, before launch

    def attach_flask(self, app: Flask) -> None:
        """Middleware, response checkpoints and error JSON on ``app``; its app context for background work."""
        install(app, trusted_proxies=self.settings.trusted_proxies)
        if app not in self.flask_apps:
            self.flask_apps.append(app)

    def launch(self) -> Runtime:
        """Build the runtime and start the background work; once (later calls return the runtime)."""
        with _lock:
            if self.runtime is not None:
                return self.runtime
            app = self.flask_apps[0] if self.flask_apps else None
            app_context: Callable[[], AbstractContextManager[Any]] | None = app.app_context if app else None
            rt = Runtime(self.settings, app_context)
            self.runtime = rt
            current.register(self.launch, rt)  # before any thread starts: their workflows read it
            self.recovery = RecoveryLoop(rt)
            self.recovery.start()
            self.dequeuer = Dequeuer(rt, self.listening)
            self.dequeuer.start()
            self.scheduler = Scheduler(rt)  # follows @DBOS.scheduled and the stored schedules
            self.scheduler.start()
            if self.settings.run_admin_server:
                self.admin = _admin_server(self, rt, self.settings)
            if self.settings.enable_otlp:
                enable_tracing(self.settings)
                enable_otlp_logs(self.settings)  # when otlp_logs_endpoints are set
            PACKAGE_LOGGER.info("durable runtime launched as executor %s", rt.executor_id)
            log_ignored_keys(self.settings, PACKAGE_LOGGER)
            return rt

    def open_for_operator(self) -> Runtime:
        """The runtime with no background thread at all, for an operator's command (``flask workflow ...``).

        Nothing here heartbeats, adopts, dequeues or schedules, so an operator's shell never takes work
        from the service; what it resumes, forks or recovers is handed to the service's queues
        (``Runtime.runs_workflows``). A later ``launch()`` returns this same runtime.
        """
        with _lock:
            if self.runtime is not None:
                return self.runtime
            app = self.flask_apps[0] if self.flask_apps else None
            rt = Runtime(self.settings, app.app_context if app else None, runs_workflows=False)
            self.runtime = rt
            current.register(self.launch, rt)
            return rt

    def deactivate(self) -> None:
        """Stop starting scheduled workflows here (the admin ``/deactivate``); running work goes on."""
        with _lock:
            scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            scheduler.stop()
            PACKAGE_LOGGER.info("deactivated: this process starts no more scheduled workflows")

    def stop(self, workflow_completion_timeout_sec: float) -> None:
        """Stop the background work; unfinished workflows become free for other executors to adopt."""
        if self.admin is not None:
            self.admin.stop()
        if self.dequeuer is not None:
            self.dequeuer.stop()
        # Drain first, release last: another executor must not adopt workflows still running here.
        if self.recovery is not None:
            self.recovery.stop()  # sets rt.stopping: waits in sleep/recv and the scheduler wake up
        if self.scheduler is not None:
            self.scheduler.stop()  # enqueues nothing after the engines close
        rt = self.runtime
        if rt is not None:
            left = rt.drain(workflow_completion_timeout_sec)
            rt.flush_held()  # steps the runs still here finished stay recorded: the next owner does not re-run them
            if left:
                PACKAGE_LOGGER.warning("%d workflow(s) still running at shutdown; other executors adopt them", left)
        if self.recovery is not None:
            self.recovery.release()
        if rt is not None:
            rt.close()  # engines, the LISTEN thread, the wake-up file watcher
        if self.settings.enable_otlp:
            disable_otlp_logs()  # flush what is batched
            disable_tracing()

    def forget_after_fork(self) -> None:
        """In a forked worker: forget the connections and threads inherited from a preloading master."""
        if self.runtime is None:
            return
        self.runtime.forget_after_fork()
        self.runtime = self.recovery = self.dequeuer = self.scheduler = None
        self.admin = None  # the master's listening socket is the master's
        current.register(self.launch, None)


def configure(settings: RuntimeSettings, flask: Flask | None = None) -> Lifecycle:
    """The process's one configuration (``DBOS(config=...)``); a different one needs ``destroy()`` first."""
    global _configured
    with _lock:
        if _configured is None:
            _configured = Lifecycle(settings)
            PACKAGE_LOGGER.setLevel(settings.log_level)
            current.register(_configured.launch, None)
        elif _configured.settings != settings:
            raise DBOSException(
                "DBOS is already configured with other settings in this process; "
                "call DBOS.destroy() before configuring it again"
            )
        if flask is not None:
            _configured.attach_flask(flask)
        return _configured


def listen_queues(names: list[str]) -> None:
    """``DBOS.listen_queues``: this process dequeues only from these queues (and the internal one)."""
    with _lock:
        lifecycle = _configured
        if lifecycle is None:
            raise DBOSException("call DBOS(config=...) before DBOS.listen_queues")
        if lifecycle.runtime is not None:
            raise DBOSException("listen_queues called after DBOS is launched")
        if lifecycle.listening is not None:
            raise DBOSException("listen_queues called more than once")
        lifecycle.listening = list(names)


def configured() -> Lifecycle | None:
    return _configured


def open_for_operator() -> Runtime:
    """The configured runtime opened for an operator (``Lifecycle.open_for_operator``)."""
    lifecycle = _configured
    if lifecycle is None:
        raise DBOSNotLaunchedError("DBOS is not configured: the app must create DBOS(config=..., flask=app)")
    return lifecycle.open_for_operator()


def launch() -> None:
    """Launch the configured runtime, if there is one and it is not launched (``DBOS.launch()``)."""
    lifecycle = _configured
    if lifecycle is not None and lifecycle.runtime is None:
        lifecycle.launch()


def destroy(*, destroy_registry: bool = False, workflow_completion_timeout_sec: float = 0) -> None:
    """Stop and forget this process's runtime (``DBOS.destroy()``)."""
    global _configured
    with _lock:
        lifecycle, _configured = _configured, None
        current.register(None, None)
    if lifecycle is not None:
        lifecycle.stop(workflow_completion_timeout_sec)
        if destroy_registry:
            REGISTRY.__init__()  # type: ignore[misc]
            forget_declared_queues()


def after_fork() -> None:
    """In a forked worker (``DBOS.after_fork()``, gunicorn's ``post_fork``)."""
    lifecycle = _configured
    if lifecycle is not None:
        lifecycle.forget_after_fork()


def admin_actions(rt: Runtime, lifecycle: Lifecycle | None = None) -> AdminActions:
    """What the admin endpoints may do with this runtime; deactivating stops ``lifecycle``'s schedules."""
    return AdminActions(rt, deactivate=lifecycle.deactivate if lifecycle is not None else lambda: None)


def _admin_server(lifecycle: Lifecycle, rt: Runtime, settings: RuntimeSettings) -> AdminServer:
    """The admin server: this process serves the port if it gets it, else stands by to take it over."""
    server = AdminServer(admin_actions(rt, lifecycle), settings.admin_port, settings.admin_host,
                         token=settings.admin_token, allowed_hosts=settings.admin_allowed_hosts)
    server.start(standby=True)
    return server
