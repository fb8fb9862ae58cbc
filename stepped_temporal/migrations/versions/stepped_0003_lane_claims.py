"""Create stepped_lane_claims (uncontended keys perform without a lane workflow).

Revision ID: stepped_0003
Revises: stepped_0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "stepped_0003"
down_revision = "stepped_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stepped_lane_claims",
        sa.Column("concurrency_key", sa.String(1024), primary_key=True),
        sa.Column("holder", sa.String(1100), nullable=True),
        sa.Column("holder_checksum_key", sa.String(1024), nullable=True),
        sa.Column("holder_checksum", sa.String(64), nullable=True),
        sa.Column("contended", sa.Boolean(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stepped_lane_claims")
