"""System tables: versioned steps shared by Alembic and launch; run_migrations on and off."""

from __future__ import annotations

import re
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
            assert upgrade_system_schema(conn, target=2) == 2
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


# Step 2's shape, frozen: step 3 must add exactly what is beyond it, and remove it again.
STEP_2_TABLES = {
    "workflow_status": {
        "workflow_uuid", "status", "name", "class_name", "config_name", "inputs", "output", "error", "request",
        "executor_id", "owner_generation", "application_version", "application_id", "workflow_version",
        "recovery_attempts", "queue_name", "priority", "deduplication_id", "queue_partition_key",
        "started_at_epoch_ms", "parent_workflow_id", "workflow_timeout_ms", "workflow_deadline_epoch_ms",
        "created_at", "updated_at", "completed_at",
    },
    "operation_outputs": {
        "workflow_uuid", "function_id", "function_name", "output", "error", "child_workflow_id",
        "started_at_epoch_ms", "completed_at_epoch_ms",
    },
    "executors": {"executor_id", "hostname", "pid", "application_version", "started_at", "heartbeat_at"},
    "idempotency_keys": {
        "idempotency_key", "fingerprint", "method", "path", "state", "executor_id", "response_status",
        "response_headers", "response_body", "created_at", "expires_at",
    },
    "notifications": {
        "message_seq", "message_uuid", "destination_uuid", "topic", "message", "consumed", "created_at_epoch_ms",
    },
    "workflow_events": {"workflow_uuid", "key", "value"},
    "workflow_events_history": {"workflow_uuid", "function_id", "key", "value"},
    "schema_version": {"version"},
}


def shape(engine: sa.Engine) -> dict[str, set[str]]:
    """Each system table's columns and indexes (indexes as ``index:<name>``), prefix removed."""
    inspector = sa.inspect(engine)
    schema = "dbos" if engine.dialect.name == "postgresql" else None
    found: dict[str, set[str]] = {}
    for table in inspector.get_table_names(schema=schema):
        if schema or table.startswith("dbos_"):
            columns = {c["name"] for c in inspector.get_columns(table, schema=schema)}
            indexes = {"index:" + str(i["name"]).removeprefix("dbos_") for i in inspector.get_indexes(table, schema=schema)}
            found[table.removeprefix("dbos_")] = columns | indexes
    return found


def test_step_3_adds_and_removes_exactly_what_is_beyond_step_2(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            upgrade_system_schema(conn)
        fresh = shape(engine)
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=2) == 2
        step_2 = shape(engine)
        assert {t: {c for c in cols if not c.startswith("index:")} for t, cols in step_2.items()} == STEP_2_TABLES
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == SCHEMA_VERSION
        assert shape(engine) == fresh  # a step-2 database brought up equals one made today
    finally:
        engine.dispose()



# Step 3's shape of the step table, frozen: step 4 adds the steps' inputs beyond it, and removes them.
STEP_3_OPERATION_OUTPUTS = STEP_2_TABLES["operation_outputs"] | {"attempts"}


def test_step_4_adds_and_removes_the_steps_inputs(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            upgrade_system_schema(conn)
        fresh = shape(engine)
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=4) == 4
        step_4 = shape(engine)
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=3) == 3
        step_3 = shape(engine)
        assert {c for c in step_3["operation_outputs"] if not c.startswith("index:")} == STEP_3_OPERATION_OUTPUTS
        assert {t: c for t, c in step_3.items() if t != "operation_outputs"} == {
            t: c for t, c in step_4.items() if t != "operation_outputs"}
        with engine.begin() as conn:
            assert upgrade_system_schema(conn, target=4) == 4
        assert shape(engine) == step_4
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == SCHEMA_VERSION
        assert shape(engine) == fresh  # a step-3 database brought up equals one made today
    finally:
        engine.dispose()


# Step 4's indexes of workflow_status, frozen: name -> columns. Only these two were partial then.
STEP_4_WORKFLOW_INDEXES = {
    "workflow_status_status_created": ["status", "created_at"],
    "workflow_status_executor_status": ["executor_id", "status"],
    "workflow_status_created": ["created_at"],
    "workflow_status_name": ["name"],
    "workflow_status_queue_status": ["queue_name", "status", "priority", "created_at"],
    "workflow_status_schedule_name": ["schedule_name", "created_at"],
    "workflow_status_queue_dedup": ["queue_name", "deduplication_id"],
    "workflow_status_parent": ["parent_workflow_id"],
    "workflow_status_forked_from": ["forked_from"],
    "workflow_status_created_uuid": ["created_at", "workflow_uuid"],
    "workflow_status_status_created_uuid": ["status", "created_at", "workflow_uuid"],
    "workflow_status_name_created_uuid": ["name", "created_at", "workflow_uuid"],
    "workflow_status_queue_created_uuid": ["queue_name", "created_at", "workflow_uuid"],
}
STEP_4_PARTIAL = {"workflow_status_schedule_name", "workflow_status_queue_dedup"}
# Step 5 drops three of them and keeps rows without the leading column out of four.
STEP_5_DROPPED = {"workflow_status_status_created", "workflow_status_created", "workflow_status_name"}
STEP_5_PARTIAL = {
    "workflow_status_parent": "parent_workflow_id IS NOT NULL",
    "workflow_status_forked_from": "forked_from IS NOT NULL",
    "workflow_status_queue_created_uuid": "queue_name IS NOT NULL",
    "workflow_status_queue_status": "queue_name IS NOT NULL",
}


