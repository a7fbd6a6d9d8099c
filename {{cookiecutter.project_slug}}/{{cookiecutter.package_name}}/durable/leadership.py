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

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .store.advisory_lock import AdvisoryLock

logger = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x6C656164  # "lead": one advisory lock key per database


class Leadership:
    """Try to become (or stay) the leader at each sweep; ``is_leader`` says how it went."""

    def __init__(self, engine: sa.Engine) -> None:
        self.is_leader = False
        # PostgreSQL: an advisory lock on a connection of its own; SQLite: a flock on a file.
        self._advisory = AdvisoryLock(engine, LEADER_LOCK_KEY) if engine.dialect.name == "postgresql" else None
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
        if self._advisory is not None:
            won = self._advisory.try_acquire()
            if won:
                logger.info("this executor is now the leader")
            return won
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
        if self._advisory is not None:
            self._advisory.confirm()  # a dead connection raises: the server has dropped our lock
        return True

    def resign(self) -> None:
        """Give leadership up (shutdown, or a connection found broken)."""
        if self._advisory is not None:
            self._advisory.release()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        self.is_leader = False

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's lock is the parent's; hold nothing."""
        if self._advisory is not None:
            self._advisory.forget_after_fork()
        self._lock_file = None
        self.is_leader = False
