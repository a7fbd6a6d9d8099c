"""Statuses and steps as JSON for operators: the admin API and the CLI show them the same way."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def plain(value: Any) -> Any:
    """``json.dumps``'s fallback: a stored exception becomes ``"Type: message"``, anything else its repr.

    Never raises itself: a stored error's ``__str__`` may be as broken as the work that raised it.
    """
    if isinstance(value, BaseException):
        try:
            return f"{type(value).__name__}: {value}"
        except Exception:
            return type(value).__name__
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def as_dict(value: Any) -> dict[str, Any]:
    """A WorkflowStatus (dataclass) or a step (dict), shallowly: ``dataclasses.asdict`` deep-copies, and a
    stored exception (a SQLAlchemy DataError, say) may not survive a copy."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return dict(value)
