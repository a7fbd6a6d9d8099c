"""What operators see: the workflow dashboard and the Prometheus metrics, mounted on the app.

Who may see them is this app's decision: ``operator_auth`` returns the auth hook that guards the
dashboard and the app's ``METRICS_PATH``. By default that is HTTP basic auth with DASHBOARD_USER and
DASHBOARD_PASSWORD; without a password there is no hook, so neither is served. To use your own
login (an SSO proxy's header, a role check), return a function that answers None to let a request
through and a response (401, 403, a redirect) to stop it.
"""

from __future__ import annotations

from flask import Flask

from .durable.dashboard import AuthHook, basic_auth, init_dashboard
from .metrics import init_metrics
from .settings import Settings


def operator_auth(settings: Settings) -> AuthHook | None:
    """The hook in front of the dashboard and the app's metrics; None: neither is served."""
    if not settings.dashboard_password:
        return None
    return basic_auth(settings.dashboard_user, settings.dashboard_password)


def init_operations(app: Flask, settings: Settings) -> None:
    """Count the runtime's metrics; mount the dashboard and METRICS_PATH when an auth hook allows it."""
    auth = operator_auth(settings)
    if auth is not None:
        # The CSRF key must be the same in every gunicorn worker: SECRET_KEY if set, else the password.
        secret = app.secret_key or settings.dashboard_password
        init_dashboard(app, auth=auth, url_prefix=settings.dashboard_prefix, csrf_secret=secret)
    init_metrics(app, path=settings.metrics_path, auth=auth)
