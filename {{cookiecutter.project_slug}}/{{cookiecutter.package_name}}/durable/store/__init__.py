"""The checkpoint store: every read and write of the system tables, for SQLite and PostgreSQL."""

from __future__ import annotations

from .base import NewWorkflow, StepRecord, WorkflowRow, WorkflowStatusString
from .checkpoint_store import CheckpointStore
from .dialects import Dialect, create_sqlite_engine, dialect_for

__all__ = [
    "CheckpointStore",
    "Dialect",
    "NewWorkflow",
    "StepRecord",
    "WorkflowRow",
    "WorkflowStatusString",
    "create_sqlite_engine",
    "dialect_for",
]
