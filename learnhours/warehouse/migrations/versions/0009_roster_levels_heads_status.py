"""person.supervisor_level (主管級別, 1 the highest), person.unit_head (the roster's 單位主管 mark,
NULL when the roster does not say) and person.status (在職狀態 without dates: 留職停薪, 借調 …)

Revision ID: 0009
Revises: 0008

Rosters as HR systems export them (column aliases, code tables) are read from this revision. A
roster loaded before it may have carried 主管級別 or 在職狀態 as plain attributes, so the roster in
force loads once more when its file is offered again (as revisions 0007 and 0008 arranged).
"""

import sqlalchemy as sa
from alembic import op

from learnhours.warehouse.migration_tools import reload_current_roster

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("person", sa.Column("supervisor_level", sa.Integer(), nullable=True))
    op.add_column("person", sa.Column("unit_head", sa.Boolean(), nullable=True))
    op.add_column(
        "person", sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("''"))
    )
    reload_current_roster(op.get_bind(), "0009")


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_column("status")
        batch.drop_column("unit_head")
        batch.drop_column("supervisor_level")
