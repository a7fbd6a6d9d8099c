"""The durable runtime's system tables (workflow status, step outputs, executors).

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The runtime owns their shape: each revision of ours only hands Alembic's connection to the runtime's
numbered steps (``durable/schema.py``) up to a fixed version. A newer vendored durable/ that adds a
step ships with a revision like ``0003`` that moves the pin; ``DBOS.launch()`` applies missing steps
by itself too, unless ``run_migrations`` is off.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=1)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind())
