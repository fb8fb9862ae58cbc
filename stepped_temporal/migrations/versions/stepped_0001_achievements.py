"""Create stepped_achievements (S5.2).

Revision ID: stepped_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "stepped_0001"
down_revision = None
branch_labels = ("stepped",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stepped_achievements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("checksum_key", sa.String(1024), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("checksum_key", name="uq_stepped_achievements_checksum_key"),
    )


def downgrade() -> None:
    op.drop_table("stepped_achievements")
