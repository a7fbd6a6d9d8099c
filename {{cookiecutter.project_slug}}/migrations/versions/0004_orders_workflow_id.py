"""The example's orders.workflow_id holds any idempotency key: 255 characters, not 128.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

A checkout's workflow ID is the client's dbos-idempotency-key when one is sent, and keys may be up
to 255 characters (durable/idempotency.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce VARCHAR lengths
        op.alter_column(
            "orders",
            "workflow_id",
            type_=sa.String(255),
            existing_type=sa.String(128),
            existing_nullable=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "orders",
            "workflow_id",
            type_=sa.String(128),
            existing_type=sa.String(255),
            existing_nullable=True,
        )
