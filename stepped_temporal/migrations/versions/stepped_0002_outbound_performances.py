"""Create stepped_outbound_performances (S6.2).

Revision ID: stepped_0002
Revises: stepped_0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "stepped_0002"
down_revision = "stepped_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stepped_outbound_performances",
        sa.Column("tenancy_key", sa.String(1024), primary_key=True),
        sa.Column("action_id", sa.String(1100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stepped_outbound_performances")
