"""The SQL of schedules kept in the database (``DBOS.create_schedule`` and friends): one row per schedule name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from .base import now_ms
from .database import Database
from .queue_store import is_unique_violation


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule as stored; ``context`` is the codec's JSON text."""

    schedule_id: str
    schedule_name: str
    workflow_name: str
    workflow_class_name: str | None
    schedule: str
    status: str
    context: str | None
    last_fired_at: str | None
    automatic_backfill: bool
    cron_timezone: str | None
    queue_name: str | None


_COLUMNS = ", ".join(ScheduleRow.__dataclass_fields__)
_INSERT = f"INSERT INTO {{workflow_schedules}} ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A re-applied schedule keeps its ID and its run-time state (paused or not, when it last fired).
_UPSERT = _INSERT + """
ON CONFLICT (schedule_name) DO UPDATE SET workflow_name = excluded.workflow_name,
    workflow_class_name = excluded.workflow_class_name, schedule = excluded.schedule, context = excluded.context,
    automatic_backfill = excluded.automatic_backfill, cron_timezone = excluded.cron_timezone,
    queue_name = excluded.queue_name"""
_SELECT = f"SELECT {_COLUMNS} FROM {{workflow_schedules}}"
_GET = _SELECT + " WHERE schedule_name = ?"
_DELETE = "DELETE FROM {workflow_schedules} WHERE schedule_name = ?"
_SET_STATUS = "UPDATE {workflow_schedules} SET status = ? WHERE schedule_name = ?"
_SET_LAST_FIRED = "UPDATE {workflow_schedules} SET last_fired_at = ? WHERE schedule_name = ?"


class ScheduleExistsError(Exception):
    """Another schedule already has this name."""


class ScheduleStore:
    """Schedules on the system database's connections and retries."""

    def __init__(self, db: Database) -> None:
        self.db = db
        sql = db.dialect.sql
        self._insert, self._upsert, self._get = sql(_INSERT), sql(_UPSERT), sql(_GET)
        self._delete, self._set_status, self._set_last_fired = sql(_DELETE), sql(_SET_STATUS), sql(_SET_LAST_FIRED)
        self._select = _SELECT
        self._sql = sql

    @staticmethod
    def _params(row: ScheduleRow) -> tuple[Any, ...]:
        values = list(astuple(row))
        values[8] = 1 if row.automatic_backfill else 0  # an integer: the same SQL on both databases
        return (*values, now_ms())

    @staticmethod
    def _row(values: Sequence[Any]) -> ScheduleRow:
        fields = list(values)
        fields[8] = bool(fields[8])
        return ScheduleRow(*fields)

    def create(self, row: ScheduleRow) -> None:
        """Insert a new schedule; raise ``ScheduleExistsError`` if its name is taken."""
        try:
            self.db.execute(self._insert, self._params(row))
        except Exception as exc:
            if is_unique_violation(exc):
                raise ScheduleExistsError(row.schedule_name) from exc
            raise

    def upsert(self, rows: Sequence[ScheduleRow]) -> None:
        """Create or replace the definitions of these schedules, all in one transaction."""
        params = [self._params(row) for row in rows]

        def work(cursor: Any) -> None:
            for values in params:
                cursor.execute(self._upsert, values)

        self.db.transaction(work)

    def get(self, name: str) -> ScheduleRow | None:
        found = self.db.fetch(self._get, (name,))
        return self._row(found[0]) if found else None

    def list(self, *, status: Sequence[str] | None = None, workflow_name: Sequence[str] | None = None,
             name_prefix: Sequence[str] | None = None) -> list[ScheduleRow]:
        """Schedules matching every filter given (each a list of accepted values), by name."""
        where: list[str] = []
        params: list[Any] = []
        for column, values in (("status", status), ("workflow_name", workflow_name)):
            if values is not None:
                if not values:
                    return []
                where.append(f"{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if name_prefix is not None:
            if not name_prefix:
                return []
            # substr, not LIKE: a prefix may hold % or _ and must match literally.
            where.append("(" + " OR ".join("substr(schedule_name, 1, ?) = ?" for _ in name_prefix) + ")")
            for prefix in name_prefix:
                params.extend((len(prefix), prefix))
        text = self._select + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at, schedule_name"
        return [self._row(r) for r in self.db.fetch(self._sql(text), params)]

    def delete(self, name: str) -> None:
        self.db.execute(self._delete, (name,))

    def set_status(self, name: str, status: str) -> None:
        self.db.execute(self._set_status, (status, name))

    def set_last_fired(self, name: str, fired_at: str) -> None:
        self.db.execute(self._set_last_fired, (fired_at, name))
