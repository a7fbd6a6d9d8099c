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
from typing import Any, cast

from .error import DBOSException, DBOSSerializationError
from .portable import PortableWorkflowError, error_data, is_portable, portableify

TAG = "$t"
# One encoder made once: json.dumps with any option builds a new JSONEncoder per call. No NaN or
# infinity: plain JSON has none (the codec tags them).
compact_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
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


def _is_model(value: Any) -> bool:
    """A pydantic (v2) model instance whose class can be found again by name; pydantic is not imported."""
    cls = type(value)
    return (callable(getattr(value, "model_dump", None)) and callable(getattr(cls, "model_validate", None))
            and "<locals>" not in cls.__qualname__)


def _is_plain_object(value: Any) -> bool:
    """An instance whose whole state is its ``__dict__`` and whose class can be found again by name.

    Such objects are stored as their class path and attributes; local classes (``<locals>``), classes
    with ``__slots__`` or their own pickling rules are not (they need ``allow_pickle``).
    """
    cls = type(value)
    return (
        hasattr(value, "__dict__")
        and not hasattr(cls, "__slots__")
        and all(getattr(cls, name, None) is getattr(object, name, None) for name in ("__reduce_ex__", "__reduce__",
                                                                               "__getstate__"))
        and "<locals>" not in cls.__qualname__
        and _find_class(_type_path(cls), may_import=False) is cls
    )


