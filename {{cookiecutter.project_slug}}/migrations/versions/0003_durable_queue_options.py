"""The durable runtime's system tables, step 2: queue partition keys and unique deduplication IDs.

Revision ID: 0003
Revises: {{ "0002" if cookiecutter.include_example else "0001" }}
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0003"
down_revision: str | None = "{{ "0002" if cookiecutter.include_example else "0001" }}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=2)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind(), target=1)
