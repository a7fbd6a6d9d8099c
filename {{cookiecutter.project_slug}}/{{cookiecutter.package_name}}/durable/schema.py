"""The runtime's system tables: their definitions and their versioned migrations.

The tables live beside the application's own: in their own schema on PostgreSQL (``dbos`` by default)
and under a name prefix on SQLite (``dbos_workflow_status``), since SQLite has no schemas.

Both the project's Alembic revision (``migrations/versions/0001_durable_system_tables.py``) and
``DBOS.launch()`` (when ``run_migrations`` is on) apply the same numbered steps and record the result
in one ``schema_version`` table, so whichever runs first does the work and the other sees it done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .store.dialects import DEFAULT_PG_SCHEMA, SQLITE_PREFIX

#: The version this build of the runtime needs; launch refuses an older schema when it may not migrate.
SCHEMA_VERSION = 5

# A fixed key for pg_advisory_xact_lock, so that workers starting together migrate one at a time.
_MIGRATION_LOCK_KEY = 0x64626F73  # "dbos"
# A deduplication ID is held only while its workflow waits (DELAYED or ENQUEUED) or runs. Step 2 made the
# index without DELAYED (which did not exist yet); step 3 rebuilds it with this predicate.
_ACTIVE_QUEUE_ROW = sa.text("status IN ('DELAYED', 'ENQUEUED', 'PENDING')")
_STEP_2_ACTIVE_QUEUE_ROW = sa.text("status IN ('ENQUEUED', 'PENDING')")
_SCHEDULED_ROW = sa.text("schedule_name IS NOT NULL")  # most workflows have none: keep them out of its index
# The same for queues, children and forks (step 5); a query with queue_name = ? or IN (...) implies it.
_QUEUED_ROW = sa.text("queue_name IS NOT NULL")
_CHILD_ROW = sa.text("parent_workflow_id IS NOT NULL")
_FORK_ROW = sa.text("forked_from IS NOT NULL")


@dataclass(frozen=True)
class SystemTables:
    """The system tables as SQLAlchemy Core objects, named for one database."""

    metadata: sa.MetaData
    workflow_status: sa.Table
    operation_outputs: sa.Table
    executors: sa.Table
    idempotency_keys: sa.Table
    notifications: sa.Table
    workflow_events: sa.Table
    workflow_events_history: sa.Table
    schema_version: sa.Table
    pg_schema: str | None
    workflow_schedules: sa.Table
    streams: sa.Table
    queues: sa.Table

    def qualified(self, table: sa.Table) -> str:
        """The table's name as raw SQL must spell it (``dbos.workflow_status`` or ``dbos_workflow_status``)."""
        return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def system_tables(dialect_name: str, pg_schema: str = DEFAULT_PG_SCHEMA) -> SystemTables:
    """Build the table definitions for a dialect (``postgresql`` or ``sqlite``)."""
    is_pg = dialect_name == "postgresql"
    schema = pg_schema if is_pg else None
    prefix = "" if is_pg else SQLITE_PREFIX
    json_type: sa.types.TypeEngine[Any] = JSONB() if is_pg else sa.Text()
    metadata = sa.MetaData(schema=schema)

    workflow_status = sa.Table(
        f"{prefix}workflow_status",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("class_name", sa.Text),
        sa.Column("config_name", sa.Text),
        sa.Column("inputs", json_type),
        sa.Column("output", json_type),
        sa.Column("error", json_type),
        sa.Column("request", json_type),
        sa.Column("executor_id", sa.Text),
        # Fencing token: bumped each time another executor adopts the workflow. Every checkpoint write
        # names the generation it was started under, so a zombie's late write matches no row.
        sa.Column("owner_generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("application_version", sa.Text),
        sa.Column("application_id", sa.Text),
        # The workflow function's own explicit version (@DBOS.workflow(version=...)): recovery runs
        # the code registered under the recorded one, or fails loudly when no such code exists.
        sa.Column("workflow_version", sa.Text, nullable=False, server_default=""),
        sa.Column("recovery_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queue_name", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        # Unique per queue among waiting and running workflows (the index below): a second enqueue with
        # the same ID is refused until the first finishes.
        sa.Column("deduplication_id", sa.Text),
        # A partitioned queue applies its per-partition limits to the rows of each key separately.
        sa.Column("queue_partition_key", sa.Text),
        sa.Column("started_at_epoch_ms", sa.BigInteger),  # when a queue dequeued it (the rate limiter counts these)
        sa.Column("parent_workflow_id", sa.Text),
        sa.Column("workflow_timeout_ms", sa.BigInteger),
        sa.Column("workflow_deadline_epoch_ms", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger),
        # SetEnqueueOptions(delay_seconds=...): a DELAYED row becomes ENQUEUED once this time has come.
        sa.Column("delay_until_epoch_ms", sa.BigInteger),
        # Debouncer: a debounced DELAYED row (0/1) takes new inputs and a later time until this cap.
        sa.Column("is_debounced", sa.Integer, nullable=False, server_default="0"),
        sa.Column("debounce_deadline_epoch_ms", sa.BigInteger),
        # The stored schedule that enqueued the workflow (DBOS.create_schedule), for list_workflows(schedule_name=).
        sa.Column("schedule_name", sa.Text),
        # fork_workflow: the workflow a fork was copied from, and (0/1) on the original that it was.
        sa.Column("forked_from", sa.Text),
        sa.Column("was_forked_from", sa.Integer, nullable=False, server_default="0"),
        # SetWorkflowAttributes: the caller's key-value pairs, plain JSON (filtered with @> on PostgreSQL).
        sa.Column("attributes", json_type),
        # DBOSContextSetAuth / required_roles: who started the workflow, and the role it assumed.
        sa.Column("authenticated_user", sa.Text),
        sa.Column("assumed_role", sa.Text),
        sa.Column("authenticated_roles", json_type),
        sa.Index(f"{prefix}workflow_status_executor_status", "executor_id", "status"),
        sa.Index(f"{prefix}workflow_status_queue_status", "queue_name", "status", "priority", "created_at",
                 postgresql_where=_QUEUED_ROW, sqlite_where=_QUEUED_ROW),
        sa.Index(f"{prefix}workflow_status_schedule_name", "schedule_name", "created_at",
                 postgresql_where=_SCHEDULED_ROW, sqlite_where=_SCHEDULED_ROW),
        sa.Index(f"{prefix}workflow_status_queue_dedup", "queue_name", "deduplication_id", unique=True,
                 postgresql_where=_ACTIVE_QUEUE_ROW, sqlite_where=_ACTIVE_QUEUE_ROW),
        # Children of a workflow (cancel/delete with children, list_workflows(parent_workflow_id=)) and forks.
        sa.Index(f"{prefix}workflow_status_parent", "parent_workflow_id",
                 postgresql_where=_CHILD_ROW, sqlite_where=_CHILD_ROW),
        sa.Index(f"{prefix}workflow_status_forked_from", "forked_from",
                 postgresql_where=_FORK_ROW, sqlite_where=_FORK_ROW),
        # The dashboard's keyset pages, newest first, unfiltered or by status, name or queue (step 3).
        # They also serve what (status, created_at), (created_at) and (name) did, dropped by step 5.
        sa.Index(f"{prefix}workflow_status_created_uuid", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_status_created_uuid", "status", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_name_created_uuid", "name", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_queue_created_uuid", "queue_name", "created_at", "workflow_uuid",
                 postgresql_where=_QUEUED_ROW, sqlite_where=_QUEUED_ROW),
    )
    operation_outputs = sa.Table(
        f"{prefix}operation_outputs",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("function_id", sa.Integer, primary_key=True),
        sa.Column("function_name", sa.Text, nullable=False),
        sa.Column("output", json_type),
        sa.Column("error", json_type),
        sa.Column("child_workflow_id", sa.Text),
        sa.Column("started_at_epoch_ms", sa.BigInteger),
        sa.Column("completed_at_epoch_ms", sa.BigInteger),
        # How many times a step ran before its outcome was recorded (retries; the dashboard shows it).
        sa.Column("attempts", sa.Integer),
        # The arguments a step or transaction was called with, as checkpoint JSON (step 4; the dashboard
        # shows them). NULL for records that take none (sleeps, messages, child starts) and older rows.
        sa.Column("inputs", json_type),
    )
    executors = sa.Table(
        f"{prefix}executors",
        metadata,
        sa.Column("executor_id", sa.Text, primary_key=True),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("application_version", sa.Text),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    )
    # HTTP idempotency: one row per dbos-idempotency-key, holding the request's fingerprint and, once
    # it is done, the response that every retry gets back.
    idempotency_keys = sa.Table(
        f"{prefix}idempotency_keys",
        metadata,
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),  # "running" or "done"
        sa.Column("executor_id", sa.Text),
        sa.Column("response_status", sa.Text),
        sa.Column("response_headers", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}idempotency_keys_expires", "expires_at"),
    )
    # DBOS.send / DBOS.recv: one row per message. The sequence orders a topic's messages (FIFO);
    # message_uuid makes a send idempotent (a workflow's step, or the caller's idempotency key).
    notifications = sa.Table(
        f"{prefix}notifications",
        metadata,
        sa.Column("message_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("message_uuid", sa.Text, nullable=False, unique=True),
        sa.Column("destination_uuid", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("message", json_type, nullable=False),
        sa.Column("consumed", sa.Integer, nullable=False, server_default="0"),  # 0/1: same SQL on both
        sa.Column("created_at_epoch_ms", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}notifications_destination", "destination_uuid", "topic", "consumed", "message_seq"),
    )
    # DBOS.set_event / DBOS.get_event: the latest value of each key, and every value with the step
    # that set it (fork_workflow copies the history of the steps it keeps, then rebuilds the latest).
    workflow_events = sa.Table(
        f"{prefix}workflow_events",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", json_type, nullable=False),
    )
    workflow_events_history = sa.Table(
        f"{prefix}workflow_events_history",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("function_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", json_type, nullable=False),
    )
    # DBOS.create_schedule / apply_schedules: one row per schedule name; every process's scheduler runs
    # the ACTIVE ones. context is the codec's JSON text; last_fired_at the latest tick, ISO 8601 in its zone.
    workflow_schedules = sa.Table(
        f"{prefix}workflow_schedules",
        metadata,
        sa.Column("schedule_id", sa.Text, primary_key=True),
        sa.Column("schedule_name", sa.Text, nullable=False, unique=True),
        sa.Column("workflow_name", sa.Text, nullable=False),
        sa.Column("workflow_class_name", sa.Text),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="ACTIVE"),
        sa.Column("context", sa.Text),
        sa.Column("last_fired_at", sa.Text),
        sa.Column("automatic_backfill", sa.Integer, nullable=False, server_default="0"),  # 0/1: same SQL on both
        sa.Column("cron_timezone", sa.Text),
        sa.Column("queue_name", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    # DBOS.write_stream: the values of each (workflow, key) stream by offset. A NULL value is the close
    # marker; function_id is the writing step, so fork_workflow keeps the entries of the steps it keeps.
    streams = sa.Table(
        f"{prefix}streams",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("stream_offset", sa.Integer, primary_key=True),
        sa.Column("value", json_type),
        sa.Column("function_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["workflow_uuid"], [workflow_status.c.workflow_uuid], ondelete="CASCADE"),
    )
    # DBOS.register_queue: database-backed queues, their limits shared by every process and changed at
    # run time (Queue.set_global_concurrency...); each dequeuer re-reads them every round.
    queues = sa.Table(
        f"{prefix}queues",
        metadata,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("concurrency", sa.Integer),
        sa.Column("worker_concurrency", sa.Integer),
        sa.Column("rate_limit_max", sa.Integer),
        sa.Column("rate_limit_period_sec", sa.Float),
        sa.Column("priority_enabled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("partition_queue", sa.Integer, nullable=False, server_default="0"),
        sa.Column("partition_concurrency", sa.Integer),
        sa.Column("partition_worker_concurrency", sa.Integer),
        sa.Column("partition_rate_limit_max", sa.Integer),
        sa.Column("partition_rate_limit_period_sec", sa.Float),
        sa.Column("polling_interval_sec", sa.Float, nullable=False, server_default="1.0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    schema_version = sa.Table(
        f"{prefix}schema_version",
        metadata,
        sa.Column("version", sa.Integer, nullable=False),
    )
    return SystemTables(
        metadata=metadata, workflow_status=workflow_status, operation_outputs=operation_outputs, executors=executors,
        idempotency_keys=idempotency_keys, notifications=notifications, workflow_events=workflow_events,
        workflow_events_history=workflow_events_history, schema_version=schema_version, pg_schema=schema,
        streams=streams, workflow_schedules=workflow_schedules, queues=queues,
    )


def _create_v1(connection: sa.Connection, tables: SystemTables) -> None:
    if tables.pg_schema:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{tables.pg_schema}"'))
    tables.metadata.create_all(connection, checkfirst=True)


def _drop_v1(connection: sa.Connection, tables: SystemTables) -> None:
    tables.metadata.drop_all(connection, checkfirst=True)


def _dedup_index(tables: SystemTables) -> sa.Index:
    return next(i for i in tables.workflow_status.indexes if i.name and i.name.endswith("workflow_status_queue_dedup"))


def _workflow_columns(connection: sa.Connection, tables: SystemTables) -> set[str]:
    table = tables.workflow_status
    return {c["name"] for c in sa.inspect(connection).get_columns(table.name, schema=tables.pg_schema)}


def _add_queue_options_v2(connection: sa.Connection, tables: SystemTables) -> None:
    """Queue partition keys, and the index that makes deduplication IDs unique per queue."""
    table = connection.dialect.identifier_preparer.format_table(tables.workflow_status)
    if "queue_partition_key" not in _workflow_columns(connection, tables):
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN queue_partition_key TEXT"))
    _dedup_index(tables).create(connection, checkfirst=True)


def _drop_queue_options_v2(connection: sa.Connection, tables: SystemTables) -> None:
    table = connection.dialect.identifier_preparer.format_table(tables.workflow_status)
    _dedup_index(tables).drop(connection, checkfirst=True)
    if "queue_partition_key" in _workflow_columns(connection, tables):
        connection.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN queue_partition_key"))


# Step 3 gathers every addition of the release that brings DBOS 2.31.1's full API and the listings'
# indexes. Until that release ships, a change adds its table, column or index to the definitions above
# AND names it here (unprefixed); the step adds what a step-2 database lacks and removes it on the way
# down. tests/runtime/test_schema.py holds step 2's shape, so a change that forgets this list fails there.
_V3_TABLES: tuple[str, ...] = ("streams", "workflow_schedules", "queues")
_V3_COLUMNS: dict[str, tuple[str, ...]] = {
    "workflow_status": ("forked_from", "was_forked_from", "attributes", "authenticated_user", "assumed_role",
                        "authenticated_roles", "schedule_name", "delay_until_epoch_ms", "is_debounced",
                        "debounce_deadline_epoch_ms"),
    "operation_outputs": ("attempts",),
}
_V3_INDEXES: tuple[str, ...] = (
    "workflow_status_parent",
    "workflow_status_forked_from",
    "workflow_status_created_uuid",
    "workflow_status_status_created_uuid",
    "workflow_status_name_created_uuid",
    "workflow_status_queue_created_uuid",
    "workflow_status_schedule_name",
)  # new indexes on tables older than step 3 (new tables bring their own)


def _table(tables: SystemTables, name: str) -> sa.Table:
    return next(t for t in tables.metadata.sorted_tables if t.name.removeprefix(SQLITE_PREFIX) == name)


def _index(tables: SystemTables, name: str) -> sa.Index:
    found = (i for t in tables.metadata.sorted_tables for i in t.indexes)
    return next(i for i in found if i.name and i.name.removeprefix(SQLITE_PREFIX) == name)


def _columns_in(connection: sa.Connection, table: sa.Table) -> set[str]:
    return {c["name"] for c in sa.inspect(connection).get_columns(table.name, schema=table.schema)}


def _add_v3(connection: sa.Connection, tables: SystemTables) -> None:
    for name in _V3_TABLES:
        _table(tables, name).create(connection, checkfirst=True)
    _add_columns(connection, tables, _V3_COLUMNS)
    for name in _V3_INDEXES:
        _step_4_index(tables, name).create(connection, checkfirst=True)  # step 5 makes some partial
    _rebuild_index(connection, _dedup_index(tables))


def _rebuild_index(connection: sa.Connection, index: sa.Index) -> None:
    """Replace the index of that name by ``index`` (same name, another predicate)."""
    index.drop(connection, checkfirst=True)
    index.create(connection)


def _step_2_dedup_index(tables: SystemTables) -> sa.Index:
    index = _dedup_index(tables)
    table = tables.workflow_status
    return sa.Index(index.name, table.c.queue_name, table.c.deduplication_id, unique=True,
                    postgresql_where=_STEP_2_ACTIVE_QUEUE_ROW, sqlite_where=_STEP_2_ACTIVE_QUEUE_ROW)


def _drop_v3(connection: sa.Connection, tables: SystemTables) -> None:
    _rebuild_index(connection, _step_2_dedup_index(tables))
    for name in _V3_INDEXES:
        _index(tables, name).drop(connection, checkfirst=True)
    _drop_columns(connection, tables, _V3_COLUMNS)
    for name in reversed(_V3_TABLES):
        _table(tables, name).drop(connection, checkfirst=True)


# Step 4: each step's and transaction's inputs, for the dashboard's timeline (step_inputs.py encodes them).
# Step 3 is closed (revision 0005 applies it): later additions take steps of their own, like this one.
_V4_COLUMNS: dict[str, tuple[str, ...]] = {"operation_outputs": ("inputs",)}


def _add_columns(connection: sa.Connection, tables: SystemTables, columns: dict[str, tuple[str, ...]]) -> None:
    """Add the named columns, as defined above, where a table lacks them."""
    preparer = connection.dialect.identifier_preparer
    for table_name, column_names in columns.items():
        table = _table(tables, table_name)
        present = _columns_in(connection, table)
        for column in (table.c[name] for name in column_names if name not in present):
            ddl = sa.schema.CreateColumn(column).compile(dialect=connection.dialect)
            connection.execute(sa.text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}"))


def _drop_columns(connection: sa.Connection, tables: SystemTables, columns: dict[str, tuple[str, ...]]) -> None:
    preparer = connection.dialect.identifier_preparer
    for table_name, column_names in columns.items():
        table = _table(tables, table_name)
        present = _columns_in(connection, table)
        for name in (n for n in column_names if n in present):
            connection.execute(sa.text(f"ALTER TABLE {preparer.format_table(table)} DROP COLUMN {preparer.quote(name)}"))


def _add_v4(connection: sa.Connection, tables: SystemTables) -> None:
    _add_columns(connection, tables, _V4_COLUMNS)


def _drop_v4(connection: sa.Connection, tables: SystemTables) -> None:
    _drop_columns(connection, tables, _V4_COLUMNS)


# Step 5: fewer b-trees for each workflow row write. It drops three indexes that are prefixes of the
# step-3 keyset indexes (those serve every query they did) and keeps the rows without a queue, parent
# or fork (most workflows) out of four more. Steps 1-4 made these as listed here, over every row.
_V5_DROPPED: dict[str, tuple[str, ...]] = {
    "workflow_status_status_created": ("status", "created_at"),
    "workflow_status_created": ("created_at",),
    "workflow_status_name": ("name",),
}
_V5_PARTIAL: tuple[str, ...] = (
    "workflow_status_parent",
    "workflow_status_forked_from",
    "workflow_status_queue_created_uuid",
    "workflow_status_queue_status",
)


def _step_4_index(tables: SystemTables, name: str) -> sa.Index:
    """The index ``name`` as step 4 left it. Those step 5 changed are built on a copy of the table, so
    that the table above keeps one index per name (``_index`` finds them by name)."""
    if name not in _V5_DROPPED and name not in _V5_PARTIAL:
        return _index(tables, name)
    copy = tables.workflow_status.to_metadata(sa.MetaData())
    columns = _V5_DROPPED.get(name) or tuple(c.name for c in _index(tables, name).columns)
    return sa.Index(copy.name.removesuffix("workflow_status") + name, *(copy.c[c] for c in columns))


def _add_v5(connection: sa.Connection, tables: SystemTables) -> None:
    for name in _V5_DROPPED:
        _step_4_index(tables, name).drop(connection, checkfirst=True)
    for name in _V5_PARTIAL:
        _rebuild_index(connection, _index(tables, name))


def _drop_v5(connection: sa.Connection, tables: SystemTables) -> None:
    for name in _V5_PARTIAL:
        _rebuild_index(connection, _step_4_index(tables, name))
    for name in _V5_DROPPED:
        _step_4_index(tables, name).create(connection, checkfirst=True)


# version -> (upgrade to it, downgrade from it). Append; never edit a released step. Step 1 creates
# the tables as defined above, today's shape; each later step brings a database made by an older
# runtime up to it and must therefore be a no-op where its change is already there.
_STEPS: dict[int, tuple[Callable[[sa.Connection, SystemTables], None], Callable[[sa.Connection, SystemTables], None]]] = {
    1: (_create_v1, _drop_v1),
    2: (_add_queue_options_v2, _drop_queue_options_v2),
    3: (_add_v3, _drop_v3),
    4: (_add_v4, _drop_v4),
    5: (_add_v5, _drop_v5),
}


def current_version(connection: sa.Connection, pg_schema: str = DEFAULT_PG_SCHEMA) -> int:
    """The applied schema version, 0 when the system tables do not exist yet."""
    tables = system_tables(connection.dialect.name, pg_schema)
    inspector = sa.inspect(connection)
    if not inspector.has_table(tables.schema_version.name, schema=tables.pg_schema):
        return 0
    found = connection.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()
    return int(found or 0)


def _lock_for_migration(connection: sa.Connection) -> None:
    """Serialise migrations of one database; released when the enclosing transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    # SQLite: the caller's transaction began with BEGIN IMMEDIATE, which already excludes other writers.


def upgrade_system_schema(
    connection: sa.Connection, *, pg_schema: str = DEFAULT_PG_SCHEMA, target: int = SCHEMA_VERSION
) -> int:
    """Apply the missing steps up to ``target`` inside the caller's transaction; return the new version."""
    _lock_for_migration(connection)
    tables = system_tables(connection.dialect.name, pg_schema)
    version = current_version(connection, pg_schema)
    for step in range(version + 1, target + 1):
        _STEPS[step][0](connection, tables)
        connection.execute(tables.schema_version.delete())
        connection.execute(tables.schema_version.insert().values(version=step))
        version = step
    return version


def downgrade_system_schema(
    connection: sa.Connection, *, pg_schema: str = DEFAULT_PG_SCHEMA, target: int = 0
) -> int:
    """Undo steps down to ``target`` (0 drops every system table); return the new version."""
    _lock_for_migration(connection)
    tables = system_tables(connection.dialect.name, pg_schema)
    version = current_version(connection, pg_schema)
    for step in range(version, target, -1):
        _STEPS[step][1](connection, tables)
        version = step - 1
        if version:
            connection.execute(tables.schema_version.delete())
            connection.execute(tables.schema_version.insert().values(version=version))
    if version == 0 and tables.pg_schema and not sa.inspect(connection).get_table_names(schema=tables.pg_schema):
        # Only an empty schema is ours to drop: never take a user's objects with it.
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{tables.pg_schema}"'))
    return version
