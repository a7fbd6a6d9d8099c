"""Error tracking: Sentry only with SENTRY_DSN, events tagged with their workflow, one clear error without the extra.

Events go to a transport built on sentry-sdk's own ``Transport`` interface that keeps them in memory:
the SDK, its Flask and logging integrations and our ``before_send`` all run as in production, and
nothing is sent over the network.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from flask import Flask
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.durable import DBOS, SetWorkflowID
from {{ cookiecutter.package_name }}.error_tracking import MISSING_EXTRA, init_error_tracking
from {{ cookiecutter.package_name }}.settings import Settings, SettingsError

DSN = "https://public@sentry.invalid/1"  # never contacted: the transport below keeps the events
logger = logging.getLogger(__name__)


class MemoryTransport(Transport):
    """Keeps each envelope instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        sentry_sdk.flush(timeout=5)
        return [dict(event) for envelope in self.envelopes if (event := envelope.get_event()) is not None]


@DBOS.step()
def look_up_customer(customer: str) -> None:
    try:
        raise LookupError(f"no customer {customer}")
    except LookupError:
        logger.exception("customer lookup failed")  # handled here, reported to Sentry


@DBOS.workflow()
def invoice(customer: str) -> str:
    look_up_customer(customer)
    return "invoiced"


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, log_level="WARNING", sentry_dsn=DSN)


@pytest.fixture
def transport(app: Flask) -> Iterator[MemoryTransport]:
    """The app's Sentry client, sending to memory; the client is closed and unset afterwards."""
    client = sentry_sdk.get_client()
    assert client.is_active() and client.dsn == DSN
    memory = MemoryTransport()
    if client.transport is not None:
        client.transport.kill()
    client.transport = memory
    try:
        yield memory
    finally:
        client.close()
        sentry_sdk.get_global_scope().set_client(None)


def test_an_error_logged_in_a_step_is_tagged_with_its_workflow(
    app: Flask, transport: MemoryTransport
) -> None:
    with app.app_context(), SetWorkflowID("invoice-ada"):
        assert invoice("ada") == "invoiced"
    [event] = transport.events()
    assert event["exception"]["values"][-1]["type"] == "LookupError"
    assert event["tags"]["workflow_id"] == "invoice-ada"
    assert event["tags"]["step_id"] == "1"


def test_an_unhandled_request_error_is_reported_with_its_request_id(
    app: Flask, transport: MemoryTransport
) -> None:
    def explode() -> str:
        raise RuntimeError("the disk is full")

    app.add_url_rule("/explode", view_func=explode)
    response = app.test_client().get("/explode", headers={"dbos-request-id": "req-42"})
    assert response.status_code == 500 and response.is_json
    [event] = transport.events()
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["tags"]["request_id"] == "req-42"
    assert "workflow_id" not in event["tags"]


def test_without_a_dsn_sentry_stays_off(database_url: str) -> None:
    assert init_error_tracking(Settings(database_url=database_url)) is False
    assert not sentry_sdk.get_client().is_active()


def test_a_dsn_without_the_extra_is_one_error_naming_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # what a missing package looks like to import
    with pytest.raises(SettingsError) as raised:
        create_app(Settings(database_url=database_url, sentry_dsn=DSN))
    assert str(raised.value) == MISSING_EXTRA
    assert "sentry extra" in MISSING_EXTRA and "SENTRY_DSN" in MISSING_EXTRA


def test_sentry_dsn_is_read_from_the_environment() -> None:
    assert Settings.from_env({"SENTRY_DSN": f" {DSN} "}).sentry_dsn == DSN
    assert Settings.from_env({"SENTRY_DSN": ""}).sentry_dsn is None
