"""Optional error tracking with Sentry: on only when SENTRY_DSN is set; events name their workflow.

Needs the ``sentry`` extra (``pip install -e '.[sentry]'``; Docker: ``--build-arg INSTALL_EXTRAS=sentry``).
Errors reach Sentry through logging, as the app already reports them: an ERROR record becomes an event
(``errors.py`` logs every unhandled request error that way), lower records become breadcrumbs. An event
captured inside a workflow or a step is tagged ``workflow_id`` (and ``step_id``); one captured while a
request is served, ``request_id``: the ``dbos-request-id`` that the request's workflows record too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .durable import DBOS
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

MISSING_EXTRA = (
    "SENTRY_DSN is set but sentry-sdk is not installed: install the sentry extra "
    "(pip install -e '.[sentry]'; Docker: --build-arg INSTALL_EXTRAS=sentry), or unset SENTRY_DSN"
)


def init_error_tracking(settings: Settings) -> bool:
    """Start Sentry if ``settings.sentry_dsn`` is set; return whether it started."""
    if not settings.sentry_dsn:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.flask import FlaskIntegration
    except ImportError as exc:
        raise SettingsError(MISSING_EXTRA) from exc
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=settings.app_version or None,
        integrations=[FlaskIntegration()],
        before_send=tag_durable_context,
    )
    return True


def tag_durable_context(event: Event, hint: Hint) -> Event:
    """Tag an event with the workflow, step and request it was captured in.

    Sentry calls this in the thread that captured the event, so the durable context is the one the
    error happened in: a step's thread, a background workflow's, or the request's.
    """
    request = DBOS.request
    found = {
        "workflow_id": DBOS.workflow_id,
        "step_id": DBOS.step_id,
        "request_id": request.request_id if request else None,
    }
    tags = event.setdefault("tags", {})
    tags.update({name: str(value) for name, value in found.items() if value is not None})
    return event
