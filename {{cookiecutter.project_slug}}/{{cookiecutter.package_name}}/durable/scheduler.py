"""Scheduled workflows: ``@DBOS.scheduled(cron)`` and the schedules stored in the database, on one thread.

Every process runs every schedule, on one thread (``durable-scheduler``) for all of them. At a tick
each process enqueues the run under the same ID (``sched-<workflow or schedule name>-<tick, ISO
8601>``): the ENQUEUED insert's ``ON CONFLICT DO NOTHING`` keeps the first process's row, the others
find it, and the dequeuer runs it once.

- ``@DBOS.scheduled(cron)`` above a workflow, step or transaction (a step or transaction runs as a
  one-step workflow) gets ``(scheduled_time, actual_time)``, read in UTC. A decorator applied after
  launch joins at the next look.
- A stored schedule (``schedules.py``) gets ``(tick, context)``, read in its ``cron_timezone``. The
  thread re-reads the table at each look: a new, changed, paused or deleted schedule takes effect
  then. A change made in this process wakes the thread at once; one made elsewhere is seen within
  the polling interval (1 s in the first minute after launch, then ``scheduler_polling_interval_sec``,
  30 s by default, as in DBOS). A stored schedule whose workflow this process lacks is left to the
  processes that have it.

Ticks are not backfilled across downtime (as in DBOS), except for a stored schedule with
``automatic_backfill``: when it (re)starts here, the ticks since it last fired are enqueued first. A
tick that passes while this process is up but its thread is late (a slow enqueue) is still enqueued,
in order. If the database refuses a tick's enqueue in every process, that tick is lost (logged).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .context import SetWorkflowID
from .cron import cron_ticks, zone
from .enqueue import enqueue_workflow
from .error import DBOSException, DBOSWorkflowFunctionNotFoundError
from .queues import INTERNAL_QUEUE
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime
from .schedule_runs import ScheduleTarget, backfill, enqueue_run, resolve, scheduled_run_id
from .store.schedule_store import ScheduleRow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Waits up to the given seconds; True means stop (the runtime is shutting down).
Wait = Callable[[float], bool]

# Look at the schedules table every second in the first minute after launch (schedules created
# around launch start promptly), then at the configured interval, as DBOS does.
FAST_POLL_SEC = 1.0
FAST_POLL_WINDOW_SEC = 60.0
ACTIVE = "ACTIVE"
NEVER = datetime.max.replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def declare_schedule(func: Callable[..., Any], cron: str) -> None:
    """Register ``func`` (a workflow, step or transaction) to run at each tick of ``cron``; raise on a bad one."""
    info: FunctionInfo | None = getattr(func, "__durable_info__", None)
    name = getattr(func, "__qualname__", repr(func))
    if info is None:
        raise DBOSWorkflowFunctionNotFoundError(
            "<NONE>", f"{name} is not a registered workflow function: put @DBOS.scheduled({cron!r}) above "
                      "@DBOS.workflow() (or @DBOS.step() / @DBOS.transaction())")
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


def runnable(info: FunctionInfo) -> FunctionInfo:
    """The workflow a tick enqueues: the function itself, or a step's or transaction's one-step workflow."""
    if info.kind == "workflow" or info.wrapper is None:
        return info
    temp: FunctionInfo = info.wrapper.__durable_temp_workflow__  # type: ignore[attr-defined]
    return temp


@dataclass
class _Entry:
    """One schedule's next tick, the ticks after it, and how to fire a tick."""

    tick: datetime
    ticks: Iterator[datetime]
    fire: Callable[[datetime], None]
    signature: tuple[Any, ...]


