"""Plain steps' checkpoints held in memory until the workflow's next commit, and written in that commit.

A ``@DBOS.step`` is at-least-once: a crash after it ran and before its checkpoint committed runs it
again. Holding the checkpoint until the workflow's next durable write saves a commit per step and
keeps that promise: a crash before that commit only re-runs the step.

The rule that makes it safe: while a workflow run holds checkpoints, every statement its thread sends
to the system database (``Database``) commits them first, in the same transaction; the application
transaction of ``@DBOS.transaction`` carries them too (``transactions.py``). So nothing the workflow
publishes (an event, a message, an enqueue, a child's start, a stream write, its outcome) and nothing
it reads back about itself commits or is read before the steps it followed are durable. Readers on
other threads of this process flush a workflow's held steps before reading (``Runtime.flush_held``).

Held checkpoints are the same fenced INSERTs as written at once: a run whose workflow another
executor adopted, or that was cancelled, gets its commit refused, and learns why (``settle``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from ..error import DBOSFencedError
from .base import StepCheckpoint, StepRecord

T = TypeVar("T")
# The held checkpoints of the workflow run on this thread (its step-timeout threads share them).
HELD: ContextVar[HeldSteps | None] = ContextVar("durable_held_steps", default=None)
# Past this many, the next step's checkpoint is written at once with them: a crash re-runs at most these.
MAX_HELD = 64
# Held longer than this (a long step or plain code after them), the recovery sweep writes them: a crash
# then re-runs only the steps of the last few seconds, however long the run goes without a durable write.
MAX_HELD_AGE_SEC = 2.0


class CheckpointWriter(Protocol):
    """What held checkpoints need of ``CheckpointStore``: the fenced INSERT, and the reads after a refusal."""

    def record_step_on(self, cursor: Any, step: StepCheckpoint) -> bool: ...

    def get_step(self, workflow_id: str, step_id: int) -> StepRecord | None: ...

    def explain_refused_write(self, workflow_id: str, generation: int) -> None: ...


class HeldHome(Protocol):
    """The database the checkpoints belong in (``Database``)."""

    engine: Any

    def flush_held(self, held: HeldSteps, *, wait: bool = True) -> None: ...


class HeldRefusedError(Exception):
    """A held checkpoint's INSERT was refused inside a commit: roll it back, then ``settle`` the refusals."""

    def __init__(self, refused: list[StepCheckpoint]) -> None:
        super().__init__(f"{len(refused)} held step checkpoint(s) refused")
        self.refused = refused


class HeldSteps:
    """One workflow run's step checkpoints not yet committed, oldest first."""

    def __init__(self, store: CheckpointWriter, home: HeldHome, workflow_id: str) -> None:
        self.store = store
        self.home = home
        self.workflow_id = workflow_id
        self._steps: list[StepCheckpoint] = []
        self._list_lock = threading.Lock()
        # Held across a commit that carries them: a flush from another thread (a reader, shutdown) and
        # the run's own next commit never overlap, so the run's later writes never commit before its steps.
        self.commit_lock = threading.RLock()
        self.oldest_monotonic: float | None = None

    def __len__(self) -> int:
        return len(self._steps)

    def hold(self, step: StepCheckpoint) -> None:
        with self._list_lock:
            if not self._steps:
                self.oldest_monotonic = time.monotonic()
            self._steps.append(step)

    def take(self) -> list[StepCheckpoint]:
        with self._list_lock:
            steps, self._steps = self._steps, []
            self.oldest_monotonic = None
            return steps

    def restore(self, steps: list[StepCheckpoint]) -> None:
        """Put back checkpoints whose commit did not happen (they stay ahead of any held since)."""
        if steps:
            with self._list_lock:
                self._steps = steps + self._steps
                self.oldest_monotonic = self.oldest_monotonic or time.monotonic()

    def write_on(self, cursor: Any, steps: list[StepCheckpoint]) -> None:
        """Insert ``steps`` inside the caller's open transaction; raise ``HeldRefusedError`` if any is refused."""
        refused = [step for step in steps if not self.store.record_step_on(cursor, step)]
        if refused:
            raise HeldRefusedError(refused)

    def settle(self, refused: list[StepCheckpoint]) -> None:
        """After a refused commit (rolled back): return if each refused step holds this very record already
        (a retried commit that had gone through); else raise why (fenced, cancelled), or ``DBOSFencedError``
        when another execution recorded the step differently, since this run went on with its own value.

        Call it with the refused checkpoints taken out: its reads must not carry them again.
        """
        for step in refused:
            existing = self.store.get_step(step.workflow_id, step.step_id)
            if existing is None:
                self.store.explain_refused_write(step.workflow_id, step.generation)
                raise DBOSFencedError(step.workflow_id)  # it finished at this generation without the step
            if not (_same_json(existing.output, step.output) and _same_json(existing.error, step.error)):
                raise DBOSFencedError(step.workflow_id)


def _same_json(stored: Any, held: str | None) -> bool:
    if stored is None or held is None:
        return stored is None and held is None
    if stored == held:
        return True
    try:  # PostgreSQL's jsonb gives the text back in its own spacing and key order
        return bool(json.loads(stored) == json.loads(held))
    except (TypeError, ValueError):
        return False


def commit_with_held(held: HeldSteps, commit: Callable[[list[StepCheckpoint]], T]) -> T:
    """Run ``commit(steps)`` (one transaction that writes ``steps`` first) with the held checkpoints; retry
    after a refusal settled as already recorded. The caller holds ``held.commit_lock``."""
    while True:
        steps = held.take()
        try:
            return commit(steps)
        except HeldRefusedError as refusal:
            held.settle(refusal.refused)  # raises unless every refused one is recorded as held
            held.restore([step for step in steps if step not in refusal.refused])
        except BaseException:
            held.restore(steps)  # not committed: they ride in the next commit
            raise


@contextmanager
def holding(held: HeldSteps | None) -> Iterator[None]:
    """Make ``held`` this thread's held checkpoints for the block (a workflow's body)."""
    token = HELD.set(held)
    try:
        yield
    finally:
        HELD.reset(token)
