"""Recovery: find PENDING workflows that no live executor owns, adopt them, and run them again.

Every process is an executor with a heartbeat row. A workflow belongs to the executor that runs it;
when that executor's heartbeat goes stale (crash, SIGKILL, lost host), any live executor adopts the
workflow in one UPDATE that also bumps its fencing generation, so exactly one adopter wins and the
dead owner's late writes are refused. On the same host, an executor whose process is gone is known
dead at once, so a restarted service resumes its work without waiting for the heartbeat timeout.
"""

from __future__ import annotations

import logging
import threading

from .executor import resume_row
from .observe import emit
from .registry import REGISTRY
from .runtime import Runtime, pid_is_alive
from .store.base import now_ms
from .store.checkpoint_store import ADOPT_START
from .store.held_steps import MAX_HELD_AGE_SEC
from .timeouts import cancel_expired

logger = logging.getLogger(__name__)

ADOPT_BATCH = 200
# Executor rows dead this long, owning nothing, are deleted.
FORGET_AFTER_MS = 24 * 3600 * 1000


def expire_dead_local_executors(rt: Runtime) -> int:
    """Mark executors of this host whose process no longer exists as dead; return how many."""
    expired = 0
    for executor_id, pid, heartbeat_at in rt.sweep_store.executors_on_host(rt.hostname, rt.executor_id):
        # Our own pid under another executor ID is a previous process (a container restarts as pid 1).
        if heartbeat_at > 0 and (pid == rt.pid or not pid_is_alive(pid)):
            rt.sweep_store.expire_executor(executor_id)
            expired += 1
    return expired


def recover_orphans(rt: Runtime) -> int:
    """Adopt and restart every orphaned workflow; return how many were adopted."""
    alive_since = rt.alive_since_ms()
    total = 0
    after = ADOPT_START  # each sweep walks the PENDING rows from the oldest, once
    while not rt.stopping.is_set():
        # A service adopts only what it can run; an operator's process (runs nothing) hands all to the queues.
        names = sorted({name for name, _version in REGISTRY.workflows}) if rt.runs_workflows else None
        rows = rt.sweep_store.adopt_orphans(rt.executor_id, alive_since, ADOPT_BATCH, names, after)
        if rows:
            after = rt.sweep_store.adopted_until(rows)
        for row, has_steps in rows:
            try:
                resume_row(rt, row, has_steps=has_steps)
            except Exception:
                logger.exception("could not resume workflow %s", row.workflow_id)
        total += len(rows)
        if len(rows) < ADOPT_BATCH:
            break
    if total:
        logger.info("adopted %d pending workflow(s)", total)
        emit("workflow_adopted", total)
    return total


def recover_executors(rt: Runtime, executor_ids: list[str]) -> list[str]:
    """Adopt and restart the PENDING workflows of the named executors now (the admin trigger).

    The operator's word replaces the heartbeat: the executors are marked dead and their workflows
    move here even if their heartbeat is fresh, so use it for executors known to be gone.
    """
    adopted: list[str] = []
    for executor_id in executor_ids:
        if executor_id == rt.executor_id:
            continue
        rt.checkpoint_store.expire_executor(executor_id)
        for row in rt.checkpoint_store.adopt_from(executor_id, rt.executor_id):
            resume_row(rt, row)
            adopted.append(row.workflow_id)
    if adopted:
        emit("workflow_adopted", len(adopted))
    return adopted


def recover_pending(rt: Runtime, executor_ids: list[str]) -> list[str]:
    """``DBOS._recover_pending_workflows``: make every PENDING workflow of these executors run; return their IDs.

    ``"local"`` (DBOS's name for an executor outside its cloud) and this executor's ID mean this process:
    a workflow that runs here keeps running (its handle awaits that run, nothing executes twice), one
    whose run here stopped (an interrupt, a lost database) is taken again under a new fencing
    generation and resumed. Other IDs are adopted as ``recover_executors`` does.
    """
    recovered: list[str] = []
    for executor_id in dict.fromkeys(executor_ids):
        if executor_id not in ("local", rt.executor_id):
            recovered.extend(recover_executors(rt, [executor_id]))
            continue
        for workflow_id in rt.checkpoint_store.own_pending(rt.executor_id, now_ms() + 1, 10_000):
            if rt.future_of(workflow_id) is None:
                row = rt.checkpoint_store.readopt(workflow_id, rt.executor_id)
                if row is None:
                    continue  # it finished meanwhile
                resume_row(rt, row)
            recovered.append(workflow_id)
    return recovered


def resume_stalled(rt: Runtime) -> int:
    """Restart this executor's own PENDING workflows that no thread here runs any more.

    That happens when a run stopped on an infrastructure error (the database was restarting, a
    commit kept conflicting): the workflow is not finished, and no other executor may take it while
    this one is alive. The grace period keeps a workflow that is just starting out of the way.
    """
    grace_ms = int(max(5.0, 4 * rt.settings.executor_heartbeat_sec) * 1000)
    resumed = 0
    for workflow_id in rt.checkpoint_store.own_pending(rt.executor_id, now_ms() - grace_ms, ADOPT_BATCH):
        if rt.future_of(workflow_id) is not None:
            continue
        row = rt.checkpoint_store.readopt(workflow_id, rt.executor_id)
        if row is not None:
            resume_row(rt, row)
            resumed += 1
    if resumed:
        logger.info("resumed %d stalled workflow(s) of this executor", resumed)
    return resumed


class RecoveryLoop:
    """The executor's background thread: heartbeat, then adopt orphans, every heartbeat interval."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._wake = threading.Event()
        self.swept = threading.Event()  # set after each sweep; tests wait on it
        self._thread = threading.Thread(target=self._run, name="durable-recovery", daemon=True)

    def start(self) -> None:
        rt = self.rt
        rt.sweep_store.register_executor(rt.executor_id, rt.hostname, rt.pid, rt.settings.application_version)
        self._thread.start()

    def wake(self) -> None:
        """Sweep now instead of at the next interval (tests, admin trigger)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop heartbeating and adopting."""
        self.rt.stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def release(self) -> None:
        """Mark this executor dead, so that live ones adopt its unfinished workflows at once."""
        self.rt.leadership.resign()
        try:
            self.rt.checkpoint_store.expire_executor(self.rt.executor_id)
        except Exception:
            logger.warning("could not release executor %s", self.rt.executor_id, exc_info=True)

    def _run(self) -> None:
        rt = self.rt
        first = True
        while not rt.stopping.is_set():
            try:
                if not first and not rt.sweep_store.heartbeat(rt.executor_id):
                    rt.sweep_store.register_executor(rt.executor_id, rt.hostname, rt.pid, rt.settings.application_version)
                first = False
                rt.flush_held(older_than_sec=MAX_HELD_AGE_SEC)  # a long step: its predecessors become durable
                expire_dead_local_executors(rt)  # a sibling worker SIGKILLed: adopt now, not after the timeout
                cancel_expired(rt)  # before adopting: a workflow past its deadline is not run again
                recover_orphans(rt)
                resume_stalled(rt)
                if rt.leadership.try_lead():  # clean-ups: one process per database is enough
                    rt.checkpoint_store.forget_executors(now_ms() - FORGET_AFTER_MS)
                    rt.idempotency_store.delete_expired()
            except Exception:
                # The database may be restarting; the next round tries again.
                logger.warning("recovery sweep failed", exc_info=True)
            self.swept.set()
            self._wake.wait(rt.settings.executor_heartbeat_sec)
            self._wake.clear()
