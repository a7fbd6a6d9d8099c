"""The example: an orders service whose checkout is a durable workflow (delete this folder to drop it)."""

from __future__ import annotations

from .routes import blueprint

__all__ = ["blueprint"]
