"""The durable runtime's system tables, step 3: what DBOS 2.31.1's full API and the listings need.

Revision ID: 0005
Revises: {{ "0004" if cookiecutter.include_example else "0003" }}
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from {{ cookiecutter.package_name }}.durable.schema import (
    downgrade_system_schema,
    upgrade_system_schema,
)

revision: str = "0005"
down_revision: str | None = "{{ "0004" if cookiecutter.include_example else "0003" }}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_system_schema(op.get_bind(), target=3)


def downgrade() -> None:
    downgrade_system_schema(op.get_bind(), target=2)
