"""learning_record.copies, the codeless-record index, and codeless twins of coded records merged

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A codeless record with the same person, course name, session and start date as a coded one is
# the same course (DOMAIN rule 5) that loads before this revision stored twice.
_TWIN = (
    "t.person_id = learning_record.person_id AND t.course_name = learning_record.course_name "
    "AND t.session = learning_record.session AND t.start_date = learning_record.start_date"
)


def upgrade() -> None:
    # In place on both databases (a server default allows NOT NULL on SQLite without a rebuild,
    # which learning_record's foreign key to ingest_batch would refuse with foreign keys on).
    op.add_column(
        "learning_record",
        sa.Column("copies", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    op.create_index(
        "ix_learning_record_codeless",
        "learning_record",
        ["person_id", "course_name", "session", "start_date"],
        unique=False,
        sqlite_where=sa.text("course_code IS NULL"),
        postgresql_where=sa.text("course_code IS NULL"),
    )
    # Each coded record counts its codeless twins as arrivals, then the twins go.
    op.execute(
        "UPDATE learning_record SET copies = copies + (SELECT count(*) FROM learning_record t "
        f"WHERE t.course_code IS NULL AND {_TWIN}) "
        "WHERE course_code IS NOT NULL AND EXISTS (SELECT 1 FROM learning_record t "
        f"WHERE t.course_code IS NULL AND {_TWIN})"
    )
    op.execute(
        "DELETE FROM learning_record WHERE course_code IS NULL AND EXISTS "
        f"(SELECT 1 FROM learning_record t WHERE t.course_code IS NOT NULL AND {_TWIN})"
    )


def downgrade() -> None:
    # Merged twins stay merged: the coded record is the one rule 5 counts.
    op.drop_index("ix_learning_record_codeless", table_name="learning_record")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild would trip the foreign keys.
    op.drop_column("learning_record", "copies")
