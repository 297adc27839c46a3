"""Issue 31, point 1: the HR workbook (everyone short, with 身分證字號) travels encrypted with the
agency's own password, which is read from the environment or a Prefect Secret block and never
written into a mail or a log; without a password the summary still goes out, without it, saying
how to set one."""

from __future__ import annotations

import logging
import zipfile
from datetime import date
from io import BytesIO

import pytest
from msoffcrypto.exceptions import InvalidKeyError
from openpyxl import load_workbook

from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import MailConfigError, MailSettings, MemoryBackend
from learnhours.notifiers.backends import config as mail_config
from learnhours.plans import find_plan
from learnhours.settings import SettingsError, load_settings, parameter_overrides
from learnhours.steps import Mail, send_plan
from tests.factories import (
    MAIL,
    WORKBOOK_PASSWORD,
    export_file,
    new_id,
    person,
    record,
    roster_file,
    unlocked,
)
from tests.test_agencies import CITY, DAY, _city_plan, _load, government

PLAN = "national-2026"
TODAY = date(2026, 11, 23)
HR = "hr@township.example"


def _short_people(engine, tmp_path) -> list[str]:
    ids = [new_id(), new_id()]
    ingest_file(engine, roster_file(tmp_path, [
        person(ids[0], name="林小華", email="lin@example.gov.tw"),
        person(ids[1], name="陳一無", email="chen@example.gov.tw"),
    ]))  # fmt: skip
    ingest_file(engine, export_file(tmp_path, [record(ids[0], day=date(2026, 5, 1))]))
    return ids


def _summary(engine, tmp_path, mail: Mail):
    ids = _short_people(engine, tmp_path)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, mail, backend=backend)
    (summary,) = [m for m in backend.outbox if m["To"] == HR]
    return summary, ids


def _workbooks(message) -> list:
    return [p for p in message.iter_attachments() if p.get_filename().endswith(".xlsx")]


