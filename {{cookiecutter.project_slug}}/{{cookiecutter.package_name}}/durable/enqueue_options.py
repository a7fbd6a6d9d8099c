"""``SetEnqueueOptions``: what the enqueues of a ``with`` block carry, checked where DBOS checks it.

- ``priority``: a lower number runs first (1 is the highest; without one, 0, ahead of all).
- ``deduplication_id``: while a workflow of the queue holding this ID is delayed, waits or runs,
  another enqueue with it raises ``DBOSQueueDeduplicatedError`` (``duplication_policy="reject"``,
  the default) or returns that workflow's handle (``"return-existing"``).
- ``queue_partition_key``: the partition of a partitioned queue (required there, refused elsewhere).
- ``delay_seconds``: the workflow waits DELAYED that long before it joins its queue.
- ``app_version``: the application version recorded on the workflow (only executors of that version
  recover it); the one option that also applies to ``DBOS.start_workflow``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .error import DBOSException

MAX_PRIORITY = 2**31 - 1
DUPLICATION_POLICIES = ("reject", "return-existing")


@dataclass(frozen=True)
class EnqueueOptions:
    priority: int = 0
    deduplication_id: str | None = None
    queue_partition_key: str | None = None
    delay_until_epoch_ms: int | None = None
    app_version: str | None = None
    duplication_policy: str | None = None
    explicit_priority: bool = False  # priority given (0 is also the default)


_enqueue_options: ContextVar[EnqueueOptions | None] = ContextVar("durable_enqueue_options", default=None)


def current_enqueue_options() -> EnqueueOptions:
    return _enqueue_options.get() or EnqueueOptions()


class SetEnqueueOptions:
    """``with SetEnqueueOptions(...):`` applies to the workflows enqueued in the block (see the module doc)."""

    def __init__(self, *, deduplication_id: str | None = None, priority: int | None = None,
                 app_version: str | None = None, queue_partition_key: str | None = None,
                 delay_seconds: float | None = None, duplication_policy: str | None = None) -> None:
        if priority is not None and not (isinstance(priority, int) and 1 <= priority <= MAX_PRIORITY):
            raise ValueError(f"Invalid priority {priority!r}. Priority must be between 1~{MAX_PRIORITY}.")
        for label, value in (("deduplication_id", deduplication_id), ("queue_partition_key", queue_partition_key),
                             ("app_version", app_version)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{label} must be a non-empty string, got {value!r}")
        if delay_seconds is not None and (not isinstance(delay_seconds, (int, float)) or delay_seconds < 0):
            raise ValueError(f"delay_seconds must be a number of seconds, zero or more, got {delay_seconds!r}")
        delay_until = int((time.time() + delay_seconds) * 1000) if delay_seconds is not None else None
        self.options = EnqueueOptions(priority or 0, deduplication_id, queue_partition_key, delay_until, app_version,
                                      duplication_policy, priority is not None)
        self._token: Any = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        _enqueue_options.reset(self._token)


@contextmanager
def enqueue_options_in_effect(options: EnqueueOptions) -> Iterator[None]:
    """Set exactly these options (absolute delay included) for the block; the Debouncer's own way in."""
    token = _enqueue_options.set(options)
    try:
        yield
    finally:
        _enqueue_options.reset(token)


def check_duplication_policy(policy: str | None, queue_name: str | None, deduplication_id: str | None) -> None:
    """``return-existing`` needs a queue and a deduplication ID to attach by (DBOS's rules and words)."""
    if policy is None or policy == "reject":
        return
    if policy != "return-existing":
        raise DBOSException(f"Invalid duplication_policy {policy}. Must be either 'reject' or 'return-existing'.")
    if queue_name is None:
        raise DBOSException("duplication_policy 'return-existing' requires a queue. It is only supported when "
                            "enqueueing a workflow onto a queue.")
    if deduplication_id is None:
        raise DBOSException("duplication_policy 'return-existing' requires a deduplication_id.")


def refuse_outside_queue() -> None:
    """``DBOS.start_workflow`` in a ``SetEnqueueOptions`` block: options that need a queue are refused
    before any row is written (a deduplication ID without a queue would block a later recovery)."""
    options = _enqueue_options.get()
    if options is None:
        return
    set_options = [name for name, value in (
        ("deduplication_id", options.deduplication_id),
        ("priority", options.priority if options.explicit_priority else None),
        ("queue_partition_key", options.queue_partition_key),
        ("delay_seconds", options.delay_until_epoch_ms),
    ) if value is not None]
    if set_options:
        raise DBOSException(f"Enqueue option(s) {', '.join(set_options)} set on a workflow that is not being "
                            "enqueued. These options are only supported when enqueueing a workflow onto a queue.")
    check_duplication_policy(options.duplication_policy, None, options.deduplication_id)


def pinned_app_version() -> str | None:
    """``SetEnqueueOptions(app_version=...)``: the version to record on the next workflow, if any."""
    options = _enqueue_options.get()
    return options.app_version if options is not None else None
