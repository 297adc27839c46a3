"""An office of its own (`learnhours init`) and whether it is ready for its first night
(`learnhours doctor`): issue 30, points 1 and 2."""

from __future__ import annotations

import os
import re
import socket
import stat
from datetime import date
from pathlib import Path

import pytest

from learnhours.cli import doctor as doctor_module
from learnhours.cli import main
from learnhours.cli.doctor import Check
from learnhours.settings import load_settings
from tests.factories import export_file, new_id, person, record, roster_file
from tests.test_mail_backends import Recorder, smtp_server

TODAY = date(2026, 11, 23)


def _no_settings_in_the_environment(monkeypatch) -> None:
    """The test session's LEARNHOURS_* point elsewhere; a Prefect API is the test's to set."""
    for name in list(os.environ):
        if name.startswith(("LEARNHOURS_", "PREFECT_API")):
            monkeypatch.delenv(name)


@pytest.fixture
def office(tmp_path: Path, monkeypatch, capsys) -> Path:
    """An office folder made by `learnhours init`, the working directory."""
    _no_settings_in_the_environment(monkeypatch)
    folder = tmp_path / "township-hr"
    assert main(["init", str(folder)]) == 0
    capsys.readouterr()
    monkeypatch.chdir(folder)
    return folder


def _real_plan(folder: Path) -> None:
    """The office's plan edited as init asks: its own sender and HR address."""
    plan = folder / "plans" / "national.yaml"
    text = plan.read_text("utf-8").replace("hr@township.example", "hr@township.gov.tw")
    plan.write_text(text, "utf-8")


def _settings(folder: Path, **more: str) -> None:
    with (folder / "learnhours.toml").open("a", encoding="utf-8") as out:
        for name, value in more.items():
            out.write(f'{name} = "{value}"\n')


def _roster(folder: Path, tmp_path: Path, email: str = "p{i}@township.gov.tw") -> list[str]:
    ids = [new_id() for _ in range(3)]
    people = [person(pid, name=f"同仁{i}", email=email.format(i=i), supervisor=i == 0)
              for i, pid in enumerate(ids)]  # fmt: skip
    roster_file(folder / "inbox", people)
    export_file(folder / "inbox", [record(ids[0], day=date(2026, 5, 1))])
    assert main(["ingest", "inbox"]) == 0
    return ids


