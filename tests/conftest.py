"""Shared fixtures: a fresh SQLite warehouse per test; PostgreSQL when reachable; one Prefect harness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from learnhours.warehouse.db import connect

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("PREFECT_HOME", str(ROOT / "var" / "prefect-test"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ["LEARNHOURS_PLANS_DIR"] = str(ROOT / "plans")


@pytest.fixture
def engine(tmp_path: Path):
    engine = connect(f"sqlite:///{tmp_path / 'warehouse.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
