"""One face for the runtimes under test: ours (the baked project's ``durable``) and DBOS Transact.

Both expose DBOS's API, so the workflows below are written once and registered on whichever ``DBOS``
class was loaded. What differs (config keys, table names) is kept here.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


# -- counting statements and commits at the driver --------------------------------------------------


@dataclass
class Counters:
    """Statements sent by this process; SQLite commits as seen by its trace callback."""

    statements: int = 0
    sqlite_commits: int = 0
    capture: list[tuple[str, Any]] | None = None  # (SQL, parameters) while set; SQLite gives expanded SQL
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.statements = 0
            self.sqlite_commits = 0


COUNTERS = Counters()


def install_counters() -> None:
    """Count every statement through psycopg and sqlite3; call before any engine is created."""
    try:
        import psycopg

        original_execute = psycopg.Cursor.execute
        original_many = psycopg.Cursor.executemany

        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            COUNTERS.statements += 1  # a racy += is fine: threads rarely collide, and only counts drift
            if COUNTERS.capture is not None:
                COUNTERS.capture.append((query, args[0] if args else kwargs.get("params")))
            return original_execute(self, query, *args, **kwargs)

        def executemany(self: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            COUNTERS.statements += len(params_seq)
            return original_many(self, query, params_seq, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
    except ImportError:
        pass

    original_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = original_connect(*args, **kwargs)
        in_transaction = [False]

        def trace(statement: str) -> None:
            # A write outside BEGIN..COMMIT is its own transaction: one commit, one fsync in WAL+FULL.
            word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            with COUNTERS.lock:
                COUNTERS.statements += 1
                if COUNTERS.capture is not None:
                    COUNTERS.capture.append((statement, None))
                if word == "BEGIN":
                    in_transaction[0] = True
                elif word in ("COMMIT", "END"):
                    in_transaction[0] = False
                    COUNTERS.sqlite_commits += 1
                elif word == "ROLLBACK":
                    in_transaction[0] = False
                elif word in WRITE_WORDS and not in_transaction[0]:
                    COUNTERS.sqlite_commits += 1

        conn.set_trace_callback(trace)
        return conn

    sqlite3.connect = connect  # type: ignore[assignment]
    sqlite3.dbapi2.connect = connect  # type: ignore[assignment]  # SQLAlchemy imports it from here


# -- the runtimes ------------------------------------------------------------------------------------


@dataclass
class Runtime:
    """A loaded runtime: its DBOS class, the URL it runs on, and where its system tables are."""

    label: str  # "ours", "dbos-2.31.1", ...
    dbos: Any
    url: str  # sqlite:///... or postgresql://...
    major: int  # DBOS major version (ours speaks 2.x)
    table_prefix: str  # how raw SQL names the system tables
    set_workflow_id: Any  # the SetWorkflowID context manager of the same package
    queue_class: Any  # the package's Queue

    def launch(self) -> None:
        self.dbos.launch()

    def destroy(self) -> None:
        self.dbos.destroy()

    def table(self, name: str) -> str:
        return self.table_prefix + name

    def sql_engine(self) -> sa.Engine:
        """A private engine for the bench's own SQL (counts, bulk rows), outside the runtime's pools."""
        url = self.url.replace("postgresql://", "postgresql+psycopg://", 1)
        return sa.create_engine(url, poolclass=sa.pool.NullPool)


def load_runtime(kind: str, url: str, package: str | None = None) -> Runtime:
    """Import and configure (not launch) ``ours`` from ``package`` or ``dbos`` from the venv."""
    is_pg = url.startswith("postgresql")
    if kind == "ours":
        durable = importlib.import_module(f"{package}.durable")
        dbos = durable.DBOS
        dbos(config=durable.DBOSConfig(name="bench", application_database_url=url))
        return Runtime("ours", dbos, url, 2, "dbos." if is_pg else "dbos_", durable.SetWorkflowID, durable.Queue)
    import dbos as dbos_module

    version = dbos_module.__version__ if hasattr(dbos_module, "__version__") else _dist_version("dbos")
    major = int(version.split(".")[0])
    config: dict[str, Any] = {"name": "bench", "system_database_url": url}
    if major < 3:
        config["application_database_url"] = url  # 2.x: @DBOS.transaction runs here
    dbos_module.DBOS(config=config)  # type: ignore[arg-type]
    return Runtime(f"dbos-{version}", dbos_module.DBOS, url, major, "dbos." if is_pg else "", dbos_module.SetWorkflowID,
                   dbos_module.Queue)


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


# -- the workloads' workflows ----------------------------------------------------------------------


@dataclass
class Workflows:
    three_steps: Callable[[int], int]
    step_seconds: list[float]  # time of each step call as the workflow body saw it
    release: threading.Event  # recovery's doomed process never sets it: step one blocks


def define_workflows(dbos: Any) -> Workflows:
    """Register the 3-step workflow on ``dbos``; the same names in every process, so recovery finds it."""
    step_seconds: list[float] = []
    release = threading.Event()
    if os.environ.get("BENCH_BLOCK_FIRST_STEP") != "1":
        release.set()

    @dbos.step(name="bench_step_one")
    def step_one(x: int) -> int:
        release.wait()  # only the doomed recovery process blocks here
        return x + 1

    @dbos.step(name="bench_step_two")
    def step_two(x: int) -> int:
        return x * 2

    @dbos.step(name="bench_step_three")
    def step_three(x: int) -> int:
        return x - 1

    @dbos.workflow(name="bench_three_steps")
    def three_steps(x: int) -> int:
        t0 = time.perf_counter()
        a = step_one(x)
        t1 = time.perf_counter()
        b = step_two(a)
        t2 = time.perf_counter()
        c = step_three(b)
        t3 = time.perf_counter()
        step_seconds.extend((t1 - t0, t2 - t1, t3 - t2))  # list.extend is atomic under the GIL
        return c

    return Workflows(three_steps, step_seconds, release)


@dataclass
class QueuedProbe:
    """A queue and a workflow that notes when its body starts: enqueue-to-start latency."""

    enqueue: Callable[[int], Any]  # enqueue(key) -> handle
    started: dict[int, float]  # key -> perf_counter() as the body began


def define_queued_probe(rt: Runtime) -> QueuedProbe:
    """Register before launch, as DBOS wants: one queue, one one-line workflow.

    DBOS 3.x refuses ``Queue(name)`` (its queues live in the system database): it is declared with
    ``DBOS.register_queue`` once launched, so on 3.x the queue is made at the first enqueue.
    """
    started: dict[int, float] = {}
    queues: list[Any] = []
    if rt.major < 3:
        queues.append(rt.queue_class("bench_latency"))

    @rt.dbos.workflow(name="bench_queued")
    def queued(key: int) -> None:
        started[key] = time.perf_counter()

    def enqueue(key: int) -> Any:
        if not queues:  # 3.x, after launch: register (idempotent: an upsert) and keep it
            queues.append(rt.dbos.register_queue("bench_latency"))
        return queues[0].enqueue(queued, key)

    return QueuedProbe(enqueue, started)
