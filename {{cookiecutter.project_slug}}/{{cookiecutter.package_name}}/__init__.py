"""The service's package: ``create_app`` builds the Flask app (gunicorn calls it, tests pass Settings)."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
