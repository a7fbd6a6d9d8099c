"""The workflow dashboard: a Flask blueprint, server-rendered, its CSS served by itself.

Off unless the app mounts it, and never without an auth hook::

    from .durable.dashboard import basic_auth, init_dashboard

    init_dashboard(app, auth=basic_auth("admin", password), url_prefix="/durable")

Pages: workflows (filtered by status, name, queue and time, keyset-paged), one workflow with its step
timeline, queues with their depth and limits. Actions: cancel, resume, fork from a step (CSRF-checked).
"""

from __future__ import annotations

import hashlib

from flask import Flask

from .auth import AuthHook, basic_auth, deny_all
from .views import create_blueprint

__all__ = ["AuthHook", "basic_auth", "deny_all", "init_dashboard"]


def init_dashboard(app: Flask, *, auth: AuthHook | None, url_prefix: str = "/durable",
                   csrf_secret: str | bytes | None = None) -> None:
    """Serve the dashboard on ``app`` at ``url_prefix``, behind ``auth``.

    ``auth=None`` is refused: a dashboard that shows every workflow's inputs and can cancel them must
    not be served open by mistake. ``csrf_secret`` keys the form tokens; it must be the same in every
    process serving the app (gunicorn's workers), so it defaults to the app's ``SECRET_KEY``.
    """
    if auth is None:
        raise ValueError("init_dashboard needs an auth hook (basic_auth(user, password) or your own); "
                         "the dashboard is never served without one")
    secret = csrf_secret if csrf_secret is not None else app.secret_key
    if not secret:
        raise ValueError("init_dashboard needs csrf_secret= or the app's SECRET_KEY, the same in every worker")
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    # Derived, so the raw secret (maybe a password) never keys anything else.
    csrf_key = hashlib.sha256(b"durable-dashboard-csrf:" + key).digest()
    app.register_blueprint(create_blueprint(auth, csrf_key), url_prefix=url_prefix)
