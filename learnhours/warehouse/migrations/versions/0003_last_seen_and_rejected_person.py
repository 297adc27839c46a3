"""ingest_batch.last_seen_at (freshness) and rejected_row.person_id (explain)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Only fills the column on SQLite for the instant before the backfill below; every load sets it.
_SQLITE_PLACEHOLDER = sa.text("'1970-01-01 00:00:00.000000'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a NOT NULL column in place only with a default. Making a nullable one
        # NOT NULL afterwards would rebuild ingest_batch, which foreign keys (on) refuse.
        op.add_column(
            "ingest_batch",
            sa.Column(
                "last_seen_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=_SQLITE_PLACEHOLDER,
            ),
        )
        op.execute("UPDATE ingest_batch SET last_seen_at = loaded_at")
    else:
        op.add_column(
            "ingest_batch", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True)
        )
        # Until now a batch was last seen when it was loaded.
        op.execute("UPDATE ingest_batch SET last_seen_at = loaded_at")
        op.alter_column(
            "ingest_batch",
            "last_seen_at",
            existing_type=sa.DateTime(timezone=True),
            nullable=False,
        )
    # Rows refused before this revision stay unlinked: their IDs were never stored.
    op.add_column("rejected_row", sa.Column("person_id", sa.String(length=10), nullable=True))
    op.create_index("ix_rejected_row_person_id", "rejected_row", ["person_id"], unique=False)


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of ingest_batch would trip its foreign keys.
    op.drop_index("ix_rejected_row_person_id", table_name="rejected_row")
    op.drop_column("rejected_row", "person_id")
    op.drop_column("ingest_batch", "last_seen_at")
