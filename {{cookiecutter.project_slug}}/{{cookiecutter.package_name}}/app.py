"""The application factory."""

from __future__ import annotations

from flask import Flask

from . import db
from .blueprints import register_blueprints
from .durable import DBOS
from .error_tracking import init_error_tracking
from .errors import register_error_handlers
from .log import configure_logging
from .operations import init_operations
from .settings import Settings


def create_app(config: Settings | None = None) -> Flask:
    """Build the app. Tests pass their own Settings to get a private database.

    Nothing connects here: the runtime launches (connects, starts recovery) on the first request or
    in gunicorn's ``post_worker_init``, after any fork.
    """
    settings = config or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    init_error_tracking(settings)  # Sentry, only when SENTRY_DSN is set
    app = Flask(__name__)
    app.config.from_mapping(settings.as_flask_config())
    db.init_app(app, settings.database_url)
    for url in (settings.database_url, settings.system_database_url or ""):
        db.ensure_sqlite_folder(url)  # the runtime opens these files on launch; SQLite makes no folders
    DBOS(flask=app, config=settings.as_dbos_config())
    register_blueprints(app)
    init_operations(app, settings)  # metrics; the dashboard when DASHBOARD_PASSWORD is set
    register_error_handlers(app)
    return app
