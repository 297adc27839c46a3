"""What went wrong underneath a database or disk error: locked, full, read-only, unreachable."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError

# The whole warehouse is unusable for now: going on with the next file or notice cannot help.
WHOLE_WAREHOUSE = frozenset({"locked", "full", "read_only", "unreachable", "cannot_open"})

# What a database's own words mean, lower-cased (SQLite, psycopg/PostgreSQL), first match wins.
_DB_CAUSES = (
    ("locked", ("database is locked", "database table is locked", "lock timeout")),
    ("full", ("disk is full", "no space left", "could not extend file", "disk full")),
    ("read_only", ("readonly", "read-only", "read only")),
    (
        "unreachable",
        (
            "connection refused",
            "could not connect",
            "connection failed",
            "connection timeout",
            "timeout expired",
            "could not translate host name",
            "name or service not known",
            "server closed the connection",
            "terminating connection",
            "the database system is",
            "password authentication failed",
            "no password supplied",
        ),
    ),
    ("cannot_open", ("unable to open database file",)),
)
_OS_CAUSES = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "read_only",
    errno.EACCES: "denied",
    errno.EPERM: "denied",
}


def database_cause(exc: BaseException) -> str | None:
    """What went wrong underneath: "locked", "full", "read_only", "unreachable", "cannot_open",
    "denied", "bad_url", "refused" (another database error), or None (neither a database nor a
    disk problem)."""
    if isinstance(exc, OSError) and exc.errno in _OS_CAUSES:
        return _OS_CAUSES[exc.errno]
    if isinstance(exc, ArgumentError):
        return "bad_url"
    if not isinstance(exc, SQLAlchemyError | sqlite3.Error):
        return None
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    for cause, words in _DB_CAUSES:
        if any(w in text for w in words):
            return cause
    if isinstance(exc, OperationalError) and exc.statement is None:
        return "unreachable"
    return "refused" if isinstance(exc, DBAPIError | sqlite3.Error) else None
