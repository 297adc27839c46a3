"""learning_record.mode and digital_share (digital and in-person minimums), backfilled from the
stored source rows; person.attributes (the roster's other columns) and an open person.category

Revision ID: 0007
Revises: 0006

A record's digital share is what transforms.hours.digital_share says of its source row: 數位時數 and
實體時數 when given, else its 學習性質, else (e等公務園+ records) digital. This revision reads the
rows kept in source_block with a frozen copy of those rules, so later changes to them do not
change what it did.

Rosters loaded before this revision kept neither their other columns nor staff kinds beyond the
four categories. The roster in force (the batch the people on the roster came from) is marked
so that the same file, offered again, loads once more and fills them in; older roster files
stay known, so one left in the inbox can never replace the newer snapshot.
"""

import json
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

from learnhours.warehouse.migration_tools import normalized as _normalized
from learnhours.warehouse.migration_tools import reload_current_roster
from learnhours.warehouse.migration_tools import rows as _rows

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MODES = {"1": "digital", "數位": "digital", "2": "physical", "實體": "physical",
          "3": "blended", "混成": "blended"}  # fmt: skip
_ONLINE_KINDS = {"elearning"}

_batch = sa.table(
    "ingest_batch",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("header", sa.Text),
)
_block = sa.table(
    "source_block",
    sa.column("batch_id", sa.Integer),
    sa.column("first_line", sa.Integer),
    sa.column("format", sa.String),
    sa.column("source", sa.LargeBinary),
)
_record = sa.table(
    "learning_record",
    sa.column("batch_id", sa.Integer),
    sa.column("line_no", sa.Integer),
    sa.column("mode", sa.String),
    sa.column("digital_share", sa.Numeric(5, 4)),
)


def upgrade() -> None:
    op.add_column("learning_record", sa.Column("mode", sa.String(length=8), nullable=True))
    op.add_column(
        "learning_record",
        sa.Column("digital_share", sa.Numeric(5, 4), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("person", sa.Column("attributes", sa.Text(), nullable=True))
    _category_type(sa.String(8), sa.Text())
    _backfill_modes()
    reload_current_roster(op.get_bind(), "0007")


def _hours(cell: object) -> Decimal:
    import unicodedata

    text = unicodedata.normalize("NFKC", str(cell or "")).strip().removesuffix("小時").strip()
    try:
        value = Decimal(text) if text else Decimal(0)
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() and value > 0 else Decimal(0)


def _share(mode: str | None, digital: Decimal, physical: Decimal, online: bool) -> Decimal:
    if digital + physical > 0:
        return (digital / (digital + physical)).quantize(Decimal("0.0001"))
    if mode == "digital" or (online and mode is None):
        return Decimal(1)
    return Decimal(0)


def _backfill_modes() -> None:
    bind = op.get_bind()
    op.create_index("ix_tmp_record_line_0007", "learning_record", ["batch_id", "line_no"])
    batches = {
        b: (kind, json.loads(h) if h else [])
        for b, kind, h in bind.execute(sa.select(_batch.c.id, _batch.c.kind, _batch.c.header))
        if kind != "roster"
    }
    blocks = bind.execute(
        sa.select(_block.c.batch_id, _block.c.first_line, _block.c.format, _block.c.source)
        .order_by(_block.c.batch_id, _block.c.first_line)
        .execution_options(stream_results=True, yield_per=10)
    )
    update = (
        _record.update()
        .where(_record.c.batch_id == sa.bindparam("b"), _record.c.line_no == sa.bindparam("l"))
        .values(mode=sa.bindparam("m"), digital_share=sa.bindparam("s"))
    )
    for batch_id, first_line, form, source in blocks:
        if batch_id not in batches:
            continue
        kind, header = batches[batch_id]
        names = [_normalized(h) for h in header]
        at = {
            name: names.index(name)
            for name in ("學習性質", "數位時數", "實體時數")
            if name in names
        }
        online = kind in _ONLINE_KINDS
        if not at and not online:
            continue
        updates = []
        for line, cells in _rows(form, source, first_line).items():

            def cell(name: str, cells: list = cells, at: dict = at) -> str:
                i = at.get(name)
                return str(cells[i]).strip() if i is not None and i < len(cells) else ""

            mode = _MODES.get(cell("學習性質"))
            share = _share(mode, _hours(cell("數位時數")), _hours(cell("實體時數")), online)
            if mode is not None or share:
                updates.append({"b": batch_id, "l": line, "m": mode, "s": share})
        if updates:
            bind.execute(update, updates)
    op.drop_index("ix_tmp_record_line_0007", table_name="learning_record")


def _category_type(before: sa.types.TypeEngine, after: sa.types.TypeEngine) -> None:
    """person.category's type; SQLite rebuilds the table for it (nothing references person)."""
    with op.batch_alter_table("person") as batch:
        batch.alter_column("category", type_=after, existing_type=before, existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE person SET category = left(category, 8)")
    _category_type(sa.Text(), sa.String(8))
    op.drop_column("person", "attributes")
    op.drop_column("learning_record", "digital_share")
    op.drop_column("learning_record", "mode")
