"""learning_record.organizer: the export's 開課機關 (backfilled from the stored source rows), what
a requirement that counts only some organizers' courses reads

Revision ID: 0011
Revises: 0010
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

from learnhours.warehouse.migration_tools import stored_cells

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _organizer(cell: str) -> str | None:
    # As transforms.records.clean keeps text in 0011: NFKC, no no-break spaces, stripped.
    text = unicodedata.normalize("NFKC", cell).replace("\xa0", " ").strip()
    return text or None


def upgrade() -> None:
    op.add_column("learning_record", sa.Column("organizer", sa.Text(), nullable=True))
    bind = op.get_bind()
    op.create_index("ix_tmp_record_line_0011", "learning_record", ["batch_id", "line_no"])
    record = sa.table(
        "learning_record", sa.column("batch_id", sa.Integer), sa.column("line_no", sa.Integer),
        sa.column("organizer", sa.Text),
    )  # fmt: skip
    update = (
        record.update()
        .where(record.c.batch_id == sa.bindparam("b"), record.c.line_no == sa.bindparam("l"))
        .values(organizer=sa.bindparam("o"))
    )
    for batch_id, _kind, cells in stored_cells(bind, ("開課機關",)):
        updates = [
            {"b": batch_id, "l": line, "o": organizer}
            for line, row in cells
            if (organizer := _organizer(row.get("開課機關", "")))
        ]
        if updates:
            bind.execute(update, updates)
    op.drop_index("ix_tmp_record_line_0011", table_name="learning_record")


def downgrade() -> None:
    with op.batch_alter_table("learning_record") as batch:
        batch.drop_column("organizer")
