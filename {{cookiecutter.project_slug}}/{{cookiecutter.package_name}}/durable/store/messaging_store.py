"""The SQL of messages (send/recv) and events (set_event/get_event).

A write that is also a workflow's step commits together with that step's checkpoint, in one short
transaction: the fenced checkpoint INSERT goes first, so a fenced or cancelled workflow writes
nothing, and a replay that finds the checkpoint never writes twice. On PostgreSQL the same
transaction ``pg_notify``s the waiters' key, delivered at commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .base import WORKFLOW_EXISTS, StepCheckpoint, now_ms
from .checkpoint_store import CheckpointStore
from .database import Database
from .listener import NOTIFY_SQL

# DBOS's spelling of "no topic", so topic-less messages and explicit topics never mix.
NULL_TOPIC = "__null__topic"

_INSERT_MESSAGE = """
INSERT INTO {notifications} (message_uuid, destination_uuid, topic, message, consumed, created_at_epoch_ms)
SELECT ?, ?, ?, ?J, 0, ? WHERE EXISTS (SELECT 1 FROM {workflow_status} WHERE workflow_uuid = ?)
ON CONFLICT (message_uuid) DO NOTHING"""
# The oldest unconsumed message of a topic, taken in one statement.
_CONSUME_MESSAGE = """
UPDATE {notifications} SET consumed = 1
WHERE consumed = 0 AND message_seq = (
    SELECT message_seq FROM {notifications} WHERE destination_uuid = ? AND topic = ? AND consumed = 0
    ORDER BY message_seq LIMIT 1)
RETURNING message"""
# What a waiting recv re-reads: is its workflow still running here, and is there a message?
_RECV_STATE = """
SELECT status, owner_generation, workflow_deadline_epoch_ms, EXISTS (
    SELECT 1 FROM {notifications} WHERE destination_uuid = ? AND topic = ? AND consumed = 0)
