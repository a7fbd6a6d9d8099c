"""Runtime events for metrics: the runtime says what happened; whoever listens counts it.

The runtime depends on no metrics library. The app's metrics module (Prometheus in the template)
registers a listener with ``add_listener``; with none registered, ``emit`` is one test of an empty
list. A listener that raises is logged and never breaks the workflow that emitted.

Events (``name``, labels, value):

- ``workflow_started`` (name): a workflow's first run began (started, dequeued or forked here);
- ``workflow_finished`` (name, status ``SUCCESS``/``ERROR``): its outcome was recorded here;
- ``workflow_running`` (name), value +1 / -1: a body starts or stops running in this process;
- ``workflow_recovered`` (name): a workflow runs again from its checkpoints (recovery, resume);
- ``workflow_adopted``, value n: this executor took over n workflows of a dead one;
- ``step_finished`` (name, outcome ``ok``/``error``), value: the step's seconds, retries included;
- ``step_retried`` (name): a failed attempt that is retried;
- ``checkpoint_bytes`` (kind ``step``/``workflow``), value: bytes of output or error recorded;
- ``idempotent_replay``: a keyed request answered from its stored response;
- ``idempotent_refusal`` (status ``409``/``422``): a keyed request refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: ``listener(event, labels, value)``.
Listener = Callable[[str, dict[str, str], float], None]
#: Renders the metrics for a scrape: (body, content type).
Exposition = Callable[[], tuple[bytes, str]]

_listeners: list[Listener] = []
_exposition: list[Exposition] = []  # at most one: what the admin server's /metrics serves


def set_exposition(render: Exposition | None) -> None:
    """What ``GET /metrics`` on the admin server answers with (None: 404)."""
    _exposition[:] = [render] if render is not None else []


def exposition() -> tuple[bytes, str] | None:
    return _exposition[0]() if _exposition else None


def add_listener(listener: Listener) -> None:
    """Receive every event from now on (once, however often it is added)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def emit(event: str, value: float = 1.0, **labels: str) -> None:
    """Tell every listener; free when none listens."""
    if not _listeners:
        return
    for listener in list(_listeners):
        try:
            listener(event, labels, value)
        except Exception:  # a metrics bug must not fail a workflow
            logger.warning("metrics listener %r failed on %s", listener, event, exc_info=True)