def test_p1_the_summary_workbook_opens_with_the_agency_password_and_not_without_it(
    engine, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    summary, ids = _summary(engine, tmp_path, MAIL)
    (part,) = _workbooks(summary)
    locked = part.get_content()
    # Without the password it is no workbook at all: not a zip anyone could unpack.
    assert not zipfile.is_zipfile(BytesIO(locked))
    with pytest.raises(zipfile.BadZipFile):
        load_workbook(BytesIO(locked))
    with pytest.raises(InvalidKeyError):
        unlocked(locked, password="not-the-password")
    # With it, the workbook HR knows: everyone short, with 身分證字號.
    sheet = load_workbook(unlocked(locked))["未達成名單"]
    assert {row[0] for row in sheet.iter_rows(min_row=3, values_only=True)} == set(ids)
    # The password is in neither the mail nor a log line; the mail says it is locked.
    raw = summary.as_bytes()
    for form in (WORKBOOK_PASSWORD.encode(), WORKBOOK_PASSWORD.encode("utf-16-le")):
        assert form not in raw
    assert WORKBOOK_PASSWORD not in caplog.text
    text = summary.get_body(("plain",)).get_content()
    assert "附件已用人事室的活頁簿密碼加密" in text and WORKBOOK_PASSWORD not in text


def test_p1_without_a_password_the_summary_goes_out_without_its_workbook_and_says_how_to_set_one(
    engine, tmp_path
):
    summary, ids = _summary(engine, tmp_path, Mail(MailSettings()))
    assert _workbooks(summary) == []
    assert not any(pid.encode() in summary.as_bytes() for pid in ids)  # no ID travels in clear
    for body in ("plain", "html"):
        said = summary.get_body((body,)).get_content()
        assert "尚未設定活頁簿密碼" in said and "LEARNHOURS_WORKBOOK_PASSWORD" in said


def test_p1_the_roll_up_has_no_person_so_it_goes_plain_without_a_password_and_locked_with_one(
    engine, twin, tmp_path
):
    people = government()
    for warehouse, mail, locked in ((engine, Mail(MailSettings()), False), (twin, MAIL, True)):
        (tmp_path / str(locked)).mkdir()
        _load(warehouse, tmp_path / str(locked), people, met={"市人事主任", "市人事員"})
        backend = MemoryBackend()
        send_plan(warehouse, _city_plan(), DAY, mail, backend=backend)
        rollup = next(m for m in backend.outbox if m["To"] == "hr@city.gov.tw")
        agency = next(m for m in backend.outbox if "學習時數摘要" in str(m["Subject"])
                      and m["To"] != "hr@city.gov.tw")  # fmt: skip
        (part,) = _workbooks(rollup)
        content = part.get_content()
        assert zipfile.is_zipfile(BytesIO(content)) is not locked
        book = load_workbook(unlocked(content) if locked else BytesIO(content))
        assert CITY in [row[0] for row in book["各機關"].iter_rows(values_only=True)]
        assert bool(_workbooks(agency)) is locked  # an agency's own lists its people


def test_p1_the_password_comes_from_the_environment_or_a_prefect_secret_block(monkeypatch):
    asked: list[str] = []

    def block(name: str) -> str:
        asked.append(name)
        return "from-the-block"

    monkeypatch.setattr(mail_config, "_load_prefect_secret", block)
    env = {"LEARNHOURS_WORKBOOK_PASSWORD_BLOCK": "hr-workbook"}
    mail = Mail.of(load_settings(environ=env))
    assert asked == ["hr-workbook"] and mail.workbook_password == "from-the-block"
    assert "from-the-block" not in repr(mail)
    both = {**env, "LEARNHOURS_WORKBOOK_PASSWORD": "from-the-environment"}
    assert Mail.of(load_settings(environ=both)).workbook_password == "from-the-environment"
    assert asked == ["hr-workbook"]  # the environment wins: the block is not read
    assert Mail.of(load_settings(environ={})).workbook_password is None


def test_p1_an_unreadable_secret_block_stops_the_command_naming_the_block(monkeypatch):
    def broken(name: str) -> str:
        raise ValueError(f"Unable to find block document named {name}")

    monkeypatch.setattr(mail_config, "_load_prefect_secret", broken)
    with pytest.raises(MailConfigError, match="LEARNHOURS_WORKBOOK_PASSWORD_BLOCK.*「hr-workbook」"):
        Mail.of(load_settings(environ={"LEARNHOURS_WORKBOOK_PASSWORD_BLOCK": "hr-workbook"}))


def test_p1_the_password_is_never_in_the_settings_file_nor_a_run_parameter(tmp_path):
    (tmp_path / "learnhours.toml").write_text('workbook_password = "x"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="LEARNHOURS_WORKBOOK_PASSWORD"):
        load_settings(cwd=tmp_path, environ={})
    with pytest.raises(SettingsError, match="LEARNHOURS_WORKBOOK_PASSWORD"):
        parameter_overrides({"workbook_password": "x"})


def test_p1_a_nights_workbooks_work_the_password_out_once_each_with_a_key_of_its_own(monkeypatch):
    """Office hashes the password 100,000 times per file: a night's workbooks, locked with one
    password, do it once; each still opens with the password alone, and each has its own key."""
    from msoffcrypto.format.ooxml import OOXMLFile
    from openpyxl import Workbook

    from learnhours.notifiers import workbook_password

    spun: list[str] = []
    original = workbook_password._ITERATED_HASH

    def counted(password, salt, algorithm, spins):
        spun.append(password)
        return original(password, salt, algorithm, spins)

    monkeypatch.setattr(workbook_password, "_ITERATED_HASH", counted)
    workbook_password._iterated_hash.cache_clear()
    plain = BytesIO()
    Workbook().save(plain)
    password = "另一個-人事室-密碼"
    first, second = (workbook_password.encrypted(plain.getvalue(), password) for _ in range(2))
    assert first != second
    for locked in (first, second):
        assert load_workbook(unlocked(locked, password)).sheetnames == ["Sheet"]
        with pytest.raises(InvalidKeyError):
            OOXMLFile(BytesIO(locked)).load_key(password="not-it", verify_password=True)
    assert spun == [password, "not-it"]
    keys = [OOXMLFile(BytesIO(locked)).info["encryptedKeyValue"] for locked in (first, second)]
    assert keys[0] != keys[1]
