"""``Debouncer``: many calls with one key within a period start one workflow, with the last call's inputs.

``Debouncer.create(workflow, debounce_timeout_sec=..., queue=...)`` then ``debounce(key, period, *args)``:
the first call enqueues the workflow DELAYED by ``period`` (on ``queue``, else the internal queue) with
the key as its deduplication ID; each later call while it is still DELAYED gives it the new inputs and
pushes its start to now + ``period``, never past the first call + ``debounce_timeout_sec``. Once the
workflow starts, the key is free and the next call starts a new one. Every caller gets a handle to the
workflow that will run. The state is all in the workflow's row (``store/debounce_store.py``), so
debouncers in several processes share it.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from .context import current_context, workflow_body
from .current import current_runtime
from .enqueue import INTERNAL_QUEUE_NAME, QUEUE_KEY, QueueRef, enqueue_workflow, wake_dequeuer
from .enqueue_options import EnqueueOptions, current_enqueue_options, enqueue_options_in_effect
from .error import DBOSException, DBOSQueueDeduplicatedError
from .executor import is_portable_workflow
from .handles import WorkflowHandle
from .queues import QUEUES, Queue
from .registry import FunctionInfo, workflow_of
from .runtime import Runtime
from .steps import run_step
from .store.debounce_store import DebounceStore

P = ParamSpec("P")
R = TypeVar("R")

# A bounce from a workflow body is a step of it, so replay returns what the first run did.
_BOUNCE_STEP = "DBOS.debounce_delayed_workflow"


def _refuse_conflicting_options(options: EnqueueOptions) -> None:
    """A debounce owns the deduplication ID (the key) and the delay (the period); the rest cannot apply."""
    if options.deduplication_id is not None:
        raise DBOSException("Cannot debounce a workflow with a deduplication_id set: the debounce key is used as the "
                            "workflow's deduplication ID.")
    if options.delay_until_epoch_ms is not None:
        raise DBOSException("Cannot debounce a workflow with a delay set: the debounce period controls the "
                            "workflow's delay.")
    if options.explicit_priority:
        raise DBOSException("Cannot debounce a workflow with a priority set: priority is not supported for "
                            "debounced workflows.")
    if options.queue_partition_key is not None:
        raise DBOSException("Cannot debounce a workflow with a queue partition key set: partitioned queues do not "
                            "support deduplication, which debouncing requires.")
    if options.duplication_policy == "return-existing":
        raise DBOSException("Cannot debounce a workflow with duplication_policy 'return-existing': a debounce owns "
                            "the workflow's deduplication behavior.")


class Debouncer(Generic[P, R]):
    """Debounce calls of one workflow by key (see the module doc)."""

    def __init__(self, info: FunctionInfo, *, debounce_timeout_sec: float | None = None,
                 queue: Queue | str | None = None) -> None:
        if debounce_timeout_sec is not None and not debounce_timeout_sec > 0:
            raise ValueError(f"debounce_timeout_sec must be positive (or None), got {debounce_timeout_sec!r}")
        self.info = info
        self.debounce_timeout_sec = debounce_timeout_sec
        self.queue_name = queue.name if isinstance(queue, Queue) else queue

    @staticmethod
    def create(workflow: Callable[P, R], *, debounce_timeout_sec: float | None = None,
               queue: Queue | str | None = None, **_ignored: Any) -> Debouncer[P, R]:
        if isinstance(workflow, types.MethodType):
            raise TypeError("Only workflow functions may be debounced, not methods")
        info, _bound = workflow_of(workflow)
        return Debouncer(info, debounce_timeout_sec=debounce_timeout_sec, queue=queue)

    create_async = create

    def _queue(self) -> QueueRef:
        if self.queue_name is None:
            return QUEUES[INTERNAL_QUEUE_NAME]
        return QUEUES.get(self.queue_name) or Queue(self.queue_name, database_backed_queue=True)

    def debounce(self, debounce_key: str, debounce_period_sec: float, *args: P.args,
                 **kwargs: P.kwargs) -> WorkflowHandle[R]:
        if not isinstance(debounce_period_sec, (int, float)) or debounce_period_sec < 0:
            raise ValueError(f"debounce_period_sec must be zero or more seconds, got {debounce_period_sec!r}")
        _refuse_conflicting_options(current_enqueue_options())
        rt = current_runtime()
        ctx = current_context()
        # A SetWorkflowID around the call names the workflow a fresh enqueue creates; a bounce leaves it unused.
        pinned = ctx.next_workflow_id if ctx is not None else None
        if ctx is not None:
            ctx.next_workflow_id = None
        queue = self._queue()
        key = f"{self.info.name}-{debounce_key}"
        while True:
            bounced = self._bounce(rt, queue.name, key, debounce_period_sec, args, kwargs)
            if bounced is not None:
                return WorkflowHandle(rt, bounced, rt.future_of(bounced))
            holder = DebounceStore(rt.sys_db).holder(queue.name, key)
            if holder is not None and (not holder.is_debounced or holder.name != self.info.name):
                raise DBOSQueueDeduplicatedError(holder.workflow_id, queue.name, key)
            if holder is not None:
                continue  # it left DELAYED between the bounce and the look-up: bounce again
            now = int(time.time() * 1000)
            deadline = now + int(self.debounce_timeout_sec * 1000) if self.debounce_timeout_sec else None
            delay_until = now + int(debounce_period_sec * 1000)
            if deadline is not None:
                delay_until = min(delay_until, deadline)
            if ctx is not None and pinned is not None:
                ctx.next_workflow_id = pinned
            options = EnqueueOptions(deduplication_id=key, delay_until_epoch_ms=delay_until)
            try:
                with enqueue_options_in_effect(options):
                    workflow_id = enqueue_workflow(rt, queue, self.info, args, kwargs, debounced=True,
                                                   debounce_deadline_epoch_ms=deadline)
            except DBOSQueueDeduplicatedError:
                continue  # another debounce of the key won the insert: bounce that workflow instead
            finally:
                if ctx is not None:
                    ctx.next_workflow_id = None
            return WorkflowHandle(rt, workflow_id, rt.future_of(workflow_id))

    def _bounce(self, rt: Runtime, queue_name: str, key: str, period_sec: float, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> str | None:
        """Extend the key's DELAYED workflow; from a workflow body, as a step (replay returns the first answer)."""
        inputs = rt.codec.encode({"args": list(args), "kwargs": kwargs}, what=f"workflow {self.info.name!r} input",
                                 portable=is_portable_workflow(self.info))

        def bounce() -> str | None:
            delay_until = int((time.time() + period_sec) * 1000)
            found = DebounceStore(rt.sys_db).bounce(self.info.name, queue_name, key, delay_until, inputs, QUEUE_KEY)
            if found is not None:
                wake_dequeuer(rt)  # its time may now come sooner than the dequeuer planned to wake
            return found

        if workflow_body(current_context()) is None:
            return bounce()
        step = FunctionInfo(_BOUNCE_STEP, bounce, "step")
        result: str | None = run_step(rt, step, bounce, (), {})
        return result

    async def debounce_async(self, debounce_key: str, debounce_period_sec: float, *args: P.args,
                             **kwargs: P.kwargs) -> WorkflowHandle[R]:
        return self.debounce(debounce_key, debounce_period_sec, *args, **kwargs)
