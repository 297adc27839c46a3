"""Shared fixtures: a fresh SQLite warehouse per test; PostgreSQL when reachable; one Prefect harness."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from learnhours.warehouse.db import connect

ROOT = Path(__file__).resolve().parent.parent
# Compiled modules are kept between runs, in var/pycache, even where Python is told not to write
# them (PYTHONDONTWRITEBYTECODE): else each worker, and each command a test starts, compiles
# learnhours and pytest rewrites every test module afresh, seconds a run. The source tree stays clean.
sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"] = str(ROOT / "var" / "pycache")
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# Each pytest-xdist worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) gets a Prefect home of its own.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ.setdefault("PREFECT_HOME", str(ROOT / "var" / f"prefect-test-{_WORKER}"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ["LEARNHOURS_PLANS_DIR"] = str(ROOT / "plans")
# The tests' warehouses, exports and outboxes are scratch: on a memory file system where there is
# a roomy one, every SQLite commit's sync to disk costs nothing (~3 s of the fast loop here). Not
# where the operator chose a TMPDIR of their own, nor a small /dev/shm (a container's 64 MB).
_SHM = Path("/dev/shm")
_ROOMY = _SHM.is_dir() and os.access(_SHM, os.W_OK) and shutil.disk_usage(_SHM).free > 4 * 2**30
if "TMPDIR" not in os.environ and _ROOMY:
    os.environ["TMPDIR"] = tempfile.tempdir = str(_SHM)
# A command a test runs without --database-url must never open the project's own warehouse.
_SESSION_VAR = Path(tempfile.mkdtemp(prefix="learnhours-tests-"))
atexit.register(shutil.rmtree, _SESSION_VAR, ignore_errors=True)
os.environ["LEARNHOURS_DATABASE_URL"] = f"sqlite:///{_SESSION_VAR / 'warehouse.db'}"
os.environ["LEARNHOURS_OUTBOX"] = str(_SESSION_VAR / "outbox")
os.environ["LEARNHOURS_INBOX"] = str(_SESSION_VAR / "inbox")
# The test installation's workbook password: HR summaries carry their workbook, encrypted with it
# (tests of a summary without one say so, with their own settings).
WORKBOOK_PASSWORD = "人事室-活頁簿-2026"
os.environ["LEARNHOURS_WORKBOOK_PASSWORD"] = WORKBOOK_PASSWORD
# Nor write a failed night into the machine's syslog: a test that looks opens a socket of its own.
os.environ["LEARNHOURS_SYSLOG_ADDRESS"] = ""

PG_URL = os.environ.get(
    "LEARNHOURS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A warehouse migrated once per session: each test starts from a copy of it."""
    path = tmp_path_factory.mktemp("template") / "warehouse.db"
    connect(f"sqlite:///{path}").dispose()
    return path


def _sqlite_warehouse(template: Path, path: Path):
    shutil.copyfile(template, path)
    engine = connect(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def engine(tmp_path: Path, sqlite_template: Path):
    """A fresh, migrated SQLite warehouse of the test's own."""
    yield from _sqlite_warehouse(sqlite_template, tmp_path / "warehouse.db")


@pytest.fixture
def twin(tmp_path: Path, sqlite_template: Path):
    """A second warehouse of the test's own, to judge the same data another way."""
    yield from _sqlite_warehouse(sqlite_template, tmp_path / "twin.db")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL URL, or a skip that says why (the server did not answer)."""
    probe = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with probe.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: no server for these tests
        reason = f"PostgreSQL not reachable at {PG_URL} (set LEARNHOURS_TEST_PG_URL): {type(exc).__name__}"
        if os.environ.get("LEARNHOURS_TEST_PG_REQUIRED"):  # CI: a missing server is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        probe.dispose()
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str):
    """A URL whose connections live in a fresh, empty schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_server else "?"
    # Commits do not wait for the WAL to reach the disk (3-4 ms each here): that matters only
    # when the server itself crashes, which no test does; what a commit shows others is the same.
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    yield f"{pg_server}{sep}options={quote(options)}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str):
    """The `engine` fixture on PostgreSQL: a migrated warehouse in its own schema."""
    engine = connect(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request):
    """The test once on each database: `engine`, then `pg_engine`."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(autouse=True)
def _prefect_console_writes_to_this_tests_stderr():
    """Prefect's console handler keeps the stream it was made with: under pytest's capture that
    is an earlier test's stderr, closed since, and a later run's lines would fail to print
    ("I/O operation on closed file") into whatever the current test reads. Point it at this
    test's stderr."""
    import logging
    import sys

    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import PrefectConsoleHandler

        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        for logger in loggers:
            for handler in getattr(logger, "handlers", ()):
                if isinstance(handler, PrefectConsoleHandler):
                    handler.stream = sys.stderr
                    handler.console.file = sys.stderr
    yield


@pytest.fixture(params=["columns", "rows"])
def both_readings(request, monkeypatch):
    """The test once with a CSV file's bulk read as columns (ingest.columns, the default), once
    with every row read the row path's way, the specification the columns are held to."""
    from learnhours.ingest import chunks

    monkeypatch.setattr(chunks, "COLUMNS", request.param == "columns")
    return request.param


class Syslog:
    """A syslog socket of the test's own (what /dev/log is to the journal): the lines sent to it."""

    def __init__(self, path: Path) -> None:
        import socket

        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.setblocking(False)

    def lines(self) -> list[str]:
        received = []
        while True:
            try:
                received.append(self._socket.recv(65536).decode())
            except BlockingIOError:
                return received

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def syslog(monkeypatch) -> Iterator[Syslog]:
    """LEARNHOURS_SYSLOG_ADDRESS pointed at a socket the test reads (a short path: a socket's
    name is at most 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="lh-syslog-", dir="/tmp"))
    listening = Syslog(folder / "log")
    monkeypatch.setenv("LEARNHOURS_SYSLOG_ADDRESS", str(listening.path))
    yield listening
    listening.close()
    shutil.rmtree(folder, ignore_errors=True)
