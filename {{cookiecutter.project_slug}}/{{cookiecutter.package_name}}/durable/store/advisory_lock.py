"""A PostgreSQL session-level advisory lock, held on a connection of its own for as long as it is held.

The server drops the lock when that connection ends, so a process that dies releases it by dying.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"
_PING = "SELECT 1"


class AdvisoryLock:
    """``try_acquire`` never blocks; ``confirm`` raises when the connection (and so the lock) is gone."""

    def __init__(self, engine: sa.Engine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._connection: Any = None  # the driver connection holding the lock, while held

    def try_acquire(self) -> bool:
        connection = self.engine.raw_connection()
        cursor = connection.cursor()
        cursor.execute(_TRY_LOCK, (self.key,))
        row = cursor.fetchone()
        cursor.close()
        if row and row[0]:
            self._connection = connection
            return True
        connection.close()
        return False

    def confirm(self) -> None:
        """Raise if the connection is dead: the server has dropped the lock with it."""
        if self._connection is not None:
            cursor = self._connection.cursor()
            cursor.execute(_PING)
            cursor.close()

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            # Unlock explicitly: the server releases a closed session's locks only when it notices.
            cursor = self._connection.cursor()
            cursor.execute(_UNLOCK, (self.key,))
            cursor.close()
            self._connection.close()
        except Exception:
            self._connection.invalidate()  # broken: the server drops the lock with the session
        self._connection = None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's connection and lock are the parent's."""
        self._connection = None
