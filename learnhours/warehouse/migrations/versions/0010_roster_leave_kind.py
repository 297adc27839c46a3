"""person.leave_kind: the kind of the roster's leave period (留職停薪事由: 留職停薪, 育嬰留職停薪,
延長病假, 公傷假, 停職 …; "" when the roster does not say, read as 留職停薪), which a plan's
pro-rata rule names to shorten a person's service

Revision ID: 0010
Revises: 0009

A roster loaded before this revision may have carried the kind as a plain attribute, so the roster
in force loads once more when its file is offered again (as revisions 0007-0009 arranged).
"""

import sqlalchemy as sa
from alembic import op

from learnhours.warehouse.migration_tools import reload_current_roster

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "person", sa.Column("leave_kind", sa.Text(), nullable=False, server_default=sa.text("''"))
    )
    reload_current_roster(op.get_bind(), "0010")


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("leave_kind")
