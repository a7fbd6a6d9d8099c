"""``DBOS.set_workflow_delay``: move a DELAYED workflow's not-before time (the dequeuer promotes it then)."""

from __future__ import annotations

import time

from .enqueue import QUEUE_KEY, wake_dequeuer
from .error import DBOSException
from .runtime import Runtime


def set_workflow_delay(rt: Runtime, workflow_id: str, *, delay_seconds: float | None = None,
                       delay_until_epoch_ms: int | None = None) -> None:
    """Give a DELAYED workflow a new time (``delay_seconds`` from now, or an absolute epoch time in ms).

    A workflow that is no longer DELAYED is left alone, as in DBOS.
    """
    if (delay_seconds is None) == (delay_until_epoch_ms is None):
        raise DBOSException("Specify either delay_seconds or delay_until_epoch_ms, not both (and not neither)")
    if delay_until_epoch_ms is not None:
        if not isinstance(delay_until_epoch_ms, int) or delay_until_epoch_ms < 0:
            raise DBOSException(f"delay_until_epoch_ms must be an integer >= 0, got {delay_until_epoch_ms!r}")
        until = delay_until_epoch_ms
    else:
        if not isinstance(delay_seconds, (int, float)) or delay_seconds < 0:
            raise DBOSException(f"delay_seconds must be >= 0, got {delay_seconds!r}")
        until = int((time.time() + delay_seconds) * 1000)
    if rt.queue_store.set_delay(workflow_id, until, QUEUE_KEY):
        wake_dequeuer(rt)  # it may be due sooner than the dequeuer planned to wake
