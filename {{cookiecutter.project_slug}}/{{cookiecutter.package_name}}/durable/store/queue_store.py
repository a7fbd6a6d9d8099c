"""The SQL of queues: enqueue a workflow row as ENQUEUED, and claim queued rows within a queue's limits.

A claim is one short transaction per queue: read how many of the queue's workflows run (everywhere and
here) and how many started within the rate limiter's period, then move at most that many ENQUEUED rows
to PENDING, owned by this executor under a new fencing generation, in one ``UPDATE ... RETURNING``.
A partitioned queue does the same per partition key, inside the room the whole queue's limits leave.
PostgreSQL serialises claims of one queue on a transaction-scoped advisory lock (so the counts stay
true while the UPDATE runs) and skips rows locked by anyone else; SQLite serialises on its write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .base import GET_WORKFLOW, WORKFLOW_SELECT, NewWorkflow, WorkflowRow, now_ms, settle_past
from .database import Database
from .listener import NOTIFY_SQL

_INSERT_ENQUEUED = """
INSERT INTO {workflow_status} (workflow_uuid, status, name, class_name, config_name, inputs, request,
    executor_id, owner_generation, application_version, application_id, recovery_attempts, queue_name,
    priority, deduplication_id, queue_partition_key, parent_workflow_id, created_at, updated_at,
    workflow_version, workflow_timeout_ms, workflow_deadline_epoch_ms, attributes, authenticated_user,
    assumed_role, authenticated_roles, delay_until_epoch_ms, is_debounced, debounce_deadline_epoch_ms,
    schedule_name)
VALUES (?, ?, ?, ?, ?, ?J, ?J, NULL, 0, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?J, ?, ?, ?J, ?, ?, ?, ?)
ON CONFLICT (workflow_uuid) DO NOTHING"""

# DELAYED rows whose time has come join their queue; the earliest time still ahead bounds the next wait.
# A debounced workflow gives up its debounce key as it joins the queue: it is committed to run now,
# and the next debounce of the key starts a new workflow.
_PROMOTE_DUE = """
UPDATE {workflow_status} SET status = 'ENQUEUED', updated_at = ?,
    deduplication_id = CASE WHEN is_debounced = 1 THEN NULL ELSE deduplication_id END
WHERE status = 'DELAYED' AND delay_until_epoch_ms <= ?"""
_NEXT_DUE = "SELECT MIN(delay_until_epoch_ms) FROM {workflow_status} WHERE status = 'DELAYED'"
_SET_DELAY = """
UPDATE {workflow_status} SET delay_until_epoch_ms = ?, updated_at = ? WHERE workflow_uuid = ? AND status = 'DELAYED'"""

# A claimed row this process has no code for goes back to wait, for a process that has it (or for this
# one, once the module that registers it is imported): the claim is undone, its start not counted.
_DEFER = """
UPDATE {workflow_status} SET status = 'DELAYED', delay_until_epoch_ms = ?, executor_id = NULL,
    started_at_epoch_ms = NULL, updated_at = ?
WHERE workflow_uuid = ? AND owner_generation = ? AND status = 'PENDING'"""

_DEDUP_HOLDER = """
SELECT workflow_uuid FROM {workflow_status}
WHERE queue_name = ? AND deduplication_id = ? AND status IN ('DELAYED', 'ENQUEUED', 'PENDING')"""

_WAITING_QUEUES = "SELECT DISTINCT queue_name FROM {workflow_status} WHERE status = 'ENQUEUED' AND queue_name IN ({names})"
_LOCK_QUEUE = "SELECT pg_advisory_xact_lock(hashtext(?))"
# Oldest (and most urgent) first, so the queue-wide room goes where the queue's order says. Rows
# without a key (enqueued before the queue was partitioned) form a partition of their own.
_WAITING_PARTITIONS = """
SELECT queue_partition_key FROM {workflow_status} WHERE queue_name = ? AND status = 'ENQUEUED'
GROUP BY queue_partition_key ORDER BY MIN(priority), MIN(created_at)"""

# What limits a claim: running everywhere, running here, started within the limiter's period, waiting.
_QUEUE_LOAD = """
SELECT
    COALESCE(SUM(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'PENDING' AND executor_id = ? THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status <> 'ENQUEUED' AND started_at_epoch_ms >= ? THEN 1 ELSE 0 END), 0),
    COALESCE(SUM(CASE WHEN status = 'ENQUEUED' THEN 1 ELSE 0 END), 0)
