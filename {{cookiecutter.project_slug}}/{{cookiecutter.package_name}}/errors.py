"""JSON error responses, so API clients never have to parse an HTML error page.

Every ``HTTPException`` (404, 405, 413 past ``MAX_CONTENT_LENGTH``, 431, ...) on every path answers
JSON, and so does anything unexpected (a 500 with a generic message; the traceback goes to the log).
Bad JSON in a request is a 400, including nesting too deep for Python's parser, which raises
RecursionError rather than ValueError. (gunicorn's own errors, before the app sees a request, are
made JSON in ``gunicorn.conf.py``.)
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that a body nested too deep to parse is invalid JSON (400), not a crash (500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def http_error(exc: HTTPException) -> tuple[dict[str, object], int]:
    code = exc.code or 500
    return {"error": exc.name, "message": exc.description, "status": code}, code


def unexpected_error(exc: Exception) -> tuple[dict[str, object], int]:
    """Log the traceback; tell the client only that it failed (the details may hold user data)."""
    logger.exception("unhandled error: %s", type(exc).__name__)
    return http_error(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    app.json = StrictJSONProvider(app)
    # Flask picks the most specific handler, so HTTP errors (404, 405, abort(400)) keep their status.
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
