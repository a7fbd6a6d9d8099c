"""Liveness and readiness probes for load balancers, Docker and Kubernetes."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint

from .db import get_db

logger = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """The process answers: no dependency is checked, so a slow database never gets it restarted."""
    return {"status": "ok"}, 200


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, str], int]:
    """The database answers ``SELECT 1``: route traffic here only when it does."""
    try:
        with get_db().engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        logger.warning("readiness check failed: %s", exc)
        return {"status": "unavailable", "database": type(exc).__name__}, 503
    return {"status": "ready"}, 200
