"""Scheduled workflows: ``@DBOS.scheduled(cron)`` runs a workflow once per cron tick, across all processes.

Every process runs every schedule, on one thread (``durable-scheduler``) for all of them. At a tick
each one enqueues the workflow on the internal queue under the same ID,
``sched-<workflow name>-<tick, UTC, ISO 8601>``: the ENQUEUED insert's ``ON CONFLICT DO NOTHING``
keeps the first process's row, the others find it, and the dequeuer runs it once. The workflow gets
``(scheduled_time, actual_time)``.

Ticks are not backfilled across downtime (as in DBOS): a launch schedules from its next tick. A tick
that passes while this process is up but its thread is late (a slow enqueue) is still enqueued, in
order. If the database refuses a tick's enqueue in every process, that tick is lost (logged).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .context import SetWorkflowID
from .enqueue import enqueue_workflow
from .error import DBOSException
from .queues import INTERNAL_QUEUE
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Waits up to the given seconds; True means stop (the runtime is shutting down).
Wait = Callable[[float], bool]


def utc_now() -> datetime:
    return datetime.now(UTC)


def cron_ticks(cron: str, after: datetime) -> Iterator[datetime]:
    """The ticks of ``cron`` strictly after ``after``; six fields put seconds first, five are classic cron."""
    # Imported here: only a project that declares a schedule needs croniter installed and loaded.
    from croniter import croniter  # type: ignore[import-untyped]

    ticks = croniter(cron, after, second_at_beginning=True)
    while True:
        yield ticks.get_next(datetime)


def declare_schedule(func: Callable[..., Any], cron: str) -> None:
    """Register ``func`` (a ``@DBOS.workflow()``) to run at each tick of ``cron``; raise on a bad one."""
    info: FunctionInfo | None = getattr(func, "__durable_info__", None)
    name = getattr(func, "__qualname__", repr(func))
    if info is None or info.kind != "workflow":
        raise DBOSException(f"@DBOS.scheduled({cron!r}) on {name}: not a @DBOS.workflow() function; "
                            "put @DBOS.scheduled above @DBOS.workflow()")
    try:
        next(cron_ticks(cron, utc_now()))
    except Exception as exc:  # croniter raises several types (CroniterBadCronError, ValueError, KeyError)
        raise ValueError(f"invalid cron expression {cron!r} for scheduled workflow {info.name}: {exc}") from exc
    try:
        inspect.signature(info.func).bind(None, None)
    except TypeError as exc:
        raise DBOSException(f"scheduled workflow {info.name} must take (scheduled_time, actual_time): {exc}") from exc
    REGISTRY.add_schedule(info, cron)


def scheduled_workflow_id(info: FunctionInfo, tick: datetime) -> str:
    """The same in every process and on every host, so one tick is one workflow."""
    return f"sched-{info.name}-{tick.astimezone(UTC).isoformat()}"


@dataclass
class _Upcoming:
    """One schedule's next tick, and the ticks after it."""

    tick: datetime
    ticks: Iterator[datetime]
    info: FunctionInfo


class Scheduler:
    """The thread that enqueues each schedule's ticks; ``now`` and ``wait`` are injectable for tests."""

    def __init__(self, rt: Runtime, schedules: list[tuple[FunctionInfo, str]], *,
                 now: Clock = utc_now, wait: Wait | None = None) -> None:
        self.rt = rt
        self.schedules = list(schedules)
        self._now = now
        self._wait = wait or rt.stopping.wait  # drain() sets rt.stopping: the thread wakes and ends
        self._thread = threading.Thread(target=self.run, name="durable-scheduler", daemon=True)

    def start(self) -> None:
        """Start the thread, if any workflow has a schedule (a process without schedules gets none)."""
        if self.schedules:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for the thread to end; the caller has set ``rt.stopping``."""
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def run(self) -> None:
        """Enqueue ticks in time order until stopped."""
        start = self._now()
        upcoming: list[_Upcoming] = []
        for info, cron in self.schedules:
            ticks = cron_ticks(cron, start)
            upcoming.append(_Upcoming(next(ticks), ticks, info))
        # No jitter before a tick (DBOS adds up to 10% of the wait): the deterministic ID already
        # makes the processes agree, each pays one conflicting INSERT per tick, and jitter would
        # only delay every run and blur actual_time.
        while upcoming and not self.rt.stopping.is_set():
            due = min(upcoming, key=lambda entry: entry.tick)
            delay = (due.tick - self._now()).total_seconds()
            if delay > 0:
                if self._wait(delay):
                    return
                continue  # look at the clock again: a wait may end a little early
            self.fire(due.info, due.tick)
            due.tick = next(due.ticks)

    def fire(self, info: FunctionInfo, tick: datetime) -> None:
        """Enqueue one tick's run; another process may have enqueued it first (then this finds its row)."""
        workflow_id = scheduled_workflow_id(info, tick)
        try:
            with SetWorkflowID(workflow_id):
                enqueue_workflow(self.rt, INTERNAL_QUEUE, info, (tick, self._now()), {})
        except Exception:
            # The database may be restarting; another process may still enqueue this tick.
            logger.warning("could not enqueue scheduled workflow %s", workflow_id, exc_info=True)
