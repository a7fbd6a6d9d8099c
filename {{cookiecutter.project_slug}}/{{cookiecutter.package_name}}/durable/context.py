"""Where the runtime keeps "what is running now": the request, the workflow, the step.

One ``ContextVar`` holds a ``DBOSContext``; entering a workflow or a step sets a new one and the
token restores the old one on exit, so threads and nested calls never see each other's state.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .ids import time_ordered_uuid

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .store.base import StepRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestInfo:
    """The HTTP request that started a workflow; stored with it so recovery elsewhere still has it."""

    request_id: str
    url: str = ""
    path: str = ""
    method: str = ""
    client_ip: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A keyed request's fingerprint (idempotency.py): only a request with the same one may reuse the
    # workflow its key names.
    idempotency_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "request_id": self.request_id,
            "url": self.url,
            "path": self.path,
            "method": self.method,
            "client_ip": self.client_ip,
            "headers": self.headers,
        }
        if self.idempotency_fingerprint is not None:
            data["idempotency_fingerprint"] = self.idempotency_fingerprint
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RequestInfo | None:
        if not data:
            return None
        return cls(
            request_id=data.get("request_id", ""),
            url=data.get("url", ""),
            path=data.get("path", ""),
            method=data.get("method", ""),
            client_ip=data.get("client_ip"),
            headers=dict(data.get("headers") or {}),
            idempotency_fingerprint=data.get("idempotency_fingerprint"),
        )


@dataclass(frozen=True)
class AuthInfo:
    """The authenticated user, the roles they hold, and the role a ``required_roles`` function assumed."""

    user: str | None = None
    roles: list[str] | None = None
    assumed_role: str | None = None


@dataclass
class WorkflowState:
    """A running workflow as its code sees it: its ID, its step counter, and what replay may reuse."""

    workflow_id: str
    name: str
    generation: int
    # Steps recorded by an earlier execution; None when the workflow is brand new, so no step needs a read.
    recorded: dict[int, StepRecord] | None
    next_step_id: int = 0
    # The workflow's durable deadline (epoch ms), if it has a timeout; its children inherit it.
    deadline_epoch_ms: int | None = None
    # Who started it (DBOSContextSetAuth), as recorded in its row: its body and its children run as them.
    auth: AuthInfo | None = None
    # Stream reads waiting for their value now: two at once would number their steps by timing.
    stream_reads_in_flight: int = 0
    # Its row was inserted unflushed and no flushed commit has followed yet (row_flush.py).
    row_unflushed: bool = False
    # Its row's created_at, while the clock may still be in that millisecond (a workflow run inline does
    # not wait at its start: ``store.base.settle_past``); None once settled.
    unsettled_created_ms: int | None = None
    # Writes its row, which waits for its first transaction to carry it (row_flush.py); None once written.
    write_row: Callable[[], None] | None = None

    def allocate_step_id(self, *, carries_row: bool = False) -> int:
        """The next step's ID. A first step that is not a transaction (``carries_row``) writes the row first."""
        if self.write_row is not None and not carries_row:
            self.write_pending_row()
        self.next_step_id += 1
        return self.next_step_id

    def write_pending_row(self) -> None:
        """Write the row now, if it still waits for a transaction to carry it."""
        write = self.write_row
        if write is not None:
            write()
            self.write_row = None


@dataclass(frozen=True)
class StepStatus:
    """``DBOS.step_status`` inside a step: its ID, and for a retrying step the attempt (from 0) and the cap."""

    step_id: int
    current_attempt: int | None = None
    max_attempts: int | None = None


@dataclass
class DBOSContext:
    """What is running in this thread now. ``assert_current_dbos_context()`` returns it."""

    request: RequestInfo | None = None
    workflow: WorkflowState | None = None
    step_id: int | None = None
    step_kind: str | None = None  # "step" or "transaction" while one runs
    sql_session: Session | None = None
    next_workflow_id: str | None = None  # set by SetWorkflowID, taken by the next workflow started
    in_set_workflow_id_block: bool = False
    workflow_timeout_ms: int | None = None  # set by SetWorkflowTimeout for the workflows started in its block
    workflow_attributes: dict[str, Any] | None = None  # SetWorkflowAttributes: for the workflows started in its block
    auth: AuthInfo | None = None  # DBOSContextSetAuth, or the running workflow's recorded one
    step_status: StepStatus | None = None  # inside a step: which attempt runs

    @property
    def workflow_id(self) -> str | None:
        return self.workflow.workflow_id if self.workflow else None

    @property
    def function_id(self) -> int | None:
        return self.step_id

    @property
    def request_id(self) -> str | None:
        return self.request.request_id if self.request else None

    def is_within_workflow(self) -> bool:
        return self.workflow is not None

    def is_workflow(self) -> bool:
        """In a workflow's body: not outside workflows, nor inside one of its steps or transactions."""
        return self.workflow is not None and self.step_kind is None

    def is_step(self) -> bool:
        return self.step_kind == "step"

    def is_transaction(self) -> bool:
        return self.step_kind == "transaction"


_current: ContextVar[DBOSContext | None] = ContextVar("durable_context", default=None)


def current_context() -> DBOSContext | None:
    """The context of this thread, or None outside requests and workflows."""
    return _current.get()


def workflow_body(ctx: DBOSContext | None) -> WorkflowState | None:
    """The workflow whose body runs in ``ctx`` (``is_workflow()``), else None: steps replay and
    record only there; inside a step they are plain calls, as in DBOS."""
    return ctx.workflow if ctx is not None and ctx.step_kind is None else None


