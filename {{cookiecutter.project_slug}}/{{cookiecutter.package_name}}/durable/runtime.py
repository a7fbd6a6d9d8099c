"""The launched runtime: engines, stores, codec, executor identity, and the pool that runs workflows.

Nothing here exists at import or at ``DBOS(...)``: ``lifecycle.py`` builds it at launch, so a gunicorn
master that preloads the app forks workers holding no connections and no threads. The background
threads that use it (recovery, queues, schedules, admin) belong to ``lifecycle.py`` too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa

from .config import RuntimeSettings
from .context import current_context
from .error import DBOSBaseException, DBOSException, DBOSInitializationError, DBOSNotLaunchedError
from .leadership import Leadership
from .schema import SCHEMA_VERSION, current_version, upgrade_system_schema
from .serialization import Codec
from .store.base import PendingRow, now_ms
from .store.checkpoint_store import CheckpointStore
from .store.database import Database
from .store.dialects import create_postgres_database, create_sqlite_engine, dialect_for, process_identity
from .store.held_steps import HeldSteps
from .store.idempotency_store import IdempotencyStore
from .store.listing_store import ListingStore
from .store.management_store import ManagementStore
from .store.messaging_store import MessagingStore
from .store.operations_store import OperationsStore
from .store.queue_store import QueueStore
from .store.schedule_store import ScheduleStore
from .store.stream_store import StreamStore
from .tracing import carry
from .wakeups import Wakeups

logger = logging.getLogger(__name__)


def make_executor_id(hostname: str, pid: int) -> str:
    """Unique per process start: host, pid and a random suffix (a pid is reused across restarts)."""
    return f"{hostname}:{pid}:{uuid.uuid4().hex[:8]}"


class SystemDatabase:
    """``_sys_db``, as DBOS's ``DBOS`` and ``DBOSClient`` have it: the system database's ``engine``, for a
    caller's own SQL (a client's transactions around ``enqueue_in_transaction``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine


#: ``@DBOS.transaction``'s isolation level on PostgreSQL when it names none, as in DBOS.
DEFAULT_TRANSACTION_ISOLATION = "SERIALIZABLE"


def create_app_engine(url: str, **kwargs: Any) -> sa.Engine:
    """The engine ``@DBOS.transaction`` sessions use; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        return create_sqlite_engine(url, **kwargs)
    options: dict[str, Any] = {"pool_size": 20, "max_overflow": 20}
    options.update(kwargs)
    return sa.create_engine(url, **options)


def sqlite_signal_path(url: str) -> str | None:
    """The wake-up file beside a SQLite database file (``signal_file.py``); None for PostgreSQL or memory."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return parsed.database + "-wake"


