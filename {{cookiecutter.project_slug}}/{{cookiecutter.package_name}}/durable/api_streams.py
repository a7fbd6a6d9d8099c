"""The stream methods of the ``DBOS`` class (``api.py`` inherits them), each delegating to ``streams.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import Any

from . import streams
from .context import refuse_in_event_loop
from .current import current_runtime
from .portable import WorkflowSerializationFormat

_DONE = object()


class StreamsAPI:
    """``DBOS.write_stream`` / ``close_stream`` / ``read_stream`` / ``read_stream_offset`` and their async twins."""

    @classmethod
    def write_stream(
        cls, key: str, value: Any, *,
        serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT,
    ) -> None:
        """In a workflow or step: append ``value`` to this workflow's stream ``key`` (exactly once from the body)."""
        refuse_in_event_loop("write_stream")
        streams.write_stream(current_runtime(), key, value,
                             portable=serialization_type == WorkflowSerializationFormat.PORTABLE)

    @classmethod
    def close_stream(cls, key: str) -> None:
        """In a workflow or step: close this workflow's stream ``key``; readers stop after its last value."""
        refuse_in_event_loop("close_stream")
        streams.close_stream(current_runtime(), key)

    @classmethod
    def read_stream(
        cls, workflow_id: str, key: str, *, offset: int = 0, polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
    ) -> Generator[Any]:
        """Yield a workflow's stream values from ``offset`` until it is closed or the workflow ends.

        ``timeout_seconds`` bounds the wait for each value (``DBOSStreamTimeoutError``). In a workflow each
        value read is checkpointed, so a replay reads the same values.
        """
        refuse_in_event_loop("read_stream")
        yield from streams.read_stream(current_runtime(), workflow_id, key, offset=offset,
                                       polling_interval_sec=polling_interval_sec, timeout_seconds=timeout_seconds)

    @classmethod
    def read_stream_offset(
        cls, workflow_id: str, key: str, offset: int, *, polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
    ) -> Any:
        """The value at ``offset`` of a workflow's stream, waiting for it; ``DBOSStreamTimeoutError`` if it never comes."""
        refuse_in_event_loop("read_stream_offset")
        return streams.read_stream_offset(current_runtime(), workflow_id, key, offset,
                                          polling_interval_sec=polling_interval_sec, timeout_seconds=timeout_seconds)

    @classmethod
    async def write_stream_async(
        cls, key: str, value: Any, *,
        serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT,
    ) -> None:
        portable = serialization_type == WorkflowSerializationFormat.PORTABLE
        await asyncio.to_thread(streams.write_stream, current_runtime(), key, value, portable=portable)

    @classmethod
    async def close_stream_async(cls, key: str) -> None:
        await asyncio.to_thread(streams.close_stream, current_runtime(), key)

    @classmethod
    async def read_stream_async(
        cls, workflow_id: str, key: str, *, offset: int = 0, polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[Any]:
        """``read_stream`` for async code: each wait runs on a worker thread, never on the event loop."""
        values = streams.read_stream(current_runtime(), workflow_id, key, offset=offset,
                                     polling_interval_sec=polling_interval_sec, timeout_seconds=timeout_seconds)
        try:
            while True:
                value = await asyncio.to_thread(next, values, _DONE)
                if value is _DONE:
                    return
                yield value
        finally:
            await asyncio.to_thread(values.close)

    @classmethod
    async def read_stream_offset_async(
        cls, workflow_id: str, key: str, offset: int, *, polling_interval_sec: float | None = None,
        timeout_seconds: float | None = None,
    ) -> Any:
        return await asyncio.to_thread(streams.read_stream_offset, current_runtime(), workflow_id, key, offset,
                                       polling_interval_sec=polling_interval_sec, timeout_seconds=timeout_seconds)
