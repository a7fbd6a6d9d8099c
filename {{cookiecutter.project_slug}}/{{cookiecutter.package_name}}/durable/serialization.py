"""Checkpoint values as JSON: codecs for common Python types, exceptions as data, a size cap.

Replay must hand back what the first run returned, type included: a tuple that came back as a list
could send recovery down another branch. So every non-JSON type is written as a tagged object
``{"$t": <tag>, ...}`` and rebuilt on the way back. Pickle is used only when ``allow_pickle`` is on,
and only for values no codec covers. Exceptions are stored as data (type path, message, args) and
rebuilt from classes the process already knows, never by unpickling.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import json
import math
import pickle
import sys
import uuid
from collections.abc import Callable
from typing import Any

from .error import DBOSException, DBOSSerializationError

TAG = "$t"
_DBOS_ATTRS = ("message", "dbos_error_code", "status_code")


class RecordedError(Exception):
    """Replays an exception whose class this process cannot find; keeps the original type's name."""

    def __init__(self, type_path: str, message: str) -> None:
        self.type_path = type_path
        self.message = message
        super().__init__(f"{type_path}: {message}")


# Types that integrations teach the codec (Flask responses): tag -> (type, to JSON, from JSON).
_EXTENSIONS: dict[str, tuple[type, Callable[[Any], Any], Callable[[Any], Any]]] = {}


def register_type(tag: str, cls: type, to_json: Callable[[Any], Any], from_json: Callable[[Any], Any]) -> None:
    """Teach every codec to store instances of ``cls`` (and subclasses) under ``tag``."""
    _EXTENSIONS[tag] = (cls, to_json, from_json)


class _Unencodable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


def _type_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _find_class(path: str, *, may_import: bool) -> type | None:
    """Resolve ``module.Qual.Name`` to a class without running unknown code when ``may_import`` is off."""
    module_name, _, qualname = path.rpartition(".")
    while module_name:
        module = sys.modules.get(module_name)
        if module is None and may_import:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                module = None
        if module is not None:
            obj: Any = module
            for part in qualname.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    return None
            return obj if isinstance(obj, type) else None
        # Nested classes: move one name from the module path to the qualified name.
        module_name, _, head = module_name.rpartition(".")
        qualname = f"{head}.{qualname}"
    return None


