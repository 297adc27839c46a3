"""Warehouse tables (SQLAlchemy Core). Alembic migrations in migrations/ create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

HOURS = Numeric(8, 2, asdecimal=True)


# Rule 5's key columns compare byte by byte on PostgreSQL (COLLATE "C", revision 0005): IDs, codes
# and sessions need no language rules, and the unique index is built a quarter faster on load.
# SQLite compares text bytewise already.
_KEY_ID = String(10).with_variant(String(10, collation="C"), "postgresql")
_KEY_TEXT = Text().with_variant(Text(collation="C"), "postgresql")

# One row per file ingested (or refused): the lineage every record points to.
ingest_batch = Table(
    "ingest_batch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    # The file's header row as recognized, a JSON list (revision 0005): the names of the cells kept
    # in source_block. Null for files loaded before it.
    Column("header", Text),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    # When this content was last delivered (revision 0003): set at load, moved on when the same
    # content arrives again and is skipped. Freshness is measured from it, not from loaded_at.
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("rows_updated", Integer, nullable=False),
    Column("rows_duplicate", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
)

# The roster (人員名冊): a snapshot replaced by each roster ingest; people who left it are kept.
person = Table(
    "person",
    metadata,
    Column("person_id", String(10), primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit", Text, nullable=False),
    # The person's agency (revision 0008): 機關名稱 and 機關代碼, "" when the roster has no such
    # column (the warehouse is one agency). A unit is (agency, unit name).
    Column("agency", Text, nullable=False, server_default=text("''")),
    Column("agency_code", Text, nullable=False, server_default=text("''")),
    Column("title", Text, nullable=False, default=""),
    Column("is_supervisor", Boolean, nullable=False),
    Column("category", Text, nullable=False),  # 人員類別 as the roster writes it (open)
    Column("hired_on", Date),
    Column("left_on", Date),
    Column("leave_from", Date),
    Column("leave_to", Date),
    Column("email", Text),
    # The roster's other columns by header, a JSON object (revision 0007): 職等, 職務, 角色 …
    Column("attributes", Text),
    # Revision 0009: 主管級別 (1 the highest), the roster's 單位主管 mark (NULL: not stated) and a
    # 在職狀態 without dates (留職停薪, 借調, 離職 …; "" in service).
    Column("supervisor_level", Integer),
    Column("unit_head", Boolean),
    Column("status", Text, nullable=False, server_default=text("''")),
    # Revision 0010: the kind of the leave period (留職停薪事由: 延長病假, 公傷假, 停職 …), what a
    # plan's pro-rata rule names; "" when the roster does not say (留職停薪).
    Column("leave_kind", Text, nullable=False, server_default=text("''")),
    Column("on_roster", Boolean, nullable=False),
    Column("batch_id", Integer, ForeignKey("ingest_batch.id"), nullable=False),
)

# Each agency's HR contact (revision 0008), from the last contacts file (人事聯絡名單): a snapshot,
# replaced by each such file. Keyed by the agency's code, else its name (Member.agency_key).
agency_contact = Table(
    "agency_contact",
    metadata,
    Column("agency_key", Text, primary_key=True),
    Column("agency_code", Text, nullable=False),
    Column("agency", Text, nullable=False),
    Column("hr_addresses", Text, nullable=False),  # addresses separated by ", "
    Column("batch_id", Integer, ForeignKey("ingest_batch.id"), nullable=False),
)

# Learning records keyed by DOMAIN rule 5: same person, course, session and start date count once.
learning_record = Table(
    "learning_record",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", _KEY_ID, nullable=False),
    Column("course_key", _KEY_TEXT, nullable=False),
    Column("session", _KEY_TEXT, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("name", Text, nullable=False),
    Column("course_code", Text),
    Column("course_name", Text, nullable=False),
    Column("category_code", Integer),
    # Counted hours = quantity in its unit (hour, day, credit: day and credit factors are per plan),
    # or 0 when zero_reason says why the record earns nothing (DOMAIN rules 1-3).
    Column("quantity", HOURS, nullable=False),
    Column("unit", String(8), nullable=False),
    Column("zero_reason", Text),
    # 學習性質 when the source gives it, and the share of the hours learned digitally (revision
    # 0007; transforms.hours.digital_share): what a digital or in-person minimum counts.
    Column("mode", String(8)),
    Column("digital_share", Numeric(5, 4), nullable=False, server_default=text("0")),
    # 服務機關代碼 of the source row (revision 0008), when it has one: checked against the roster.
    Column("agency_code", Text),
    # 開課機關 of the source row (revision 0011), when it has one: a requirement may count only
    # records of named organizers.
    Column("organizer", Text),
    Column("source_kind", String(40), nullable=False),
    # On PostgreSQL this foreign key is held by triggers, once per statement (revision 0016).
    Column("batch_id", Integer, ForeignKey("ingest_batch.id"), nullable=False),
    # The source row is kept in source_block, found by batch and line.
    Column("line_no", Integer, nullable=False),
    # A digest of the normalized values: an unchanged re-delivery is a duplicate, a changed one a correction.
    Column("digest", String(40), nullable=False),
    # How many times the record arrived (revision 0004): every duplicate or correction adds one.
    Column("copies", Integer, nullable=False, server_default=text("1")),
    UniqueConstraint(
        "person_id", "course_key", "session", "start_date", name="uq_learning_record_key"
    ),
    # Codeless records only (revision 0004): a coded row finds its codeless twin through it, and a
    # warehouse without codeless records answers "any?" at once.
    Index(
        "ix_learning_record_codeless",
        "person_id",
        "course_name",
        "session",
        "start_date",
        sqlite_where=text("course_code IS NULL"),
        postgresql_where=text("course_code IS NULL"),
    ),
)

# The rows of each file as delivered, unknown columns too, a chunk of lines per row, compressed:
# a CSV file's own bytes, or a spreadsheet's cells as JSON (revision 0005; extractors.source_blocks). Kept for
# the chunks that gave a record or a refusal; a record's source row is found by batch and line.
source_block = Table(
    "source_block",
    metadata,
    Column("batch_id", Integer, ForeignKey("ingest_batch.id"), primary_key=True),
    Column("first_line", Integer, primary_key=True),
    Column("last_line", Integer, nullable=False),
    Column("format", String(24), nullable=False),  # csv:<encoding> | tsv:<encoding> | json
    Column("source", LargeBinary, nullable=False),
)

# Rows refused at load, with where and why, so a clerk can fix the source.
rejected_row = Table(
    "rejected_row",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("ingest_batch.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("column_name", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    # The row's 身分證字號 when it is valid and the row failed for another reason (revision 0003),
    # so `explain` can show a person their refused rows; never an invalid ID (masked in `value`).
    Column("person_id", String(10)),
    Index("ix_rejected_row_person_id", "person_id"),
)

# The notice ledger (outbox): one row per notice, its Message-ID fixed when the row is made.
notice = Table(
    "notice",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # reminder | digest | summary | failure
    Column("recipient_key", Text, nullable=False),  # person id, unit name, or the run date
    Column("stage", Integer, nullable=False),
    Column("created_on", Date, nullable=False),
    Column("message_id", Text, nullable=False, unique=True),
    Column("to_address", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("mime", Text, nullable=False),  # the message while it may still go out; then ""
    Column("status", String(12), nullable=False),  # pending | sending | sent | failed
    Column("detail", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", DateTime(timezone=True)),
    # Released by HR/ops for sending again after `failed` or a stuck `sending` (revision 0006):
    # never automatically; who and when are kept.
    Column("released_by", Text),
    Column("released_at", DateTime(timezone=True)),
    # Revision 0012: a notice delivered keeps the sha256 of the bytes handed to the mail server,
    # and its `mime` is emptied (names, 身分證字號, the workbook); one set aside is emptied too.
    Column("digest", String(64)),
    UniqueConstraint("plan_id", "kind", "recipient_key", "stage", name="uq_notice_key"),
)

# What each unit's last digest said (revision 0013): its figures and who was short then, so the
# next digest can say how the unit moved. One row per plan and unit, replaced by each digest;
# let go with the notices done with (retention.done_notices).
digest_standing = Table(
    "digest_standing",
    metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("unit_key", Text, primary_key=True),  # UnitResult.key: `379680000A/人事室`
    Column("stage", Integer, nullable=False),
    Column("taken_on", Date, nullable=False),
    Column("headcount", Integer, nullable=False),
    Column("met", Integer, nullable=False),
    # The IDs of the people short then, space-separated: a unit's few, read with its row.
    Column("short_ids", Text, nullable=False),
)

# One nightly run at a time, on SQLite and PostgreSQL alike.
run_lock = Table(
    "run_lock",
    metadata,
    Column("name", String(80), primary_key=True),  # nightly | ingest | plan:<plan id> (0008)
    Column("holder", Text, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
)

# One row per nightly run (revision 0002): when, how it ended, and counts only, never names or IDs.
run_log = Table(
    "run_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("plan_id", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # running | completed | warning | failed | killed | cancelled
    Column("status", String(12), nullable=False),
    Column("files", Integer, nullable=False, default=0),
    Column("rows_loaded", Integer, nullable=False, default=0),
    Column("rows_rejected", Integer, nullable=False, default=0),
    Column("people", Integer, nullable=False, default=0),
    Column("short", Integer, nullable=False, default=0),
    Column("mails_sent", Integer, nullable=False, default=0),
    Column("detail", Text, nullable=False, default=""),  # the cause of a failure, in plain words
    # Where it ran (revision 0006): a run left `running` by a process that is gone is closed as
    # killed the next time anything starts on that host.
    Column("host", Text),
    Column("pid", Integer),
    Column("plans", Text),  # the plans it judged, comma-separated (plan_id is what it was asked)
    Index("ix_run_log_started_at", "started_at"),
)

# A plan's people judged once tonight, each share's slice (revision 0014): what a Dask worker
# sends, read from the one place every worker reaches instead of each re-reading the records.
# Kept only while the plan's night runs (steps/shares.py deletes them).
judged_share = Table(
    "judged_share",
    metadata,
    Column("night", String(32), primary_key=True),  # one night of one plan: a random token
    Column("part", Integer, primary_key=True),
    Column("plan_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("frame", LargeBinary, nullable=False),  # the share's judged columns (Arrow IPC)
)

# Foreign keys that PostgreSQL holds with triggers instead of a constraint (revision 0016): a
# constraint checks each inserted row on its own, a statement-level trigger a chunk of rows at once.
KEYS_HELD_BY_TRIGGERS = {"postgresql": frozenset({"fk_learning_record_batch_id"})}


def compared(dialect: str):  # noqa: ANN201
    """Alembic's include_object for a database of this dialect: these tables as the database
    holds them, less the foreign keys it holds with triggers."""
    held = KEYS_HELD_BY_TRIGGERS.get(dialect, frozenset())

    def include(_object, name, type_, _reflected, _compare_to) -> bool:  # noqa: ANN001
        return not (type_ == "foreign_key_constraint" and name in held)

    return include
