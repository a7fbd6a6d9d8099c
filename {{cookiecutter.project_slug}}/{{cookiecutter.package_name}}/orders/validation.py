"""Checks an order request body and says which field is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 100


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


def _whole(value: Any, field: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrder(field, f"must be a whole number, got {type(value).__name__}")
    if value < low:
        raise InvalidOrder(field, f"must be at least {low}, got {value}")
    return value


def parse_order(body: Any) -> OrderRequest:
    """Validate ``{"user_id": str, "items": [{"sku": str, "quantity": int, "price_cents": int}]}``."""
    if not isinstance(body, dict):
        raise InvalidOrder("body", "must be a JSON object")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidOrder("user_id", "is required and must be a non-empty string")
    if len(user_id) > 64:
        raise InvalidOrder("user_id", "must be at most 64 characters")
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
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise InvalidOrder(f"{where}.sku", "is required and must be a non-empty string")
        clean.append(
            {
                "sku": sku,
                "quantity": _whole(item.get("quantity"), f"{where}.quantity", low=1),
                "price_cents": _whole(item.get("price_cents"), f"{where}.price_cents", low=0),
            }
        )
    return OrderRequest(user_id=user_id, items=clean)
