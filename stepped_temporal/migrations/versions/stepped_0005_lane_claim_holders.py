"""Index stepped_lane_claims.holder (an action's end finds its claim by holder).

Revision ID: stepped_0005
Revises: stepped_0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "stepped_0005"
down_revision = "stepped_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stepped_lane_claims_holder", "stepped_lane_claims", ["holder"])


def downgrade() -> None:
    op.drop_index("ix_stepped_lane_claims_holder", table_name="stepped_lane_claims")
