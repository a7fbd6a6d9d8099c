"""A durable-execution runtime with DBOS Transact's Python API, vendored into this project.

Code written for DBOS changes only its import line::

    from <package>.durable import DBOS, DBOSConfig, SetWorkflowID, error

See README.md beside this file for the durability model.
"""

from __future__ import annotations

from . import error
from .api import DBOS, DBOSConfiguredInstance
from .attributes import SetWorkflowAttributes
from .auth import DBOSContextSetAuth
from .client import DBOSClient, EnqueueOptions
from .config import DBOSConfig
from .context import DBOSContext, RequestInfo, SetWorkflowID, SetWorkflowTimeout, assert_current_dbos_context
from .debouncer import Debouncer
from .enqueue import EnqueueInTransaction
from .enqueue_options import SetEnqueueOptions
from .handles import StepInfo, WorkflowHandle, WorkflowStatus
from .messaging import SendMessage
from .portable import (
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Serializer,
    WorkflowSerializationFormat,
)
from .queues import Queue
from .schedules import ScheduleInput, WorkflowSchedule
from .store.base import WorkflowStatusString

# Bumped with every change to this folder; the template README's changelog says what changed and
# whether a migration comes with it (`cruft update` brings both).
__version__ = "0.5.1"

__all__ = [
    "DBOS",
    "DBOSConfig",
    "DBOSClient",
    "DBOSConfiguredInstance",
    "DBOSContext",
    "DBOSContextSetAuth",
    "DBOSPortableJSONSerializer",
    "Debouncer",
    "EnqueueInTransaction",
    "EnqueueOptions",
    "PortableWorkflowError",
    "Queue",
    "RequestInfo",
    "ScheduleInput",
    "Serializer",
    "SendMessage",
    "SetEnqueueOptions",
    "SetWorkflowAttributes",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "StepInfo",
    "WorkflowHandle",
    "WorkflowSchedule",
    "WorkflowSerializationFormat",
    "WorkflowStatus",
    "WorkflowStatusString",
    "assert_current_dbos_context",
    "error",
]