FROM {workflow_status}
WHERE queue_name = ? AND (status IN ('PENDING', 'ENQUEUED') OR started_at_epoch_ms >= ?){partition}"""

# Only rows of this process's application version, or of none (a client's enqueue without one: the
# version that runs it is recorded), as in DBOS. A workflow's timeout counts from its dequeue, as in
# DBOS: its deadline is set here. The rows are picked once, in a materialised CTE: as an IN
# (subquery), PostgreSQL may re-run the LIMIT per row.
_CLAIM = """
WITH picked AS MATERIALIZED (
    SELECT workflow_uuid FROM {workflow_status} WHERE queue_name = ? AND status = 'ENQUEUED'{partition}
        AND (application_version = ? OR application_version IS NULL)
    ORDER BY priority, created_at, workflow_uuid LIMIT ?{skip_locked})
UPDATE {workflow_status} SET status = 'PENDING', executor_id = ?, owner_generation = owner_generation + 1,
    application_version = COALESCE(application_version, ?), started_at_epoch_ms = ?, updated_at = ?,
    workflow_deadline_epoch_ms = CASE WHEN workflow_timeout_ms IS NOT NULL AND workflow_timeout_ms > 0
        THEN ? + workflow_timeout_ms ELSE workflow_deadline_epoch_ms END
