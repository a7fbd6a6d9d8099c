"""The application database: one engine per app, created on first use, never at import."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session, sessionmaker

from .durable.runtime import create_app_engine

EXTENSION_KEY = "database"


class Database:
    """A lazily created engine and session factory for one URL.

    Lazy because gunicorn may fork after ``create_app``: a connection pool must not cross a fork.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            ensure_sqlite_folder(self.url)
            # The runtime's factory: on SQLite, WAL, a busy timeout and BEGIN IMMEDIATE, so that several
            # gunicorn workers writing at once wait for the lock instead of failing "database is locked".
            self._engine = create_app_engine(self.url, pool_pre_ping=True)
        return self._engine

    def session(self) -> Session:
        """A new ORM session; use it as a context manager."""
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        return self._sessions()

    def dispose(self) -> None:
        """Close pooled connections (after a fork, or when the app is torn down in tests)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._sessions = None


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file: SQLite creates the file but not its folder."""
    if not url.startswith("sqlite"):
        return
    parsed = sa.make_url(url)
    if parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def init_app(app: Flask, url: str) -> Database:
    """Attach a Database for ``url`` to ``app``."""
    database = Database(url)
    app.extensions[EXTENSION_KEY] = database
    return database


def get_db() -> Database:
    """The current app's Database (inside a request or app context)."""
    database: Database = current_app.extensions[EXTENSION_KEY]
    return database
