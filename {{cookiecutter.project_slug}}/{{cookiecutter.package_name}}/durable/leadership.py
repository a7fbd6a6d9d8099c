"""One leader per database, for duties that must not run in every process at once.

PostgreSQL: a session advisory lock held on a connection of the leader's own; the server drops it
when that connection dies, so leadership moves when the leader's process or host dies. SQLite: an
exclusive ``flock`` on a file beside the database, which the kernel drops when the process dies;
SQLite is one host, so a host-local lock is the whole story there.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x6C656164  # "lead": one advisory lock key per database


class Leadership:
    """Try to become (or stay) the leader at each sweep; ``is_leader`` says how it went."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_leader = False
        self._connection: Any = None  # PostgreSQL: the connection holding the advisory lock
        self._lock_file: int | None = None  # SQLite: the descriptor holding the flock
        database = make_url(str(engine.url)).database or ""
        self._sqlite_lock_path = (
            Path(f"{database}-leader.lock") if engine.dialect.name == "sqlite" and database not in ("", ":memory:")
            else None
        )

    def try_lead(self) -> bool:
        """Become leader if nobody is; confirm leadership if we are. Never blocks."""
        try:
            self.is_leader = self._confirm() if self.is_leader else self._acquire()
        except Exception:
            logger.warning("leader election failed; will retry", exc_info=True)
            self.resign()
        return self.is_leader

    def _acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.raw_connection()
            cursor = connection.cursor()
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,))
            row = cursor.fetchone()
            cursor.close()
            won = bool(row and row[0])
            if won:
                self._connection = connection
                logger.info("this executor is now the leader")
                return True
            connection.close()
            return False
        if self._sqlite_lock_path is None:
            return True  # an in-memory database has one process by definition
        descriptor = os.open(self._sqlite_lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._lock_file = descriptor
        logger.info("this executor is now the leader")
        return True

    def _confirm(self) -> bool:
        if self._connection is not None:
            cursor = self._connection.cursor()
            cursor.execute("SELECT 1")  # a dead connection raises: the server has dropped our lock
            cursor.close()
        return True

    def resign(self) -> None:
        """Give leadership up (shutdown, or a connection found broken)."""
        if self._connection is not None:
            try:
                # Unlock explicitly: the server releases a closed session's locks only when it notices.
                cursor = self._connection.cursor()
                cursor.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK_KEY,))
                cursor.close()
                self._connection.close()
            except Exception:
                self._connection.invalidate()  # broken: the server drops the lock with the session
            self._connection = None
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        self.is_leader = False

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's lock is the parent's; hold nothing."""
        self._connection = None
        self._lock_file = None
        self.is_leader = False
