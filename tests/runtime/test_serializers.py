"""DBOSConfig(serializer=...) and the portable format, through real workflows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import make_config
from durable import (
    DBOS,
    DBOSPortableJSONSerializer,
    PortableWorkflowError,
    Queue,
    Serializer,
    SetWorkflowID,
    WorkflowSerializationFormat,
)


class TextSerializer(Serializer):
    def serialize(self, data: Any) -> str:
        return "text:" + json.dumps(data)

    def deserialize(self, serialized_data: str) -> Any:
        return json.loads(serialized_data.removeprefix("text:"))

    def name(self) -> str:
        return "text"


@DBOS.step()
def double(x: int) -> int:
    return 2 * x


@DBOS.workflow()
def doubled(x: int) -> dict[str, int]:
    return {"x": double(x)}


class AppError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 409


@DBOS.workflow(serialization_type=WorkflowSerializationFormat.PORTABLE)
def portable_fails() -> None:
    raise AppError("boom")


@pytest.fixture
def launch(database_url: str) -> Iterator[Any]:
    def with_serializer(serializer: Serializer) -> None:
        DBOS.destroy()
        DBOS(config=make_config(database_url, serializer=serializer))
        DBOS.launch()

    yield with_serializer
    DBOS.destroy()


def outputs(database_url: str, workflow_id: str) -> list[Any]:
    engine = sa.create_engine(database_url)
    prefix = "dbos." if engine.dialect.name == "postgresql" else "dbos_"
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(
                f"SELECT output FROM {prefix}operation_outputs WHERE workflow_uuid = :id"), {"id": workflow_id})]
    finally:
        engine.dispose()


def test_a_custom_serializer_writes_the_checkpoints(launch: Any, database_url: str) -> None:
    launch(TextSerializer())
    with SetWorkflowID("custom"):
        assert doubled(2) == {"x": 4}
    (stored,) = outputs(database_url, "custom")
    data = json.loads(stored) if isinstance(stored, str) else stored
    assert data == {"$t": "ser", "name": "text", "v": "text:4"}
    assert DBOS.retrieve_workflow("custom").get_result() == {"x": 4}
    DBOS.destroy()
    launch(DBOSPortableJSONSerializer())  # another serializer never guesses at these values
    with pytest.raises(Exception, match="serializer 'text'"):
        DBOS.retrieve_workflow("custom").get_result()


def test_portable_errors_come_back_as_portable_workflow_errors(launch: Any) -> None:
    launch(DBOSPortableJSONSerializer())
    with SetWorkflowID("portable"), pytest.raises(AppError):
        portable_fails()
    with pytest.raises(PortableWorkflowError) as caught:
        DBOS.retrieve_workflow("portable").get_result()
    assert (caught.value.name, caught.value.message, caught.value.code) == ("AppError", "boom", 409)
    with SetWorkflowID("tuple"):
        doubled(1)
    assert DBOS.retrieve_workflow("tuple").get_result() == {"x": 2}


portable_queue = Queue("portable-queue")


@DBOS.workflow(serialization_type=WorkflowSerializationFormat.PORTABLE)
def when(at: dt.datetime, label: Any) -> list[str]:
    return [type(at).__name__, type(label).__name__]


def test_a_queued_portable_workflow_gets_its_datetime_back(dbos: type[DBOS]) -> None:
    # Stored as plain JSON (an RFC 3339 string); the parameter's type hint turns it back into a datetime.
    handle = portable_queue.enqueue(when, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "2026-01-01T00:00:00Z")
    assert handle.get_result() == ["datetime", "str"]
