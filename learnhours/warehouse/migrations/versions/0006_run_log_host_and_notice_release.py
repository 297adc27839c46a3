"""run_log: the host and process of each run and the plans it judged; notice: who released a
failed or stuck notice for sending again, and when

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, nullable: SQLite adds them in place, and runs logged before have no host.
    op.add_column("run_log", sa.Column("host", sa.Text(), nullable=True))
    op.add_column("run_log", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("run_log", sa.Column("plans", sa.Text(), nullable=True))
    op.add_column("notice", sa.Column("released_by", sa.Text(), nullable=True))
    op.add_column("notice", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("notice", "released_at")
    op.drop_column("notice", "released_by")
    op.drop_column("run_log", "plans")
    op.drop_column("run_log", "pid")
    op.drop_column("run_log", "host")
