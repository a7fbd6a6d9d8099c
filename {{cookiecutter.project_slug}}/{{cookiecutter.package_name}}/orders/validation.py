"""Checks an order or payment request body and says which field is wrong.

Every number is bounded so that it fits the database's integer columns (``orders.total_cents`` is a
32-bit INTEGER), and every string is bounded and free of control characters: NUL cannot be stored in
PostgreSQL text, a lone surrogate cannot be encoded as UTF-8, and a newline would forge log lines.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 100
MAX_TEXT = 64  # user_id is VARCHAR(64); a SKU gets the same bound
MAX_QUANTITY = 10_000
MAX_PRICE_CENTS = 100_000_000  # one million in the currency's units
MAX_TOTAL_CENTS = 2**31 - 1  # the INTEGER column holding an order's total
# Control characters (NUL, newlines, escapes), lone surrogates, line and paragraph separators.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class InvalidOrder(ValueError):
    """The request body is not a valid order; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class OrderRequest:
    user_id: str
    items: list[dict[str, Any]]

    @property
    def total_cents(self) -> int:
        return sum(item["quantity"] * item["price_cents"] for item in self.items)


@dataclass(frozen=True)
class PaymentRequest:
    user_id: str
    amount_cents: int


def _whole(value: Any, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrder(field, f"must be a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidOrder(field, f"must be between {low} and {high}")  # the value itself may be 10**4300
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(field, "is required and must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise InvalidOrder(field, f"must be at most {MAX_TEXT} characters")
    if any(unicodedata.category(char) in UNPRINTABLE_CATEGORIES for char in value):
        raise InvalidOrder(
            field, "must hold printable characters only (no control characters or lone surrogates)"
        )
    return value


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidOrder("body", "must be a JSON object")
    return body


def parse_order(body: Any) -> OrderRequest:
    """Validate ``{"user_id": str, "items": [{"sku": str, "quantity": int, "price_cents": int}]}``."""
    body = _object(body)
    user_id = _text(body.get("user_id"), "user_id")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidOrder("items", "is required and must be a non-empty list")
    if len(items) > MAX_ITEMS:
        raise InvalidOrder("items", f"must hold at most {MAX_ITEMS} entries")
    clean = []
    for n, item in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise InvalidOrder(where, "must be an object")
        clean.append(
            {
                "sku": _text(item.get("sku"), f"{where}.sku"),
                "quantity": _whole(item.get("quantity"), f"{where}.quantity", low=1, high=MAX_QUANTITY),
                "price_cents": _whole(
                    item.get("price_cents"), f"{where}.price_cents", low=0, high=MAX_PRICE_CENTS
                ),
            }
        )
    order = OrderRequest(user_id=user_id, items=clean)
    if order.total_cents > MAX_TOTAL_CENTS:
        raise InvalidOrder("items", f"the order's total must be at most {MAX_TOTAL_CENTS} cents")
    return order


def parse_payment(body: Any) -> PaymentRequest:
    """Validate ``{"amount": int, "user_id": str}`` (the guide's /payment body)."""
    body = _object(body)
    amount = _whole(body.get("amount"), "amount", low=1, high=MAX_TOTAL_CENTS)
    return PaymentRequest(user_id=_text(body.get("user_id"), "user_id"), amount_cents=amount)
