"""What revisions share: stored source rows as revisions 0007 and 0008 read them (source_block,
revision 0005's format), and letting the roster in force load again.

Frozen: a revision that uses this module must keep doing what it did, so a change here goes into a
new function, never into these.
"""

from __future__ import annotations

import csv
import io
import json
import zlib


def normalized(cell: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFKC", cell).replace("\xa0", "")
    return "".join(text.split()).lstrip("*")


def rows(form: str, block: bytes, first_line: int) -> dict[int, list]:
    """A stored block as {line: cells} (as revision 0005's reader read it)."""
    data = zlib.decompress(block)
    if form == "json":
        return {line: cells for line, cells in json.loads(data)}
    encoding = form.removeprefix("csv:")
    fallbacks = (encoding, "big5hkscs") if encoding == "cp950" else (encoding,)

    def lines():  # noqa: ANN202
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

    reader = csv.reader(lines())
    rows = {}
    for cells in reader:
        if cells:
            rows[first_line - 1 + reader.line_num] = cells
    return rows


def stored_cells(bind, wanted: tuple[str, ...]):  # noqa: ANN001, ANN201
    """Per stored block of a records file whose header has any of `wanted`: (batch id, kind,
    [(line, {column: cell})]), the cells of those columns only, blocks streamed one by one."""
    import sqlalchemy as sa

    batch = sa.table(
        "ingest_batch", sa.column("id", sa.Integer), sa.column("kind", sa.String),
        sa.column("header", sa.Text),
    )  # fmt: skip
    block = sa.table(
        "source_block", sa.column("batch_id", sa.Integer), sa.column("first_line", sa.Integer),
        sa.column("format", sa.String), sa.column("source", sa.LargeBinary),
    )  # fmt: skip
    layouts = {}
    for batch_id, kind, header in bind.execute(sa.select(batch.c.id, batch.c.kind, batch.c.header)):
        names = [normalized(h) for h in (json.loads(header) if header else [])]
        at = {name: names.index(name) for name in wanted if name in names}
        if kind != "roster" and at:
            layouts[batch_id] = (kind, at)
    blocks = bind.execute(
        sa.select(block.c.batch_id, block.c.first_line, block.c.format, block.c.source)
        .order_by(block.c.batch_id, block.c.first_line)
        .execution_options(stream_results=True, yield_per=10)
    )
    for batch_id, first_line, form, source in blocks:
        if batch_id not in layouts:
            continue
        kind, at = layouts[batch_id]
        cells = [
            (line, {n: str(row[i]).strip() if i < len(row) else "" for n, i in at.items()})
            for line, row in rows(form, source, first_line).items()
        ]
        yield batch_id, kind, cells


def reload_current_roster(bind, revision: str) -> None:  # noqa: ANN001
    """The roster batch in force (the one the people on the roster came from) gets a content
    hash no file has: its file, offered again, loads once more and fills in what the revision
    added. Older roster files stay known, so one left in the inbox never replaces it."""
    import hashlib

    import sqlalchemy as sa

    person = sa.table(
        "person", sa.column("batch_id", sa.Integer), sa.column("on_roster", sa.Boolean)
    )
    batch = sa.table("ingest_batch", sa.column("id", sa.Integer), sa.column("sha256", sa.String))
    current = bind.execute(
        sa.select(sa.func.max(person.c.batch_id)).where(person.c.on_roster.is_(True))
    ).scalar()
    if current is None:
        return
    sha = bind.execute(sa.select(batch.c.sha256).where(batch.c.id == current)).scalar_one()
    marked = hashlib.sha256(f"loaded before {revision}: {sha}".encode()).hexdigest()
    bind.execute(sa.update(batch).where(batch.c.id == current).values(sha256=marked))
