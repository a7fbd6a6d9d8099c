"""The durable runtime's system tables, step 6: only rows with a deduplication ID in the unique deduplication index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=6)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind(), target=5)
