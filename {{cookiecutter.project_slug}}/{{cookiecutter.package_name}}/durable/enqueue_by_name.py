"""``DBOS.enqueue_workflow_with_options``: enqueue a workflow by its registered name, without its function.

The options are DBOS's ``EnqueueOptions`` (the dict ``DBOSClient.enqueue`` takes), so the workflow may be
implemented by another process sharing this system database. Nothing is checked against this
process's registry, and the row's application version stays unset unless ``app_version`` gives one.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from difflib import get_close_matches
from typing import Any

from .attributes import SetWorkflowAttributes, validate_workflow_attributes
from .auth import DBOSContextSetAuth
from .context import SetWorkflowID, SetWorkflowTimeout, current_context
from .enqueue import enqueue_workflow
from .enqueue_options import (
    EnqueueOptions,
    SetEnqueueOptions,
    current_enqueue_options,
    enqueue_options_in_effect,
)
from .error import DBOSException
from .handles import WorkflowHandle
from .registered_queues import queue_for_enqueue
from .registry import REGISTRY, FunctionInfo
from .runtime import Runtime

# DBOS 2.31.1's EnqueueOptions keys; of those past "instance_name", attributes and the authenticated user
# and roles take effect, the others are accepted and have no effect here.
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


def _over_ambient(given: EnqueueOptions, ambient: EnqueueOptions) -> EnqueueOptions:
    """The options given, each unset one (None counts as unset) taken from the caller's SetEnqueueOptions block."""
    return EnqueueOptions(
        priority=given.priority if given.explicit_priority else ambient.priority,
        deduplication_id=given.deduplication_id if given.deduplication_id is not None else ambient.deduplication_id,
        queue_partition_key=(given.queue_partition_key if given.queue_partition_key is not None
                             else ambient.queue_partition_key),
        delay_until_epoch_ms=(given.delay_until_epoch_ms if given.delay_until_epoch_ms is not None
                              else ambient.delay_until_epoch_ms),
        app_version=given.app_version if given.app_version is not None else ambient.app_version,
        duplication_policy=given.duplication_policy if given.duplication_policy is not None else ambient.duplication_policy,
        explicit_priority=given.explicit_priority or ambient.explicit_priority,
    )


def _enter_attributes_and_auth(stack: ExitStack, options: Mapping[str, Any]) -> None:
    """The options' attributes merge over the caller's block; their user and roles replace the caller's if given."""
    explicit = options.get("attributes")
    if explicit is not None:
        validate_workflow_attributes(explicit)
        ctx = current_context()
        ambient = ctx.workflow_attributes if ctx is not None else None
        stack.enter_context(SetWorkflowAttributes({**(ambient or {}), **explicit}))
    if options.get("authenticated_user") is not None or options.get("authenticated_roles") is not None:
        stack.enter_context(DBOSContextSetAuth(options.get("authenticated_user"), options.get("authenticated_roles")))


def enqueue_with_options(rt: Runtime, options: Mapping[str, Any], args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> WorkflowHandle[Any]:
    name, queue_name = _checked(options)
    info = REGISTRY.find_workflow(name) or FunctionInfo(name, _not_here, "workflow",
                                                        class_name=options.get("class_name"))
    with ExitStack() as stack:
        given = SetEnqueueOptions(
            deduplication_id=options.get("deduplication_id"), priority=options.get("priority"),
            app_version=options.get("app_version") or None, queue_partition_key=options.get("queue_partition_key"),
            delay_seconds=options.get("delay_seconds"), duplication_policy=options.get("duplication_policy")).options
        merged = _over_ambient(given, current_enqueue_options())
        if options.get("app_version") == "":  # this process's (unset) version, named explicitly: it wins too
            merged = replace(merged, app_version=None)
        if merged.queue_partition_key is not None and merged.deduplication_id is not None:
            raise DBOSException("Deduplication is not supported for partitioned queues")
        stack.enter_context(enqueue_options_in_effect(merged))
        if options.get("workflow_id") is not None:
            stack.enter_context(SetWorkflowID(options["workflow_id"]))
        if "workflow_timeout" in options:
            stack.enter_context(SetWorkflowTimeout(options["workflow_timeout"]))
        _enter_attributes_and_auth(stack, options)
        workflow_id = enqueue_workflow(rt, queue_for_enqueue(queue_name), info, args, kwargs,
                                       unpinned=merged.app_version is None and options.get("app_version") != "")
    return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))
