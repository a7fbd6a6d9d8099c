"""Pydantic models as workflow inputs and outputs: stored as JSON (class path and fields), rebuilt by the
model class, through a queue and through recovery (DBOS's test_complex_type, with JSON instead of pickle)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from conftest import wait_for_status
from durable import DBOS
from durable.serialization import Codec

pydantic = pytest.importorskip("pydantic")


class Inner(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    one: str
    when: datetime


class Outer(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    inner: Inner
    tags: tuple[str, ...] = ()


VALUE = Outer(inner=Inner(one="one", when=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)), tags=("a", "b"))
RELEASE = threading.Event()


@DBOS.workflow()
def echo_model(value: Outer) -> Outer:
    RELEASE.wait(10)
    return value


def test_a_model_round_trips_as_readable_json() -> None:
    codec = Codec(max_bytes=1 << 20)
    text = codec.encode(VALUE, what="test value")
    assert '"one":"one"' in text and "Outer" in text
    assert codec.decode(text) == VALUE


def test_a_model_goes_through_a_queue_and_a_recovery(dbos: type[DBOS]) -> None:
    queue = DBOS.register_queue("models")
    RELEASE.set()
    assert queue.enqueue(echo_model, VALUE).get_result() == VALUE
    RELEASE.clear()
    handle = queue.enqueue(echo_model, VALUE)
    wait_for_status(handle.workflow_id, "PENDING")
    [recovered] = DBOS._recover_pending_workflows()  # running here: awaited, not run twice
    RELEASE.set()
    assert recovered.workflow_id == handle.workflow_id
    assert handle.get_result() == VALUE and recovered.get_result() == VALUE
