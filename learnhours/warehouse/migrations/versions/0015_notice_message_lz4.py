"""notice.mime on PostgreSQL: compressed with lz4 where the server has it, else kept as it is

Revision ID: 0015
Revises: 0014

A notice's message is written once and read once (a night's 200,000 reminders of 20 KB each),
then forgotten. PostgreSQL compresses a value that long with pglz by default, which cost the
server about 0.8 ms per reminder written, more than rendering and sending it; lz4 (PostgreSQL 14
and later, when built with it, as the Debian and PGDG packages are) compresses it as well in a
fraction of that. A server without lz4 keeps the message uncompressed (EXTERNAL): it is base64,
gone once sent, and pglz spent more time on it than the disk saved. Messages already stored
stay as they are. SQLite has nothing to change.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _has_lz4(bind: sa.Connection) -> bool:
    # default_toast_compression (PostgreSQL 14+) lists lz4 among its values when built with it.
    found = bind.execute(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    ).scalar()
    return bool(found)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if _has_lz4(bind):
        op.execute("ALTER TABLE notice ALTER COLUMN mime SET COMPRESSION lz4")
    else:
        op.execute("ALTER TABLE notice ALTER COLUMN mime SET STORAGE EXTERNAL")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE notice ALTER COLUMN mime SET STORAGE EXTENDED")
    if _has_lz4(bind):
        op.execute("ALTER TABLE notice ALTER COLUMN mime SET COMPRESSION default")
