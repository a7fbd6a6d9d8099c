"""The decorators behind ``@DBOS.workflow``, ``@DBOS.step``, ``@DBOS.transaction``, ``@DBOS.scheduled``, ``@DBOS.dbos_class``.

Each registers the function (so recovery finds it by name) and wraps it: a call goes to the executor
(``executor.py``), the step checkpointer (``steps.py``) or the transaction runner (``transactions.py``)
with the launched runtime. Decorating connects nothing: it happens at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .context import current_context, workflow_body
from .current import current_runtime, launched_runtime
from .executor import call_workflow
from .registry import REGISTRY, FunctionInfo
from .scheduler import declare_schedule
from .step_timeouts import check_timeout
from .steps import run_step
from .transactions import run_transaction

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def workflow(
    name: str | None, max_recovery_attempts: int | None, version: str | None, serialization_type: Any = None,
) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        options = {"max_recovery_attempts": max_recovery_attempts, "serialization_type": serialization_type}
        info = FunctionInfo(name or func.__qualname__, func, "workflow", options, version=version or "")
        REGISTRY.add_workflow(info)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return call_workflow(current_runtime(), info, args, kwargs)

        info.wrapper = wrapper
        wrapper.__durable_info__ = info  # type: ignore[attr-defined]
        wrapper.dbos_function_name = info.name  # type: ignore[attr-defined]  # DBOS's attribute
        return wrapper  # type: ignore[return-value]

    return decorator


def step(name: str | None, options: dict[str, Any]) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        step_name = name or func.__qualname__
        check_timeout(step_name, options["timeout_seconds"])
        info = FunctionInfo(step_name, func, "step", dict(options))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if workflow_body(current_context()) is None:
                return func(*args, **kwargs)  # outside a workflow a step is a plain call, as in DBOS
            return run_step(current_runtime(), info, func, args, kwargs)

        info.wrapper = wrapper
        wrapper.__durable_info__ = info  # type: ignore[attr-defined]
        wrapper.dbos_function_name = info.name  # type: ignore[attr-defined]
        # DBOS.start_workflow / enqueue of a step runs it as a one-step workflow of its own, as in DBOS.
        wrapper.__durable_temp_workflow__ = _temp_workflow(step_name, wrapper)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def transaction(isolation_level: str, name: str | None) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        txn_name = name or func.__qualname__
        info = FunctionInfo(txn_name, func, "transaction", {"isolation_level": isolation_level})

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = current_context()
            if ctx is not None and ctx.workflow is not None:
                return run_transaction(current_runtime(), info, func, args, kwargs)
            # Outside a workflow, DBOS runs a transaction as a one-step workflow of its own.
            return call_workflow(current_runtime(), temp_info, args, kwargs)

        temp_info = _temp_workflow(txn_name, wrapper)
        info.wrapper = wrapper
        wrapper.__durable_info__ = info  # type: ignore[attr-defined]
        wrapper.dbos_function_name = info.name  # type: ignore[attr-defined]
        wrapper.__durable_temp_workflow__ = temp_info  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def _temp_workflow(name: str, wrapper: Callable[..., Any]) -> FunctionInfo:
    """The registered one-step workflow ``<temp>.<name>`` that runs a step or transaction started alone."""

    def temp_workflow(*args: Any, **kwargs: Any) -> Any:
        return wrapper(*args, **kwargs)

    temp_info = FunctionInfo(f"<temp>.{name}", temp_workflow, "workflow")
    REGISTRY.add_workflow(temp_info)
    return temp_info


def scheduled(cron: str) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        declare_schedule(func, cron)
        rt = launched_runtime()
        if rt is not None:
            rt.schedule_wakeup.set()  # declared after launch: the scheduler takes it at once
        return func

    return decorator


def dbos_class(class_name: str | None = None) -> Callable[[type[T]], type[T]]:
    def decorator(klass: type[T]) -> type[T]:
        registered = REGISTRY.add_class(klass, class_name)
        for attr in vars(klass).values():
            if isinstance(attr, classmethod):
                func, kind = attr.__func__, "class"
            elif isinstance(attr, staticmethod):
                func, kind = attr.__func__, "static"
            elif callable(attr):
                func, kind = attr, "instance"
            else:
                continue
            for info in _infos_of(func):
                # A static method records no class, as in DBOS: it needs none to run again.
                info.class_name = None if kind == "static" else registered
                info.method_kind = kind
        return klass

    return decorator


def _infos_of(func: Any) -> list[FunctionInfo]:
    """The registrations behind a decorated method: its own, and the one-step workflow of a step or transaction."""
    infos = []
    for attr in ("__durable_info__", "__durable_temp_workflow__"):
        info = getattr(func, attr, None)
        if isinstance(info, FunctionInfo):
            infos.append(info)
    return infos