def _jsonb_key(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    return len(raw), raw


def _jsonb_keeps_order(v: dict[str, Any]) -> bool:
    """Whether JSONB, which orders an object's keys by byte length then bytes, keeps this dict's order."""
    if len(v) < 2:
        return True
    keys = [_jsonb_key(k) for k in v]
    return all(a < b for a, b in zip(keys, keys[1:], strict=False))


def _object_as_is(v: dict[Any, Any]) -> bool:
    """Whether ``v`` is stored as a JSON object of its own keys: all strings, none the tag, and in the
    order JSONB keeps. One pass with no call per key when they are ASCII (every checkpoint has dicts)."""
    last_length, last = -1, ""
    for key in v:
        if type(key) is not str or key == TAG:
            return False
        if not key.isascii():  # bytes and characters differ: compare as JSONB does
            return all(type(k) is str for k in v) and TAG not in v and _jsonb_keeps_order(v)
        length = len(key)  # ASCII: a character is a byte, and characters order as bytes do
        if length < last_length or (length == last_length and key < last):
            return False
        last_length, last = length, key
    return True


# Written as they are, with no encoder to look up: most values inside a checkpoint are these.
_AS_IS = frozenset({str, int, bool, type(None)})


class Codec:
    """Encodes values to JSON-compatible structures and back; one per runtime (holds the options)."""

    def __init__(self, *, max_bytes: int, allow_pickle: bool = False, serializer: Any = None) -> None:
        self.max_bytes = max_bytes
        self.allow_pickle = allow_pickle
        # DBOSConfig's serializer: the portable one switches the format; any other writes the values.
        self.portable_default = is_portable(serializer)
        self.serializer = None if self.portable_default else serializer
        self._encoders: dict[type, Callable[[Any], Any]] = {
            str: lambda v: v,
            int: lambda v: v,
            bool: lambda v: v,
            type(None): lambda v: v,
            float: self._float,
            list: self._list,
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

    def _list(self, v: list[Any]) -> list[Any]:
        return [x if type(x) in _AS_IS else self._to_json(x) for x in v]

    def _dict(self, v: dict[Any, Any]) -> Any:
        # PostgreSQL's JSONB keeps an object's keys in its own order (shortest first), and a DBOS user
        # sees the caller's order (inputs, results): a dict JSONB would reorder is stored as pairs.
        if _object_as_is(v):
            return {k: x if type(x) in _AS_IS else self._to_json(x) for k, x in v.items()}
        pairs = [[k if type(k) in _AS_IS else self._to_json(k), x if type(x) in _AS_IS else self._to_json(x)]
                 for k, x in v.items()]
        return {TAG: "dict", "v": pairs}

    def _plain(self, v: Any) -> Any:
        """Portable data (plain JSON) as stored: only a dict holding the tag key is escaped."""
        if type(v) is list:
            return [self._plain(x) for x in v]
        if type(v) is dict:
            if TAG in v:
                return {TAG: "dict", "v": [[k, self._plain(x)] for k, x in v.items()]}
            return {k: self._plain(x) for k, x in v.items()}
        return self._float(v) if type(v) is float else v

    def _to_json(self, value: Any) -> Any:
        if type(value) in _AS_IS:
            return value
        if type(value) is dict:
            return self._dict(value)
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
        if _is_model(value):  # a pydantic model: its fields, rebuilt (and validated) by the model class
            return {TAG: "model", "cls": _type_path(type(value)), "v": self._to_json(value.model_dump())}
        if _is_plain_object(value):
            return {TAG: "object", "cls": _type_path(type(value)),
                    "v": {k: self._to_json(x) for k, x in vars(value).items()}}
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

    def _data(self, value: Any, what: str, portable: bool) -> Any:
        if portable or self.portable_default:
            try:
                return self._plain(portableify(value))
            except TypeError as exc:
                raise DBOSSerializationError(f"{what} cannot be checkpointed in the portable format: {exc}") from None
        if self.serializer is not None:
            try:
                text = self.serializer.serialize(value)
            except Exception as exc:
                raise DBOSSerializationError(
                    f"{what} cannot be checkpointed: the configured serializer failed: {exc!r}") from exc
            return {TAG: "ser", "name": self.serializer.name(), "v": text}
        return self._to_json(value)

    def encode(self, value: Any, *, what: str, portable: bool = False) -> str:
        """JSON text for ``value``; raise ``DBOSSerializationError`` naming ``what`` if it can't be stored.

        ``portable`` (a PORTABLE workflow) keeps plain JSON only, as the portable serializer does.
        """
        try:
            text = compact_json(self._data(value, what, portable))
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

    def encode_exception(self, exc: BaseException, *, portable: bool = False) -> str:
        """JSON text for an exception; never fails (an over-large one is cut down to its message).

        In the portable format it is its name, message, code and data (read back as PortableWorkflowError).
        """
        if portable or self.portable_default:
            data = error_data(exc)
            text = json.dumps({TAG: "portable_error", **data}, separators=(",", ":"), default=str)
            if len(text) <= self.max_bytes:
                return text
        text = compact_json(self.exception_to_json(exc))
        if len(text) > self.max_bytes:
            text = json.dumps(
                {TAG: "exception", "cls": _type_path(type(exc)), "message": str(exc)[:10_000], "args": []}
            )
        return text

    # -- decoding -------------------------------------------------------------------------------------

    def decode(self, text: str) -> Any:
        """Rebuild a value from the JSON text that ``encode`` wrote."""
        return self._from_json(json.loads(text))

    def decode_shown(self, text: str) -> Any:
        """``decode`` for listings: a value written by a serializer this process lacks (a client with no
        ``serializer``) is shown as that serializer's text, as DBOS shows it, instead of failing the list."""
        data = json.loads(text)
        if type(data) is dict and data.get(TAG) == "ser" and (
                self.serializer is None or self.serializer.name() != data.get("name")):
            return data.get("v")
        return self._from_json(data)

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
            case "model":
                cls = _find_class(v["cls"], may_import=True)
                if cls is None or not hasattr(cls, "model_validate"):
                    raise DBOSSerializationError(f"recorded model {v['cls']} no longer exists")
                return cast(Any, cls).model_validate(self._from_json(payload))
            case "exception":
                return self.exception_from_json(v)
            case "portable_error":
                return PortableWorkflowError(v.get("message", ""), v.get("name", "Error"), v.get("code"), v.get("data"))
            case "ser":
                return self._deserialize(v.get("name"), payload)
            case "object":
                return self._object(v["cls"], payload)
            case "pickle":
                if not self.allow_pickle:
                    raise DBOSSerializationError(
                        "a checkpoint holds a pickled value but allow_pickle is off; turn it on to read it"
                    )
                return pickle.loads(base64.b64decode(payload))
        if tag.startswith("x:") and tag[2:] in _EXTENSIONS:
            return _EXTENSIONS[tag[2:]][2](payload)
        raise DBOSSerializationError(f"unknown checkpoint tag {tag!r}")

    def _deserialize(self, name: Any, text: Any) -> Any:
        if self.serializer is None or self.serializer.name() != name:
            raise DBOSSerializationError(f"a checkpoint was written by serializer {name!r}, which is not configured")
        return self.serializer.deserialize(text)

    def _object(self, path: str, state: dict[str, Any]) -> Any:
        """A plain object rebuilt from its class and attributes, without running its ``__init__`` (as pickle)."""
        cls = _find_class(path, may_import=True)
        if cls is None:
            raise DBOSSerializationError(f"recorded class {path} no longer exists")
        obj = cast(Any, cls).__new__(cls)
        obj.__dict__.update({k: self._from_json(x) for k, x in state.items()})
        return obj

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
