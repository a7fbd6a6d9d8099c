"""One database's engine and dialect, and the one way every store runs statements on it.

Statements run on a pooled driver connection (autocommit for the system database's engines), one
commit each, or inside ``transaction`` for the few writes that must land together. A dropped
connection or a locked SQLite file is retried here until ``RETRY_DEADLINE_SEC``, so no store and no
caller ever sees either; past it they get ``DBOSDatabaseUnavailableError``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from ..error import DBOSDatabaseUnavailableError
from .base import StepCheckpoint
from .dialects import Dialect
from .fork_gate import GATE, guard_forks
from .held_steps import HELD, HeldSteps, commit_with_held

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_DEADLINE_SEC = 30.0


class Database:
    """An engine and its dialect, with retrying ``run``/``transaction``/``execute``/``fetch``."""

    def __init__(self, engine: sa.Engine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect = dialect
        guard_forks()

    def run(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` on a pooled connection, retrying lock waits and dropped connections."""
        deadline = time.monotonic() + RETRY_DEADLINE_SEC
        delay = 0.005
        while True:
            try:
                with GATE.inside():  # a fork waits for this call to leave the driver (fork_gate.py)
                    return self._run_once(work)
            except Exception as exc:
                original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps failures to connect
                if not self.dialect.is_retryable(original):
                    raise
                if time.monotonic() > deadline:
                    raise DBOSDatabaseUnavailableError(
                        f"the database did not answer for {RETRY_DEADLINE_SEC:.0f}s: {original}") from exc
                logger.debug("retrying after %s", original)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def _run_once(self, work: Callable[[Any], T]) -> T:
        """One attempt on a pooled connection; a failed one is discarded or rolled back before it returns."""
        conn = None
        try:
            conn = self.engine.raw_connection()  # inside the try: connecting fails while the server restarts
            cursor = conn.cursor()
            try:
                return work(cursor)
            finally:
                cursor.close()
        except Exception as exc:
            if conn is not None:
                original = getattr(exc, "orig", None) or exc
                if self.dialect.is_disconnect(original):
                    conn.invalidate()
                else:
                    _rollback_quietly(conn)
            raise
        finally:
            if conn is not None:
                conn.close()

    def transaction(self, work: Callable[[Any], T]) -> T:
        """Run ``work(cursor)`` inside BEGIN ... COMMIT (rolled back if it raises), with ``run``'s retries.

        For the few writes that must land together (a message and the step that sent it); the hot
        path stays one statement per commit. Held step checkpoints go first (``held_steps.py``).
        """
        held = self._held()
        if held is None:
            return self.run(self._in_transaction(work, []))
        with held.commit_lock:
            return commit_with_held(held, lambda steps: self.run(self._in_transaction(work, steps, held)))

    def flush_held(self, held: HeldSteps, *, wait: bool = True) -> None:
        """Commit ``held``'s checkpoints now, alone (another thread's reader, shutdown, a wait).

        ``wait=False`` skips them if their run is committing right now (it writes them itself).
        """
        if not held.commit_lock.acquire(blocking=wait):
            return
        try:
            if len(held):
                commit_with_held(held, lambda steps: self.run(self._in_transaction(lambda _c: None, steps, held)))
        finally:
            held.commit_lock.release()

    def _in_transaction(
        self, work: Callable[[Any], T], steps: list[StepCheckpoint], held: HeldSteps | None = None
    ) -> Callable[[Any], T]:
        begin = self.dialect.begin_sql

        def wrapped(cursor: Any) -> T:
            cursor.execute(begin)
            try:
                if held is not None and steps:
                    held.write_on(cursor, steps)
                result = work(cursor)
            except BaseException:
                try:
                    cursor.execute("ROLLBACK")
                except Exception:  # a broken connection: run() discards it; the first error counts
                    pass
                raise
            cursor.execute("COMMIT")
            return result

        return wrapped

    def _held(self) -> HeldSteps | None:
        """This thread's held checkpoints, if any and if they belong in this database; others are flushed first."""
        held = HELD.get()
        if held is None:
            return None
        if held.home.engine is not self.engine:
            if len(held):
                held.home.flush_held(held)  # their own database commits them before this one is touched
            return None
        return held

    def execute(self, sql: str, params: Sequence[Any]) -> int:
        """One statement in its own commit (with any held checkpoints); returns the row count."""
        return self._one(_rowcount_of(sql, params))

    def execute_folding_held(
        self, sql: str, params: Sequence[Any], fold: Callable[[list[StepCheckpoint]], tuple[str, Sequence[Any]]]
    ) -> int:
        """``execute``; where the dialect can, the held checkpoints ride in the statement itself.

        ``fold(steps)`` gives that statement (``held_fold.py``): it applies only with all of ``steps``
        inserted. When it does not apply, what it did insert is recorded truly, and ``execute`` settles
        the rest and the refused write as it does without folding.
        """
        held = self._held()
        if held is not None and self.dialect.folds_held_steps:
            with held.commit_lock:
                steps = held.take()
                if steps:
                    try:
                        count = self.run(_rowcount_of(*fold(steps)))
                    except BaseException:
                        held.restore(steps)  # not committed: they ride in the next commit
                        raise
                    if count:
                        return count
                    held.restore(steps)
        return self.execute(sql, params)

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        def work(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

        return self._one(work)

    def _one(self, work: Callable[[Any], T]) -> T:
        held = self._held()
        if held is None:
            return self.run(work)
        with held.commit_lock:
            if not len(held):
                return self.run(work)
            return commit_with_held(held, lambda steps: self.run(self._in_transaction(work, steps, held)))


def _rowcount_of(sql: str, params: Sequence[Any]) -> Callable[[Any], int]:
    def work(cursor: Any) -> int:
        cursor.execute(sql, params)
        return int(cursor.rowcount)

    return work


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be broken; the pool discards it on close
        pass