def test_init_makes_an_office_folder_readable_by_its_owner_only(tmp_path, monkeypatch, capsys):
    _no_settings_in_the_environment(monkeypatch)
    office = tmp_path / "township-hr"
    assert main(["init", str(office)]) == 0
    out = capsys.readouterr().out
    for made in ("learnhours.toml", "plans/national.yaml", "sites/lifelong-portal.yaml"):
        assert (office / made).is_file(), made
        assert stat.S_IMODE((office / made).stat().st_mode) == 0o600, made
    for folder in (office, office / "plans", office / "sites", office / "inbox", office / "var"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # It says in Chinese what to edit next, with commands that run as printed.
    assert "請改" in out and "doctor" in out and "pilot_to" in out
    assert f"cd {office} && " in out


def test_init_copies_the_shipped_plan_with_its_placeholders_marked(office):
    copied = (office / "plans" / "national.yaml").read_text("utf-8")
    assert copied == (Path(__file__).parents[1] / "plans" / "national.yaml").read_text("utf-8")
    for line in copied.splitlines():
        if line.strip().startswith(("agency:", "sender:", "hr_addresses:", "contact:")):
            assert "請改" in line, line


def test_what_init_gives_the_office_to_edit_explains_itself_in_chinese(office):
    """The copied plan's comments said `One file for every year: judged for 2027 it is
    national-2027` and `dates below are month-day`, to the clerk who edits it."""
    for name in ("learnhours.toml", "plans/national.yaml"):
        for number, line in enumerate((office / name).read_text("utf-8").splitlines(), 1):
            comment = re.sub(r"\S*/\S*", "", line.partition("#")[2])  # paths and file names aside
            english = re.findall(r"[A-Za-z]+(?:[ ,:'-]+[A-Za-z]+){2,}", comment)
            assert not english, f"{name}:{number}: {english}"


def test_every_command_inside_the_office_uses_its_settings(office, tmp_path, capsys):
    settings = load_settings(cwd=office / "inbox", environ={})
    assert settings.config_file == office / "learnhours.toml"
    assert settings.plans_dir == office / "plans"
    assert settings.inbox == office / "inbox"
    assert settings.database_url == f"sqlite:///{office / 'var' / 'warehouse.db'}"
    _roster(office, tmp_path)
    assert (office / "var" / "warehouse.db").is_file()
    capsys.readouterr()
    assert main(["plans", "--as-of", TODAY.isoformat()]) == 0
    assert "national-2026" in capsys.readouterr().out


def test_init_never_overwrites_an_office(office, capsys):
    plan = office / "plans" / "national.yaml"
    plan.write_text("# 機關改過的計畫\n", "utf-8")
    assert main(["init", str(office)]) == 2
    assert "已經存在" in capsys.readouterr().err
    assert plan.read_text("utf-8") == "# 機關改過的計畫\n"


def _doctor(capsys, *args: str) -> tuple[int, dict[str, str]]:
    code = main(["doctor", "--as-of", TODAY.isoformat(), *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = {}
    for line in captured.out.splitlines():
        mark, _, rest = line.partition(" ")
        name, _, words = rest.partition("：")
        if mark in ("✓", "✗", "⚠"):
            lines[name] = f"{mark} {words}"
    return code, lines


def test_doctor_on_a_new_office_says_what_is_missing_point_by_point(office, capsys):
    code, lines = _doctor(capsys)
    assert code == 1
    assert lines["設定檔"].startswith("✓") and str(office) in lines["設定檔"]
    assert lines["資料庫"].startswith("✗") and "ingest" in lines["資料庫"]
    assert lines["收件資料夾"].startswith("✓")
    assert lines["計畫檔"].startswith("✓")
    assert lines["名冊與計畫的對象"].startswith("✗")
    assert lines["郵件伺服器"].startswith("✗") and "smtp_url" in lines["郵件伺服器"]
    # The plan as shipped names a placeholder as sender and HR: said, with the file to edit.
    assert "plans/national.yaml 的 reminders.sender" in lines["寄件者與收件者"]
    assert "admin_email" in lines["寄件者與收件者"]
    assert lines["排程"].startswith("✓") and "PREFECT_API_URL" in lines["排程"]


def test_doctor_outside_any_office_fails_without_a_traceback(tmp_path, monkeypatch, capsys):
    _no_settings_in_the_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, lines = _doctor(capsys)
    assert code == 1
    assert lines["設定檔"].startswith("✗") and "learnhours init" in lines["設定檔"]


def test_doctor_passes_a_ready_office_and_sends_nothing(office, tmp_path, capsys, monkeypatch):
    _real_plan(office)
    monkeypatch.setenv("LEARNHOURS_WORKBOOK_PASSWORD", "the office's own")  # issue 31
    _roster(office, tmp_path)
    handler = Recorder()
    with smtp_server(handler) as server:
        _settings(office, smtp_url=f"smtp://127.0.0.1:{server.port}?timeout=5",
                  admin_email="it@township.gov.tw")  # fmt: skip
        capsys.readouterr()
        code, lines = _doctor(capsys)
    assert code == 0, lines
    advisory = ("未達成者的信箱", "試寄模式")
    assert all(v.startswith("✓") for k, v in lines.items() if k not in advisory), lines
    assert lines["試寄模式"].startswith("⚠") and "pilot_to" in lines["試寄模式"]
    assert "national-2026 約束 3 人（編制內 3）" in lines["名冊與計畫的對象"]
    assert "未達成 3 人，其中 0 人沒有電子郵件" in lines["未達成者的信箱"]
    assert server.connections == 1 and handler.received == []  # logged in, sent nothing


def test_doctor_names_roster_addresses_in_a_placeholder_domain(office, tmp_path, capsys):
    _real_plan(office)
    _roster(office, tmp_path, email="staff{i}@township.example")
    code, lines = _doctor(capsys)
    assert code == 1
    assert lines["名冊的電子郵件"].startswith("✗") and "名冊上 3 人" in lines["名冊的電子郵件"]


def test_doctor_says_an_unreachable_mail_server_in_words(office, tmp_path, capsys):
    _real_plan(office)
    _roster(office, tmp_path)
    _settings(office, smtp_url=f"smtp://127.0.0.1:{_closed_port()}?timeout=5")
    code, lines = _doctor(capsys)
    assert code == 1 and lines["郵件伺服器"].startswith("✗") and "連線被拒" in lines["郵件伺服器"]


def test_doctor_refuses_two_open_plans_binding_the_same_people(office, tmp_path, capsys):
    _roster(office, tmp_path)
    copied = (office / "plans" / "national.yaml").read_text("utf-8")
    (office / "plans" / "mine.yaml").write_text(copied.replace("id: national", "id: mine"))
    code, lines = _doctor(capsys)
    assert code == 1
    assert "mine-2026 與 national-2026 都約束同樣的 3 人" in lines["計畫的對象不重疊"]
    assert "who:" in lines["計畫的對象不重疊"]


def test_a_doctor_check_that_raises_is_that_check_failing(office, capsys, monkeypatch):
    def broken(_office):
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor_module, "CHECKS", [*doctor_module.CHECKS, Check("壞掉的檢查", broken)])
    code, lines = _doctor(capsys)
    assert code == 1 and lines["壞掉的檢查"] == "✗ 檢查時發生錯誤（RuntimeError：boom）"


def test_doctor_says_a_prefect_server_that_does_not_answer_and_goes_on(office, capsys, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{_closed_port()}/api")
    _code, lines = _doctor(capsys)
    assert lines["排程"].startswith("⚠") and "沒有回應" in lines["排程"]


def test_doctor_fetch_checks_the_portal_account(office, capsys, monkeypatch):
    capsys.readouterr()
    _code, lines = _doctor(capsys, "--fetch")
    assert lines["入口網站帳號"].startswith("✗") and "LEARNHOURS_PORTAL_USER" in lines["入口網站帳號"]
    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", "agency")
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", "secret")
    _code, lines = _doctor(capsys, "--fetch")
    assert lines["入口網站帳號"].startswith("✓")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the first night (point 6) --------------------------------------------------------------


def test_run_with_a_missing_inbox_is_a_settings_error_naming_the_folder(office, capsys):
    (office / "inbox").rmdir()
    assert main(["run", "--as-of", TODAY.isoformat()]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"設定錯誤：收件資料夾 {office / 'inbox'} 不存在（設定 inbox）")
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_first_night_of_a_new_office_on_an_empty_inbox_succeeds(
    prefect_harness, office, capsys
):
    assert main(["run", "--as-of", TODAY.isoformat()]) == 0
    assert '"files": 0' in capsys.readouterr().out


def test_doctor_names_a_population_typo_with_the_nearest_category(office, tmp_path, capsys):
    plan = office / "plans" / "national.yaml"
    plan.write_text(plan.read_text("utf-8").replace("[編制內, 約聘", "[編製內, 約聘"), "utf-8")
    code, lines = _doctor(capsys)
    assert code == 1 and lines["計畫檔"].startswith("✗")
    assert "national.yaml 第 11 行 population[第 1 項]：「編製內」" in lines["計畫檔"]
    assert "是否為「編制內」？" in lines["計畫檔"]


def test_doctor_says_whether_the_workbook_password_is_set_and_how_to_set_it(
    office, capsys, monkeypatch
):
    """Issue 31, point 1: without it the summary goes without its workbook (⚠, not ✗)."""
    _, lines = _doctor(capsys)
    assert lines["活頁簿密碼"].startswith("⚠") and "LEARNHOURS_WORKBOOK_PASSWORD" in lines["活頁簿密碼"]
    monkeypatch.setenv("LEARNHOURS_WORKBOOK_PASSWORD", "the office's own")
    _, lines = _doctor(capsys)
    assert lines["活頁簿密碼"].startswith("✓") and "the office's own" not in lines["活頁簿密碼"]


def test_doctor_names_files_others_can_read_and_a_scheduler_open_to_anyone(
    office, capsys, monkeypatch
):
    """Issue 31, points 2 and 6: a file made before learnhours kept its files private, and a
    tcp:// scheduler on another machine."""
    _, lines = _doctor(capsys)
    assert lines["檔案權限"].startswith("✓") and lines["Dask 叢集"].startswith("✓")
    old = office / "var" / "warehouse.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    monkeypatch.setenv("LEARNHOURS_DASK_ADDRESS", "tcp://10.0.0.10:8786")
    code, lines = _doctor(capsys)
    assert lines["檔案權限"].startswith("⚠") and "chmod -R go=" in lines["檔案權限"]
    assert str(old) in lines["檔案權限"]
    assert code == 1 and lines["Dask 叢集"].startswith("✗") and "tls://" in lines["Dask 叢集"]


def test_doctor_says_pilot_mode_is_on_and_refuses_a_placeholder_pilot(
    office, capsys, monkeypatch
):
    _settings(office, pilot_to="hr@township.gov.tw")
    _code, lines = _doctor(capsys)
    assert lines["試寄模式"].startswith("✓") and "hr@township.gov.tw" in lines["試寄模式"]
    monkeypatch.setenv("LEARNHOURS_PILOT_TO", "hr@township.example")
    _code, lines = _doctor(capsys)
    assert "試寄信箱 hr@township.example 是示範用的保留網域" in lines["寄件者與收件者"]


class _PrefectApi:
    """A Prefect API on loopback answering what doctor asks: the deployment, its next run."""

    def __init__(self, paused: bool = False, scheduled: list[str] | None = None) -> None:
        import http.server
        import json
        import threading

        self.asked: list[str] = []
        deployment = {"id": "d-1", "paused": paused, "parameters": {"fetch": True}}
        runs = [{"expected_start_time": when} for when in (scheduled or [])]
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: object) -> None:
                api.asked.append(f"{self.command} {self.path}")
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(deployment)

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer(runs)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("paused", "scheduled", "said"),
    [
        (False, ["2026-11-23T18:00:00+00:00"],
         "✓ 部署 learnhours-nightly/nightly 下一次執行：115年11月24日 02:00（台北時間），先從入口網站下載"),
        (True, ["2026-11-23T18:00:00+00:00"],
         "⚠ 部署 learnhours-nightly/nightly 已暫停：在 Prefect UI 恢復排程，夜間作業才會執行"),
        (False, [], "⚠ 部署 learnhours-nightly/nightly 沒有排定的執行：請確認其排程（prefect.yaml 的 schedules）"),
    ],
)  # fmt: skip
def test_doctor_says_the_deployments_next_scheduled_run(
    office, capsys, monkeypatch, paused, scheduled, said
):
    api = _PrefectApi(paused, scheduled)
    try:
        monkeypatch.setenv("PREFECT_API_URL", api.url)
        _code, lines = _doctor(capsys)
    finally:
        api.close()
    assert lines["排程"] == said
    assert api.asked[0] == "GET /api/deployments/name/learnhours-nightly/nightly"
