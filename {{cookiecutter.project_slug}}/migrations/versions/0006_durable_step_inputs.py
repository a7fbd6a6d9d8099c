"""The durable runtime's system tables, step 4: each step's inputs, for the dashboard's timeline.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=4)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind(), target=3)
