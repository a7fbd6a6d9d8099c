"""Alembic's entry point: migrate the database the app itself would use."""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from {{ cookiecutter.package_name }}.db import ensure_sqlite_folder
from {{ cookiecutter.package_name }}.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The URL comes from Settings (DATABASE_URL or the default), never from alembic.ini, so migrations and
# the app cannot disagree about which database they mean.
DATABASE_URL = Settings.from_env().database_url
IS_SQLITE = DATABASE_URL.startswith("sqlite")


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=DATABASE_URL, literal_binds=True, render_as_batch=IS_SQLITE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    ensure_sqlite_folder(DATABASE_URL)
    engine = sa.create_engine(DATABASE_URL, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
            context.configure(connection=connection, render_as_batch=IS_SQLITE)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
