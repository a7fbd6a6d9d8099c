"""Make many workflow rows fast: clone a real one with SQL, in every system table that names it.

Cloning a row the runtime itself wrote (rather than writing our own INSERT) keeps this independent
of each runtime's columns: ours, DBOS 2.x and DBOS 3.x (which keeps inputs in a table of its own).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from adapters import Runtime

ID_COLUMN = "workflow_uuid"


def workflow_tables(rt: Runtime, conn: sa.Connection) -> list[tuple[str, list[str]]]:
    """(quoted table name, columns) for each system table with a workflow_uuid column."""
    found: list[tuple[str, list[str]]] = []
    if rt.url.startswith("postgresql"):
        rows = conn.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'dbos' "
            "ORDER BY table_name, ordinal_position").all()
        tables: dict[str, list[str]] = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        for table, columns in tables.items():
            if ID_COLUMN in columns:
                found.append((f'dbos."{table}"', columns))
        return found
    names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in names:
        if not table.startswith(rt.table_prefix):
            continue
        columns = [r[1] for r in conn.exec_driver_sql(f'PRAGMA table_info("{table}")')]
        if ID_COLUMN in columns:
            found.append((f'"{table}"', columns))
    return found


def clone_workflow(rt: Runtime, template_id: str, count: int, prefix: str,
                   overrides: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()) -> None:
    """Insert ``count`` copies of workflow ``template_id`` named ``prefix`` + 1..count.

    ``overrides`` maps a column to an SQL expression over the copy number ``g.i`` (e.g. status).
    Tables whose name contains one of ``skip`` are left alone.
    """
    overrides = dict(overrides or {})
    is_pg = rt.url.startswith("postgresql")
    engine = rt.sql_engine()
    with engine.begin() as conn:
        for table, columns in workflow_tables(rt, conn):
            if any(s in table for s in skip):
                continue
            exprs = []
            for column in columns:
                if column == ID_COLUMN:
                    exprs.append(f"'{prefix}' || g.i")
                elif column in overrides and column in columns:
                    exprs.append(overrides[column])
                elif column in ("created_at", "updated_at"):
                    exprs.append(f'"{column}" + g.i')  # distinct, increasing: what real traffic looks like
                else:
                    exprs.append(f't."{column}"')
            names = ", ".join(f'"{c}"' for c in columns)
            select = f"SELECT {', '.join(exprs)} FROM {table} t"
            if is_pg:
                sql = (f"INSERT INTO {table} ({names}) {select} CROSS JOIN generate_series(1, {int(count)}) AS g(i) "
                       f"WHERE t.{ID_COLUMN} = %(tpl)s")
            else:
                sql = (f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {int(count)}) "
                       f"INSERT INTO {table} ({names}) {select} CROSS JOIN g WHERE t.{ID_COLUMN} = :tpl")
            conn.execute(sa.text(sql.replace("%(tpl)s", ":tpl")), {"tpl": template_id})
    with engine.connect() as conn:  # fresh statistics, as autovacuum would have after real traffic
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    engine.dispose()


def count_status(rt: Runtime, engine: sa.Engine, status: str) -> int:
    """Workflows in ``status``, through the caller's ``engine`` (polled often: making one costs more than the count)."""
    with engine.connect() as conn:
        sql = f"SELECT count(*) FROM {quoted(rt, 'workflow_status')} WHERE status = '{status}'"
        return int(conn.exec_driver_sql(sql).scalar() or 0)


def quoted(rt: Runtime, name: str) -> str:
    return f'dbos."{name}"' if rt.url.startswith("postgresql") else f'"{rt.table_prefix}{name}"'
