"""The nightly flow as a real Prefect flow run (one session-scoped ephemeral server)."""

from __future__ import annotations

import json
import socket
from datetime import date

import pytest
from sqlalchemy import MetaData, select, text

from learnhours.demo_data import ROSTER_HEADER, build_sample, write_csv, write_inbox
from learnhours.notifiers.backends import MEMORY_OUTBOX
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import acquire, plan_lock, release
from learnhours.warehouse.schema import ingest_batch, notice, run_log
from tests.test_mail_backends import Recorder, smtp_server

AS_OF = date(2026, 11, 23)


def _nightly(tmp_path, **kwargs):
    """The flow on a warehouse of the test's own; the final state."""
    from learnhours.flows.nightly import nightly

    kwargs.setdefault("plan_id", "national-2026")
    kwargs.setdefault("inbox", tmp_path / "inbox")
    kwargs.setdefault("as_of", AS_OF)
    kwargs.setdefault("database_url", f"sqlite:///{tmp_path / 'w.db'}")
    kwargs.setdefault("outbox_dir", tmp_path / "outbox")
    return nightly(**kwargs, return_state=True)


def _real_addresses(monkeypatch) -> None:
    """Over a real mail server the shipped plan's reserved .example sender and HR are refused
    (issue 30 point 3): the settings name others, as an office's do."""
    from tests.factories import SMTP_HR, SMTP_SENDER

    monkeypatch.setenv("LEARNHOURS_MAIL_FROM", SMTP_SENDER)
    monkeypatch.setenv("LEARNHOURS_HR_ADDRESSES", SMTP_HR)


def _runs(url: str) -> list[tuple]:
    with connect(url).connect() as connection:
        return connection.execute(
            select(run_log.c.status, run_log.c.rows_loaded, run_log.c.detail).order_by(run_log.c.id)
        ).all()


