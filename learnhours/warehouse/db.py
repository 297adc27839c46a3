"""Engine creation and migrations applied on first use."""

from __future__ import annotations

import sqlite3
import warnings
from functools import lru_cache, partial
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

from learnhours.warehouse.faults import database_cause

MIGRATIONS = Path(__file__).with_name("migrations")

# SQLite keeps NUMERIC as REAL; hours have at most two decimals, so the round trip is exact enough.
warnings.filterwarnings("ignore", category=sa_exc.SAWarning, message=".*Decimal objects natively.*")


# How long a SQLite statement waits for another writer (settings: database_lock_wait_seconds).
LOCK_WAIT_SECONDS = 30.0
# How long opening a PostgreSQL connection may take before "cannot reach the database".
CONNECT_TIMEOUT_SECONDS = 10


def create_engine_for(url: str, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> Engine:
    """An engine for `url`; on SQLite a statement waits at most `lock_wait_seconds` for another
    writer before it fails as locked (PostgreSQL writers do not block one another here)."""
    file = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and not file.startswith((":memory:", "file:")):
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    parsed = make_url(url)
    postgres = parsed.get_backend_name() == "postgresql"
    # hide_parameters: a failed statement's error text would otherwise carry row values (IDs).
    engine = create_engine(
        url,
        future=True,
        hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if postgres and "connect_timeout" not in parsed.query
        else {},
    )
    wait_ms = max(0, int(lock_wait_seconds * 1000))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", partial(_sqlite_pragmas, wait_ms))
    return engine


def _sqlite_pragmas(wait_ms: int, dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    # First: every statement below (and the WAL switch itself) may meet another writer.
    cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # What is deleted or emptied (a delivered notice's message, purged rows) is overwritten with
    # zeros, not left readable in the file's free pages (some SQLite builds do so by default,
    # others not).
    cursor.execute("PRAGMA secure_delete=ON")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        # A read-only warehouse (file, folder or mount) can still be read: status, units,
        # explain work; a write then fails with its own plain message.
        if database_cause(exc) != "read_only":
            raise
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser reads "%" as interpolation: URL-encoded passwords and options must be escaped.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision this code knows (the migration scripts are read once per process)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head_revision()


def connect(url: str, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> Engine:
    """The warehouse engine, migrated to the newest schema."""
    engine = create_engine_for(url, lock_wait_seconds)
    if not is_current(engine):
        upgrade(engine)
    return engine


def revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the newest revision this code knows)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision(), head_revision()
