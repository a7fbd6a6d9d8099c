"""Names to code: recovery reads a workflow's recorded name and finds the function to run again.

Decorators register at import time, before any ``DBOS`` exists, so the registry is process-wide
and outlives ``DBOS.destroy()`` (as in DBOS).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .error import DBOSException


@dataclass
class FunctionInfo:
    """A decorated function: its durable name, its kind, and its options."""

    name: str
    func: Callable[..., Any]
    kind: str  # "workflow", "step" or "transaction"
    options: dict[str, Any] = field(default_factory=dict)
    version: str = ""  # explicit code version of a workflow; recovery runs the code of the recorded one
    class_name: str | None = None
    method_kind: str | None = None  # None (plain function), "instance", "class" or "static"
    wrapper: Callable[..., Any] | None = None


def _source_file(func: Callable[..., Any]) -> str | None:
    code = getattr(inspect.unwrap(func), "__code__", None)
    return code.co_filename if code is not None else None


class DuplicateRegistrationError(Exception):
    """Two classes under one registered name, or two instances of a class under one config name.

    A plain ``Exception`` with DBOS's exact wording (no ``DBOS Error`` prefix), as DBOS raises it.
    """


# Set on a ``@DBOS.dbos_class`` class: the name its workflows record (``class_name=`` or its qualname).
CLASS_NAME_ATTR = "__durable_class_name__"


def registered_class_name(cls: type) -> str:
    """The name a class is recorded under: the one given to ``@DBOS.dbos_class``, else its qualname."""
    return str(getattr(cls, CLASS_NAME_ATTR, cls.__qualname__))  # inherited, as in DBOS


class Registry:
    """Every decorated function by name, and every registered class and configured instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.workflows: dict[tuple[str, str], FunctionInfo] = {}
        self.classes: dict[str, type] = {}
        self.instances: dict[tuple[str, str], Any] = {}
        # (workflow, cron) pairs from @DBOS.scheduled; the scheduler thread reads them at launch.
        self.schedules: list[tuple[FunctionInfo, str]] = []

    def add_workflow(self, info: FunctionInfo) -> None:
        key = (info.name, info.version)
        with self._lock:
            known = self.workflows.get(key)
            # The same file run again (runpy, importlib.reload) replaces its functions, as DBOS lets it.
            if (known is not None and known.func is not info.func and known.func.__module__ != info.func.__module__
                    and _source_file(known.func) != _source_file(info.func)):
                raise DBOSException(
                    f"Two different workflow functions are named {info.name!r} version {info.version!r} "
                    f"({known.func.__module__} and {info.func.__module__}); pass name=... or version=... to one"
                )
            self.workflows[key] = info

    def add_class(self, cls: type, class_name: str | None = None) -> str:
        """Register ``cls`` under ``class_name`` (default: its qualname); return the name."""
        name = class_name or cls.__qualname__
        with self._lock:
            known = self.classes.get(name)
            if known is not None and known is not cls:
                raise DuplicateRegistrationError(f"Duplicate type registration for class '{name}'")
            self.classes[name] = cls
        setattr(cls, CLASS_NAME_ATTR, name)
        return name

    def add_instance(self, instance: Any) -> None:
        class_name = registered_class_name(type(instance))
        key = (class_name, instance.config_name)
        with self._lock:
            if key in self.instances and self.instances[key] is not instance:
                raise DuplicateRegistrationError(
                    f"Duplicate instance registration for class '{class_name}' instance '{instance.config_name}'"
                )
            self.instances[key] = instance

    def add_schedule(self, info: FunctionInfo, cron: str) -> None:
        with self._lock:
            # A module imported twice decorates again: one schedule per (workflow name, cron).
            self.schedules = [(known, c) for known, c in self.schedules if (known.name, c) != (info.name, cron)]
            self.schedules.append((info, cron))

    def find_workflow(self, name: str, version: str = "") -> FunctionInfo | None:
        return self.workflows.get((name, version))

    def versions_of(self, name: str) -> list[str]:
        return sorted(version for known, version in self.workflows if known == name)

    def find_instance(self, class_name: str, config_name: str) -> Any:
        return self.instances.get((class_name, config_name))


REGISTRY = Registry()


def workflow_of(func: Callable[..., Any]) -> tuple[FunctionInfo, tuple[Any, ...]]:
    """The registered workflow behind ``func``, and the ``self`` a bound method passes along."""
    bound: tuple[Any, ...] = ()
    target = func
    if hasattr(func, "__self__") and hasattr(func, "__func__"):
        bound, target = (func.__self__,), func.__func__
    info: FunctionInfo | None = getattr(target, "__durable_info__", None)
    if info is None:
        raise DBOSException(f"{getattr(func, '__qualname__', func)!r} is not a @DBOS.workflow() function")
    if info.kind in ("transaction", "step"):
        info = target.__durable_temp_workflow__  # type: ignore[attr-defined]  # started alone: a one-step workflow
    return info, bound
