"""``DBOS.enqueue_workflow_with_options``: enqueue a workflow by its registered name, without its function.

The options are DBOS's ``EnqueueOptions`` (the dict ``DBOSClient.enqueue`` takes), so the workflow may be
implemented by another process sharing this system database. Nothing is checked against this
process's registry, and the row's application version stays unset unless ``app_version`` gives one.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from difflib import get_close_matches
from typing import Any

from .context import SetWorkflowID, SetWorkflowTimeout
from .enqueue import enqueue_workflow
from .enqueue_options import SetEnqueueOptions
from .error import DBOSException
from .handles import WorkflowHandle
from .registered_queues import queue_for_enqueue
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime

# DBOS 2.31.1's EnqueueOptions keys; those past "instance_name" are accepted and have no effect here.
OPTION_KEYS = ("workflow_name", "queue_name", "workflow_id", "app_version", "workflow_timeout", "delay_seconds",
               "deduplication_id", "duplication_policy", "priority", "queue_partition_key", "class_name",
               "instance_name", "max_recovery_attempts", "authenticated_user", "authenticated_roles",
               "serialization_type", "attributes", "application_name", "otel_context")


def _not_here(*_args: Any, **_kwargs: Any) -> Any:
    raise DBOSException("this workflow is implemented by another process: enqueue it, do not call it")


def _checked(options: Mapping[str, Any]) -> tuple[str, str]:
    if not isinstance(options, Mapping):
        raise DBOSException(f"enqueue_workflow_with_options takes a dict of EnqueueOptions, got {options!r}")
    for key in options:
        if key not in OPTION_KEYS:
            near = get_close_matches(str(key), OPTION_KEYS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise DBOSException(f"unknown enqueue option {key!r}{hint}")
    for key in ("workflow_name", "queue_name"):
        if not isinstance(options.get(key), str) or not options[key]:
            raise DBOSException(f"enqueue_workflow_with_options needs {key!r} (a non-empty string)")
    return options["workflow_name"], options["queue_name"]


def enqueue_with_options(rt: Runtime, options: Mapping[str, Any], args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> WorkflowHandle[Any]:
    name, queue_name = _checked(options)
    info = REGISTRY.find_workflow(name) or FunctionInfo(name, _not_here, "workflow",
                                                        class_name=options.get("class_name"))
    with ExitStack() as stack:
        stack.enter_context(SetEnqueueOptions(
            deduplication_id=options.get("deduplication_id"), priority=options.get("priority"),
            app_version=options.get("app_version"), queue_partition_key=options.get("queue_partition_key"),
            delay_seconds=options.get("delay_seconds"), duplication_policy=options.get("duplication_policy")))
        if options.get("workflow_id") is not None:
            stack.enter_context(SetWorkflowID(options["workflow_id"]))
        if "workflow_timeout" in options:
            stack.enter_context(SetWorkflowTimeout(options["workflow_timeout"]))
        workflow_id = enqueue_workflow(rt, queue_for_enqueue(queue_name), info, args, kwargs,
                                       unpinned=options.get("app_version") is None)
    return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))
