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
from .current import current_runtime
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

        # DBOS.start_workflow(step) or a queue's enqueue(step) runs it as a one-step workflow of its own.
        def temp_workflow(*args: Any, **kwargs: Any) -> Any:
            return wrapper(*args, **kwargs)

        temp_info = FunctionInfo(f"<temp>.{step_name}", temp_workflow, "workflow")
        REGISTRY.add_workflow(temp_info)
        info.wrapper = wrapper
        wrapper.__durable_info__ = info  # type: ignore[attr-defined]
        wrapper.__durable_temp_workflow__ = temp_info  # type: ignore[attr-defined]
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

        def temp_workflow(*args: Any, **kwargs: Any) -> Any:
            return wrapper(*args, **kwargs)

        temp_info = FunctionInfo(f"<temp>.{txn_name}", temp_workflow, "workflow")
        REGISTRY.add_workflow(temp_info)
        info.wrapper = wrapper
        wrapper.__durable_info__ = info  # type: ignore[attr-defined]
        wrapper.__durable_temp_workflow__ = temp_info  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def scheduled(cron: str) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        declare_schedule(func, cron)
        return func

    return decorator


def dbos_class() -> Callable[[type[T]], type[T]]:
    def decorator(klass: type[T]) -> type[T]:
        REGISTRY.add_class(klass)
        for attr in vars(klass).values():
            if isinstance(attr, classmethod):
                func, kind = attr.__func__, "class"
            elif isinstance(attr, staticmethod):
                func, kind = attr.__func__, "static"
            elif callable(attr):
                func, kind = attr, "instance"
            else:
                continue
            info: FunctionInfo | None = getattr(func, "__durable_info__", None)
            if info is not None:
                info.class_name = klass.__qualname__
                info.method_kind = kind
        return klass

    return decorator
