"""DBOS's serializer API: ``Serializer``, the portable JSON format, and ``PortableWorkflowError``.

A ``Serializer`` object in ``DBOSConfig(serializer=...)`` checkpoints values instead of the built-in
JSON codec (``serialization.py`` wraps its text in a tagged JSON object, so checkpoints stay JSON).
The *portable* format (``DBOSPortableJSONSerializer``, or ``@DBOS.workflow(serialization_type=
WorkflowSerializationFormat.PORTABLE)``) keeps only what plain JSON holds: tuples and sets become
lists, datetimes RFC 3339 strings, decimals strings; an error becomes its name, message, code and
data, read back as ``PortableWorkflowError``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import json
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

PORTABLE_NAME = "portable_json"


@dataclass(eq=False)
class PortableWorkflowError(Exception):
    """An error read back from the portable format: its original type's name, message, code and data."""

    message: str
    name: str
    code: int | str | None = None
    data: Any = None

    def __str__(self) -> str:
        return self.message


class Serializer(ABC):
    """Turns checkpointed values into text and back; give one as ``DBOSConfig(serializer=...)``."""

    @abstractmethod
    def serialize(self, data: Any) -> str: ...

    @abstractmethod
    def deserialize(self, serialized_data: str) -> Any: ...

    def name(self) -> str:
        """Recorded with each value, so a value is never read back by another serializer."""
        return "custom_serializer"


class DBOSPortableJSONSerializer(Serializer):
    """Plain JSON only (see the module's docstring): readable by any language."""

    def name(self) -> str:
        return PORTABLE_NAME

    def serialize(self, data: Any) -> str:
        return json.dumps(portableify(data), separators=(",", ":"), ensure_ascii=False)

    def deserialize(self, serialized_data: str) -> Any:
        return None if serialized_data is None else json.loads(serialized_data)


class WorkflowSerializationFormat(str, Enum):  # noqa: UP042 - DEFAULT is None, as in DBOS: no StrEnum
    """``@DBOS.workflow(serialization_type=...)``: PORTABLE checkpoints that workflow as plain JSON."""

    PORTABLE = "portable"
    NATIVE = "native"
    DEFAULT = None  # DBOS's spelling: the configured serializer


def is_portable(serializer: Any) -> bool:
    """Whether a configured serializer is DBOS's portable JSON one."""
    try:
        return serializer is not None and serializer.name() == PORTABLE_NAME
    except Exception:
        return False


def _utc_text(value: dt.datetime) -> str:
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def portableify(value: Any) -> Any:
    """``value`` as plain JSON data; TypeError naming the type for anything plain JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        return _utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (list, tuple, set, frozenset)):
        return [portableify(v) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("Attempt to do portable JSON serialization of a map with non-string keys")
        return {k: portableify(v) for k, v in value.items()}
    raise TypeError(f"Object of type {type(value).__name__} is not portable JSON serializable")


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return "<unprintable>"


def error_data(exc: BaseException) -> dict[str, Any]:
    """An exception in the portable format; never fails (a non-JSON detail becomes its text)."""
    if isinstance(exc, PortableWorkflowError):
        return {"name": exc.name, "message": exc.message, "code": exc.code, "data": exc.data}
    out: dict[str, Any] = {"name": type(exc).__name__, "message": _safe_str(exc), "code": None}
    for attr in ("code", "error_code", "errno", "status", "status_code"):
        code = getattr(exc, attr, None)
        if isinstance(code, (int, str)) and not isinstance(code, bool):
            out["code"] = code
            break
    for attr in ("data", "details", "payload", "extra", "meta", "metadata"):
        try:
            detail = getattr(exc, attr)
        except Exception:
            continue
        if callable(detail):
            continue
        try:
            out["data"] = portableify(detail)
        except Exception:
            out["data"] = _safe_str(detail)
        break
    return out


def _coerce(value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if hint is dt.datetime:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if hint is dt.date:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return value
    return value


def coerce_to_hints(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, skip_first: bool
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments read back from plain JSON, with the strings a ``datetime``/``date`` parameter expects parsed.

    ``skip_first`` drops a method's ``self``/``cls``, which the recorded arguments do not hold.
    """
    try:
        hints = typing.get_type_hints(func)
        params = list(inspect.signature(func).parameters.values())
    except Exception:  # unresolvable annotations: leave the values as they are
        return args, kwargs
    if skip_first:
        params = params[1:]
    coerced = tuple(_coerce(v, hints.get(params[i].name)) if i < len(params) else v for i, v in enumerate(args))
    return coerced, {k: _coerce(v, hints.get(k)) for k, v in kwargs.items()}
