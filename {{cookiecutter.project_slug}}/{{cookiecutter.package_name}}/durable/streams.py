"""Streams: a workflow appends values under a key (``DBOS.write_stream``), closes it, and anyone reads them.

- A write from a workflow's body is a step (``DBOS.writeStream``): its checkpoint commits with the
  appended value, so a replay after a crash appends nothing twice. From inside a step it is part of
  that step: every attempt of a retried step appends, as in DBOS.
- ``close_stream`` appends the close marker (step ``DBOS.closeStream``); readers stop there. A stream
  also ends when its workflow ends without closing it.
- ``read_stream`` yields the values from an offset. Inside a workflow's body each delivered value (and
  the end) is recorded as a step (``DBOS.readStream``), so a replay sees what the first run saw, even
  if the stream moved on. Readers wake at once on a write (a local signal, ``NOTIFY`` on PostgreSQL,
  the signal file on SQLite) and re-read every ``notification_listener_polling_interval_sec`` to
  notice that the writer ended.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any

from .context import DBOSContext, WorkflowState, current_context, workflow_body
from .error import (
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSStreamNondeterminismError,
    DBOSStreamTimeoutError,
)
from .messaging import _check_still_ours
from .runtime import Runtime
from .steps import decode_step, replay_step
from .store.base import StepCheckpoint, WorkflowStatusString, now_ms
from .store.stream_store import StreamRead
from .wakeups import status_key, stream_key

# The step names DBOS records.
WRITE = "DBOS.writeStream"
CLOSE = "DBOS.closeStream"
READ = "DBOS.readStream"
READ_OFFSET = "DBOS.readStreamOffset"
# Recorded as a checkpointed read's output when the stream had ended there (DBOS's spelling).
END_MARKER = "__DBOS_STREAM_CLOSED__"
# A reading workflow looks at its own row this often, to stop when it is cancelled.
_OWN_STATUS_CHECK_SEC = 1.0
_TERMINAL = frozenset({WorkflowStatusString.SUCCESS.value, WorkflowStatusString.ERROR.value,
                       WorkflowStatusString.CANCELLED.value,
                       WorkflowStatusString.MAX_RECOVERY_ATTEMPTS_EXCEEDED.value})


def _is_end(value: Any) -> bool:
    # isinstance first: a value whose == returns an array (numpy, pandas) must not be compared.
    return isinstance(value, str) and value == END_MARKER


# -- writing ---------------------------------------------------------------------------------------


def write_stream(rt: Runtime, key: str, value: Any, *, portable: bool = False) -> None:
    """``DBOS.write_stream``: append ``value`` to this workflow's stream ``key``."""
    _append(rt, key, value, WRITE, "write_stream", portable)


def close_stream(rt: Runtime, key: str) -> None:
    """``DBOS.close_stream``: end this workflow's stream ``key``; readers stop after its last value."""
    _append(rt, key, None, CLOSE, "close_stream", False)


def _writer(api_name: str) -> tuple[DBOSContext, WorkflowState]:
    ctx = current_context()
    if ctx is None or ctx.workflow is None or ctx.step_kind not in (None, "step"):
        raise DBOSException(f"{api_name}() must be called from within a workflow or step")
    return ctx, ctx.workflow


def _append(rt: Runtime, key: str, value: Any, name: str, api_name: str, portable: bool) -> None:
    ctx, state = _writer(api_name)
    text = None if name == CLOSE else rt.codec.encode(value, what=f"stream {key!r} value", portable=portable)
    step: StepCheckpoint | None = None
    if ctx.step_kind is None:
        function_id = state.allocate_step_id()
        found, _ = replay_step(rt, state, function_id, name)
        if found:
            return  # appended by an earlier execution
        step = StepCheckpoint(state.workflow_id, state.generation, function_id, name, None, None, now_ms())
    else:
        function_id = ctx.step_id or 0  # inside a step: that step's checkpoint covers it
    wake = stream_key(state.workflow_id, key)
    if not rt.stream_store.append(state.workflow_id, key, text, function_id, wake, step):
        rt.checkpoint_store.step_conflict(state.workflow_id, state.generation, function_id)  # raises, or recorded
        return
    rt.wakeups.wake(wake)


# -- reading ---------------------------------------------------------------------------------------


def _check_arguments(timeout_seconds: float | None, polling_interval_sec: float | None) -> None:
    if timeout_seconds is not None and timeout_seconds < 0:
        raise ValueError(f"timeout_seconds must not be negative, got {timeout_seconds}")
    if polling_interval_sec is not None and (not math.isfinite(polling_interval_sec) or polling_interval_sec < 0.001):
        raise ValueError(
            f"polling_interval_sec must be a finite number at least 0.001 seconds, got {polling_interval_sec}")


