"""A fork waits until no runtime thread is inside the database driver.

``fork()`` copies only the thread that calls it. If another thread held a lock inside the driver at
that instant (SQLite's allocator mutex, say), the child inherits that lock held by a thread it does
not have, and its first database call hangs for good. That is what happened to a child forked right
after ``DBOS.launch()`` while the scheduler or the dequeuer was reading the database. So every
statement the stores run enters this gate, and ``os.register_at_fork`` closes it before a fork: the
fork waits for the calls inside to leave and holds new ones back until it is done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

# A call stuck longer than this (a SQLite file locked by another process) does not hold a fork back
# for good: the fork goes ahead, with the hazard this gate exists to avoid.
FORK_WAIT_SEC = 10.0


class ForkGate:
    """Counts the threads inside the driver; a fork waits for the count to drop to zero."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._inside = 0

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Around one call into the driver: waits while a fork is under way."""
        with self._changed:
            self._inside += 1
        try:
            yield
        finally:
            with self._changed:
                self._inside -= 1
                if self._inside == 0:
                    self._changed.notify_all()

    def close_for_fork(self) -> None:
        """Before ``fork()``: wait for the calls inside to leave, then hold the gate until after it."""
        self._changed.acquire()
        deadline = time.monotonic() + FORK_WAIT_SEC
        while self._inside and (left := deadline - time.monotonic()) > 0:
            self._changed.wait(left)
        if self._inside:
            logger.warning("forking while %d thread(s) are still inside the database driver", self._inside)

    def open_in_parent(self) -> None:
        self._changed.release()

    def open_in_child(self) -> None:
        """The child has only the forking thread: nobody is inside, and the held lock is the parent's."""
        self._changed = threading.Condition(threading.Lock())
        self._inside = 0


GATE = ForkGate()
_registered = False
_registering = threading.Lock()


def guard_forks() -> None:
    """Make this process's forks wait on ``GATE`` (once; called when a database is first opened)."""
    global _registered
    with _registering:
        if _registered or not hasattr(os, "register_at_fork"):
            return
        os.register_at_fork(
            before=GATE.close_for_fork, after_in_parent=GATE.open_in_parent, after_in_child=GATE.open_in_child
        )
        _registered = True
