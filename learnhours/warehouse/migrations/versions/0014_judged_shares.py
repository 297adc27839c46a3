"""judged_share: each share's slice of a plan's people judged once tonight, for the Dask
workers that send it (read from the warehouse instead of each worker re-reading the records);
deleted when the plan's night ends

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judged_share",
        sa.Column("night", sa.String(32), primary_key=True),
        sa.Column("part", sa.Integer(), primary_key=True),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frame", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("judged_share")
