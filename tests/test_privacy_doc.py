"""Issue 31, point 7: docs/privacy.md exists and says what the product does: every keeping period
with the default the settings really have, a person's request (`learnhours explain`), the
warehouse's hardening, the workbook password, backups and the Dask cluster."""

from __future__ import annotations

import re

from learnhours.settings import Settings
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "privacy.md"


def test_p7_the_privacy_page_states_each_keeping_period_as_the_settings_default_it():
    text = PAGE.read_text(encoding="utf-8")
    keeps = [name for name in Settings.model_fields if name.startswith("keep_")]
    assert len(keeps) == 7
    for name in keeps:
        row = re.search(rf"^\| `{name}` \| (\d+)", text, re.M)
        assert row, f"{name} has no row in docs/privacy.md"
        assert int(row.group(1)) == Settings.model_fields[name].default, name


def test_p7_the_privacy_page_answers_what_the_issue_asks():
    text = PAGE.read_text(encoding="utf-8")
    for said in ("learnhours explain", "sslmode=verify-full", "pg_hba.conf", "hostssl",
                 "LEARNHOURS_WORKBOOK_PASSWORD", "learnhours backup", "learnhours restore",
                 "UMask=0077", "LEARNHOURS_DASK_TLS_CA_FILE", "PREFECT_API_AUTH_STRING",
                 "learnhours purge"):  # fmt: skip
        assert said in text, said
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/privacy.md" in readme
