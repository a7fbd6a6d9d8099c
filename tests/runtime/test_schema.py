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
