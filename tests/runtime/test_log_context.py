"""ContextLogFilter on a handler: records of any logger, the runtime's child loggers included, name the
request, workflow and step they were written in."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from durable import DBOS, SetWorkflowID
from durable.context import ContextLogFilter

app_log = logging.getLogger("shop.billing")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def handler() -> Iterator[Collect]:
    collect = Collect()
    collect.addFilter(ContextLogFilter())
    root = logging.getLogger()
    root.addHandler(collect)
    old_level = root.level
    root.setLevel(logging.INFO)
    logging.getLogger("durable").setLevel(logging.INFO)
    try:
        yield collect
    finally:
        root.removeHandler(collect)
        root.setLevel(old_level)


@DBOS.step()
def logged_step() -> int:
    app_log.info("in the step")
    return 1


@DBOS.workflow()
def logged_workflow() -> int:
    app_log.info("in the body")
    return logged_step()


def test_the_filter_on_a_handler_sees_the_context_of_every_logger(dbos: type[DBOS], handler: Collect) -> None:
    with SetWorkflowID("log-ctx-1"):
        assert logged_workflow() == 1
    app_log.info("outside")
    by_message = {r.getMessage(): r for r in handler.records}
    assert by_message["in the body"].workflow_id == "log-ctx-1"  # type: ignore[attr-defined]
    assert by_message["in the body"].step_id is None  # type: ignore[attr-defined]
    assert by_message["in the step"].workflow_id == "log-ctx-1"  # type: ignore[attr-defined]
    assert by_message["in the step"].step_id == 1  # type: ignore[attr-defined]
    assert by_message["outside"].workflow_id is None  # type: ignore[attr-defined]


def test_the_runtime_puts_no_filter_on_its_loggers() -> None:
    """A filter on the package logger would not run for child loggers' records: it belongs on handlers."""
    assert not [f for f in logging.getLogger("durable").filters if isinstance(f, ContextLogFilter)]
