"""The SQL of streams: append a value (or the close marker) to a workflow's stream, read one offset back.

An append takes the next offset of its (workflow, key) in the INSERT itself. Written from a workflow's
body it commits with that write's fenced step checkpoint, so a replay (which finds the checkpoint)
never appends twice and a fenced or cancelled workflow appends nothing. On PostgreSQL the same
transaction ``pg_notify``s the readers' key. Two writers racing for one offset (steps of one workflow
running in parallel) make one INSERT fail on the primary key; it is retried with the next offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import StepCheckpoint
from .checkpoint_store import CheckpointStore
from .database import Database
from .listener import NOTIFY_SQL

_APPEND = """
INSERT INTO {streams} (workflow_uuid, key, stream_offset, value, function_id)
SELECT ?, ?, COALESCE(MAX(stream_offset) + 1, 0), ?J, ? FROM {streams} WHERE workflow_uuid = ? AND key = ?"""
# A reader's tick: the value at its offset and the writer's status, from one snapshot.
_READ_OFFSET = """
SELECT w.status, s.stream_offset, s.value FROM {workflow_status} w
LEFT OUTER JOIN {streams} s ON s.workflow_uuid = w.workflow_uuid AND s.key = ? AND s.stream_offset = ?
WHERE w.workflow_uuid = ?"""
_ALL_ENTRIES = "SELECT key, value FROM {streams} WHERE workflow_uuid = ? ORDER BY key, stream_offset"
# Offset races retried before giving up (each retry sees the winner's row).
_APPEND_ATTEMPTS = 20


@dataclass(frozen=True)
class StreamRead:
    """What one offset of a stream holds now, and the writing workflow's status at that moment."""

    status: str
    found: bool  # a row exists at the offset
    value: str | None  # its JSON text; None with ``found`` is the close marker


class StreamStore:
    """Stream rows, on the system database's connections and retries."""

    def __init__(self, db: Database, checkpoints: CheckpointStore) -> None:
        self.db = db
        self._checkpoints = checkpoints
        dialect = db.dialect
        self.is_postgres = dialect.name == "postgresql"
        self._append = dialect.sql(_APPEND)
        self._read_offset = dialect.sql(_READ_OFFSET)
        self._all_entries = dialect.sql(_ALL_ENTRIES)
        self._notify = dialect.sql(NOTIFY_SQL) if self.is_postgres else None

    def append(
        self, workflow_id: str, key: str, value: str | None, function_id: int, wake_key: str,
        step: StepCheckpoint | None,
    ) -> bool:
        """Append ``value`` (None: the close marker) with the writing step's checkpoint; False if it was refused."""

        def work(cursor: Any) -> bool:
            if step is not None and not self._checkpoints.record_step_on(cursor, step):
                return False
            cursor.execute(self._append, (workflow_id, key, value, function_id, workflow_id, key))
            if self._notify is not None:
                cursor.execute(self._notify, (wake_key,))
            return True

        for attempt in range(_APPEND_ATTEMPTS):
            try:
                return self.db.transaction(work)
            except Exception as exc:
                if attempt + 1 == _APPEND_ATTEMPTS or not _is_offset_race(exc):
                    raise
        raise AssertionError("unreachable")

    def read_offset(self, workflow_id: str, key: str, offset: int) -> StreamRead | None:
        """The entry at ``offset`` and the workflow's status; None when the workflow does not exist."""
        rows = self.db.fetch(self._read_offset, (key, offset, workflow_id))
        if not rows:
            return None
        status, found_offset, value = rows[0]
        return StreamRead(str(status), found_offset is not None, value)

    def all_entries(self, workflow_id: str) -> dict[str, list[str]]:
        """Every stream of a workflow, each up to its close marker (later writes are not part of it)."""
        streams: dict[str, list[str]] = {}
        closed: set[str] = set()
        for key, value in self.db.fetch(self._all_entries, (workflow_id,)):
            entries = streams.setdefault(key, [])
            if key in closed:
                continue
            if value is None:
                closed.add(key)
            else:
                entries.append(value)
        return streams


def _is_offset_race(exc: BaseException) -> bool:
    """A primary-key clash on the offset; a missing workflow row (foreign key) is not retried."""
    original = getattr(exc, "orig", None) or exc
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    return "UNIQUE constraint failed" in str(original)
