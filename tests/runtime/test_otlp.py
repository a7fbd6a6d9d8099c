"""OTLP on in-process exporters: request -> workflow -> step spans, log records with the workflow's context,
and one clear error naming the extra when OpenTelemetry is missing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from conftest import make_config
from durable import DBOS, SetWorkflowID, otlp_logs, tracing
from durable.error import DBOSInitializationError

pytest.importorskip("opentelemetry.sdk", reason="the otlp extra (requirements-dev.txt)")
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

shop_log = logging.getLogger("shop.orders")


@DBOS.step()
def price(item: str) -> int:
    shop_log.warning("pricing %s", item)
    return 42


@DBOS.workflow()
def buy(item: str) -> int:
    return price(item)


@DBOS.workflow()
def restock(item: str) -> int:
    return price(item)


@pytest.fixture
def exporters(monkeypatch: pytest.MonkeyPatch) -> tuple[InMemorySpanExporter, InMemoryLogRecordExporter]:
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    monkeypatch.setattr(tracing, "make_span_exporter", lambda endpoint: spans)
    monkeypatch.setattr(otlp_logs, "make_log_exporter", lambda endpoint: logs)
    return spans, logs


@pytest.fixture
def app(database_url: str, exporters: Any) -> Iterator[Flask]:
    DBOS.destroy()
    app = Flask(__name__)

    @app.get("/buy/<item>")
    def buy_route(item: str) -> dict[str, Any]:
        with SetWorkflowID(f"buy-{item}"):
            price_paid = buy(item)
        with SetWorkflowID(f"restock-{item}"):
            DBOS.start_workflow(restock, item).get_result()  # on a pool thread
        return {"paid": price_paid}

    DBOS(flask=app, config=make_config(database_url, enable_otlp=True, otlp_traces_endpoints=["http://unused"],
                                       otlp_logs_endpoints=["http://unused"], otlp_log_level="WARNING"))
    try:
        yield app
    finally:
        DBOS.destroy()


def test_spans_nest_request_workflow_step_and_logs_carry_the_context(
    app: Flask, exporters: tuple[InMemorySpanExporter, InMemoryLogRecordExporter]
) -> None:
    response = app.test_client().get("/buy/book", headers={"dbos-request-id": "req-otlp-1"})
    assert response.status_code == 200
    DBOS.destroy()  # flushes the batches
    spans, logs = exporters
    by_name = {s.name: s for s in spans.get_finished_spans()}
    request = by_name["GET /buy/book"]
    assert request.attributes["request_id"] == "req-otlp-1"
    workflow, background = by_name["workflow buy"], by_name["workflow restock"]
    steps = [s for s in spans.get_finished_spans() if s.name == "step price"]
    assert workflow.parent.span_id == request.context.span_id
    assert background.parent.span_id == request.context.span_id  # carried to the pool thread
    assert {s.parent.span_id for s in steps} == {workflow.context.span_id, background.context.span_id}
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 1  # one trace

    records = [r.log_record for r in logs.get_finished_logs() if "pricing" in str(r.log_record.body)]
    assert {r.attributes["workflow_id"] for r in records} == {"buy-book", "restock-book"}
    assert {r.attributes["step_id"] for r in records} == {1}
    assert {r.attributes["request_id"] for r in records} == {"req-otlp-1"}
    assert {r.trace_id for r in records} == {request.context.trace_id}
    assert not [h for h in logging.getLogger().handlers if type(h).__name__ == "LoggingHandler"]  # detached


def test_without_the_extra_launch_names_it(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    DBOS.destroy()
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if the extra were not installed
    DBOS(config=make_config(database_url, enable_otlp=True))
    try:
        with pytest.raises(DBOSInitializationError, match=r"install the project's otlp extra"):
            DBOS.launch()
    finally:
        DBOS.destroy()


def test_tracing_is_free_and_inert_when_off(dbos: type[DBOS]) -> None:
    assert tracing.carry(len) is len  # nothing wrapped
    with tracing.span("nothing"):
        assert buy("pen") == 42