class Runtime:
    """Everything ``launch()`` builds and ``destroy()`` tears down."""

    def __init__(self, settings: RuntimeSettings, app_context: Callable[[], AbstractContextManager[Any]] | None,
                 *, runs_workflows: bool = True) -> None:
        self.settings = settings
        # False in an operator's process (``flask workflow ...``, lifecycle.open_for_operator): a workflow
        # it resumes, forks or recovers is handed to the service's queues instead of running here.
        self.runs_workflows = runs_workflows
        self.app_context = app_context or nullcontext
        self.codec = Codec(max_bytes=settings.max_checkpoint_bytes, allow_pickle=settings.allow_pickle,
                           serializer=settings.serializer)
        hostname, pid = process_identity()
        self.hostname, self.pid = hostname, pid
        self.executor_id = settings.executor_id or make_executor_id(hostname, pid)
        self.sys_dialect = dialect_for(settings.sys_db_url, settings.pg_schema)
        self.sys_engine = self.new_sys_engine(settings.pool_size)
        app_engine_kwargs = dict(settings.engine_kwargs)
        self.app_isolation: str | None = None  # the app engine's own level: a transaction at it sets none
        user_level = "isolation_level" in app_engine_kwargs or "isolation_level" in app_engine_kwargs.get(
            "execution_options", {})
        if sa.make_url(settings.app_db_url).get_backend_name() == "postgresql" and not user_level:
            # Set once per connection, where setting it on each transaction's connection costs a reset
            # at every check-in too. A transaction that names another level still sets its own; with a
            # level in db_engine_kwargs, every transaction sets its own, as before.
            app_engine_kwargs["isolation_level"] = DEFAULT_TRANSACTION_ISOLATION
            self.app_isolation = DEFAULT_TRANSACTION_ISOLATION
        self.app_engine = create_app_engine(settings.app_db_url, **app_engine_kwargs)
        self._prepare_schema(self.sys_engine)
        self.sys_db = Database(self.sys_engine, self.sys_dialect)
        # The same database through connections whose commits skip the flush: idempotency keys, and the
        # rows of some new workflows (row_flush.py); later flushed commits make them durable.
        self.sys_db_unflushed = self._unflushed_sys_db(settings.pool_size) or self.sys_db
        self.checkpoint_store = CheckpointStore(self.sys_db, self.sys_db_unflushed)
        # The recovery loop's own connections: its heartbeat and its adoption batches never queue behind the
        # workflow threads for the shared pool (64 threads, 40 connections while recovering thousands).
        self.sweep_store = CheckpointStore(Database(self.new_sys_engine(1), self.sys_dialect))
        self.idempotency_store = IdempotencyStore(self.sys_db, self.sys_db_unflushed)
        self.messaging_store = MessagingStore(self.sys_db, self.checkpoint_store)
        self.management_store = ManagementStore(self.sys_db)
        self.listing_store = ListingStore(self.sys_db)
        self.queue_store = QueueStore(self.sys_db)
        self.schedule_store = ScheduleStore(self.sys_db)
        self.operations_store = OperationsStore(self.sys_db)
        self.stream_store = StreamStore(self.sys_db, self.checkpoint_store)
        self.leadership = Leadership(self.sys_engine)
        # Set by an enqueue in this process: the queue thread claims at once.
        self.queue_wakeup = threading.Event()
        # Set when a schedule changes in this process: the scheduler thread re-reads the schedules at once.
        self.schedule_wakeup = threading.Event()
        # Threads waiting in recv/get_event/sleep; on PostgreSQL one LISTEN connection, opened on first wait.
        listen = self.sys_dialect.name == "postgresql" and settings.use_listen_notify
        self.wakeups = Wakeups(settings.sys_db_url if listen else None, sqlite_signal_path(settings.sys_db_url),
                               poll_sec=settings.notification_poll_sec)
        # With a separate system database, transactions checkpoint into the application database
        # (same commit as their writes) and the runtime copies the row to the system database.
        self.app_checkpoint_store: CheckpointStore | None = None
        if not settings.shares_database:
            self._prepare_schema(self.app_engine)
            app_dialect = dialect_for(settings.app_db_url, settings.pg_schema)
            self.app_checkpoint_store = CheckpointStore(Database(
                app_dialect.create_engine(settings.app_db_url, pool_size=4, autocommit=True), app_dialect))
        # Threads that run background workflows (start_workflow, queues and recovery) in this process.
        self.pool = ThreadPoolExecutor(max_workers=settings.max_executor_threads,
                                       thread_name_prefix="durable-workflow")
        # Workflows running in this process, so a duplicate start waits instead of running twice.
        self.running: dict[str, Future[Any]] = {}
        self.running_lock = threading.Lock()
        # Workflows cancelled from this process: ID -> the fencing generation cancelled. Their runs here
        # stop before their next step, not after it (``steps.replay_step``); a resume bumps the generation.
        self.cancelled: dict[str, int] = {}
        # Workflow name -> whether its last new run here began with a transaction (row_flush.py).
        self.begins_with_transaction: dict[str, bool] = {}
        # Runs whose step checkpoints wait for their next commit (held_steps.py), so a reader on another
        # thread, a cancel or shutdown can write them first.
        self.held: dict[str, HeldSteps] = {}
        # New runs here whose row waits for their first transaction to carry it (row_flush.py): a reader
        # here that asks for one of them, a cancel or shutdown writes it first.
        self.pending_rows: dict[str, PendingRow] = {}
        # Idempotency keys whose request this process is serving right now.
        self.serving_keys: set[str] = set()
        self.stopping = threading.Event()

    def new_sys_engine(self, pool_size: int) -> sa.Engine:
        """An autocommit engine on the system database: the configured ``system_database_engine``'s pool, or a new one."""
        given = self.settings.system_database_engine
        if given is not None:
            return self.sys_dialect.adopt_engine(given)
        return self.sys_dialect.create_engine(self.settings.sys_db_url, pool_size=pool_size, autocommit=True)

    def _unflushed_sys_db(self, pool_size: int) -> Database | None:
        """The system database through connections whose commits skip the flush (idempotency keys), or None
        when the user handed in the engine: it is theirs to configure."""
        if self.settings.system_database_engine is not None:
            return None
        return Database(self.sys_dialect.create_unflushed_engine(self.settings.sys_db_url, pool_size=pool_size),
                        self.sys_dialect)

    def alive_since_ms(self) -> int:
        """Executors whose heartbeat is older than this (epoch ms) are dead."""
        return now_ms() - int(self.settings.executor_timeout_sec * 1000)

    def future_of(self, workflow_id: str) -> Future[Any] | None:
        """The in-process future of a workflow running here, if it runs here."""
        with self.running_lock:
            return self.running.get(workflow_id)

    def _prepare_schema(self, engine: sa.Engine) -> None:
        """Create or check the system tables, as ``run_migrations`` says."""
        url = engine.url.render_as_string(hide_password=False)
        if self.settings.run_migrations and engine.dialect.name == "postgresql":
            try:  # DBOS creates a missing database at launch (one probe; a refusal is reported below)
                with engine.connect():
                    pass
            except sa.exc.OperationalError as exc:
                if "does not exist" in str(exc.orig):
                    with contextlib.suppress(sa.exc.DBAPIError):  # no right to create it: reported below
                        create_postgres_database(url)
        try:
            if self.settings.run_migrations:
                with engine.connect() as conn:
                    if current_version(conn, self.settings.pg_schema) >= SCHEMA_VERSION:
                        return
                migrator = create_app_engine(url, pool_size=1)
                try:
                    with migrator.begin() as conn:
                        upgrade_system_schema(conn, pg_schema=self.settings.pg_schema)
                finally:
                    migrator.dispose()
                return
            with engine.connect() as conn:
                version = current_version(conn, self.settings.pg_schema)
        except sa.exc.OperationalError as exc:
            raise DBOSInitializationError(
                f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: {exc.orig}"
            ) from exc
        if version < SCHEMA_VERSION:
            raise DBOSInitializationError(
                f"the system tables are at version {version}, this runtime needs {SCHEMA_VERSION}; "
                "run `alembic upgrade head` (or set run_migrations=True)"
            )

    def submit(self, workflow_id: str, work: Callable[[], Any]) -> Future[Any]:
        """Run a workflow body on a worker thread, unless this process already runs that workflow."""
        with self.running_lock:
            known = self.running.get(workflow_id)
            if known is not None:
                return known
            if self.stopping.is_set():
                # Draining: the row is durable and PENDING, so a live executor adopts and runs it.
                raise DBOSNotLaunchedError(f"shutting down; workflow {workflow_id} is left for another executor")
            future: Future[Any] = Future()
            self.running[workflow_id] = future
        work = carry(work)  # the caller's span stays the parent on the worker thread

        def body() -> None:
            try:
                with self.app_context():
                    result = work()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                with self.running_lock:
                    self.running.pop(workflow_id, None)

        self.pool.submit(body)
        return future

    def claim_inline(self, workflow_id: str) -> Future[Any] | None:
        """Mark a workflow as running on the calling thread; return the other run's future if one exists."""
        with self.running_lock:
            known = self.running.get(workflow_id)
            if known is not None:
                return known
            self.running[workflow_id] = Future()
            return None

    def release_inline(self, workflow_id: str, outcome: tuple[bool, Any]) -> None:
        """Publish the result of an inline run to anyone waiting on it, and forget it."""
        with self.running_lock:
            future = self.running.pop(workflow_id, None)
        if future is not None:
            ok, value = outcome
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def hold_steps(self, workflow_id: str) -> HeldSteps | None:
        """A run's held checkpoints, registered until ``release_held``; None when deferral is off."""
        if not self.settings.defer_step_checkpoints:
            return None
        held = HeldSteps(self.checkpoint_store, self.sys_db, workflow_id)
        with self.running_lock:
            self.held[workflow_id] = held
        return held

    def release_held(self, held: HeldSteps) -> None:
        with self.running_lock:
            if self.held.get(held.workflow_id) is held:
                del self.held[held.workflow_id]

    def write_pending_rows(self, workflow_id: str | None = None) -> None:
        """Write the row of a new run here that waits for its first transaction (every one's with None).

        Whoever writes first wins; the other insert finds the row there (the same row) and keeps it.
        """
        if not self.pending_rows:
            return
        with self.running_lock:
            found = list(self.pending_rows.values()) if workflow_id is None else [self.pending_rows.get(workflow_id)]
        ctx = current_context()
        for pending in found:
            if pending is None or (ctx is not None and ctx.workflow is not None
                                   and ctx.workflow.workflow_id == pending.row.workflow_id):
                continue  # its own run asks: its open transaction carries the row (and holds SQLite's lock)
            self.write_pending_row(pending)

    def write_pending_row(self, pending: PendingRow) -> None:
        """Insert ``pending``'s row on its own (flushed); a row already there stays."""
        self.checkpoint_store.create_workflow(pending.row, created_ms=pending.created_ms)
        self.forget_pending_row(pending)

    def forget_pending_row(self, pending: PendingRow) -> None:
        """``pending``'s row is written (or its run ended without it): readers no longer write it."""
        with self.running_lock:
            if self.pending_rows.get(pending.row.workflow_id) is pending:
                del self.pending_rows[pending.row.workflow_id]

    def flush_held(self, workflow_id: str | None = None, *, older_than_sec: float | None = None) -> None:
        """Commit the held checkpoints of a workflow running here (every one's with None) before a reader
        or an operation on it sees its steps. A refused flush is left to the run, which learns it itself.
        A row that waits for its first transaction is written first (unless only the old ones are asked for).

        ``older_than_sec``: only those held that long, skipping runs that are committing now (the sweep).
        """
        if older_than_sec is None:
            self.write_pending_rows(workflow_id)
        with self.running_lock:
            found = list(self.held.values()) if workflow_id is None else [self.held.get(workflow_id)]
        cutoff = None if older_than_sec is None else time.monotonic() - older_than_sec
        for held in found:
            if held is None or not len(held):
                continue
            since = held.oldest_monotonic
            if cutoff is not None and (since is None or since > cutoff):
                continue
            try:
                self.sys_db.flush_held(held, wait=cutoff is None)
            except (DBOSException, DBOSBaseException) as exc:  # fenced or cancelled: its run learns it at its next write
                logger.debug("held steps of %s not written: %s", held.workflow_id, exc)

    def drain(self, wait_sec: float = 0.0) -> int:
        """Take no new background work; wait up to ``wait_sec`` for running workflows; return how many still run."""
        self.stopping.set()
        self.wakeups.wake_all()  # waits in sleep/recv stop; those workflows stay PENDING for another executor
        deadline = time.monotonic() + wait_sec
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pool.shutdown(wait=False, cancel_futures=True)
        return len(self.running)

    def close(self) -> None:
        """Close every pooled connection and the notification listener."""
        self.wakeups.close()
        self.sys_engine.dispose()
        self.sys_db_unflushed.engine.dispose()
        self.sweep_store.db.engine.dispose()
        self.app_engine.dispose()
        if self.app_checkpoint_store is not None:
            self.app_checkpoint_store.db.engine.dispose()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's connections without closing them under its feet."""
        self.leadership.forget_after_fork()
        self.wakeups.forget_after_fork()
        self.sys_engine.dispose(close=False)
        self.sys_db_unflushed.engine.dispose(close=False)
        self.sweep_store.db.engine.dispose(close=False)
        self.app_engine.dispose(close=False)
        if self.app_checkpoint_store is not None:
            self.app_checkpoint_store.db.engine.dispose(close=False)


def pid_is_alive(pid: int) -> bool:
    """Whether a process with that pid exists on this host (a zombie counts as alive: be conservative)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
