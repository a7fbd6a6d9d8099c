"""Checkpoints are JSON: values come back with their types; bad values fail at the call."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from collections import OrderedDict, namedtuple

import pytest

from durable import DBOS, SetWorkflowID, error
from durable.serialization import TAG, Codec, RecordedError


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Money:
    amount: decimal.Decimal
    currency: str


Point = namedtuple("Point", "x y")

SAMPLES = {
    "tuple": (1, (2, 3), [4]),
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "non_str_keys": {1: "one", (2, 3): "pair"},
    "tagged_key": {"$t": "not a tag"},
    "datetime": dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
    "naive": dt.datetime(2026, 1, 1, 8, 30),
    "date": dt.date(2026, 11, 25),
    "time": dt.time(23, 59, 1),
    "timedelta": dt.timedelta(days=2, seconds=5, microseconds=7),
    "decimal": decimal.Decimal("19.99"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "bytes": b"\x00\xffbinary",
    "enum": Colour.RED,
    "dataclass": Money(decimal.Decimal("1.50"), "EUR"),
    "nan": float("inf"),
    "nested": [{"when": dt.date(2020, 1, 1), "ids": (uuid.UUID(int=1),)}],
    "big_int": 2**80,
    "unicode": "ünïcødé ✓",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_value_round_trips_with_its_type(name: str) -> None:
    codec = Codec(max_bytes=1 << 20)
    value = SAMPLES[name]
    back = codec.decode(codec.encode(value, what="test"))
    assert back == value and type(back) is type(value)


def test_container_subclasses_keep_their_contents() -> None:
    codec = Codec(max_bytes=1 << 20)
    assert codec.decode(codec.encode(OrderedDict(a=1), what="t")) == {"a": 1}
    assert codec.decode(codec.encode(Point(1, 2), what="t")) == (1, 2)


def test_exceptions_are_stored_as_data_and_rebuilt() -> None:
    codec = Codec(max_bytes=1 << 20)
    back = codec.decode(codec.encode_exception(KeyError("missing")))
    assert isinstance(back, KeyError) and back.args == ("missing",)
    dbos_error = error.DBOSException("Invalid ID format", dbos_error_code="INVALID_ID", status_code=400)
    back = codec.decode(codec.encode_exception(dbos_error))
    assert (type(back), back.message, back.dbos_error_code, back.status_code) == (
        error.DBOSException, "Invalid ID format", "INVALID_ID", 400)
    unknown = codec.encode_exception(KeyError("x")).replace("builtins.KeyError", "gone.module.Error")
    back = codec.decode(unknown)
    assert isinstance(back, RecordedError) and back.type_path == "gone.module.Error"


def test_pickle_only_when_allowed() -> None:
    class Opaque:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, Opaque)

    with pytest.raises(error.DBOSSerializationError, match="Opaque is not serialisable"):
        Codec(max_bytes=1 << 20).encode(Opaque(), what="step 'x' output")
    text = Codec(max_bytes=1 << 20, allow_pickle=True).encode(ValueError("x"), what="t")
    assert "pickle" not in text  # exceptions never need pickle


@DBOS.workflow()
def echo(value: object) -> object:
    return value


@DBOS.step()
def returns_object() -> object:
    return object()


@DBOS.workflow()
def calls_bad_step() -> object:
    return returns_object()


def test_unserialisable_input_fails_at_the_call_naming_the_workflow(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSSerializationError, match="workflow 'echo' input .*object is not serialisable"):
        echo(object())
    assert DBOS.list_workflows() == []


def test_unserialisable_step_output_fails_the_step_and_is_recorded(dbos: type[DBOS]) -> None:
    with SetWorkflowID("bad-step"), pytest.raises(error.DBOSSerializationError, match="step 'returns_object'"):
        calls_bad_step()
    status = DBOS.get_workflow_status("bad-step")
    assert status is not None and status.status == "ERROR"


def test_oversized_value_is_refused_with_its_size(dbos: type[DBOS]) -> None:
    with pytest.raises(error.DBOSSerializationError, match=r"over the 2097152-byte cap"):
        echo("x" * (3 * 1024 * 1024))


def test_workflow_replays_exact_types(dbos: type[DBOS]) -> None:
    value = {"when": SAMPLES["datetime"], "pair": (1, 2), "money": SAMPLES["dataclass"]}
    with SetWorkflowID("typed"):
        first = echo(value)
    with SetWorkflowID("typed"):
        second = echo(value)
    assert first == second == value and type(second["pair"]) is tuple


def test_dicts_keep_their_key_order_through_jsonb_shaped_storage() -> None:
    codec = Codec(max_bytes=1_000_000)
    value = {"first": "J", "last": "D", "age": 3, "nested": {"zz": 1, "a": 2}}
    stored = codec.encode(value, what="value")
    # What PostgreSQL's JSONB gives back: every object's keys shortest first, then bytewise.
    def jsonb(v: object) -> object:
        if isinstance(v, dict):
            return {k: jsonb(v[k]) for k in sorted(v, key=lambda k: (len(k.encode()), k.encode()))}
        return [jsonb(x) for x in v] if isinstance(v, list) else v
    import json
    back = codec.decode(json.dumps(jsonb(json.loads(stored))))
    assert back == value and list(back) == list(value) and list(back["nested"]) == ["zz", "a"]
    assert codec.encode({"a": 1, "bb": 2}, what="value") == '{"a":1,"bb":2}'  # already in order: plain


def test_a_dict_is_stored_as_an_object_only_when_jsonb_would_keep_it_as_it_is() -> None:
    codec = Codec(max_bytes=1_000_000)
    # JSONB orders keys by their length in bytes, not in characters: "\u00e9" is 2 bytes, "\u00e9\u00e9" 4.
    as_object = [{"a": 1, "bb": 2, "cc": [3, {"x": None}]}, {"ab": 1, "\u00e9": 2}, {"abc": 1, "\u00e9\u00e9": 2}]
    for value in as_object:
        assert json.loads(codec.encode(value, what="value")) == value
    as_pairs = [{"bb": 1, "a": 2}, {"b": 1, "a": 2}, {"\u00e9": 1, "ab": 2}, {"\u00e9\u00e9": 1, "abc": 2}, {1: "one"},
                {TAG: "x"}, {"a": 1, "b": {"d": 1, "c": 2}}]
    for value in as_pairs:
        stored = codec.encode(value, what="value")
        back = codec.decode(stored)
        assert TAG in stored and back == value and list(back) == list(value)
    nested = json.loads(codec.encode(as_pairs[-1], what="value"))
    assert nested == {"a": 1, "b": {TAG: "dict", "v": [["d", 1], ["c", 2]]}}  # only the reordered dict is pairs


def test_a_listing_without_the_writers_serializer_shows_its_text() -> None:
    class Upper:
        def name(self) -> str:
            return "upper"

        def serialize(self, value: object) -> str:
            return str(value).upper()

        def deserialize(self, text: str) -> object:
            return text.lower()

    stored = Codec(max_bytes=1000, serializer=Upper()).encode("val", what="value")
    assert Codec(max_bytes=1000, serializer=Upper()).decode_shown(stored) == "val"
    assert Codec(max_bytes=1000).decode_shown(stored) == "VAL"
    with pytest.raises(error.DBOSSerializationError):
        Codec(max_bytes=1000).decode(stored)