@pytest.mark.slow
def test_nightly_flow_runs_demo_twice_without_sending_twice(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    sample = build_sample(2026, AS_OF, people=60)
    write_inbox(sample, tmp_path / "inbox")
    state = _nightly(tmp_path)
    assert state.is_completed() and state.name == "Completed"
    first = state.result()
    (plan,) = first["plans"]
    assert first["files"] == 3 and first["files_failed"] == 0 and plan["short"] > 0
    assert plan["mail"]["sent"] == len(list((tmp_path / "outbox").glob("*.eml")))
    second = _nightly(tmp_path).result()
    assert second["plans"][0]["queued"] == 0 and second["plans"][0]["mail"] == {}
    assert second["rows_loaded"] == 0
    runs = _runs(f"sqlite:///{tmp_path / 'w.db'}")
    assert [(s, n) for s, n, _ in runs] == [("completed", first["rows_loaded"]), ("completed", 0)]
    summary, units = _artifacts("nightly-summary"), _artifacts("unit-rates")
    assert "60 people" in summary and "民政課" in units
    assert not any(row["身分證字號"] in summary + units for row in sample.roster)


def _artifacts(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert found, f"no artifact {key}"
    # A table artifact's data is JSON text with \\u escapes: read it back as text people see.
    return "\n".join(
        a.data if key == "nightly-summary" else json.dumps(json.loads(a.data), ensure_ascii=False)
        for a in found
    )


def _logs(state, until: str) -> list[tuple[str, str]]:
    """(logger name, message) of the log lines the Prefect API holds for the run, once one
    containing `until` has arrived (logs reach the API in batches, a second or two late)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    run = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            found: list = []
            while batch := client.read_logs(log_filter=run, offset=len(found)):
                found += batch  # the API answers a page at a time
            logs = [(log.name, log.message) for log in found]
            if any(until in m for _, m in logs) or time.monotonic() > deadline:
                return logs
            time.sleep(0.5)


@pytest.mark.slow
def test_invalid_plan_fails_the_run_records_it_and_mails_the_administrator(
    prefect_harness, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@demo.gov.tw")
    MEMORY_OUTBOX.clear()
    state = _nightly(tmp_path, plan_id="no-such-plan", inbox=tmp_path)
    assert state.is_failed()
    assert "計畫無法使用" in state.message and "no-such-plan" in state.message
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@demo.gov.tw" and "no-such-plan" in mail["Subject"]
    ((status, _rows, detail),) = _runs(f"sqlite:///{tmp_path / 'w.db'}")
    assert (
        status == "failed" and "no-such-plan" in detail and "失敗通知已寄給 admin@demo.gov.tw" in detail
    )


UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"


@pytest.mark.slow
def test_a_night_that_cannot_reach_its_warehouse_mails_the_administrator_and_writes_syslog(
    prefect_harness, tmp_path, monkeypatch, syslog
):
    """Issue 33, point 1: the likeliest 02:00 outage reaches a person, by mail and in the
    machine's syslog (where monitoring looks, and what a mail server that is down cannot stop)."""
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    MEMORY_OUTBOX.clear()
    # A deployment's run, of `current`: the notice names the plans the night would have judged.
    state = _nightly(tmp_path, plan_id="current", database_url=UNREACHABLE, inbox=tmp_path)
    assert state.is_failed() and "無法連線到倉儲資料庫" in state.message
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@township.example"
    assert mail["Subject"] == "learnhours 夜間作業失敗：national-2026 2026-11-23"
    assert "無法連線到倉儲資料庫" in mail.get_body(("plain",)).get_content()
    (line,) = syslog.lines()
    assert line.startswith("<27>learnhours[")  # daemon.err, tagged as journalctl -t reads it
    assert "夜間作業失敗（national-2026，2026-11-23）：無法連線到倉儲資料庫" in line
    assert "失敗通知已寄給 admin@township.example" in line


@pytest.mark.slow
def test_a_settings_mistake_still_reaches_the_administrator(
    prefect_harness, tmp_path, monkeypatch, syslog
):
    """The settings as a whole cannot be read: the notice's own (the admin's address, mail,
    syslog) are read alone, and say which setting is wrong."""
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    monkeypatch.setenv("LEARNHOURS_WORKERS", "many")
    MEMORY_OUTBOX.clear()
    state = _nightly(tmp_path)
    assert state.is_failed() and "LEARNHOURS_WORKERS" in state.message
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@township.example"
    assert "LEARNHOURS_WORKERS" in mail.get_body(("plain",)).get_content()
    (line,) = syslog.lines()
    assert "設定錯誤" in line and "LEARNHOURS_WORKERS" in line


@pytest.mark.slow
def test_plan_judged_by_another_run_is_left_to_it_and_the_run_fails_saying_so(
    prefect_harness, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    MEMORY_OUTBOX.clear()
    write_inbox(build_sample(2026, AS_OF, people=10), tmp_path / "inbox")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = connect(url)
    holder = acquire(engine, plan_lock("national-2026"))  # the "first run", still judging it
    try:
        state = _nightly(tmp_path)
    finally:
        release(engine, holder, plan_lock("national-2026"))
    why = "計畫 national-2026 今晚未處理：另一個執行持有 plan:national-2026 鎖"
    assert state.is_failed() and why in state.message
    with engine.connect() as connection:
        assert connection.execute(select(ingest_batch)).all() != []  # the inbox is its own lock
        assert connection.execute(select(notice)).all() == []  # the plan was left alone
    ((status, _rows, detail),) = _runs(url)
    assert status == "failed" and why in detail
    (mail,) = MEMORY_OUTBOX  # a night not done is a failed night: the administrator hears it
    assert mail["Subject"] == "learnhours 夜間作業失敗：national-2026 2026-11-23"


@pytest.mark.slow
def test_the_failure_notice_names_the_plans_that_failed_not_the_closed_years(
    prefect_harness, tmp_path, monkeypatch
):
    """`current` deals with tonight's open plan and the closed years still owed a final
    summary: a night that fails names the plans that failed in the notice's subject."""
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "reminder.txt").write_text("{% if %}", "utf-8")  # a broken override
    monkeypatch.setenv("LEARNHOURS_TEMPLATES_DIR", str(tmp_path / "templates"))
    MEMORY_OUTBOX.clear()
    state = _nightly(tmp_path, plan_id="current", inbox=tmp_path)
    assert state.is_failed() and "reminder.txt" in state.message
    (mail,) = MEMORY_OUTBOX
    assert mail["Subject"] == "learnhours 夜間作業失敗：national-2026 2026-11-23"


@pytest.mark.slow
def test_missing_inbox_fails_the_run_naming_the_folder(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    state = _nightly(tmp_path, inbox=tmp_path / "no-such-inbox")
    assert state.is_failed() and "no-such-inbox" in state.message
    # A settings mistake said as one (issue 30 point 6), before any step: not a failed step
    # whose traceback fills the worker's log.
    assert state.message.startswith("設定錯誤：收件資料夾") and "（設定 inbox）" in state.message


@pytest.mark.slow
def test_fetch_on_downloads_from_the_portal_then_ingests(prefect_harness, tmp_path, monkeypatch):
    from learnhours.emulator import PortalEmulator, serve

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", "acct")
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", "pw")
    sample = build_sample(2026, AS_OF, people=30)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "115年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig")
    with serve(PortalEmulator(users={"acct": "pw"}, records=sample.records)) as base_url:
        run = dict(fetch=True, portal_url=base_url, polite=False)
        first = _nightly(tmp_path, **run).result()
        second = _nightly(tmp_path, **run).result()
    assert first["files"] == 2 and first["rows_loaded"] == len(sample.roster) + len(sample.records)
    assert second["rows_loaded"] == 0 and len(list(inbox.iterdir())) == 2  # nothing fetched twice


@pytest.mark.slow
def test_smtp_settings_mistake_fails_the_night_at_its_start_naming_the_setting(
    prefect_harness, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_SMTP_URL", "smpt://mail.township.example:25")
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
    write_inbox(build_sample(2026, AS_OF, people=20), tmp_path / "inbox")
    state = _nightly(tmp_path)
    assert state.is_failed()
    assert "設定錯誤" in state.message and "LEARNHOURS_SMTP_URL" in state.message, state.message
    assert "MailConfigError" not in state.message
    assert not (tmp_path / "w.db").exists()  # checked before any work: nothing ingested


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_smtp_down_fails_the_run_with_the_cause_in_its_state_and_logs(
    prefect_harness, tmp_path, monkeypatch, syslog
):
    monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}?timeout=3")
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@demo.gov.tw")
    _real_addresses(monkeypatch)
    sample = build_sample(2026, AS_OF, people=20, email_domain="example.gov.tw")
    write_inbox(sample, tmp_path / "inbox")
    state = _nightly(tmp_path)
    assert state.is_failed()
    assert "今晚的郵件無法交給郵件伺服器" in state.message and "連線被拒" in state.message
    logs = _logs(state, until="失敗通知")
    # The product's own lines reach the run's logs in the UI, and none carries an ID.
    assert any(name.startswith("learnhours.") for name, _ in logs)
    assert any("連線被拒" in message for _, message in logs)
    assert any("寄給 admin@demo.gov.tw 的失敗通知未寄出" in m for _, m in logs)
    (line,) = syslog.lines()  # the mail server is down: the machine's syslog still has it
    assert "今晚的郵件無法交給郵件伺服器" in line and "失敗通知未寄出" in line
    assert not any(row["身分證字號"] in m for row in sample.roster for _, m in logs)
    with connect(f"sqlite:///{tmp_path / 'w.db'}").connect() as connection:
        statuses = set(connection.execute(select(notice.c.status)).scalars())
    assert statuses == {"pending"}  # kept for the next run


@pytest.mark.slow
def test_a_rerun_that_delivers_mail_left_pending_says_so(prefect_harness, tmp_path, monkeypatch):
    """Issue 33, point 7: the mail server was down, then came back: the rerun queues nothing
    new, sends what was left pending, and its state says it sent them (not "排入 0 封通知")."""
    monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{_closed_port()}?timeout=3")
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
    _real_addresses(monkeypatch)
    sample = build_sample(2026, AS_OF, people=20, email_domain="example.gov.tw")
    write_inbox(sample, tmp_path / "inbox")
    assert _nightly(tmp_path).is_failed()
    pending = _notices_in(tmp_path, "pending")
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")  # the server is back
    state = _nightly(tmp_path)
    assert state.is_completed(), state.message
    assert state.message.startswith(f"排入 0 封通知，寄出 {pending} 封（含先前未寄出的通知）")
    assert _notices_in(tmp_path, "sent") == pending > 0


def _notices_in(tmp_path, status: str) -> int:
    with connect(f"sqlite:///{tmp_path / 'w.db'}").connect() as connection:
        return len(connection.execute(select(notice).where(notice.c.status == status)).all())


@pytest.mark.slow
def test_the_night_after_missed_ones_tells_hr_and_the_administrator_which_did_not_complete(
    prefect_harness, tmp_path, monkeypatch
):
    """Issue 33, points 1 and 2: the last night completed three days ago, the one after failed,
    then none ran; tonight's run says so in its state, the HR summary says it to HR, and the
    administrator is told it recovered, with each failed run's cause."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    monkeypatch.setenv("LEARNHOURS_HR_ADDRESSES", "hr@township.example")
    write_inbox(build_sample(2026, AS_OF, people=20), tmp_path / "inbox")
    now = datetime.now(UTC)
    with connect(f"sqlite:///{tmp_path / 'w.db'}").begin() as connection:
        for hours, status, detail in ((72, "completed", "排入 3 封通知"),
                                      (48, "failed", "無法連線到倉儲資料庫")):  # fmt: skip
            started = now - timedelta(hours=hours)
            connection.execute(insert(run_log).values(
                plan_id="national-2026", started_at=started, status=status, detail=detail,
                finished_at=started + timedelta(minutes=5), host="hr-srv", pid=1,
            ))  # fmt: skip
    MEMORY_OUTBOX.clear()
    state = _nightly(tmp_path)
    assert state.is_completed() and state.name == "Completed", state.message
    assert "之前的夜間作業沒有完成" in state.message and "71 小時前" in state.message
    assert state.result()["missed"] in state.message
    (summary,) = [m for m in MEMORY_OUTBOX if m["Subject"].startswith("【學習時數摘要】")]
    text = summary.get_body(("plain",)).get_content()
    assert "【夜間作業】之前的夜間作業沒有完成：" in text and "這段期間沒有寄出提醒與摘要" in text
    (recovered,) = [m for m in MEMORY_OUTBOX if m["To"] == "admin@township.example"]
    assert recovered["Subject"] == "learnhours 夜間作業恢復：national-2026 2026-11-23"
    assert "失敗：無法連線到倉儲資料庫" in recovered.get_body(("plain",)).get_content()
    # Said once: the night after this one has nothing to say.
    MEMORY_OUTBOX.clear()
    again = _nightly(tmp_path)
    assert "之前的夜間作業" not in again.message
    assert not [m for m in MEMORY_OUTBOX if m["To"] == "admin@township.example"]


@pytest.mark.slow
def test_an_expected_failure_is_one_chinese_sentence_in_the_run_s_log_a_bug_keeps_its_traceback(
    prefect_harness, tmp_path, monkeypatch
):
    """Issue 33, point 7: a step that fails for a reason the run states (a folder of the inbox
    that cannot be read) is one line in the run's log, not Prefect's traceback too; a bug (any
    other exception) keeps its traceback, for whoever fixes it."""
    from learnhours import steps
    from learnhours.flows import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    (tmp_path / "inbox").mkdir()
    unreadable = steps.Found(unreadable=[(tmp_path / "inbox" / "locked", "Permission denied")])
    monkeypatch.setattr(nightly.steps, "look_in", lambda _paths: unreadable)
    state = _nightly(tmp_path)
    assert state.is_failed()
    logs = [m for _name, m in _logs(state, until="夜間作業失敗")]
    assert not any("Traceback" in m for m in logs), logs
    (said,) = [m for m in logs if "locked" in m and "Finished in state" not in m]
    assert said.startswith("夜間作業失敗：收件資料夾") and "無法讀取" in said

    def bug(_paths):  # noqa: ANN001, ANN202
        raise KeyError("a bug in the product")

    monkeypatch.setattr(nightly.steps, "look_in", bug)
    state = _nightly(tmp_path)
    assert state.is_failed() and "KeyError" in state.message
    logs = [m for _name, m in _logs(state, until="夜間作業失敗")]
    assert any("Traceback" in m and "a bug in the product" in m for m in logs)


@pytest.mark.slow
def test_some_recipients_refused_completes_saying_how_many_and_why(
    prefect_harness, tmp_path, monkeypatch
):
    _real_addresses(monkeypatch)
    sample = build_sample(2026, AS_OF, people=20, email_domain="example.gov.tw")
    write_inbox(sample, tmp_path / "inbox")
    refused = sorted(r["電子郵件"] for r in sample.roster if r["電子郵件"])[:2]
    handler = Recorder(refuse={a: "550 5.1.1 No such user" for a in refused})
    with smtp_server(handler) as server:
        monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{server.port}?timeout=5")
        monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND", raising=False)
        state = _nightly(tmp_path)
    assert state.is_completed()
    troubled = state.result()["plans"][0]["mail"].get("failed", 0)
    if troubled:  # only short people get mail: the refused ones may all have met the plan
        assert f"{troubled} notice(s) not delivered" in state.message and "550" in state.message
        assert not any(a in state.message for a in refused)  # no addresses in the run state


@pytest.mark.slow
def test_a_closed_plan_named_ends_in_warning_and_sends_nothing(
    prefect_harness, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    MEMORY_OUTBOX.clear()
    write_inbox(build_sample(2023, date(2023, 12, 1), people=10), tmp_path / "inbox")
    state = _nightly(tmp_path, plan_id="hsinchu-city-2023", as_of=date(2026, 11, 23))
    assert state.is_completed() and state.name == "Warning"
    assert "hsinchu-city-2023" in state.message and "current" in state.message
    assert MEMORY_OUTBOX == []
    assert _runs(f"sqlite:///{tmp_path / 'w.db'}")[0][0] == "warning"


def _notices(url: str) -> list[tuple[str, str, str, str]]:
    with connect(url).connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                select(notice.c.plan_id, notice.c.kind, notice.c.created_on, notice.c.status)
            )
        ]


@pytest.mark.slow
def test_new_years_night_judges_the_new_year_then_one_final_summary_of_the_old(
    prefect_harness, tmp_path, monkeypatch
):
    """`plan_id: current` across 2026-12-31 -> 2027-01-13: the closed year's last reminders, the
    new year's plan from 1 January, one final 2026 summary once the 7-day lag has passed."""
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    write_inbox(build_sample(2026, date(2026, 12, 31), people=40), tmp_path / "inbox")

    def night(day: date) -> dict:
        state = _nightly(tmp_path, plan_id="current", as_of=day)
        assert state.is_completed() and state.name == "Completed", state.message
        return state.result()

    december = night(date(2026, 12, 15))  # stage 7: the last reminders of 2026
    assert [p["plan"] for p in december["plans"]] == ["national-2026"]
    assert december["plans"][0]["stage"] == 7
    assert any(k == "reminder" for _p, k, _d, _s in _notices(url))
    eve = night(date(2026, 12, 31))
    assert eve["plans"][0]["stage"] is None  # past the last day: no more reminders
    new_year = night(date(2027, 1, 1))
    assert [p["plan"] for p in new_year["plans"]] == ["national-2027"]
    assert [(f["plan"], f["status"]) for f in new_year["finals"]] == [("national-2026", "not_due")]
    assert new_year["finals"][0]["due_on"] == "2027-01-13"
    night(date(2027, 1, 12))
    old = [n for n in _notices(url) if n[0] == "national-2026"]
    assert not any(created >= date(2027, 1, 1) for _p, _k, created, _s in old)
    assert not any(kind == "final" for _p, kind, _c, _s in old)
    MEMORY_OUTBOX.clear()
    closing = night(date(2027, 1, 13))
    assert [(f["plan"], f["status"]) for f in closing["finals"]] == [("national-2026", "sent")]
    finals = [m for m in MEMORY_OUTBOX if "年度結算" in str(m["Subject"])]
    assert len(finals) == 1 and "national" not in str(finals[0]["Subject"])
    assert "最終結果" in finals[0].get_body(("plain",)).get_content()
    night(date(2027, 1, 14))
    night(date(2027, 2, 1))
    old_after = [n for n in _notices(url) if n[0] == "national-2026" and n[2] >= date(2027, 1, 1)]
    assert [(k, s) for _p, k, _c, s in old_after] == [("final", "sent")]  # exactly one, ever
    assert not any(k == "reminder" for _p, k, _c, _s in old_after)


def _dump(engine) -> dict[str, list]:
    """Every warehouse and ledger table's rows, in a stable order; the run log differs by design."""
    meta = MetaData()
    meta.reflect(engine)
    skip = {"run_log", "run_lock", "alembic_version"}
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table)).all()), key=repr)
            for name, table in meta.tables.items()
            if name not in skip
        }


