"""Step timeouts: ``@DBOS.step(timeout_seconds=...)`` bounds how long a workflow waits for one attempt.

DBOS supports them on async steps only, where the step's task can be cancelled. This runtime's steps
are plain functions, and Python cannot stop a thread, so an attempt runs in a thread of its own: when
the time is up the workflow stops waiting and gets ``DBOSStepTimeoutError`` (retried like any error
when retries are allowed, each attempt with a fresh timeout). The overrunning body finishes in the
background and its result is discarded, so a step with a timeout should be safe to run again.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Callable
from typing import Any

from .error import DBOSException, DBOSStepTimeoutError


def check_timeout(step_name: str, timeout_seconds: float | None) -> None:
    """Refuse a timeout that is not a positive finite number, when the step is declared."""
    if timeout_seconds is None:
        return
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int | float) or not (
            timeout_seconds > 0 and math.isfinite(timeout_seconds)):
        raise DBOSException(f"Step {step_name} has timeout_seconds={timeout_seconds!r}; step timeouts must be "
                            "positive and finite")


def call_with_timeout(step_name: str, timeout_seconds: float, func: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """Run one attempt in a daemon thread carrying the caller's context; raise when it overruns."""
    context = contextvars.copy_context()  # the step's DBOSContext, so DBOS.workflow_id works inside
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            outcome["value"] = context.run(func, *args, **kwargs)
        except BaseException as exc:  # handed to the waiting workflow, which raises it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=attempt, name=f"durable-step-{step_name}", daemon=True).start()
    if not done.wait(timeout_seconds):
        raise DBOSStepTimeoutError(step_name, timeout_seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