class Codec:
    """Encodes values to JSON-compatible structures and back; one per runtime (holds the options)."""

    def __init__(self, *, max_bytes: int, allow_pickle: bool = False) -> None:
        self.max_bytes = max_bytes
        self.allow_pickle = allow_pickle
        self._encoders: dict[type, Callable[[Any], Any]] = {
            str: lambda v: v,
            int: lambda v: v,
            bool: lambda v: v,
            type(None): lambda v: v,
            float: self._float,
            list: lambda v: [self._to_json(x) for x in v],
            dict: self._dict,
            tuple: lambda v: {TAG: "tuple", "v": [self._to_json(x) for x in v]},
            set: lambda v: {TAG: "set", "v": [self._to_json(x) for x in v]},
            frozenset: lambda v: {TAG: "frozenset", "v": [self._to_json(x) for x in v]},
            bytes: lambda v: {TAG: "bytes", "v": base64.b64encode(v).decode("ascii")},
            dt.datetime: lambda v: {TAG: "datetime", "v": v.isoformat()},
            dt.date: lambda v: {TAG: "date", "v": v.isoformat()},
            dt.time: lambda v: {TAG: "time", "v": v.isoformat()},
            dt.timedelta: lambda v: {TAG: "timedelta", "v": [v.days, v.seconds, v.microseconds]},
            decimal.Decimal: lambda v: {TAG: "decimal", "v": str(v)},
            uuid.UUID: lambda v: {TAG: "uuid", "v": str(v)},
        }

    # -- encoding -------------------------------------------------------------------------------------

    def _float(self, v: float) -> Any:
        return v if math.isfinite(v) else {TAG: "float", "v": repr(v)}

    def _dict(self, v: dict[Any, Any]) -> Any:
        if all(type(k) is str for k in v) and TAG not in v:
            return {k: self._to_json(x) for k, x in v.items()}
        return {TAG: "dict", "v": [[self._to_json(k), self._to_json(x)] for k, x in v.items()]}

    def _to_json(self, value: Any) -> Any:
        encoder = self._encoders.get(type(value))
        if encoder is not None:
            return encoder(value)
        if isinstance(value, BaseException):
            return self.exception_to_json(value)
        if isinstance(value, enum.Enum):
            return {TAG: "enum", "cls": _type_path(type(value)), "v": self._to_json(value.value)}
        for tag, (cls, to_json, _) in _EXTENSIONS.items():
            if isinstance(value, cls):
                return {TAG: "x:" + tag, "v": to_json(value)}
        if isinstance(value, dict):  # dict subclasses (OrderedDict, defaultdict) are stored as dicts
            return self._dict(value)
        if isinstance(value, (list, tuple)):  # and list or tuple subclasses (namedtuples) as their base
            return self._encoders[list if isinstance(value, list) else tuple](value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: self._to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return {TAG: "dataclass", "cls": _type_path(type(value)), "v": fields}
        if self.allow_pickle:
            try:
                return {TAG: "pickle", "v": base64.b64encode(pickle.dumps(value)).decode("ascii")}
            except Exception:
                pass
        raise _Unencodable(value)

    def exception_to_json(self, exc: BaseException) -> dict[str, Any]:
        """An exception as data: its class path, message, arguments and DBOS attributes."""
        args: list[Any] = []
        for arg in exc.args:
            try:
                args.append(self._to_json(arg))
            except _Unencodable:
                args.append(repr(arg))
        data: dict[str, Any] = {TAG: "exception", "cls": _type_path(type(exc)), "message": str(exc), "args": args}
        if isinstance(exc, DBOSException):
            data["attrs"] = {name: getattr(exc, name, None) for name in _DBOS_ATTRS}
        return data

    def encode(self, value: Any, *, what: str) -> str:
        """JSON text for ``value``; raise ``DBOSSerializationError`` naming ``what`` if it can't be stored."""
        try:
            text = json.dumps(self._to_json(value), separators=(",", ":"), allow_nan=False)
        except _Unencodable as exc:
            raise DBOSSerializationError(
                f"{what} cannot be checkpointed: {type(exc.value).__name__} is not serialisable "
                "(use JSON types, tuples, sets, datetimes, decimals, UUIDs, bytes, enums or dataclasses; "
                "or set allow_pickle=True)"
            ) from None
        except RecursionError:
            raise DBOSSerializationError(f"{what} cannot be checkpointed: it is nested too deeply") from None
        size = len(text.encode("utf-8")) if len(text) * 4 > self.max_bytes else len(text)
        if size > self.max_bytes:
            raise DBOSSerializationError(
                f"{what} is {size} bytes as JSON, over the {self.max_bytes}-byte cap; "
                "return less, or raise max_checkpoint_bytes"
            )
        return text

    def encode_exception(self, exc: BaseException) -> str:
        """JSON text for an exception; never fails (an over-large one is cut down to its message)."""
        text = json.dumps(self.exception_to_json(exc), separators=(",", ":"), allow_nan=False)
        if len(text) > self.max_bytes:
            text = json.dumps(
                {TAG: "exception", "cls": _type_path(type(exc)), "message": str(exc)[:10_000], "args": []}
            )
        return text

    # -- decoding -------------------------------------------------------------------------------------

    def decode(self, text: str) -> Any:
        """Rebuild a value from the JSON text that ``encode`` wrote."""
        return self._from_json(json.loads(text))

    def _from_json(self, v: Any) -> Any:
        if type(v) is list:
            return [self._from_json(x) for x in v]
        if type(v) is not dict:
            return v
        tag = v.get(TAG)
        if tag is None:
            return {k: self._from_json(x) for k, x in v.items()}
        payload: Any = v.get("v")
        match tag:
            case "tuple":
                return tuple(self._from_json(x) for x in payload)
            case "set":
                return {self._from_json(x) for x in payload}
            case "frozenset":
                return frozenset(self._from_json(x) for x in payload)
            case "dict":
                return {self._from_json(k): self._from_json(x) for k, x in payload}
            case "bytes":
                return base64.b64decode(payload)
            case "datetime":
                return dt.datetime.fromisoformat(payload)
            case "date":
                return dt.date.fromisoformat(payload)
            case "time":
                return dt.time.fromisoformat(payload)
            case "timedelta":
                return dt.timedelta(days=payload[0], seconds=payload[1], microseconds=payload[2])
            case "decimal":
                return decimal.Decimal(payload)
            case "uuid":
                return uuid.UUID(payload)
            case "float":
                return float(payload)
            case "enum":
                cls = _find_class(v["cls"], may_import=True)
                if cls is None or not issubclass(cls, enum.Enum):
                    raise DBOSSerializationError(f"recorded enum {v['cls']} no longer exists")
                return cls(self._from_json(payload))
            case "dataclass":
                cls = _find_class(v["cls"], may_import=True)
                if cls is None or not dataclasses.is_dataclass(cls):
                    raise DBOSSerializationError(f"recorded dataclass {v['cls']} no longer exists")
                fields = {k: self._from_json(x) for k, x in payload.items()}
                init = {f.name for f in dataclasses.fields(cls) if f.init}
                obj = cls(**{k: x for k, x in fields.items() if k in init})
                for k, x in fields.items():
                    if k not in init:
                        object.__setattr__(obj, k, x)
                return obj
            case "exception":
                return self.exception_from_json(v)
            case "pickle":
                if not self.allow_pickle:
                    raise DBOSSerializationError(
                        "a checkpoint holds a pickled value but allow_pickle is off; turn it on to read it"
                    )
                return pickle.loads(base64.b64decode(payload))
        if tag.startswith("x:") and tag[2:] in _EXTENSIONS:
            return _EXTENSIONS[tag[2:]][2](payload)
        raise DBOSSerializationError(f"unknown checkpoint tag {tag!r}")

    def exception_from_json(self, data: dict[str, Any]) -> BaseException:
        """Rebuild a recorded exception as its own type when this process has that class loaded."""
        path, message = data["cls"], data.get("message", "")
        cls = _find_class(path, may_import=False)
        if cls is None or not issubclass(cls, BaseException):
            return RecordedError(path, message)
        args = tuple(self._from_json(a) for a in data.get("args", []))
        attrs = data.get("attrs")
        exc: BaseException
        if attrs is None:
            try:
                exc = cls(*args)
            except Exception:
                exc = cls.__new__(cls)
                BaseException.__init__(exc, *args)
        else:  # DBOSException subclasses take varied constructor arguments: set the fields directly.
            exc = cls.__new__(cls)
            BaseException.__init__(exc, *args)
            for name in _DBOS_ATTRS:
                setattr(exc, name, attrs.get(name))
        return exc
