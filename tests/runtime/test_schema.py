"""System tables: versioned steps shared by Alembic and launch; run_migrations on and off."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import RUNTIME_PARENT, make_config
from durable import DBOS, error
from durable.schema import SCHEMA_VERSION, current_version, downgrade_system_schema, upgrade_system_schema
from parallel import in_processes


def test_launch_refuses_a_missing_schema_when_it_may_not_migrate(database_url: str) -> None:
    DBOS.destroy()
    DBOS(config=make_config(database_url, run_migrations=False))
    try:
        with pytest.raises(error.DBOSInitializationError, match="alembic upgrade head"):
            DBOS.launch()
    finally:
        DBOS.destroy()


def test_upgrade_and_downgrade_are_reversible_and_idempotent(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == SCHEMA_VERSION
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == SCHEMA_VERSION  # nothing left to do
        names = set(sa.inspect(engine).get_table_names(schema="dbos" if engine.dialect.name == "postgresql" else None))
        assert {"workflow_status", "operation_outputs", "executors"} <= {n.removeprefix("dbos_") for n in names}
        with engine.begin() as conn:
            assert downgrade_system_schema(conn) == 0
        with engine.connect() as conn:
            assert current_version(conn) == 0
    finally:
        engine.dispose()


def test_a_database_made_by_the_first_release_is_brought_up_to_date(database_url: str) -> None:
    """Version 1 as it first shipped had no partition keys and no deduplication index; step 2 adds them."""
    engine = sa.create_engine(database_url)
    is_pg = engine.dialect.name == "postgresql"
    table, index = ("dbos.workflow_status", "dbos.workflow_status_queue_dedup") if is_pg else (
        "dbos_workflow_status", "dbos_workflow_status_queue_dedup")
    try:
        with engine.begin() as conn:
            upgrade_system_schema(conn, target=1)
            conn.exec_driver_sql(f"DROP INDEX {index}")
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN queue_partition_key")
        with engine.begin() as conn:
            assert current_version(conn) == 1
            assert upgrade_system_schema(conn) == SCHEMA_VERSION == 2
        schema = "dbos" if is_pg else None
        columns = {c["name"] for c in sa.inspect(engine).get_columns(table.rpartition(".")[2], schema=schema)}
        assert "queue_partition_key" in columns
        indexes = {i["name"]: i for i in sa.inspect(engine).get_indexes(table.rpartition(".")[2], schema=schema)}
        assert indexes[index.rpartition(".")[2]]["unique"]
        with engine.begin() as conn:  # and back: version 1's shape again, then nothing
            assert downgrade_system_schema(conn, target=1) == 1
            assert downgrade_system_schema(conn) == 0
    finally:
        engine.dispose()


LAUNCHER = f"""
import sys
sys.path.insert(0, {str(RUNTIME_PARENT)!r})
from durable import DBOS, DBOSConfig
DBOS(config=DBOSConfig(name="race", application_database_url=sys.argv[1]))
DBOS.launch()
DBOS.destroy()
print("launched")
"""


def test_workers_launching_together_migrate_once(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    results = in_processes(script, [database_url], count=4, timeout=60)
    assert [p.returncode for p in results] == [0, 0, 0, 0], [p.stderr for p in results]
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert current_version(conn) == SCHEMA_VERSION
    finally:
        engine.dispose()
