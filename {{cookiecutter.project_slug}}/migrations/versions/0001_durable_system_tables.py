"""The durable runtime's system tables (workflow status, step outputs, executors).

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The runtime owns their shape: this revision only hands Alembic's connection to its versioned steps,
so upgrading the vendored durable/ never needs a hand-written migration here.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import downgrade_system_schema, upgrade_system_schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind())


def downgrade() -> None:
    downgrade_system_schema(op.get_bind())
