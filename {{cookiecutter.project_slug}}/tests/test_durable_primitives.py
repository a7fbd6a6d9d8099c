"""The runtime's primitives as this project ships them: queues, transactional enqueue, schedules."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask

from {{ cookiecutter.package_name }}.db import get_db
from {{ cookiecutter.package_name }}.durable import (
    DBOS,
    EnqueueInTransaction,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
    error,
)
from {{ cookiecutter.package_name }}.durable.registry import REGISTRY

reports = Queue("test-reports", concurrency=2)
TICKS: list[datetime] = []


@DBOS.workflow()
def build_report(customer: str) -> str:
    time.sleep(0.2)
    return f"report for {customer}"


@DBOS.transaction()
def record_and_enqueue(customer: str, fail: bool) -> None:
    DBOS.sql_session.execute(sa.text("INSERT INTO report_requests (customer) VALUES (:c)"), {"c": customer})
    with SetWorkflowID(f"report-{customer}"):
        reports.enqueue(build_report, customer)
    if fail:
        raise ValueError("rolled back")


@DBOS.workflow()
def request_report(customer: str, fail: bool) -> None:
    record_and_enqueue(customer, fail)


@pytest.fixture
def launched(app: Flask) -> Flask:
    with app.app_context():
        with get_db().engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE report_requests (customer TEXT PRIMARY KEY)")
    DBOS.launch()
    return app


def test_a_queued_workflow_runs_and_a_duplicate_is_refused(launched: Flask) -> None:
    with SetEnqueueOptions(deduplication_id="ada"):
        handle = reports.enqueue(build_report, "ada")
        with pytest.raises(error.DBOSQueueDeduplicatedError):
            reports.enqueue(build_report, "ada")
    assert handle.get_result(timeout_seconds=20) == "report for ada"


def test_an_enqueue_in_a_transaction_commits_or_rolls_back_with_it(launched: Flask) -> None:
    request_report("kept", False)
    assert DBOS.retrieve_workflow("report-kept").get_result(timeout_seconds=20) == "report for kept"
    with pytest.raises(ValueError, match="rolled back"):
        request_report("dropped", True)
    assert DBOS.get_workflow_status("report-dropped") is None


def test_an_enqueue_in_the_apps_own_session_commits_with_it(launched: Flask) -> None:
    with launched.app_context(), get_db().session() as session:
        session.execute(sa.text("INSERT INTO report_requests (customer) VALUES ('own')"))
        with EnqueueInTransaction(session), SetWorkflowID("report-own"):
            reports.enqueue(build_report, "own")
        assert DBOS.get_workflow_status("report-own") is None  # not before the commit
        session.commit()
    assert DBOS.retrieve_workflow("report-own").get_result(timeout_seconds=20) == "report for own"


def test_a_schedule_runs_each_tick_once(app: Flask) -> None:
    @DBOS.scheduled("* * * * * *")  # every second
    @DBOS.workflow(name="test_every_second")
    def every_second(scheduled_time: datetime, actual_time: datetime) -> None:
        TICKS.append(scheduled_time)

    try:
        DBOS.launch()
        deadline = time.monotonic() + 20
        while len(TICKS) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(TICKS) >= 2, "no two ticks ran within 20 s"
        assert len(set(TICKS)) == len(TICKS), "a tick ran twice"
        ids = [w.workflow_id for w in DBOS.list_workflows(name="test_every_second")]
        assert all(i.startswith("sched-test_every_second-") for i in ids)
    finally:
        DBOS.destroy()
        REGISTRY.schedules.clear()
