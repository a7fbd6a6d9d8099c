"""A workflow call as it is recorded: the method's ``self``/``cls`` split from the inputs, named by class.

A method's instance or class is not an input: the row records the class's registered name (and the
instance's config name) and recovery finds the registered instance or class by them (``executor.py``).
Calls that recovery could not rebuild are refused here, with DBOS's wording.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .error import DBOSException
from .registry import FunctionInfo, registered_class_name
from .store.base import WorkflowRow


@dataclass
class Invocation:
    """A workflow call, split into the bound instance (if a method) and the recorded inputs."""

    info: FunctionInfo
    bound: Any  # the instance or class a method is called on, else None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    class_name: str | None = None  # recorded: recovery finds the class (or the instance) by it
    config_name: str | None = None  # recorded for an instance method: the instance's name

    @classmethod
    def of(cls, info: FunctionInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Invocation:
        """Split a call's ``self``/``cls`` from its inputs, refusing what recovery could not rebuild."""
        kind = info.method_kind
        if kind in ("instance", "class") and args:
            target = args[0]
            if kind == "class":
                return cls(info, target, args[1:], kwargs, registered_class_name(target))
            if not hasattr(target, "config_name"):
                raise DBOSException("Function target appears to be a class instance, but does not have "
                                    "`config_name` set (derive the class from DBOSConfiguredInstance)")
            return cls(info, target, args[1:], kwargs, registered_class_name(type(target)), str(target.config_name))
        if kind is None and args:
            _refuse_unregistered_method(info, args[0])
        return cls(info, None, args, kwargs)

    def call(self) -> Any:
        args = (self.bound, *self.args) if self.bound is not None else self.args
        return self.info.func(*args, **self.kwargs)


def _refuse_unregistered_method(info: FunctionInfo, first: Any) -> None:
    """A method of a class without ``@DBOS.dbos_class``: recovery could not find its class, so refuse (as DBOS)."""
    if isinstance(first, type):
        raise DBOSException(f"Function target appears to be a class, but is not properly registered: "
                            f"decorate {first.__qualname__} with @DBOS.dbos_class()")
    if _first_parameter(info.func) == "self":
        raise DBOSException(f"Function target appears to be a class instance, but is not properly registered: "
                            f"decorate {type(first).__qualname__} with @DBOS.dbos_class()")


@functools.lru_cache(maxsize=1024)
def _first_parameter(func: Callable[..., Any]) -> str | None:
    """A function's first parameter's name: ``inspect.signature`` costs ~7 us, and each workflow call asks."""
    try:
        params = iter(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return None
    return next(params, None)


def conflict_with(existing: WorkflowRow, name: str, call: Invocation) -> str | None:
    """Why a workflow already recorded under this ID is not this call's (DBOS's wording), or None."""
    for what, recorded, given in (("function name", existing.name, name),
                                  ("class name", existing.class_name, call.class_name),
                                  ("config name", existing.config_name, call.config_name)):
        if recorded != given:
            return f"Workflow already exists with a different {what}: {recorded}, but the provided {what} is: {given}"
    return None