class Scheduler:
    """The thread that enqueues every schedule's ticks; ``now`` and ``wait`` are injectable for tests.

    Given ``schedules`` (decorated (workflow, cron) pairs), it runs exactly those and never reads
    the table; without, it follows the registry and the table for the life of the runtime.
    """

    def __init__(self, rt: Runtime, schedules: list[tuple[FunctionInfo, str]] | None = None, *,
                 now: Clock = utc_now, wait: Wait | None = None) -> None:
        self.rt = rt
        self.fixed = list(schedules) if schedules is not None else None
        self._now = now
        self._wait = wait or self._wait_for_change
        self._started = time.monotonic()
        self._unrunnable: set[str] = set()  # stored schedules already logged as not runnable here
        self._look_now = False  # set when woken by a change made in this process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="durable-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (at shutdown, or the admin ``/deactivate``) and wait for it, bounded."""
        self._stop.set()
        self.rt.schedule_wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _wait_for_change(self, seconds: float) -> bool:
        """Sleep until the next tick or look, or until a schedule changes here; True when stopping."""
        if self.rt.schedule_wakeup.wait(seconds):
            self.rt.schedule_wakeup.clear()
            self._look_now = True
        return self.stopping()

    def stopping(self) -> bool:
        return self._stop.is_set() or self.rt.stopping.is_set()

    def poll_interval(self) -> float:
        configured = self.rt.settings.scheduler_poll_sec
        if time.monotonic() - self._started < FAST_POLL_WINDOW_SEC:
            return min(FAST_POLL_SEC, configured)
        return configured

    def run(self) -> None:
        """Enqueue ticks in time order until stopped, looking at the schedules between ticks."""
        entries: dict[str, _Entry] = {}
        next_look = self._now()
        while not self.stopping():
            now = self._now()
            if now >= next_look or self._look_now:
                self._look_now = False
                self.refresh(entries, now)
                if self.fixed is None:
                    next_look = now + timedelta(seconds=self.poll_interval())
                elif not entries:
                    return
                else:
                    next_look = NEVER
            due = min(entries.values(), key=lambda entry: entry.tick, default=None)
            until = next_look if due is None else min(due.tick, next_look)
            delay = (until - now).total_seconds()
            if delay > 0:
                if self._wait(delay):
                    return
                continue  # look at the clock again: a wait may end a little early
            if due is not None and due.tick <= now:
                due.fire(due.tick)
                due.tick = next(due.ticks)

    # -- which schedules run -------------------------------------------------------------------------

    def refresh(self, entries: dict[str, _Entry], now: datetime) -> None:
        """Bring ``entries`` in line with the registry and the table; unchanged schedules keep their ticks."""
        wanted: dict[str, tuple[tuple[Any, ...], Callable[[], _Entry | None]]] = {}
        for info, cron in self.fixed if self.fixed is not None else list(REGISTRY.schedules):
            wanted[f"decorated:{info.name}:{cron}"] = ((cron,), functools.partial(self._decorated, info, cron, now))
        rows: list[ScheduleRow] | None = []
        if self.fixed is None:
            try:
                rows = self.rt.schedule_store.list(status=[ACTIVE])
            except Exception:
                logger.warning("could not read the schedules; the known ones keep running", exc_info=True)
                rows = None
        for row in rows or []:
            signature = (row.workflow_name, row.workflow_class_name, row.schedule, row.context,
                         row.cron_timezone, row.queue_name)
            wanted[f"stored:{row.schedule_id}"] = (signature, functools.partial(self._stored, row, now, entries))
        for key in [k for k in entries if k not in wanted and (rows is not None or k.startswith("decorated:"))]:
            del entries[key]  # deleted or paused: no more ticks
        for key, (signature, build) in wanted.items():
            known = entries.get(key)
            if known is not None and known.signature == signature:
                continue
            entry = build()
            if entry is None:
                entries.pop(key, None)
            else:
                entry.signature = signature
                entries[key] = entry

    def _decorated(self, info: FunctionInfo, cron: str, now: datetime) -> _Entry:
        ticks = cron_ticks(cron, now)
        return _Entry(next(ticks), ticks, lambda tick: self.fire(info, tick), ())

    def _stored(self, row: ScheduleRow, now: datetime, entries: dict[str, _Entry]) -> _Entry | None:
        try:
            target = resolve(self.rt, row)
            tz = zone(row.cron_timezone)
        except Exception as exc:
            if row.schedule_id not in self._unrunnable:
                self._unrunnable.add(row.schedule_id)
                logger.warning("schedule %r does not run in this process: %s", row.schedule_name, exc)
            return None
        self._unrunnable.discard(row.schedule_id)
        if f"stored:{row.schedule_id}" not in entries:
            self._catch_up(row, now)  # (re)started here: a schedule with automatic_backfill catches up first
        ticks = cron_ticks(row.schedule, now, tz)
        return _Entry(next(ticks), ticks, lambda tick: self.fire_stored(target, row.schedule_name, tick), ())

    def _catch_up(self, row: ScheduleRow, now: datetime) -> None:
        if not (row.automatic_backfill and row.last_fired_at):
            return
        try:
            last = datetime.fromisoformat(row.last_fired_at)
            if last < now:
                backfill(self.rt, row.schedule_name, last, now)
        except Exception:
            logger.warning("could not backfill schedule %r", row.schedule_name, exc_info=True)

    # -- firing ----------------------------------------------------------------------------------------

    def fire(self, info: FunctionInfo, tick: datetime) -> None:
        """Enqueue one tick's run; another process may have enqueued it first (then this finds its row)."""
        workflow_id = scheduled_workflow_id(info, tick)
        try:
            with SetWorkflowID(workflow_id):
                enqueue_workflow(self.rt, INTERNAL_QUEUE, runnable(info), (tick, self._now()), {})
        except Exception:
            # The database may be restarting; another process may still enqueue this tick.
            logger.warning("could not enqueue scheduled workflow %s", workflow_id, exc_info=True)

    def fire_stored(self, target: ScheduleTarget, schedule_name: str, tick: datetime) -> None:
        """Enqueue a stored schedule's tick and note it as the schedule's last firing."""
        workflow_id = scheduled_run_id(schedule_name, tick)
        try:
            enqueue_run(self.rt, target, tick, workflow_id)
            self.rt.schedule_store.set_last_fired(schedule_name, tick.isoformat())
        except Exception:
            logger.warning("could not enqueue scheduled workflow %s", workflow_id, exc_info=True)