WHERE status = 'ENQUEUED' AND workflow_uuid IN (SELECT workflow_uuid FROM picked)
RETURNING {columns}"""

# The whole queue, one partition key, or the rows that have none.
_PARTITION_FILTERS = {"all": "", "key": " AND queue_partition_key = ?", "none": " AND queue_partition_key IS NULL"}


@dataclass(frozen=True)
class QueueLimits:
    """Limits as a claim applies them (None: no limit), to the whole queue or to each partition."""

    concurrency: int | None = None
    worker_concurrency: int | None = None
    limit: int | None = None
    period_ms: int = 0


@dataclass(frozen=True)
class Claimed:
    """What one claim took, and whether the queue still holds ENQUEUED rows it could not take."""

    rows: list[WorkflowRow]
    backlog: bool


class DuplicateDeduplicationID(Exception):
    """The insert met a waiting or running workflow of the queue holding the same deduplication ID."""


def is_unique_violation(exc: BaseException) -> bool:
    """An IntegrityError from either driver (raw, or wrapped by SQLAlchemy)."""
    original = getattr(exc, "orig", None) or exc
    return isinstance(exc, sa.exc.IntegrityError) or type(original).__name__ in ("IntegrityError", "UniqueViolation")


# Where created_at sits in _insert_params.
_CREATED_AT = 14


class QueueStore:
    """Queue rows, on one database's connections and retries (the dequeuer's own, or the runtime's)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.dialect
        self.is_postgres = dialect.name == "postgresql"
        skip = " FOR UPDATE SKIP LOCKED" if dialect.supports_skip_locked else ""
        self._insert = dialect.sql(_INSERT_ENQUEUED)
        self._get_workflow = dialect.sql(GET_WORKFLOW)
        self._waiting_sql: dict[int, str] = {}
        self._lock_queue = dialect.sql(_LOCK_QUEUE)
        self._promote_due = dialect.sql(_PROMOTE_DUE)
        self._next_due = dialect.sql(_NEXT_DUE)
        self._set_delay = dialect.sql(_SET_DELAY)
        self._defer = dialect.sql(_DEFER)
        self._dedup_holder = dialect.sql(_DEDUP_HOLDER)
        self._partitions = dialect.sql(_WAITING_PARTITIONS)
        self._load = {mode: dialect.sql(_QUEUE_LOAD.replace("{partition}", where))
                      for mode, where in _PARTITION_FILTERS.items()}
        claim = _CLAIM.replace("{columns}", WORKFLOW_SELECT).replace("{skip_locked}", skip)
        self._claim = {mode: dialect.sql(claim.replace("{partition}", where))
                       for mode, where in _PARTITION_FILTERS.items()}
        self._notify = dialect.sql(NOTIFY_SQL) if self.is_postgres else ""
        # When this store last took rows from each (queue, partition key), in claim rounds: fairness.
        self._served: dict[tuple[str, Any], int] = {}
        self._served_round = 0

    @staticmethod
    def _insert_params(new: NewWorkflow) -> tuple[Any, ...]:
        now = now_ms()
        return (new.workflow_id, new.status, new.name, new.class_name, new.config_name, new.inputs, new.request,
                new.application_version, new.application_id, new.queue_name, new.priority, new.deduplication_id,
                new.queue_partition_key, new.parent_workflow_id, now, now, new.workflow_version,
                new.workflow_timeout_ms, new.workflow_deadline_epoch_ms, new.attributes, new.authenticated_user,
                new.assumed_role, new.authenticated_roles, new.delay_until_epoch_ms, new.is_debounced,
                new.debounce_deadline_epoch_ms, new.schedule_name)

    def enqueue(self, new: NewWorkflow, wake_key: str) -> WorkflowRow | None:
        """Insert an ENQUEUED workflow row. Return None when inserted, else the row that already exists.

        On PostgreSQL the same transaction notifies ``wake_key``, so other processes dequeue at commit.
        Raises DuplicateDeduplicationID when another active workflow of the queue holds its ID.
        """
        params = self._insert_params(new)

        def work(cursor: Any) -> int:
            cursor.execute(self._insert, params)
            inserted = int(cursor.rowcount)
            if inserted and self.is_postgres:
                cursor.execute(self._notify, (wake_key,))
            return inserted

        try:
            if self.db.transaction(work):
                settle_past(params[_CREATED_AT])  # see settle_past
                return None
        except Exception as exc:
            if new.deduplication_id is not None and is_unique_violation(exc):
                raise DuplicateDeduplicationID() from exc
            raise
        rows = self.db.fetch(self._get_workflow, (new.workflow_id,))
        assert rows, "a conflicting workflow row vanished"
        return WorkflowRow(*rows[0])

    def enqueue_in(self, connection: sa.Connection, new: NewWorkflow, wake_key: str) -> None:
        """Insert an ENQUEUED row through the caller's open transaction; a refusal leaves it usable.

        PostgreSQL aborts a transaction at its first error, so the insert runs in a savepoint there (and
        notifies ``wake_key``, delivered at the COMMIT). SQLite undoes only the failed statement, and
        pysqlite may open no transaction before a SAVEPOINT (whose RELEASE would then commit on its
        own), so there it runs bare. Raises DuplicateDeduplicationID like ``enqueue``.
        """
        params = self._insert_params(new)
        try:
            if self.is_postgres:
                with connection.begin_nested():
                    connection.exec_driver_sql(self._insert, params)
                    connection.exec_driver_sql(self._notify, (wake_key,))
            else:
                connection.exec_driver_sql(self._insert, params)
        except sa.exc.DBAPIError as exc:
            if new.deduplication_id is not None and is_unique_violation(exc):
                raise DuplicateDeduplicationID() from exc
            raise

    def deduplication_holder(self, queue_name: str, deduplication_id: str) -> str | None:
        """The workflow holding a deduplication ID of a queue now (delayed, waiting or running), if any."""
        rows = self.db.fetch(self._dedup_holder, (queue_name, deduplication_id))
        return str(rows[0][0]) if rows else None

    def promote_due(self, wake_key: str) -> int | None:
        """Move DELAYED rows whose time has come to ENQUEUED; return the earliest time still ahead, if any.

        On PostgreSQL a promotion notifies ``wake_key``: processes serving other queues claim at once.
        """
        now = now_ms()
        if self.db.execute(self._promote_due, (now, now)) and self.is_postgres:
            self.db.execute(self._notify, (wake_key,))
        rows = self.db.fetch(self._next_due, ())
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_delay(self, workflow_id: str, delay_until_epoch_ms: int, wake_key: str) -> bool:
        """Change a DELAYED workflow's not-before time; False if it is not DELAYED (any more)."""

        def work(cursor: Any) -> bool:
            cursor.execute(self._set_delay, (delay_until_epoch_ms, now_ms(), workflow_id))
            changed = bool(cursor.rowcount)
            if changed and self.is_postgres:
                cursor.execute(self._notify, (wake_key,))
            return changed

        return self.db.transaction(work)

    def defer(self, workflow_id: str, generation: int, until_epoch_ms: int) -> bool:
        """Put a workflow this process claimed back to wait until ``until_epoch_ms``; False if it moved on."""
        return bool(self.db.execute(self._defer, (until_epoch_ms, now_ms(), workflow_id, generation)))

    def waiting_queues(self, queue_names: list[str]) -> set[str]:
        """Which of these queues hold ENQUEUED rows: one indexed read for all, and no write lock.

        The dequeuer asks this every round, so idle queues cost it one statement, not one each.
        """
        if not queue_names:
            return set()
        sql = self._waiting_sql.get(len(queue_names))
        if sql is None:
            sql = self.db.dialect.sql(_WAITING_QUEUES.replace("{names}", ", ".join("?" * len(queue_names))))
            self._waiting_sql[len(queue_names)] = sql
        return {row[0] for row in self.db.fetch(sql, queue_names)}

    def claim(self, queue_name: str, executor_id: str, limits: QueueLimits, batch: int,
              partition_limits: QueueLimits | None = None, app_version: str = "") -> Claimed:
        """Move up to ``batch`` ENQUEUED rows of a queue of ``app_version`` (or none) to PENDING here.

        With ``partition_limits`` the queue is partitioned: each partition key gets its own room.
        """

        def work(cursor: Any) -> Claimed:
            now = now_ms()
            if self.is_postgres:
                cursor.execute(self._lock_queue, (queue_name,))
                cursor.fetchall()
            room, waiting = self._room(cursor, queue_name, _WHOLE, executor_id, limits, batch, now)
            if partition_limits is None:
                rows = self._take(cursor, queue_name, _WHOLE, executor_id, app_version, room, now)
                return Claimed(rows, waiting > len(rows))
            rows = []
            backlog = False
            cursor.execute(self._partitions, (queue_name,))
            for key in self._fair_order(queue_name, [key for (key,) in cursor.fetchall()]):
                if room <= 0:
                    return Claimed(rows, True)
                part_room, part_waiting = self._room(cursor, queue_name, key, executor_id, partition_limits, room, now)
                taken = self._take(cursor, queue_name, key, executor_id, app_version, part_room, now)
                rows.extend(taken)
                room -= len(taken)
                backlog = backlog or part_waiting > len(taken)
            return Claimed(sorted(rows, key=lambda r: r.created_at), backlog)

        claimed = self.db.transaction(work)
        # Only a committed claim counts as served: a retried attempt's partitions were not.
        for key in dict.fromkeys(row.queue_partition_key for row in claimed.rows):
            self._served_round += 1
            self._served[(queue_name, key)] = self._served_round
        return claimed

    def _fair_order(self, queue_name: str, keys: list[Any]) -> list[Any]:
        """Partitions this store served least recently first, then in the queue's order (priority, age).

        Oldest-first alone starves: partitions with a long backlog hold the oldest rows and would
        take every free slot before a newer partition's first row.
        """
        if len(self._served) > _SERVED_MEMORY:
            self._served.clear()
        return sorted(keys, key=lambda key: self._served.get((queue_name, key), 0))

    def _room(self, cursor: Any, queue_name: str, partition: object, executor_id: str, limits: QueueLimits,
              batch: int, now: int) -> tuple[int, int]:
        """(how many rows the limits let this claim take, how many wait) for the queue or one partition."""
        since = now - limits.period_ms if limits.limit is not None else now + 1
        mode, extra = _partition_mode(partition)
        cursor.execute(self._load[mode], (executor_id, since, queue_name, since, *extra))
        running, running_here, started, waiting = (int(v) for v in cursor.fetchone())
        room = batch
        if limits.concurrency is not None:
            room = min(room, limits.concurrency - running)
        if limits.worker_concurrency is not None:
            room = min(room, limits.worker_concurrency - running_here)
        if limits.limit is not None:
            room = min(room, limits.limit - started)
        return (room if waiting else 0), waiting

    def _take(self, cursor: Any, queue_name: str, partition: object, executor_id: str, app_version: str,
              room: int, now: int) -> list[WorkflowRow]:
        if room <= 0:
            return []
        mode, extra = _partition_mode(partition)
        cursor.execute(self._claim[mode], (queue_name, *extra, app_version, room, executor_id, app_version, now, now,
                                            now))
        return sorted((WorkflowRow(*r) for r in cursor.fetchall()), key=lambda r: r.created_at)


# Forget the fairness memory past this many partitions (it only orders, it never limits).
_SERVED_MEMORY = 100_000

# Marks "the whole queue" where a partition key (or None, rows without one) is expected.
_WHOLE = object()


def _partition_mode(partition: object) -> tuple[str, tuple[Any, ...]]:
    if partition is _WHOLE:
        return "all", ()
    if partition is None:
        return "none", ()
    return "key", (partition,)