FROM {workflow_status} WHERE workflow_uuid = ?"""
_WORKFLOW_STATE = "SELECT status, owner_generation, workflow_deadline_epoch_ms FROM {workflow_status} WHERE workflow_uuid = ?"
_GET_EVENT = "SELECT value FROM {workflow_events} WHERE workflow_uuid = ? AND key = ?"
_SET_EVENT = """
INSERT INTO {workflow_events} (workflow_uuid, key, value) VALUES (?, ?, ?J)
ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = excluded.value"""
_RECORD_EVENT_HISTORY = """
INSERT INTO {workflow_events_history} (workflow_uuid, function_id, key, value) VALUES (?, ?, ?, ?J)
ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = excluded.value"""


@dataclass(frozen=True)
class StoredStatus:
    """What a waiting workflow checks after each wake-up: is it still PENDING at its generation?"""

    status: str
    owner_generation: int
    deadline_epoch_ms: int | None


class MessagingStore:
    """Messages and events, on the system database's connections and retries."""

    def __init__(self, db: Database, checkpoints: CheckpointStore) -> None:
        self.db = db
        self._checkpoints = checkpoints  # a write that is a step commits with the step's checkpoint
        dialect = db.dialect
        self.is_postgres = dialect.name == "postgresql"
        self._insert_message = dialect.sql(_INSERT_MESSAGE)
        self._workflow_exists = dialect.sql(WORKFLOW_EXISTS)
        self._consume_message = dialect.sql(_CONSUME_MESSAGE)
        self._recv_state = dialect.sql(_RECV_STATE)
        self._workflow_state = dialect.sql(_WORKFLOW_STATE)
        self._get_event = dialect.sql(_GET_EVENT)
        self._set_event = dialect.sql(_SET_EVENT)
        self._record_event_history = dialect.sql(_RECORD_EVENT_HISTORY)
        self._notify = dialect.sql(NOTIFY_SQL) if self.is_postgres else None

    def _notify_in(self, cursor: Any, wake_key: str) -> None:
        if self._notify is not None:
            cursor.execute(self._notify, (wake_key,))

    def _record_step_on(self, cursor: Any, step: StepCheckpoint | None) -> bool:
        """Insert the fenced checkpoint of the step this write belongs to; False if refused."""
        return step is None or self._checkpoints.record_step_on(cursor, step)

    # -- messages -------------------------------------------------------------------------------------

    def send(
        self, message_uuid: str, destination_id: str, topic: str, message: str, wake_key: str,
        step: StepCheckpoint | None,
    ) -> str:
        """Store a message once per ``message_uuid``, with the sending step's checkpoint if any.

        Returns "sent", "duplicate" (this uuid was stored before), "refused" (the step's checkpoint
        was refused: nothing written) or "no-destination".
        """

        def work(cursor: Any) -> str:
            if not self._record_step_on(cursor, step):
                return "refused"
            cursor.execute(self._insert_message,
                           (message_uuid, destination_id, topic, message, now_ms(), destination_id))
            if cursor.rowcount:
                self._notify_in(cursor, wake_key)
                return "sent"
            cursor.execute(self._workflow_exists, (destination_id,))
            if cursor.fetchone() is None:
                raise _NoDestination()
            return "duplicate"

        try:
            return self.db.transaction(work)
        except _NoDestination:
            return "no-destination"

    def recv_state(self, workflow_id: str, topic: str) -> tuple[StoredStatus | None, bool]:
        """The receiving workflow's state, and whether a message waits on ``topic``."""
        rows = self.db.fetch(self._recv_state, (workflow_id, topic, workflow_id))
        if not rows:
            return None, False
        status, generation, deadline, has_message = rows[0]
        return StoredStatus(status, int(generation), deadline), bool(has_message)

    def consume(
        self, workflow_id: str, topic: str, step_of: Callable[[str | None], StepCheckpoint], *, final: bool
    ) -> tuple[str, str | None]:
        """Take the oldest message of ``topic`` and checkpoint it as the recv step, in one transaction.

        ``step_of(message)`` builds the recv step's checkpoint. Without a message nothing is written
        unless ``final`` (the timeout passed): then the step records None. Returns ("taken", text),
        ("empty", None) or ("refused", None) when the checkpoint was refused (nothing consumed).
        """

        def work(cursor: Any) -> tuple[str, str | None]:
            cursor.execute(self._consume_message, (workflow_id, topic))
            row = cursor.fetchone()
            message = row[0] if row is not None else None
            if message is None and not final:
                return "empty", None
            if not self._record_step_on(cursor, step_of(message)):
                raise _Refused()
            return "taken", message

        try:
            return self.db.transaction(work)
        except _Refused:
            return "refused", None

    def workflow_state(self, workflow_id: str) -> StoredStatus | None:
        rows = self.db.fetch(self._workflow_state, (workflow_id,))
        return StoredStatus(rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None

    # -- events ---------------------------------------------------------------------------------------

    def set_event(
        self, workflow_id: str, function_id: int, key: str, value: str, wake_key: str, step: StepCheckpoint | None
    ) -> bool:
        """Set an event's latest value and its history row, with the step's checkpoint; False if refused."""

        def work(cursor: Any) -> bool:
            if not self._record_step_on(cursor, step):
                return False
            cursor.execute(self._record_event_history, (workflow_id, function_id, key, value))
            cursor.execute(self._set_event, (workflow_id, key, value))
            self._notify_in(cursor, wake_key)
            return True

        return self.db.transaction(work)

    def get_event(self, workflow_id: str, key: str) -> str | None:
        rows = self.db.fetch(self._get_event, (workflow_id, key))
        return rows[0][0] if rows else None

    def send_in(self, connection: sa.Connection, message_uuid: str, destination_id: str, topic: str, message: str,
                wake_key: str) -> bool:
        """Store a message through the caller's open transaction (``DBOSClient.send_in_transaction``).

        False when the destination does not exist (nothing written). The waiters' notification is
        delivered at the caller's COMMIT (PostgreSQL); SQLite waiters poll.
        """
        connection.exec_driver_sql(self._insert_message,
                                   (message_uuid, destination_id, topic, message, now_ms(), destination_id))
        if connection.exec_driver_sql(self._workflow_exists, (destination_id,)).first() is None:
            return False
        if self._notify is not None:
            connection.exec_driver_sql(self._notify, (wake_key,))
        return True

    def notify(self, wake_key: str) -> None:
        """Wake other processes' waiters on ``wake_key`` (PostgreSQL; SQLite waiters poll)."""
        if self._notify is not None:
            self.db.execute(self._notify, (wake_key,))


class _NoDestination(Exception):
    """Rolls back a send whose destination workflow does not exist."""


class _Refused(Exception):
    """Rolls back a consume whose checkpoint was refused, so the message stays for the owner."""

