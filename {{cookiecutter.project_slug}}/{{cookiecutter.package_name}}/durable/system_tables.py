"""The runtime's system tables as they are today, as SQLAlchemy Core definitions.

The tables live beside the application's own: in their own schema on PostgreSQL (``dbos`` by default)
and under a name prefix on SQLite (``dbos_workflow_status``), since SQLite has no schemas.
``schema.py`` holds the numbered steps that bring a database made by an older runtime to this shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from .store.dialects import DEFAULT_PG_SCHEMA, SQLITE_PREFIX

# A deduplication ID is held only while its workflow waits (DELAYED or ENQUEUED) or runs. Rows without
# one (nearly all) stay out of the unique index: NULLs never conflict, and each would cost the row's
# insert and its end an index write (step 6).
DEDUPLICATING_ROW = sa.text("deduplication_id IS NOT NULL AND status IN ('DELAYED', 'ENQUEUED', 'PENDING')")
SCHEDULED_ROW = sa.text("schedule_name IS NOT NULL")  # most workflows have none: keep them out of its index
# The same for queues, children and forks (step 5); a query with queue_name = ? or IN (...) implies it.
QUEUED_ROW = sa.text("queue_name IS NOT NULL")
CHILD_ROW = sa.text("parent_workflow_id IS NOT NULL")
FORK_ROW = sa.text("forked_from IS NOT NULL")


@dataclass(frozen=True)
class SystemTables:
    """The system tables as SQLAlchemy Core objects, named for one database."""

    metadata: sa.MetaData
    workflow_status: sa.Table
    operation_outputs: sa.Table
    executors: sa.Table
    idempotency_keys: sa.Table
    notifications: sa.Table
    workflow_events: sa.Table
    workflow_events_history: sa.Table
    schema_version: sa.Table
    pg_schema: str | None
    workflow_schedules: sa.Table
    streams: sa.Table
    queues: sa.Table

    def qualified(self, table: sa.Table) -> str:
        """The table's name as raw SQL must spell it (``dbos.workflow_status`` or ``dbos_workflow_status``)."""
        return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def system_tables(dialect_name: str, pg_schema: str = DEFAULT_PG_SCHEMA) -> SystemTables:
    """Build the table definitions for a dialect (``postgresql`` or ``sqlite``)."""
    is_pg = dialect_name == "postgresql"
    schema = pg_schema if is_pg else None
    prefix = "" if is_pg else SQLITE_PREFIX
    json_type: sa.types.TypeEngine[Any] = JSONB() if is_pg else sa.Text()
    metadata = sa.MetaData(schema=schema)

    workflow_status = sa.Table(
        f"{prefix}workflow_status",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("class_name", sa.Text),
        sa.Column("config_name", sa.Text),
        sa.Column("inputs", json_type),
        sa.Column("output", json_type),
        sa.Column("error", json_type),
        sa.Column("request", json_type),
        sa.Column("executor_id", sa.Text),
        # Fencing token: bumped each time another executor adopts the workflow. Every checkpoint write
        # names the generation it was started under, so a zombie's late write matches no row.
        sa.Column("owner_generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("application_version", sa.Text),
        sa.Column("application_id", sa.Text),
        # The workflow function's own explicit version (@DBOS.workflow(version=...)): recovery runs
        # the code registered under the recorded one, or fails loudly when no such code exists.
        sa.Column("workflow_version", sa.Text, nullable=False, server_default=""),
        sa.Column("recovery_attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queue_name", sa.Text),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        # Unique per queue among waiting and running workflows (the index below): a second enqueue with
        # the same ID is refused until the first finishes.
        sa.Column("deduplication_id", sa.Text),
        # A partitioned queue applies its per-partition limits to the rows of each key separately.
        sa.Column("queue_partition_key", sa.Text),
        sa.Column("started_at_epoch_ms", sa.BigInteger),  # when a queue dequeued it (the rate limiter counts these)
        sa.Column("parent_workflow_id", sa.Text),
        sa.Column("workflow_timeout_ms", sa.BigInteger),
        sa.Column("workflow_deadline_epoch_ms", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("completed_at", sa.BigInteger),
        # SetEnqueueOptions(delay_seconds=...): a DELAYED row becomes ENQUEUED once this time has come.
        sa.Column("delay_until_epoch_ms", sa.BigInteger),
        # Debouncer: a debounced DELAYED row (0/1) takes new inputs and a later time until this cap.
        sa.Column("is_debounced", sa.Integer, nullable=False, server_default="0"),
        sa.Column("debounce_deadline_epoch_ms", sa.BigInteger),
        # The stored schedule that enqueued the workflow (DBOS.create_schedule), for list_workflows(schedule_name=).
        sa.Column("schedule_name", sa.Text),
        # fork_workflow: the workflow a fork was copied from, and (0/1) on the original that it was.
        sa.Column("forked_from", sa.Text),
        sa.Column("was_forked_from", sa.Integer, nullable=False, server_default="0"),
        # SetWorkflowAttributes: the caller's key-value pairs, plain JSON (filtered with @> on PostgreSQL).
        sa.Column("attributes", json_type),
        # DBOSContextSetAuth / required_roles: who started the workflow, and the role it assumed.
        sa.Column("authenticated_user", sa.Text),
        sa.Column("assumed_role", sa.Text),
        sa.Column("authenticated_roles", json_type),
        sa.Index(f"{prefix}workflow_status_executor_status", "executor_id", "status"),
        sa.Index(f"{prefix}workflow_status_queue_status", "queue_name", "status", "priority", "created_at",
                 postgresql_where=QUEUED_ROW, sqlite_where=QUEUED_ROW),
        sa.Index(f"{prefix}workflow_status_schedule_name", "schedule_name", "created_at",
                 postgresql_where=SCHEDULED_ROW, sqlite_where=SCHEDULED_ROW),
        sa.Index(f"{prefix}workflow_status_queue_dedup", "queue_name", "deduplication_id", unique=True,
                 postgresql_where=DEDUPLICATING_ROW, sqlite_where=DEDUPLICATING_ROW),
        # Children of a workflow (cancel/delete with children, list_workflows(parent_workflow_id=)) and forks.
        sa.Index(f"{prefix}workflow_status_parent", "parent_workflow_id",
                 postgresql_where=CHILD_ROW, sqlite_where=CHILD_ROW),
        sa.Index(f"{prefix}workflow_status_forked_from", "forked_from",
                 postgresql_where=FORK_ROW, sqlite_where=FORK_ROW),
        # The dashboard's keyset pages, newest first, unfiltered or by status, name or queue (step 3).
        # They also serve what (status, created_at), (created_at) and (name) did, dropped by step 5.
        sa.Index(f"{prefix}workflow_status_created_uuid", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_status_created_uuid", "status", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_name_created_uuid", "name", "created_at", "workflow_uuid"),
        sa.Index(f"{prefix}workflow_status_queue_created_uuid", "queue_name", "created_at", "workflow_uuid",
                 postgresql_where=QUEUED_ROW, sqlite_where=QUEUED_ROW),
    )
    operation_outputs = sa.Table(
        f"{prefix}operation_outputs",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("function_id", sa.Integer, primary_key=True),
        sa.Column("function_name", sa.Text, nullable=False),
        sa.Column("output", json_type),
        sa.Column("error", json_type),
        sa.Column("child_workflow_id", sa.Text),
        sa.Column("started_at_epoch_ms", sa.BigInteger),
        sa.Column("completed_at_epoch_ms", sa.BigInteger),
        # How many times a step ran before its outcome was recorded (retries; the dashboard shows it).
        sa.Column("attempts", sa.Integer),
        # The arguments a step or transaction was called with, as checkpoint JSON (step 4; the dashboard
        # shows them). NULL for records that take none (sleeps, messages, child starts) and older rows.
        sa.Column("inputs", json_type),
    )
    executors = sa.Table(
        f"{prefix}executors",
        metadata,
        sa.Column("executor_id", sa.Text, primary_key=True),
        sa.Column("hostname", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("application_version", sa.Text),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    )
    # HTTP idempotency: one row per dbos-idempotency-key, holding the request's fingerprint and, once
    # it is done, the response that every retry gets back.
    idempotency_keys = sa.Table(
        f"{prefix}idempotency_keys",
        metadata,
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),  # "running" or "done"
        sa.Column("executor_id", sa.Text),
        sa.Column("response_status", sa.Text),
        sa.Column("response_headers", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}idempotency_keys_expires", "expires_at"),
    )
    # DBOS.send / DBOS.recv: one row per message. The sequence orders a topic's messages (FIFO);
    # message_uuid makes a send idempotent (a workflow's step, or the caller's idempotency key).
    notifications = sa.Table(
        f"{prefix}notifications",
        metadata,
        sa.Column("message_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("message_uuid", sa.Text, nullable=False, unique=True),
        sa.Column("destination_uuid", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("message", json_type, nullable=False),
        sa.Column("consumed", sa.Integer, nullable=False, server_default="0"),  # 0/1: same SQL on both
        sa.Column("created_at_epoch_ms", sa.BigInteger, nullable=False),
        sa.Index(f"{prefix}notifications_destination", "destination_uuid", "topic", "consumed", "message_seq"),
    )
    # DBOS.set_event / DBOS.get_event: the latest value of each key, and every value with the step
    # that set it (fork_workflow copies the history of the steps it keeps, then rebuilds the latest).
    workflow_events = sa.Table(
        f"{prefix}workflow_events",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", json_type, nullable=False),
    )
    workflow_events_history = sa.Table(
        f"{prefix}workflow_events_history",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("function_id", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", json_type, nullable=False),
    )
    # DBOS.create_schedule / apply_schedules: one row per schedule name; every process's scheduler runs
    # the ACTIVE ones. context is the codec's JSON text; last_fired_at the latest tick, ISO 8601 in its zone.
    workflow_schedules = sa.Table(
        f"{prefix}workflow_schedules",
        metadata,
        sa.Column("schedule_id", sa.Text, primary_key=True),
        sa.Column("schedule_name", sa.Text, nullable=False, unique=True),
        sa.Column("workflow_name", sa.Text, nullable=False),
        sa.Column("workflow_class_name", sa.Text),
        sa.Column("schedule", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="ACTIVE"),
        sa.Column("context", sa.Text),
        sa.Column("last_fired_at", sa.Text),
        sa.Column("automatic_backfill", sa.Integer, nullable=False, server_default="0"),  # 0/1: same SQL on both
        sa.Column("cron_timezone", sa.Text),
        sa.Column("queue_name", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    # DBOS.write_stream: the values of each (workflow, key) stream by offset. A NULL value is the close
    # marker; function_id is the writing step, so fork_workflow keeps the entries of the steps it keeps.
    streams = sa.Table(
        f"{prefix}streams",
        metadata,
        sa.Column("workflow_uuid", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("stream_offset", sa.Integer, primary_key=True),
        sa.Column("value", json_type),
        sa.Column("function_id", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["workflow_uuid"], [workflow_status.c.workflow_uuid], ondelete="CASCADE"),
    )
    # DBOS.register_queue: database-backed queues, their limits shared by every process and changed at
    # run time (Queue.set_global_concurrency...); each dequeuer re-reads them every round.
    queues = sa.Table(
        f"{prefix}queues",
        metadata,
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("concurrency", sa.Integer),
        sa.Column("worker_concurrency", sa.Integer),
        sa.Column("rate_limit_max", sa.Integer),
        sa.Column("rate_limit_period_sec", sa.Float),
        sa.Column("priority_enabled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("partition_queue", sa.Integer, nullable=False, server_default="0"),
        sa.Column("partition_concurrency", sa.Integer),
        sa.Column("partition_worker_concurrency", sa.Integer),
        sa.Column("partition_rate_limit_max", sa.Integer),
        sa.Column("partition_rate_limit_period_sec", sa.Float),
        sa.Column("polling_interval_sec", sa.Float, nullable=False, server_default="1.0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    schema_version = sa.Table(
        f"{prefix}schema_version",
        metadata,
        sa.Column("version", sa.Integer, nullable=False),
    )
    return SystemTables(
        metadata=metadata, workflow_status=workflow_status, operation_outputs=operation_outputs, executors=executors,
        idempotency_keys=idempotency_keys, notifications=notifications, workflow_events=workflow_events,
        workflow_events_history=workflow_events_history, schema_version=schema_version, pg_schema=schema,
        streams=streams, workflow_schedules=workflow_schedules, queues=queues,
    )
