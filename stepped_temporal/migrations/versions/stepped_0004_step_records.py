"""Create stepped_step_records (exactly-once effects of user code).

Revision ID: stepped_0004
Revises: stepped_0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "stepped_0004"
down_revision = "stepped_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stepped_step_records",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("action_id", sa.String(1100), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stepped_step_records_created_at", "stepped_step_records", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_stepped_step_records_created_at", table_name="stepped_step_records")
    op.drop_table("stepped_step_records")
