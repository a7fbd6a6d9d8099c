"""The process's runtime, for code that is not handed one: the ``DBOS`` class, ``Queue.enqueue``, the middleware.

Flask keeps its current app in ``globals.py``; this is the same idea for one process-wide runtime.
``lifecycle.py`` registers into it (how to launch once configured, then the launched runtime) and
clears it on ``destroy()`` and after a fork. Everything else receives the runtime as an explicit
``rt`` argument; only the entry points read it here.
"""

from __future__ import annotations

from collections.abc import Callable

from .error import DBOSNotLaunchedError
from .runtime import Runtime

_launched: Runtime | None = None
_launch: Callable[[], Runtime] | None = None  # set while DBOS is configured


def current_runtime() -> Runtime:
    """The launched runtime, launching it on first use; raise when DBOS is not configured."""
    rt = _launched
    if rt is not None:
        return rt
    launch = _launch
    if launch is None:
        raise DBOSNotLaunchedError(
            "DBOS is not configured: create it with DBOS(config=DBOSConfig(name=...)) before running workflows"
        )
    return launch()


def launched_runtime() -> Runtime | None:
    """The launched runtime, or None; never launches."""
    return _launched


def register(launch: Callable[[], Runtime] | None, launched: Runtime | None) -> None:
    """Set how to launch (None: not configured) and the launched runtime (None: not launched)."""
    global _launch, _launched
    _launch, _launched = launch, launched
