"""A copy of the warehouse in one private file, and the warehouse brought back from one.

SQLite: the online backup API, a consistent copy even while a night writes (WAL readers see one
snapshot). PostgreSQL: pg_dump's custom format, restored with pg_restore in one transaction; the
client must be as new as the server. A backup holds every 身分證字號, name and record: it is
written readable by its owner only, whatever the umask.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import URL, Engine, make_url, text

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that cannot be done, in words for the operator (no password)."""


def kind_of(url: str) -> str:
    """"sqlite" or "postgresql": which way a warehouse is backed up."""
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"無法備份此種資料庫（{name}）：只支援 SQLite 與 PostgreSQL")
    return name


def suffix(url: str) -> str:
    return ".db" if kind_of(url) == "sqlite" else ".dump"


def backup(engine: Engine, dest: Path, environ: Mapping[str, str]) -> Path:
    """The warehouse copied into `dest`, a new file (an existing one is never overwritten);
    written beside it first and renamed, so a half backup is never left under its name.
    `environ`: the environment pg_dump runs in (libpq reads PGPASSWORD, ~/.pgpass, PGSSL…)."""
    if dest.exists():
        raise BackupError(f"{dest} 已存在：備份不覆寫既有的檔案，請指定新的檔名或資料夾")
    if not dest.parent.is_dir():
        raise BackupError(f"資料夾 {dest.parent} 不存在")
    partial = dest.with_name(f".{dest.name}.part")
    _private_file(partial)
    try:
        if kind_of(str(engine.url)) == "sqlite":
            _sqlite_copy(_sqlite_file(engine), partial)
        else:
            _pg_dump(engine, partial, environ)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest


def restore(engine: Engine, source: Path, environ: Mapping[str, str]) -> None:
    """The warehouse replaced by the backup in `source`, whole: on SQLite page by page through
    the backup API, on PostgreSQL by pg_restore in one transaction (a failure changes nothing)."""
    try:
        with source.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise BackupError(f"無法讀取備份檔 {source}（{exc.strerror or exc}）") from None
    kind = kind_of(str(engine.url))
    made_by = (
        "sqlite" if head == SQLITE_MAGIC else "postgresql" if head.startswith(PG_DUMP_MAGIC) else ""
    )
    if not made_by:
        raise BackupError(f"{source} 不是 learnhours backup 產生的備份檔（SQLite 檔或 pg_dump 檔）")
    if made_by != kind:
        words = {"sqlite": "SQLite", "postgresql": "PostgreSQL（pg_dump）"}
        raise BackupError(
            f"{source} 是 {words[made_by]} 的備份，但資料庫是 {words[kind]}：無法直接還原"
        )
    engine.dispose()  # this process's own connections: none may hold the file or the tables
    if kind == "sqlite":
        _sqlite_copy(source, _sqlite_file(engine))
    else:
        _pg_restore(engine, source, environ)


def _private_file(path: Path) -> None:
    # O_EXCL: never someone else's file (or a link) prepared in the folder beforehand.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_file(engine: Engine) -> Path:
    database = engine.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise BackupError("只能備份以檔案存放的 SQLite 資料庫")
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """Every page of `source` into `target` in one step: one consistent snapshot."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite 備份或還原失敗（{exc}）") from None


# -- PostgreSQL: the client programs ----------------------------------------------------------------


def _libpq(engine: Engine, given: Mapping[str, str]) -> tuple[str, dict[str, str], str | None]:
    """The URL as libpq reads it without its password (which goes in PGPASSWORD: a command
    line is visible to every user of the machine), that environment, and the schema the URL's
    search_path names (the warehouse lives there, not in `public`)."""
    url: URL = engine.url
    environ = dict(given)
    if url.password:
        environ["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    options = url.query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options
    found = re.search(r"search_path\s*=\s*([\w\"]+)", options)
    schema = found.group(1).strip('"') if found else None
    return plain.render_as_string(hide_password=False), environ, schema


def _client(program: str, engine: Engine, environ: Mapping[str, str]) -> str:
    """The client program, checked to be at least as new as the server (pg_dump refuses an older
    client; saying so first is clearer)."""
    try:
        said = subprocess.run([program, "--version"], capture_output=True, text=True, check=True,
                              env=dict(environ))  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        raise BackupError(
            f"找不到 {program}：請安裝與資料庫伺服器同版的 PostgreSQL 用戶端"
            "（Debian：apt install postgresql-client-15）"
        ) from None
    version = re.search(r"\)\s*(\d+)", said.stdout)  # "pg_dump (PostgreSQL) 15.20 (Debian …)"
    client = int(version.group(1)) if version else 0
    with engine.connect() as connection:
        server = int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    if client < server:
        raise BackupError(
            f"{program} 是第 {client} 版，資料庫伺服器是第 {server} 版：請安裝 "
            f"postgresql-client-{server}（用戶端不可比伺服器舊）"
        )
    return program


def _run(argv: list[str], environ: dict[str, str], what: str, **kwargs) -> None:  # noqa: ANN003
    done = subprocess.run(argv, env=environ, stderr=subprocess.PIPE, text=False, check=False,
                          **kwargs)  # fmt: skip
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise BackupError(f"{what}失敗（{argv[0]}：{said[-1] if said else done.returncode}）")


def _pg_dump(engine: Engine, dest: Path, given: Mapping[str, str]) -> None:
    url, environ, schema = _libpq(engine, given)
    argv = [_client("pg_dump", engine, environ), "--format=custom", "--no-owner", f"--dbname={url}"]
    if schema:
        argv.append(f"--schema={schema}")
    with dest.open("wb") as out:  # the private file made above: pg_dump writes into it
        _run(argv, environ, "備份", stdout=out)


def _pg_restore(engine: Engine, source: Path, given: Mapping[str, str]) -> None:
    url, environ, _schema = _libpq(engine, given)
    argv = [_client("pg_restore", engine, environ), "--clean", "--if-exists", "--no-owner",
            "--single-transaction", "--exit-on-error", f"--dbname={url}", str(source)]  # fmt: skip
    _run(argv, environ, "還原")