def workflow_indexes(engine: sa.Engine) -> dict[str, tuple[list[str], str | None]]:
    """workflow_status's indexes, prefix removed: name -> (columns, predicate or None)."""
    is_pg = engine.dialect.name == "postgresql"
    table, schema = ("workflow_status", "dbos") if is_pg else ("dbos_workflow_status", None)
    definitions = (
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'dbos' AND tablename = 'workflow_status'"
        if is_pg else
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dbos_workflow_status'")
    with engine.connect() as conn:
        predicates = {}
        for name, sql in conn.execute(sa.text(definitions)):
            where = re.search(r" WHERE (.*)$", sql or "")
            predicates[name] = where.group(1).strip().removeprefix("(").removesuffix(")") if where else None
        return {str(i["name"]).removeprefix("dbos_"): (list(i["column_names"]), predicates[i["name"]])
                for i in sa.inspect(conn).get_indexes(table, schema=schema)}


def test_step_5_drops_three_indexes_and_makes_four_partial(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert upgrade_system_schema(conn, target=5) == 5
        fresh = workflow_indexes(engine)  # step 5's
        assert set(fresh) == set(STEP_4_WORKFLOW_INDEXES) - STEP_5_DROPPED
        assert {n: fresh[n][1] for n in STEP_5_PARTIAL} == STEP_5_PARTIAL
        assert {n: c for n, (c, _) in fresh.items()} == {
            n: c for n, c in STEP_4_WORKFLOW_INDEXES.items() if n not in STEP_5_DROPPED}

        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=4) == 4
        step_4 = workflow_indexes(engine)
        assert {n: c for n, (c, _) in step_4.items()} == STEP_4_WORKFLOW_INDEXES
        assert {n for n, (_, where) in step_4.items() if where} == STEP_4_PARTIAL
        assert {n: step_4[n] for n in STEP_4_PARTIAL} == {n: fresh[n] for n in STEP_4_PARTIAL}  # untouched

        with engine.begin() as conn:  # 4 -> 5, and 3 -> 5
            assert upgrade_system_schema(conn, target=5) == 5
        assert workflow_indexes(engine) == fresh
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=3) == 3
        assert workflow_indexes(engine) == step_4
        with engine.begin() as conn:
            assert upgrade_system_schema(conn, target=5) == 5
        assert workflow_indexes(engine) == fresh

        with engine.begin() as conn:  # step 3 makes its indexes as step 4 had them, from step 2
            assert downgrade_system_schema(conn, target=2) == 2
            assert upgrade_system_schema(conn, target=4) == 4
        assert workflow_indexes(engine) == step_4
        with engine.begin() as conn:
            assert upgrade_system_schema(conn, target=5) == 5
        assert workflow_indexes(engine) == fresh
    finally:
        engine.dispose()


# Step 6 keeps rows without a deduplication ID out of the unique deduplication index.
STEP_5_DEDUP = "status IN 'DELAYED', 'ENQUEUED', 'PENDING'"
STEP_6_DEDUP = "deduplication_id IS NOT NULL AND status IN 'DELAYED', 'ENQUEUED', 'PENDING'"


def normalized(predicate: str | None) -> str:
    """PostgreSQL prints IN as ``= ANY (ARRAY[...])``, with casts and parentheses: compare both without them."""
    return re.sub(r"::text|[()\[\]]|ARRAY", "", predicate or "").replace("= ANY ", "IN ")


def test_step_6_keeps_rows_without_a_deduplication_id_out_of_its_index(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == SCHEMA_VERSION == 6
        fresh = workflow_indexes(engine)
        assert normalized(fresh["workflow_status_queue_dedup"][1]) == STEP_6_DEDUP
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=5) == 5
        step_5 = workflow_indexes(engine)
        assert normalized(step_5["workflow_status_queue_dedup"][1]) == STEP_5_DEDUP
        assert {n: i for n, i in step_5.items() if n != "workflow_status_queue_dedup"} == {
            n: i for n, i in fresh.items() if n != "workflow_status_queue_dedup"}
        with engine.begin() as conn:  # 5 -> 6, and 2 -> 6
            assert upgrade_system_schema(conn) == 6
        assert workflow_indexes(engine) == fresh
        with engine.begin() as conn:
            assert downgrade_system_schema(conn, target=2) == 2
            assert upgrade_system_schema(conn, target=5) == 5
        assert workflow_indexes(engine) == step_5
        with engine.begin() as conn:
            assert upgrade_system_schema(conn) == 6
        assert workflow_indexes(engine) == fresh
    finally:
        engine.dispose()


@DBOS.step()
def add_one(n: int) -> int:
    return n + 1


@DBOS.workflow()
def counts_up(n: int) -> int:
    return add_one(n)


def test_launch_brings_a_step_3_database_up_and_steps_record_their_inputs(database_url: str) -> None:
    """No Alembic: launch (run_migrations on, the default) applies step 4 itself."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            upgrade_system_schema(conn, target=3)
    finally:
        engine.dispose()
    DBOS.destroy()
    DBOS(config=make_config(database_url))
    DBOS.launch()
    try:
        from durable import overview

        assert counts_up(41) == 42
        [workflow] = DBOS.list_workflows(name=counts_up.__qualname__)
        assert overview.step_inputs(workflow.workflow_id) == {1: {"args": [41], "kwargs": {}}}
    finally:
        DBOS.destroy()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert current_version(conn) == SCHEMA_VERSION
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
