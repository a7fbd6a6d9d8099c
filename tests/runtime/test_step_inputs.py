"""Each step's and transaction's inputs are recorded with its checkpoint, for the dashboard's timeline."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from durable import DBOS, SetWorkflowID, overview
from durable.error import DBOSMaxStepRetriesExceeded
from durable.step_inputs import MAX_INPUTS_CHARS, UNRECORDED

STEP_INFO_KEYS = {"function_id", "function_name", "output", "error", "child_workflow_id", "started_at_epoch_ms",
                  "completed_at_epoch_ms"}


@DBOS.step()
def quote(item: str, qty: int, *, when: dt.date, note: str | None = None) -> str:
    return f"{qty} x {item} on {when.isoformat()}"


@DBOS.step()
def no_args() -> int:
    return 7


@DBOS.step()
def takes_anything(thing: object) -> str:
    return type(thing).__name__


@DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=0.01)
def always_fails(reason: str) -> None:
    raise ValueError(reason)


@DBOS.transaction()
def remember(label: str, amount: int) -> int:
    DBOS.sql_session.execute(sa.text("INSERT INTO labels (label, amount) VALUES (:l, :a)"), {"l": label, "a": amount})
    return amount * 2


@DBOS.workflow()
def shopping(item: str) -> str:
    quoted = quote(item, 3, when=dt.date(2026, 11, 30), note="<script>alert(1)</script>")
    no_args()
    doubled = remember(item, 21)
    DBOS.sleep(0)  # takes no inputs: none recorded
    return f"{quoted}; {doubled}"


@DBOS.workflow()
def odd_inputs() -> list[str]:
    lock = threading.Lock()  # no codec stores a lock: the step still runs, its inputs are a placeholder
    return [takes_anything(lock), takes_anything("x" * (MAX_INPUTS_CHARS + 10))]


@DBOS.workflow()
def failing(reason: str) -> None:
    always_fails(reason)


def make_labels(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE labels (label TEXT NOT NULL, amount INTEGER NOT NULL)")
    finally:
        engine.dispose()


def test_a_steps_and_a_transactions_inputs_are_recorded(dbos: type[DBOS], database_url: str) -> None:
    make_labels(database_url)
    with SetWorkflowID("shop-1"):
        assert shopping("pear") == "3 x pear on 2026-11-30; 42"
    recorded = overview.step_inputs("shop-1")
    assert recorded == {
        1: {"args": ["pear", 3], "kwargs": {"when": dt.date(2026, 11, 30), "note": "<script>alert(1)</script>"}},
        2: {"args": [], "kwargs": {}},
        3: {"args": ["pear", 21], "kwargs": {}},
    }
    # DBOS's StepInfo keeps its shape: inputs are the dashboard's, read through overview.py only.
    steps = DBOS.list_workflow_steps("shop-1")
    assert [s["function_name"] for s in steps][:3] == [quote.dbos_function_name, no_args.dbos_function_name,
                                                       remember.dbos_function_name]
    assert all(set(s) == STEP_INFO_KEYS for s in steps)
    with SetWorkflowID("shop-1"):  # replay returns the recorded outputs and leaves the inputs as they were
        assert shopping("pear") == "3 x pear on 2026-11-30; 42"
    assert overview.step_inputs("shop-1") == recorded


def test_an_unstorable_input_does_not_fail_the_step(dbos: type[DBOS]) -> None:
    with SetWorkflowID("odd-1"):
        assert odd_inputs() == ["lock", "str"]
    recorded = overview.step_inputs("odd-1")
    assert set(recorded) == {1, 2} and all(set(r) == {UNRECORDED} for r in recorded.values())
    assert "lock is not serialisable" in recorded[1][UNRECORDED]
    assert f"over the {MAX_INPUTS_CHARS}" in recorded[2][UNRECORDED]
    assert [s["output"] for s in DBOS.list_workflow_steps("odd-1")] == ["lock", "str"]


def test_a_failed_step_keeps_its_inputs_and_a_fork_copies_them(dbos: type[DBOS]) -> None:
    with SetWorkflowID("fail-1"), pytest.raises(DBOSMaxStepRetriesExceeded):
        failing("no stock")
    assert overview.step_inputs("fail-1") == {1: {"args": ["no stock"], "kwargs": {}}}
    assert overview.step_attempts("fail-1") == {1: 2}
    forked = DBOS.fork_workflow("fail-1", 2)  # keeps step 1 as recorded: it fails again, from the record
    with pytest.raises(DBOSMaxStepRetriesExceeded):
        forked.get_result()
    assert overview.step_inputs(forked.workflow_id) == {1: {"args": ["no stock"], "kwargs": {}}}


def test_the_fast_path_writes_what_the_codec_reads_back() -> None:
    from durable.registry import FunctionInfo
    from durable.serialization import Codec
    from durable.step_inputs import encode_inputs

    codec = Codec(max_bytes=2_000_000)
    info = FunctionInfo("s", no_args, "step")
    call = (1, -(10**30), 2.5, "é\u2028\"<b>", None, True, "")  # scalars: one shared encoder, no codec walk
    keywords = {"note": "x", "qty": 3, "price": 9.99}
    for args, kwargs in ((call, {}), ((), keywords), (call, keywords), ((float("nan"),), {"inf": float("inf")}),
                         ((), {"$t": "not a tag"})):
        recorded = codec.decode(encode_inputs(codec, info, args, kwargs))
        as_codec = codec.decode(codec.encode({"args": list(args), "kwargs": kwargs}, what="x"))
        assert repr(recorded) == repr(as_codec) == repr({"args": list(args), "kwargs": kwargs})  # nan != nan
    small = Codec(max_bytes=100)  # a lower checkpoint cap lowers what is kept
    assert UNRECORDED in codec.decode(encode_inputs(small, info, ("x" * 200,), {}))
