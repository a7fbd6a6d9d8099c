"""The outside world the example talks to: a payment gateway and a notifier, with fakes by default.

Replace the fakes with real clients by setting ``app.extensions["payment_gateway"]`` and
``app.extensions["notifier"]`` (tests do this too). The fakes fail at random at the rates in
``PAYMENT_FAILURE_RATE`` and ``NOTIFY_FAILURE_RATE`` (Flask config; ``FLASK_PAYMENT_FAILURE_RATE``
in the environment), to show steps being retried. For crash demos and tests, the payment fake can
append each charge to a ledger file (``PAYMENT_LEDGER``), an effect outside the database one can
count, and the notifier waits while the file ``NOTIFY_HOLD_FILE`` exists (up to a minute), which
leaves time to kill the worker in the middle of a workflow.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from pathlib import Path
from typing import Protocol

from flask import current_app
from flask.sansio.app import App

logger = logging.getLogger(__name__)


class PaymentUnavailable(ConnectionError):
    """A transient gateway failure: worth retrying."""


class PaymentGateway(Protocol):
    def charge(self, order_id: int, user_id: str, amount_cents: int) -> dict[str, object]:
        """Charge the user; return ``{"success": bool, "transaction_id": str | None, "reason": str | None}``."""
        ...


class Notifier(Protocol):
    def notify(self, user_id: str, message: str) -> None: ...


class FakePaymentGateway:
    """Approves everything except users whose ID starts with ``declined``; fails transiently at random."""

    def __init__(self, failure_rate: float = 0.0, ledger: str | None = None) -> None:
        self.failure_rate = failure_rate
        self.ledger = Path(ledger) if ledger else None

    def charge(self, order_id: int, user_id: str, amount_cents: int) -> dict[str, object]:
        if self.failure_rate and random.random() < self.failure_rate:
            raise PaymentUnavailable("payment gateway timed out")
        if user_id.startswith("declined"):
            return {"success": False, "transaction_id": None, "reason": "card declined"}
        transaction_id = f"txn_{uuid.uuid4().hex[:12]}"
        if self.ledger is not None:
            with self.ledger.open("a") as ledger:
                ledger.write(json.dumps({"order_id": order_id, "amount_cents": amount_cents}) + "\n")
        return {"success": True, "transaction_id": transaction_id, "reason": None}


class FakeNotifier:
    """Logs the message; fails transiently at random; waits while a hold file exists."""

    def __init__(self, failure_rate: float = 0.0, hold_file: str | None = None) -> None:
        self.failure_rate = failure_rate
        self.hold_file = Path(hold_file) if hold_file else None

    def notify(self, user_id: str, message: str) -> None:
        deadline = time.monotonic() + 60
        while self.hold_file is not None and self.hold_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.failure_rate and random.random() < self.failure_rate:
            raise ConnectionError("notification service unavailable")
        logger.info("notify %s: %s", user_id, message)


def install_fakes(app: App) -> None:
    """Default clients, unless the app already has its own."""
    app.extensions.setdefault(
        "payment_gateway",
        FakePaymentGateway(
            float(app.config.get("PAYMENT_FAILURE_RATE", 0.0)), app.config.get("PAYMENT_LEDGER")
        ),
    )
    app.extensions.setdefault(
        "notifier",
        FakeNotifier(float(app.config.get("NOTIFY_FAILURE_RATE", 0.0)), app.config.get("NOTIFY_HOLD_FILE")),
    )


def payment_gateway() -> PaymentGateway:
    gateway: PaymentGateway = current_app.extensions["payment_gateway"]
    return gateway


def notifier() -> Notifier:
    found: Notifier = current_app.extensions["notifier"]
    return found
