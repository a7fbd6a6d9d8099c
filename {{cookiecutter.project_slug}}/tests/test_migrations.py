from __future__ import annotations

import importlib.util

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

HAS_EXAMPLE = importlib.util.find_spec("{{ cookiecutter.package_name }}.orders") is not None


def table_names(database_url: str) -> set[str]:
    """Every table in the database, schema-qualified outside PostgreSQL's public schema."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        names = set(inspector.get_table_names())
        if engine.dialect.name == "postgresql":
            for schema in inspector.get_schema_names():
                if schema not in ("public", "information_schema") and not schema.startswith("pg_"):
                    names |= {f"{schema}.{table}" for table in inspector.get_table_names(schema=schema)}
        return names - {"alembic_version"}
    finally:
        engine.dispose()


def test_revisions_form_one_line(alembic_config: Config) -> None:
    assert len(ScriptDirectory.from_config(alembic_config).get_heads()) == 1


def test_upgrade_creates_the_tables_and_downgrade_removes_them(
    alembic_config: Config, database_url: str
) -> None:
    command.upgrade(alembic_config, "head")
    created = table_names(database_url)
    assert any(name.endswith("workflow_status") for name in created), created
    assert ("orders" in created) is HAS_EXAMPLE

    command.downgrade(alembic_config, "base")
    assert table_names(database_url) == set()

    command.upgrade(alembic_config, "head")
    assert table_names(database_url) == created
