"""person.agency and agency_code (a unit is an agency's unit); learning_record.agency_code (the
export's 服務機關代碼, backfilled from the stored source rows); agency_contact (each agency's HR
contact, from a contacts file); run_lock names up to 80 characters (one lock per plan)

Revision ID: 0008
Revises: 0007

A roster without an agency column leaves both person columns "": the warehouse is one agency,
as before. Rosters loaded before this revision had no agency column the product read, so the
roster in force loads once more when its file is offered again (as revision 0007 arranged for
its own columns).
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

from learnhours.warehouse.migration_tools import reload_current_roster, stored_cells

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The columns that carry a record's agency code, by file kind (extractors.kinds in 0008).
_CODE_COLUMNS = ("服務機關代碼", "學員所屬機關(構)代碼")


def upgrade() -> None:
    op.add_column(
        "person", sa.Column("agency", sa.Text(), nullable=False, server_default=sa.text("''"))
    )
    op.add_column(
        "person", sa.Column("agency_code", sa.Text(), nullable=False, server_default=sa.text("''"))
    )
    op.add_column("learning_record", sa.Column("agency_code", sa.Text(), nullable=True))
    op.create_table(
        "agency_contact",
        sa.Column("agency_key", sa.Text(), primary_key=True),
        sa.Column("agency_code", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("hr_addresses", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("ingest_batch.id"), nullable=False),
    )
    with op.batch_alter_table("run_lock") as batch:
        batch.alter_column("name", type_=sa.String(80), existing_type=sa.String(32))
    _backfill_agency_codes()
    reload_current_roster(op.get_bind(), "0008")


def _code(cell: str) -> str | None:
    text = unicodedata.normalize("NFKC", cell).replace("\xa0", " ").strip().upper()
    return text or None


def _backfill_agency_codes() -> None:
    bind = op.get_bind()
    op.create_index("ix_tmp_record_line_0008", "learning_record", ["batch_id", "line_no"])
    record = sa.table(
        "learning_record", sa.column("batch_id", sa.Integer), sa.column("line_no", sa.Integer),
        sa.column("agency_code", sa.Text),
    )  # fmt: skip
    update = (
        record.update()
        .where(record.c.batch_id == sa.bindparam("b"), record.c.line_no == sa.bindparam("l"))
        .values(agency_code=sa.bindparam("a"))
    )
    for batch_id, _kind, cells in stored_cells(bind, _CODE_COLUMNS):
        updates = []
        for line, row in cells:
            code = next((c for n in _CODE_COLUMNS if (c := _code(row.get(n, "")))), None)
            if code:
                updates.append({"b": batch_id, "l": line, "a": code})
        if updates:
            bind.execute(update, updates)
    op.drop_index("ix_tmp_record_line_0008", table_name="learning_record")


def downgrade() -> None:
    op.execute("DELETE FROM run_lock WHERE length(name) > 32")
    with op.batch_alter_table("run_lock") as batch:
        batch.alter_column("name", type_=sa.String(32), existing_type=sa.String(80))
    op.drop_table("agency_contact")
    op.drop_column("learning_record", "agency_code")
    op.drop_column("person", "agency_code")
    op.drop_column("person", "agency")
