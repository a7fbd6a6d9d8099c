"""A durable-execution runtime with DBOS Transact's Python API, vendored into this project.

Code written for DBOS changes only its import line::

    from <package>.durable import DBOS, DBOSConfig, SetWorkflowID, error

See README.md beside this file for the durability model.
"""

from __future__ import annotations

from . import error
from .api import DBOS, DBOSConfiguredInstance
from .config import DBOSConfig
from .context import DBOSContext, RequestInfo, SetWorkflowID, SetWorkflowTimeout, assert_current_dbos_context
from .enqueue import EnqueueInTransaction, SetEnqueueOptions
from .handles import StepInfo, WorkflowHandle, WorkflowStatus
from .queues import Queue
from .schedules import ScheduleInput, WorkflowSchedule
from .store.base import WorkflowStatusString

# Bumped with every change to this folder; the template README's changelog says what changed and
# whether a migration comes with it (`cruft update` brings both).
__version__ = "0.1.0"

__all__ = [
    "DBOS",
    "DBOSConfig",
    "DBOSConfiguredInstance",
    "DBOSContext",
    "EnqueueInTransaction",
    "Queue",
    "RequestInfo",
    "ScheduleInput",
    "SetEnqueueOptions",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "StepInfo",
    "WorkflowHandle",
    "WorkflowSchedule",
    "WorkflowStatus",
    "WorkflowStatusString",
    "assert_current_dbos_context",
    "error",
]
