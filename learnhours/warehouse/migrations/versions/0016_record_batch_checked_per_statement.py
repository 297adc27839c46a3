"""learning_record.batch_id on PostgreSQL: checked once per statement instead of once per row

Revision ID: 0016
Revises: 0015

A foreign key on PostgreSQL fires a trigger for every row inserted: one queued event and one
lookup of ingest_batch each, about a fifth of the time a file's records take to go in. The
same guarantee is held per statement here:

- an INSERT into learning_record (a file's chunk, a million rows a night) is checked once,
  over the rows it inserted (a transition table): every batch they name must exist, and is
  locked FOR KEY SHARE as the foreign key would, so no other transaction deletes it meanwhile;
- an UPDATE that changes a record's batch (a correction names the file that corrected it) is
  checked row by row, as before; other updates (copies + 1) fire nothing;
- a DELETE of, or a change to the id of, a batch still named by a record is refused at the end
  of the statement (the foreign key's NO ACTION), and so is a TRUNCATE of ingest_batch that
  leaves learning_record rows behind.

The errors are foreign_key_violation (SQLSTATE 23503), as the constraint's were. SQLite keeps
its foreign key: it checks a row with one lookup of ingest_batch's primary key, a small part of
its load (see docs/benchmarks.md).
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_FOREIGN_KEY = "fk_learning_record_batch_id"

_FUNCTIONS = (
    # A statement's new records: each batch they name exists, locked first as a foreign key
    # locks it (a batch deleted meanwhile is then seen gone).
    """
    CREATE FUNCTION learning_record_batches_exist() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        missing integer;
    BEGIN
        PERFORM 1 FROM ingest_batch b
        WHERE b.id IN (SELECT DISTINCT batch_id FROM new_records)
        FOR KEY SHARE;
        SELECT n.batch_id INTO missing
        FROM (SELECT DISTINCT batch_id FROM new_records) AS n
        WHERE NOT EXISTS (SELECT 1 FROM ingest_batch b WHERE b.id = n.batch_id)
        LIMIT 1;
        IF FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('learning_record names batch %s, which does not exist', missing),
                TABLE = 'learning_record', CONSTRAINT = 'fk_learning_record_batch_id';
        END IF;
        RETURN NULL;
    END $$
    """,
    # One record moved to another batch (a correction).
    """
    CREATE FUNCTION learning_record_batch_exists() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM ingest_batch b WHERE b.id = NEW.batch_id FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('learning_record names batch %s, which does not exist',
                                 NEW.batch_id),
                TABLE = 'learning_record', CONSTRAINT = 'fk_learning_record_batch_id';
        END IF;
        RETURN NULL;
    END $$
    """,
    # Batches deleted, or renumbered (old ids not among the new): none still named by a record.
    """
    CREATE FUNCTION ingest_batch_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        named integer;
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            SELECT batch_id INTO named FROM learning_record LIMIT 1;
        ELSIF TG_OP = 'DELETE' THEN
            IF NOT EXISTS (SELECT 1 FROM gone_batches) THEN
                RETURN NULL;
            END IF;
            SELECT r.batch_id INTO named FROM learning_record r
            WHERE r.batch_id IN (SELECT id FROM gone_batches) LIMIT 1;
        ELSE
            IF NOT EXISTS (SELECT id FROM gone_batches EXCEPT SELECT id FROM kept_batches) THEN
                RETURN NULL;
            END IF;
            SELECT r.batch_id INTO named FROM learning_record r
            WHERE r.batch_id IN (SELECT id FROM gone_batches EXCEPT SELECT id FROM kept_batches)
            LIMIT 1;
        END IF;
        IF FOUND THEN
            RAISE foreign_key_violation USING
                MESSAGE = format('batch %s is still named by learning_record', named),
                TABLE = 'ingest_batch', CONSTRAINT = 'fk_learning_record_batch_id';
        END IF;
        RETURN NULL;
    END $$
    """,
)

_TRIGGERS = (
    "CREATE TRIGGER learning_record_batch_inserted AFTER INSERT ON learning_record "
    "REFERENCING NEW TABLE AS new_records "
    "FOR EACH STATEMENT EXECUTE FUNCTION learning_record_batches_exist()",
    "CREATE TRIGGER learning_record_batch_changed AFTER UPDATE OF batch_id ON learning_record "
    "FOR EACH ROW WHEN (OLD.batch_id IS DISTINCT FROM NEW.batch_id) "
    "EXECUTE FUNCTION learning_record_batch_exists()",
    "CREATE TRIGGER ingest_batch_deleted AFTER DELETE ON ingest_batch "
    "REFERENCING OLD TABLE AS gone_batches "
    "FOR EACH STATEMENT EXECUTE FUNCTION ingest_batch_unreferenced()",
    "CREATE TRIGGER ingest_batch_renumbered AFTER UPDATE ON ingest_batch "
    "REFERENCING OLD TABLE AS gone_batches NEW TABLE AS kept_batches "
    "FOR EACH STATEMENT EXECUTE FUNCTION ingest_batch_unreferenced()",
    "CREATE TRIGGER ingest_batch_truncated AFTER TRUNCATE ON ingest_batch "
    "FOR EACH STATEMENT EXECUTE FUNCTION ingest_batch_unreferenced()",
)

_DROPS = (
    "DROP TRIGGER ingest_batch_truncated ON ingest_batch",
    "DROP TRIGGER ingest_batch_renumbered ON ingest_batch",
    "DROP TRIGGER ingest_batch_deleted ON ingest_batch",
    "DROP TRIGGER learning_record_batch_changed ON learning_record",
    "DROP TRIGGER learning_record_batch_inserted ON learning_record",
    "DROP FUNCTION ingest_batch_unreferenced()",
    "DROP FUNCTION learning_record_batch_exists()",
    "DROP FUNCTION learning_record_batches_exist()",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_constraint(_FOREIGN_KEY, "learning_record", type_="foreignkey")
    for statement in (*_FUNCTIONS, *_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in _DROPS:
        op.execute(statement)
    op.create_foreign_key(_FOREIGN_KEY, "learning_record", "ingest_batch", ["batch_id"], ["id"])
