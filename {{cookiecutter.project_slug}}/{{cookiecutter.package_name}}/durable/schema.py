"""The runtime's system tables: their versioned migrations.

Both the project's Alembic revision (``migrations/versions/0001_durable_system_tables.py``) and
``DBOS.launch()`` (when ``run_migrations`` is on) apply the same numbered steps and record the result
in one ``schema_version`` table, so whichever runs first does the work and the other sees it done.
The tables' definitions, today's shape, are in ``system_tables.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from .store.dialects import DEFAULT_PG_SCHEMA, SQLITE_PREFIX
from .system_tables import SystemTables, system_tables

#: The version this build of the runtime needs; launch refuses an older schema when it may not migrate.
SCHEMA_VERSION = 6

# A fixed key for pg_advisory_xact_lock, so that workers starting together migrate one at a time.
_MIGRATION_LOCK_KEY = 0x64626F73  # "dbos"
# The deduplication index's predicate as steps 2 and 3 made it (``system_tables.DEDUPLICATING_ROW`` today):
# step 2's had no DELAYED (which did not exist yet), and both held the rows without an ID too.
_STEP_2_ACTIVE_QUEUE_ROW = sa.text("status IN ('ENQUEUED', 'PENDING')")
_STEP_3_ACTIVE_QUEUE_ROW = sa.text("status IN ('DELAYED', 'ENQUEUED', 'PENDING')")


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
    _dedup_index_as(tables, _STEP_2_ACTIVE_QUEUE_ROW).create(connection, checkfirst=True)


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
    _rebuild_index(connection, _dedup_index_as(tables, _STEP_3_ACTIVE_QUEUE_ROW))


def _rebuild_index(connection: sa.Connection, index: sa.Index) -> None:
    """Replace the index of that name by ``index`` (same name, another predicate)."""
    index.drop(connection, checkfirst=True)
    index.create(connection)


def _dedup_index_as(tables: SystemTables, where: sa.TextClause) -> sa.Index:
    """The deduplication index with an earlier step's predicate, on a copy of the table (as ``_step_4_index``)."""
    copy = tables.workflow_status.to_metadata(sa.MetaData())
    return sa.Index(_dedup_index(tables).name, copy.c.queue_name, copy.c.deduplication_id, unique=True,
                    postgresql_where=where, sqlite_where=where)


def _drop_v3(connection: sa.Connection, tables: SystemTables) -> None:
    _rebuild_index(connection, _dedup_index_as(tables, _STEP_2_ACTIVE_QUEUE_ROW))
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


# Step 6: rows without a deduplication ID (nearly all) leave the unique deduplication index, which
# they entered when inserted and left at their end: two index writes fewer for each workflow.
def _add_v6(connection: sa.Connection, tables: SystemTables) -> None:
    _rebuild_index(connection, _dedup_index(tables))


def _drop_v6(connection: sa.Connection, tables: SystemTables) -> None:
    _rebuild_index(connection, _dedup_index_as(tables, _STEP_3_ACTIVE_QUEUE_ROW))


# version -> (upgrade to it, downgrade from it). Append; never edit a released step. Step 1 creates
# the tables as defined above, today's shape; each later step brings a database made by an older
# runtime up to it and must therefore be a no-op where its change is already there.
_STEPS: dict[int, tuple[Callable[[sa.Connection, SystemTables], None], Callable[[sa.Connection, SystemTables], None]]] = {
    1: (_create_v1, _drop_v1),
    2: (_add_queue_options_v2, _drop_queue_options_v2),
    3: (_add_v3, _drop_v3),
    4: (_add_v4, _drop_v4),
    5: (_add_v5, _drop_v5),
    6: (_add_v6, _drop_v6),
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
