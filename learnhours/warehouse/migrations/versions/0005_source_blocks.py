"""Source rows kept per chunk in source_block (learning_record.raw moves there); no end_date index

Revision ID: 0005
Revises: 0004

learning_record.raw held each record's source row as a JSON object, field names repeated in every
row: most of a record's bytes, written once per row. The rows now go to source_block, a chunk of
consecutive lines per row, compressed (see schema.source_block); the names once per file, in
ingest_batch.header. The key columns compare bytewise on PostgreSQL (COLLATE "C"), which
builds the unique key's index faster on load. ix_learning_record_end_date goes: every query over a plan year reads most of
the year's rows anyway, and the index cost each load more than any query gained from it.
"""

import csv
import io
import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_LINES_PER_BLOCK = 2000  # as ingest.chunks.CHUNK was


def _lines(data: bytes, encoding: str):  # noqa: ANN202
    """A stored CSV block's lines decoded as the loader of this revision decoded them."""
    fallbacks = (encoding, "big5hkscs") if encoding == "cp950" else (encoding,)
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if number == 1 and encoding == "utf-8-sig":
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        for name in fallbacks:
            try:
                yield raw.decode(name.removesuffix("-sig"))
                break
            except UnicodeDecodeError:
                continue
        else:
            yield "\n"


def source_rows(form: str, block: bytes, first_line: int) -> dict[int, list]:
    """A block stored by this revision back as {line: cells}: a frozen copy of what the loader
    of revision 0005 wrote (extractors.source_blocks may change; stored blocks do not)."""
    data = zlib.decompress(block)
    if form == "json":
        return {line: cells for line, cells in json.loads(data)}
    reader = csv.reader(_lines(data, form.removeprefix("csv:")))
    rows = {}
    for cells in reader:
        if cells:
            rows[first_line - 1 + reader.line_num] = cells
    return rows


_batch = sa.table("ingest_batch", sa.column("id", sa.Integer), sa.column("header", sa.Text))
_record = sa.table(
    "learning_record",
    sa.column("id", sa.Integer),
    sa.column("batch_id", sa.Integer),
    sa.column("line_no", sa.Integer),
    sa.column("raw", sa.Text),
)
_block = sa.table(
    "source_block",
    sa.column("batch_id", sa.Integer),
    sa.column("first_line", sa.Integer),
    sa.column("last_line", sa.Integer),
    sa.column("format", sa.String),
    sa.column("source", sa.LargeBinary),
)


def upgrade() -> None:
    op.add_column("ingest_batch", sa.Column("header", sa.Text(), nullable=True))
    op.create_table(
        "source_block",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("first_line", sa.Integer(), nullable=False),
        sa.Column("last_line", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=24), nullable=False),
        sa.Column("source", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["ingest_batch.id"], name="fk_source_block_batch_id"),
        sa.PrimaryKeyConstraint("batch_id", "first_line", name="pk_source_block"),
    )
    _move_raw_to_blocks()
    op.drop_index("ix_learning_record_end_date", table_name="learning_record")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild would trip the foreign keys.
    op.drop_column("learning_record", "raw")
    _key_collation('"C"')


# The key columns and their types: compared bytewise on PostgreSQL from this revision on.
_KEY_TYPES = {"person_id": "varchar(10)", "course_key": "text", "session": "text"}


def _key_collation(collation: str) -> None:
    """PostgreSQL only (SQLite compares text bytewise): the unique key's index is rebuilt."""
    if op.get_bind().dialect.name == "postgresql":
        for column, type_ in _KEY_TYPES.items():
            op.execute(
                f"ALTER TABLE learning_record ALTER COLUMN {column} TYPE {type_} COLLATE {collation}"
            )


def _move_raw_to_blocks() -> None:
    """Each batch's raw rows as blocks of consecutive records; the batch's header is the field
    names its raw rows were kept under (the only names stored before this revision)."""
    bind = op.get_bind()
    # Streamed (statement options: on the connection they would outlive this query).
    rows = bind.execute(
        sa.select(_record.c.batch_id, _record.c.line_no, _record.c.raw)
        .order_by(_record.c.batch_id, _record.c.line_no)
        .execution_options(stream_results=True, yield_per=_LINES_PER_BLOCK)
    )
    batch, header = None, None
    block: list[list] = []

    def flush() -> None:
        if block:
            source = json.dumps(block, ensure_ascii=False).encode()
            blocks.append(
                {"batch_id": batch, "first_line": block[0][0], "last_line": block[-1][0], "format": "json",
                 "source": zlib.compress(source, 1)}
            )  # fmt: skip
            block.clear()

    blocks: list[dict] = []
    headers: list[dict] = []
    for batch_id, line, raw in rows:
        if batch_id != batch:
            flush()
            batch, header = batch_id, None
        fields = json.loads(raw) if raw else {}
        if header is None:
            header = list(fields)
            headers.append({"b_id": batch_id, "header": json.dumps(header, ensure_ascii=False)})
        if block and block[-1][0] == line:
            continue  # one line, one source row
        block.append([line, [fields.get(name, "") for name in header]])
        if len(block) >= _LINES_PER_BLOCK:
            flush()
        if len(blocks) >= 50:
            bind.execute(_block.insert(), blocks)
            blocks.clear()
    flush()
    if blocks:
        bind.execute(_block.insert(), blocks)
    if headers:
        bind.execute(
            _batch.update()
            .where(_batch.c.id == sa.bindparam("b_id"))
            .values(header=sa.bindparam("header")),
            headers,
        )


def downgrade() -> None:
    _key_collation("pg_catalog.default")
    op.add_column(
        "learning_record",
        sa.Column("raw", sa.Text(), nullable=False, server_default=sa.text("'{}'")),
    )
    # The source rows back into each record, found by batch and line (a temporary index for it).
    op.create_index("ix_tmp_record_line", "learning_record", ["batch_id", "line_no"])
    bind = op.get_bind()
    headers = {
        b: json.loads(h) for b, h in bind.execute(sa.select(_batch.c.id, _batch.c.header)) if h
    }
    blocks = bind.execute(
        sa.select(
            _block.c.batch_id, _block.c.first_line, _block.c.format, _block.c.source
        ).execution_options(stream_results=True, yield_per=10)
    )
    for batch_id, first_line, form, source in blocks:
        header = headers.get(batch_id, [])
        updates = [
            {"b": batch_id, "l": line,
             "r": json.dumps(dict(zip(header, cells, strict=False)), ensure_ascii=False)}
            for line, cells in source_rows(form, source, first_line).items()
        ]  # fmt: skip
        if updates:
            bind.execute(
                _record.update()
                .where(
                    _record.c.batch_id == sa.bindparam("b"), _record.c.line_no == sa.bindparam("l")
                )
                .values(raw=sa.bindparam("r")),
                updates,
            )
    op.drop_index("ix_tmp_record_line", table_name="learning_record")
    op.create_index("ix_learning_record_end_date", "learning_record", ["end_date"], unique=False)
    op.drop_table("source_block")
    op.drop_column("ingest_batch", "header")