@contextmanager
def outside_workflows() -> Iterator[None]:
    """Run the block as if no workflow were running here (a ``DBOSClient`` call from a workflow's body
    is the client's, not the workflow's step); a surrounding ``SetWorkflowID`` still applies."""
    ctx = _current.get()
    if ctx is None or ctx.workflow is None:
        yield
        return
    token = _current.set(DBOSContext(next_workflow_id=ctx.next_workflow_id,
                                     in_set_workflow_id_block=ctx.in_set_workflow_id_block))
    try:
        yield
    finally:
        _current.reset(token)


_F = TypeVar("_F", bound=Callable[..., Any])


def client_side(method: _F) -> _F:
    """A DBOSClient method: called from a workflow's body it is the client's, not one of that
    workflow's steps (as in DBOS, whose client knows nothing of the calling workflow)."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with outside_workflows():
            return method(*args, **kwargs)

    return cast(_F, call)


def assert_current_dbos_context() -> DBOSContext:
    """The current context; raise when there is none (DBOS's helper of the same name)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError(
            "No durable context here: call this inside a request served through the DBOS middleware, "
            "or inside a workflow, step or transaction"
        )
    return ctx


@contextmanager
def entered(ctx: DBOSContext) -> Iterator[DBOSContext]:
    """Make ``ctx`` current for the block, then restore whatever was current before."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def take_workflow_id(parent: DBOSContext | None) -> tuple[str, bool]:
    """The ID for the workflow about to start, and whether the caller chose it.

    An ID set by ``SetWorkflowID`` is used once. A child started from a workflow without one gets
    ``<parent>-<step id>``, so that replay of the parent finds the same child again.
    """
    if parent is not None:
        if parent.next_workflow_id:
            chosen, parent.next_workflow_id = parent.next_workflow_id, None
            return chosen, True
        if parent.in_set_workflow_id_block:
            logger.warning(
                "Several workflows started in one SetWorkflowID block; only the first gets the chosen ID"
            )
    return time_ordered_uuid(), False


class SetWorkflowID:
    """``with SetWorkflowID(id):`` gives the next workflow started in the block that ID."""

    def __init__(self, workflow_id: str) -> None:
        if not isinstance(workflow_id, str) or not workflow_id.strip():
            raise ValueError(f"SetWorkflowID needs a workflow ID that is not empty or blank, got {workflow_id!r}")
        self.workflow_id = workflow_id
        self._saved: tuple[str | None, bool] | None = None
        self._token: Any = None

    def __enter__(self) -> SetWorkflowID:
        ctx = _current.get()
        if ctx is None:
            ctx = DBOSContext()
            self._token = _current.set(ctx)
        self._saved = (ctx.next_workflow_id, ctx.in_set_workflow_id_block)
        ctx.next_workflow_id = self.workflow_id
        ctx.in_set_workflow_id_block = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        ctx = _current.get()
        if ctx is not None and self._saved is not None:
            ctx.next_workflow_id, ctx.in_set_workflow_id_block = self._saved
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


class SetWorkflowTimeout:
    """``with SetWorkflowTimeout(seconds):`` gives the workflows started in the block a durable deadline.

    The deadline (now + seconds, at start) is stored with the workflow, so it holds across crashes
    and recovery elsewhere; when it passes the workflow is cancelled, with its children. ``None``
    starts workflows without a timeout, even inside a parent that has one.
    """

    def __init__(self, workflow_timeout_sec: float | None) -> None:
        if workflow_timeout_sec is not None and not workflow_timeout_sec > 0:
            raise ValueError(f"SetWorkflowTimeout needs a positive number of seconds (or None), "
                             f"got {workflow_timeout_sec!r}")
        self.workflow_timeout_ms = int(workflow_timeout_sec * 1000) if workflow_timeout_sec is not None else None
        self._saved: int | None = None
        self._token: Any = None

    def __enter__(self) -> SetWorkflowTimeout:
        ctx = _current.get()
        if ctx is None:
            ctx = DBOSContext()
            self._token = _current.set(ctx)
        self._saved = ctx.workflow_timeout_ms
        # 0 means "explicitly none", so a child started here does not inherit its parent's deadline.
        ctx.workflow_timeout_ms = self.workflow_timeout_ms if self.workflow_timeout_ms is not None else 0
        return self

    def __exit__(self, *exc_info: object) -> None:
        ctx = _current.get()
        if ctx is not None:
            ctx.workflow_timeout_ms = self._saved
        if self._token is not None:
            _current.reset(self._token)
            self._token = None


def refuse_in_event_loop(api_name: str) -> None:
    """A blocking ``DBOS.<api_name>`` called from a running event loop would stall it: point to the async twin."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{api_name}() was called while an event loop is running. "
                       f"Use await {api_name}_async(...) instead.")


class ContextLogFilter(logging.Filter):
    """Adds ``workflow_id``, ``step_id`` and ``request_id`` to every log record.

    Put it on a *handler* (``handler.addFilter(ContextLogFilter())``): a logger's filters run only for
    records logged on that very logger, not on its children, while a handler sees them all.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _current.get()
        record.workflow_id = ctx.workflow_id if ctx else None
        record.step_id = ctx.step_id if ctx else None
        record.request_id = ctx.request_id if ctx else None
        return True
