"""notice.digest: a delivered notice keeps the sha256 of its message instead of the message

Revision ID: 0012
Revises: 0011

The ledger kept every message whole for ever: an HR summary's stored MIME holds its workbook,
with every short person's 身分證字號. From this revision a notice keeps its message only while it
may still go out (pending, sending, failed); once sent, or set aside for good (superseded), the
row keeps its recipient, kind, stage, Message-ID and digest. Notices already sent get the digest
of their stored message here, and lose the message.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_CHUNK = 200  # messages held at once: a summary's MIME with its workbook can be megabytes


def _wire(mime: str) -> bytes:
    # As ledger.deliver hands a stored message to the server: CRLF line ends.
    raw = mime.encode("utf-8")
    return raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")


def upgrade() -> None:
    op.add_column("notice", sa.Column("digest", sa.String(64), nullable=True))
    bind = op.get_bind()
    notice = sa.table(
        "notice", sa.column("id", sa.Integer), sa.column("status", sa.String),
        sa.column("mime", sa.Text), sa.column("digest", sa.String),
    )  # fmt: skip
    forget = (
        notice.update()
        .where(notice.c.id == sa.bindparam("row"))
        .values(mime="", digest=sa.bindparam("sha"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(notice.c.id, notice.c.mime)
            .where(notice.c.status == "sent", notice.c.mime != "", notice.c.id > last)
            .order_by(notice.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            break
        bind.execute(forget, [{"row": i, "sha": hashlib.sha256(_wire(m)).hexdigest()}
                              for i, m in rows])  # fmt: skip
        last = rows[-1].id
    bind.execute(notice.update().where(notice.c.status == "superseded").values(mime=""))


def downgrade() -> None:
    # The messages are gone for good; only the column goes.
    with op.batch_alter_table("notice") as batch:
        batch.drop_column("digest")
