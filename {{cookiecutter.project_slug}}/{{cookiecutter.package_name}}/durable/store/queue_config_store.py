"""The SQL of database-backed queues (``DBOS.register_queue``): one row of limits per queue name.

Rows go in and out as column dicts (``QueueSettings.to_row``/``from_row`` in ``queue_config.py``); the
dequeuer lists them every round, so a change made here reaches every process at its next round.
"""

from __future__ import annotations

from typing import Any

from .base import now_ms
from .database import Database

_COLUMNS = ("concurrency", "worker_concurrency", "rate_limit_max", "rate_limit_period_sec", "priority_enabled",
            "partition_queue", "partition_concurrency", "partition_worker_concurrency", "partition_rate_limit_max",
            "partition_rate_limit_period_sec", "polling_interval_sec")
_SELECT = f"SELECT name, {', '.join(_COLUMNS)} FROM {{queues}}"
_INSERT = (f"INSERT INTO {{queues}} (name, {', '.join(_COLUMNS)}, created_at, updated_at) "
           f"VALUES (?, {', '.join('?' * len(_COLUMNS))}, ?, ?) ON CONFLICT (name) DO NOTHING")
_UPDATE = f"UPDATE {{queues}} SET {', '.join(c + ' = ?' for c in _COLUMNS)}, updated_at = ? WHERE name = ?"
_DELETE = "DELETE FROM {queues} WHERE name = ?"
# The application version of the executor that started last: "the latest version" of a rolling deploy.
_LATEST_VERSION = "SELECT application_version FROM {executors} ORDER BY started_at DESC LIMIT 1"


class QueueConfigStore:
    """Rows of the ``queues`` table, on one database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        sql = db.dialect.sql
        self._select_all = sql(_SELECT + " ORDER BY name")
        self._select_one = sql(_SELECT + " WHERE name = ?")
        self._insert = sql(_INSERT)
        self._update = sql(_UPDATE)
        self._delete = sql(_DELETE)
        self._latest_version = sql(_LATEST_VERSION)

    @staticmethod
    def _values(row: dict[str, Any]) -> list[Any]:
        return [row[c] for c in _COLUMNS]

    def upsert(self, name: str, row: dict[str, Any], *, update: bool) -> bool:
        """Insert the queue; when it exists, replace its limits if ``update``. True if it was inserted."""
        values = self._values(row)
        now = now_ms()

        def work(cursor: Any) -> bool:
            cursor.execute(self._insert, (name, *values, now, now))
            if cursor.rowcount:
                return True
            if update:
                cursor.execute(self._update, (*values, now, name))
            return False

        return self.db.transaction(work)

    def update(self, name: str, row: dict[str, Any]) -> bool:
        """Replace a queue's limits; False if no such queue."""
        return self.db.execute(self._update, (*self._values(row), now_ms(), name)) > 0

    def get(self, name: str) -> dict[str, Any] | None:
        rows = self.db.fetch(self._select_one, (name,))
        return _columns(rows[0]) if rows else None

    def list(self) -> list[tuple[str, dict[str, Any]]]:
        return [(row[0], _columns(row)) for row in self.db.fetch(self._select_all, ())]

    def delete(self, name: str) -> bool:
        return self.db.execute(self._delete, (name,)) > 0

    def latest_application_version(self) -> str | None:
        rows = self.db.fetch(self._latest_version, ())
        return rows[0][0] if rows else None


def _columns(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_COLUMNS, row[1:], strict=True))
