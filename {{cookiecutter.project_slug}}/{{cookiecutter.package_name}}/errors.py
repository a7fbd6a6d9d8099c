"""JSON error responses, so API clients never have to parse an HTML error page."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


def http_error(exc: HTTPException) -> tuple[dict[str, object], int]:
    code = exc.code or 500
    return {"error": exc.name, "message": exc.description, "status": code}, code


def unexpected_error(exc: Exception) -> tuple[dict[str, object], int]:
    """Log the traceback; tell the client only that it failed (the details may hold user data)."""
    logger.exception("unhandled error: %s", type(exc).__name__)
    return http_error(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    # Flask picks the most specific handler, so HTTP errors (404, 405, abort(400)) keep their status.
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