class _Reader:
    """One ``read_stream`` call: waits for each offset and, in a workflow's body, records what it delivers."""

    def __init__(self, rt: Runtime, workflow_id: str, key: str, name: str, poll_sec: float,
                 timeout_seconds: float | None) -> None:
        self.rt = rt
        self.workflow_id = workflow_id
        self.key = key
        self.name = name
        self.poll_sec = poll_sec
        self.timeout_seconds = timeout_seconds
        self.state = workflow_body(current_context())  # bound once: the reading workflow, if any
        self.replaying = self.state is not None
        self._last_check = time.monotonic()
        self._in_flight = False

    def begin(self) -> int | None:
        """The step that records the next value (None outside a workflow's body); refuse overlapping reads."""
        if self.state is None:
            return None
        if self.state.stream_reads_in_flight > 0:
            raise DBOSStreamNondeterminismError(self.state.workflow_id, self.key)
        self.state.stream_reads_in_flight += 1
        self._in_flight = True
        return self.state.allocate_step_id()

    def end(self) -> None:
        if self._in_flight and self.state is not None:
            self._in_flight = False
            self.state.stream_reads_in_flight -= 1

    def replayed(self, step_id: int) -> tuple[bool, Any]:
        """(True, value) when an earlier run of the reading workflow recorded this read."""
        if self.state is None or not self.replaying:
            return False, None
        found, value = replay_step(self.rt, self.state, step_id, self.name)
        if not found:
            self.replaying = False  # steps are numbered in order: every later read is new too
        return found, value

    def record(self, step_id: int | None, started: int, output: str | None, error: str | None) -> Any:
        """Record a delivered value (its stored JSON), the end, or a timeout; return the winning value."""
        if self.state is None or step_id is None:
            return None
        winner = self.rt.checkpoint_store.record_step(self.state.workflow_id, self.state.generation, step_id,
                                                      self.name, output, error, started)
        return decode_step(self.rt, winner) if winner is not None else None

    def check_own_status(self) -> None:
        """A reading workflow stops when it is cancelled, fenced or its process stops (at most once a second)."""
        if self.state is None or time.monotonic() - self._last_check < _OWN_STATUS_CHECK_SEC:
            return
        self._last_check = time.monotonic()
        _check_still_ours(self.rt, self.state, self.rt.messaging_store.workflow_state(self.state.workflow_id))

    def wait_for(self, offset: int, step_id: int | None, started: int, waiter: Any) -> StreamRead:
        """The entry at ``offset`` once written, or a read with ``found`` False when the stream can have no more."""
        deadline = time.monotonic() + self.timeout_seconds if self.timeout_seconds is not None else None
        final = False
        while True:
            waiter.clear()
            read = self.rt.stream_store.read_offset(self.workflow_id, self.key, offset)
            if read is None:
                raise DBOSNonExistentWorkflowError("target", self.workflow_id)
            if read.found or final:
                return read
            if read.status in _TERMINAL:
                # A cancelled writer may still be appending: read the offset once more before stopping.
                final = True
                continue
            wait = self.poll_sec
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    error = DBOSStreamTimeoutError(self.workflow_id, self.key, self.timeout_seconds)
                    self.record(step_id, started, None, self.rt.codec.encode_exception(error))
                    raise error
                wait = min(wait, remaining)
            self.check_own_status()
            waiter.wait(wait)


def read_stream(
    rt: Runtime, workflow_id: str, key: str, *, offset: int = 0, polling_interval_sec: float | None = None,
    timeout_seconds: float | None = None, name: str = READ,
) -> Generator[Any]:
    """``DBOS.read_stream``: the values of a stream from ``offset`` until it is closed or its workflow ends."""
    _check_arguments(timeout_seconds, polling_interval_sec)
    reader = _Reader(rt, workflow_id, key, name, polling_interval_sec or rt.settings.notification_poll_sec,
                     timeout_seconds)
    keys = [stream_key(workflow_id, key)]
    if reader.state is not None:
        keys.append(status_key(reader.state.workflow_id))  # a cancel wakes the reader
    with rt.wakeups.watching(*keys) as waiter:
        while True:
            step_id = reader.begin()
            try:
                found, value = reader.replayed(step_id) if step_id is not None else (False, None)
                ended = found and _is_end(value)
                if not found:
                    started = now_ms()
                    read = reader.wait_for(offset, step_id, started, waiter)
                    stored = read.value if read.found else None  # None: the close marker, or nothing more
                    ended = stored is None
                    if stored is None:
                        reader.record(step_id, started, rt.codec.encode(END_MARKER, what="stream end"), None)
                    else:
                        value = rt.codec.decode(stored)
                        # Recorded before the caller sees it: a crash after the workflow acted on it replays it.
                        reader.record(step_id, started, stored, None)
            finally:
                reader.end()
            if ended:
                return
            yield value
            offset += 1


def read_stream_offset(
    rt: Runtime, workflow_id: str, key: str, offset: int, *, polling_interval_sec: float | None = None,
    timeout_seconds: float | None = None,
) -> Any:
    """``DBOS.read_stream_offset``: the one value at ``offset``; DBOSStreamTimeoutError if it never comes."""
    values = read_stream(rt, workflow_id, key, offset=offset, polling_interval_sec=polling_interval_sec,
                         timeout_seconds=timeout_seconds, name=READ_OFFSET)
    try:
        for value in values:
            return value
        raise DBOSStreamTimeoutError(workflow_id, key)  # the stream ended before this offset
    finally:
        values.close()  # unregister the waiter now, not at garbage collection


def all_entries(rt: Runtime, workflow_id: str) -> dict[str, list[Any]]:
    """Every stream of a workflow with its values, each up to its close marker."""
    return {key: [rt.codec.decode(v) for v in values]
            for key, values in rt.stream_store.all_entries(workflow_id).items()}