@pytest.mark.slow
@pytest.mark.postgres
def test_nightly_twice_on_postgres_leaves_warehouse_and_ledger_identical(
    prefect_harness, pg_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    write_inbox(build_sample(2026, AS_OF, people=60), tmp_path / "inbox")
    first = _nightly(tmp_path, database_url=pg_url).result()
    engine = connect(pg_url)
    after_first = _dump(engine)
    assert first["rows_loaded"] > 0 and after_first["notice"]
    _nightly(tmp_path, database_url=pg_url)
    assert _dump(engine) == after_first
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM run_log WHERE status = 'completed'")
            ).scalar()
            == 2
        )
    engine.dispose()


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_gives_back_its_lock_and_is_logged_cancelled(
    prefect_harness, tmp_path, monkeypatch
):
    """A cancel from the UI or `systemctl stop` sends SIGTERM to the run's process."""
    import os
    import signal

    from learnhours import steps

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    write_inbox(build_sample(2026, AS_OF, people=10), tmp_path / "inbox")

    def stopped(engine, paths, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - the ingest step, interrupted as it starts
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM should have stopped the run")

    monkeypatch.setattr(steps, "ingest_paths", stopped)
    with pytest.raises(BaseException):  # noqa: B017 - the run must not go on as if nothing happened
        _nightly(tmp_path)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    ((status, _rows, detail),) = _runs(url)
    assert status == "cancelled" and "SIGTERM" in detail
    engine = connect(url)
    release(engine, acquire(engine))  # the lock was given back
    assert signal.getsignal(signal.SIGTERM) is not None


@pytest.mark.slow
def test_failure_notice_comes_from_the_configured_sender(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@demo.gov.tw")
    monkeypatch.setenv("LEARNHOURS_MAIL_FROM", "學習時數系統 <learn@city.gov.tw>")
    MEMORY_OUTBOX.clear()
    state = _nightly(tmp_path, plan_id="no-such-plan", inbox=tmp_path)
    assert state.is_failed()
    (mail,) = MEMORY_OUTBOX
    assert mail["From"].addresses[0].addr_spec == "learn@city.gov.tw"
