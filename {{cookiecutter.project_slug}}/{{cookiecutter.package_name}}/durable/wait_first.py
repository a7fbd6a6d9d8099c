"""``DBOS.wait_first(handles)``: wait until one of several workflows has finished and return its handle.

From a workflow's body the wait is its step ``DBOS.waitFirst`` (``recorded_calls.py``): replay returns
the workflow that finished first in the first run, whatever has finished since.
"""

from __future__ import annotations

from typing import Any

from .handles import WorkflowHandle
from .recorded_calls import as_step
from .runtime import Runtime

WAIT_FIRST = "DBOS.waitFirst"
_ACTIVE = ("DELAYED", "ENQUEUED", "PENDING")


def wait_first(rt: Runtime, handles: list[WorkflowHandle[Any]], polling_interval_sec: float) -> WorkflowHandle[Any]:
    if not handles:
        raise ValueError("handles must not be empty")
    by_id = {handle.workflow_id: handle for handle in handles}
    if len(by_id) != len(handles):
        raise ValueError("handles must not contain duplicate workflow IDs")
    # Re-read often: a finished child in this process is seen at once, one elsewhere within this period.
    interval = min(max(polling_interval_sec, 0.01), 0.1)

    def first_finished() -> str:
        while True:
            for workflow_id in by_id:  # read the rows directly: a listing here would be a step of its own
                row = rt.checkpoint_store.get_workflow(workflow_id)
                if row is not None and row.status not in _ACTIVE:
                    return workflow_id
            if rt.stopping.wait(interval):
                raise TimeoutError("the runtime is stopping")

    return by_id[as_step(rt, WAIT_FIRST, first_finished)]
