"""What differs between SQLite and PostgreSQL: engines, placeholders, locking, which errors to retry.

The store writes its SQL once with ``?`` placeholders; each dialect turns it into the driver's form.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .sqlite_wait import WAIT_TIMEOUT_SEC, PatientConnection

# Where the system tables live: a schema of their own on PostgreSQL, a name prefix on SQLite (no schemas).
DEFAULT_PG_SCHEMA = "dbos"
SQLITE_PREFIX = "dbos_"
# The ``{name}`` placeholders the store's SQL may use: the system tables (``schema.py`` defines them).
TABLE_KEYS = ("workflow_status", "operation_outputs", "executors", "idempotency_keys", "notifications",
              "workflow_events", "workflow_events_history", "streams", "workflow_schedules", "queues")

# SQLite: how long a writer waits for the lock (sqlite_wait.py, or the driver's handler on a user's engine)
# before the store's own retry loop.
SQLITE_BUSY_TIMEOUT_MS = int(WAIT_TIMEOUT_SEC * 1000)


class Dialect:
    """The database-specific half of the store."""

    name: str = ""
    begin_sql: str = "BEGIN"
    supports_skip_locked: bool = False
    # An INSERT inside WITH, so held checkpoints ride in the next write's own statement (held_fold.py).
    folds_held_steps: bool = False
    # The strings of a JSON array parameter, as a subquery: ``name IN (<this>)``.
    json_strings_sql: str = "SELECT value FROM json_each(?)"

    def __init__(self, pg_schema: str = DEFAULT_PG_SCHEMA) -> None:
        self.pg_schema = pg_schema

    def table(self, key: str) -> str:
        """The quoted name of a system table (``workflow_status``, ``operation_outputs``, ...)."""
        return f'"{SQLITE_PREFIX}{key}"'

    def sql(self, text: str) -> str:
        """Turn the store's ``?`` placeholders and ``{table}`` names into this dialect's SQL."""
        names = {k: self.table(k) for k in TABLE_KEYS}
        return self._placeholders(text.format(**names))

    def _placeholders(self, text: str) -> str:
        return text.replace("?J", "?")  # ?J marks a JSON parameter; SQLite stores JSON as text

    def is_retryable(self, exc: BaseException) -> bool:
        """True for errors that a retry of the same statement can get past."""
        return False

    def is_disconnect(self, exc: BaseException) -> bool:
        return False

    def create_engine(self, url: str, *, pool_size: int, autocommit: bool, **kwargs: Any) -> sa.Engine:
        raise NotImplementedError

    def create_unflushed_engine(self, url: str, *, pool_size: int) -> sa.Engine:
        """An autocommit engine whose commits return before the log is flushed to disk.

        For writes that must be visible at once but durable only with the next flushed commit: both
        databases write one log in commit order (PostgreSQL's WAL per server, SQLite's WAL per file), so
        a flushed commit made later, on any connection, flushes every unflushed commit before it. A
        process that dies loses none of them; only the machine or the server dying can, and then only
        those no flushed commit followed.
        """
        engine = self.create_engine(url, pool_size=pool_size, autocommit=True)
        sa.event.listen(engine, "connect", self._no_flush_hook())
        return engine

    def _no_flush_hook(self) -> Any:
        raise NotImplementedError

    def adopt_engine(self, engine: sa.Engine) -> sa.Engine:
        """A user's engine (``system_database_engine``), set up as ``create_engine`` sets up its own:
        each connection it makes from now on gets this dialect's per-connection set-up, in autocommit
        (so the engine is the system tables' own: share it with no application code)."""
        for hook in self._connect_hooks():
            if not sa.event.contains(engine, "connect", hook):
                sa.event.listen(engine, "connect", hook)
        engine.dispose()  # connections made before the hooks were added are not reused
        return engine

    def _connect_hooks(self) -> tuple[Any, ...]:
        return ()


class SQLiteDialect(Dialect):
    name = "sqlite"
    # IMMEDIATE takes the write lock at BEGIN, so a transaction never fails later upgrading its lock.
    begin_sql = "BEGIN IMMEDIATE"

    def is_retryable(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text

    def create_engine(self, url: str, *, pool_size: int, autocommit: bool, **kwargs: Any) -> sa.Engine:
        return create_sqlite_engine(url, pool_size=pool_size, autocommit=autocommit, **kwargs)

    def _connect_hooks(self) -> tuple[Any, ...]:
        return (_on_sqlite_connect, _sqlite_autocommit)

    def _no_flush_hook(self) -> Any:
        return _sqlite_no_flush


class PostgresDialect(Dialect):
    name = "postgresql"
    supports_skip_locked = True
    folds_held_steps = True
    json_strings_sql = "SELECT jsonb_array_elements_text(?J)"

    def table(self, key: str) -> str:
        return f'"{self.pg_schema}"."{key}"'

    def _placeholders(self, text: str) -> str:
        # ?J marks a JSON parameter: cast, since INSERT ... SELECT gives PostgreSQL no column type to infer.
        return re.sub(r"\?", "%s", text.replace("%", "%%").replace("?J", "%s::jsonb"))

    def is_retryable(self, exc: BaseException) -> bool:
        sqlstate = getattr(exc, "sqlstate", None)
        # serialization_failure, deadlock_detected, and the connection-class errors.
        return sqlstate in {"40001", "40P01"} or self.is_disconnect(exc)

    def is_disconnect(self, exc: BaseException) -> bool:
        import psycopg

        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate:  # the server answered: only connection-class and shutdown codes mean a lost link
            return sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
        return isinstance(exc, psycopg.OperationalError)  # no answer at all: the connection is gone

    def create_engine(self, url: str, *, pool_size: int, autocommit: bool, **kwargs: Any) -> sa.Engine:
        options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": False}
        if autocommit:
            options["isolation_level"] = "AUTOCOMMIT"
            # Nothing to roll back on an autocommit connection: skip the reset on every check-in
            # (the store rolls back itself when a statement or an explicit transaction fails).
            options["pool_reset_on_return"] = None
        options.update(kwargs)
        engine = sa.create_engine(url, **options)
        sa.event.listen(engine, "connect", _json_as_text)
        return engine

    def _connect_hooks(self) -> tuple[Any, ...]:
        return (_json_as_text, _pg_autocommit)

    def _no_flush_hook(self) -> Any:
        return _pg_no_flush


def _json_as_text(dbapi_connection: Any, _record: Any) -> None:
    # Read JSON columns as text, as SQLite does, so decoding has one path: a JSON string value
    # must not be mistaken for JSON text.
    from psycopg.types.string import TextLoader

    for name in ("json", "jsonb"):
        dbapi_connection.adapters.register_loader(name, TextLoader)


def _pg_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # The store runs statements on raw driver connections: each commits unless it opens BEGIN itself.
    dbapi_connection.autocommit = True


def _pg_no_flush(dbapi_connection: Any, _record: Any) -> None:
    # Session-wide on a connection of the unflushed engine only (autocommit: no reset on check-in).
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET synchronous_commit TO off")
def create_postgres_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names if it does not exist (DBOS does at launch); True if created.

    Connects to the server's ``postgres`` database for it: CREATE DATABASE cannot run in the one it makes.
    """
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "postgresql" or not name:
        return False
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first():
                return False
            quoted = name.replace('"', '""')
            conn.execute(sa.text(f'CREATE DATABASE "{quoted}"'))
            return True
    finally:
        admin.dispose()


def dialect_for(url: str, pg_schema: str = DEFAULT_PG_SCHEMA) -> Dialect:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return SQLiteDialect(pg_schema)
    if backend == "postgresql":
        return PostgresDialect(pg_schema)
    raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; synchronous=FULL keeps each commit on disk.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    if isinstance(dbapi_connection, PatientConnection):
        cursor.execute("PRAGMA busy_timeout = 0")  # it waits in sqlite_wait.py, in finer steps
    cursor.close()


def _sqlite_no_flush(dbapi_connection: Any, _record: Any) -> None:
    # Runs after _on_sqlite_connect. In WAL mode NORMAL skips the fsync at commit; the WAL is synced by
    # the next FULL commit of any connection, or at a checkpoint.
    dbapi_connection.execute("PRAGMA synchronous = NORMAL")


def create_sqlite_engine(url: str, *, pool_size: int = 20, autocommit: bool = False, **kwargs: Any) -> sa.Engine:
    """An engine for a SQLite file that is safe with many threads and processes writing at once.

    With ``autocommit`` off, transactions begin with ``BEGIN IMMEDIATE`` (the recipe SQLAlchemy
    documents), so "database is locked" turns into a wait instead of an error mid-transaction.
    """
    parsed = make_url(url)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "poolclass": sa.pool.QueuePool,
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                         "factory": PatientConnection},
    }
    if autocommit:
        options["pool_reset_on_return"] = None  # as for PostgreSQL: no transaction is left to undo
    options.update(kwargs)
    engine = sa.create_engine(url, **options)
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    # The driver must never open transactions by itself: either we run in autocommit, or we BEGIN.
    sa.event.listen(engine, "connect", _sqlite_autocommit)
    if not autocommit:
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def process_identity() -> tuple[str, int]:
    """This host's name and this process's ID, for executor rows."""
    return os.uname().nodename, os.getpid()
