"""digest_standing: each unit's figures and short people at its last digest, for the next
digest's movement (the rate then and now, who closed their gap, who is new to the list)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_standing",
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("unit_key", sa.Text(), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("short_ids", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "unit_key", name="pk_digest_standing"),
    )


def downgrade() -> None:
    op.drop_table("digest_standing")
