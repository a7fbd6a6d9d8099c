"""Fixtures: a private database per test (SQLite, or PostgreSQL via TEST_DATABASE_URL), a migrated app, a client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.db import get_db
from {{ cookiecutter.package_name }}.durable import DBOS
from {{ cookiecutter.package_name }}.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_server_url() -> sa.URL | None:
    """TEST_DATABASE_URL as a psycopg 3 URL, or None to test on SQLite."""
    raw = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not raw:
        return None
    url = sa.make_url(raw)
    if url.get_backend_name() != "postgresql":
        pytest.fail(
            f"TEST_DATABASE_URL={raw!r} is not a PostgreSQL URL; use postgresql+psycopg://user@host:5432/postgres"
        )
    return url.set(drivername="postgresql+psycopg")


def connect_or_give_up(engine: sa.Engine) -> sa.Connection:
    """Connect; when the server is down, fail under CI (a skip would hide it) and skip elsewhere."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL at {engine.url.render_as_string()} is unreachable: {exc.orig}"
        if IS_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test only, removed afterwards."""
    server = postgres_server_url()
    if server is None:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    with connect_or_give_up(admin) as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def alembic_config(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Alembic pointed at this test's database the way production does it: through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep pytest's log capture
    return config


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    """The settings the ``app`` fixture builds with; a test module overrides this to turn one on."""
    return Settings(database_url=database_url, log_level="WARNING")


@pytest.fixture
def app(alembic_config: Config, app_settings: Settings) -> Iterator[Flask]:
    """The app on a migrated private database; the runtime is destroyed afterwards."""
    command.upgrade(alembic_config, "head")
    app = create_app(app_settings)
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        DBOS.destroy()
        with app.app_context():
            get_db().dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
