"""The durable runtime's system tables, step 5: fewer indexes on workflow_status, so each row write is cheaper.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=5)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind(), target=4)
