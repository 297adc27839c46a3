"""Plans that recur, and every day of every year: the demo, `current`, a year that closes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from learnhours.cli import main
from learnhours.demo_data import build_sample, write_inbox
from learnhours.ingest import ingest_file
from learnhours.plans import Catalog, PlanError, find_plan, load_plan
from learnhours.steps import final_due_on, tonight

# Across a year boundary, a leap day, and both ends of a year.
DAYS = [
    date(2026, 1, 1),
    date(2026, 1, 3),
    date(2026, 12, 31),
    date(2027, 1, 1),
    date(2027, 1, 2),
    date(2027, 1, 5),
    date(2027, 6, 30),
    date(2028, 2, 29),
    date(2031, 12, 31),
]


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_demo_sample_and_inbox_on_every_kind_of_day(day, tmp_path, engine):
    """Early January has no registered course yet: the inbox is still whole and loads."""
    sample = build_sample(day.year, day, people=40)
    files = write_inbox(sample, tmp_path / "inbox")
    reports = [ingest_file(engine, f) for f in files]
    assert all(r.ok for r in reports), [r.error for r in reports]
    assert reports[0].loaded == len(sample.roster)
    assert reports[1].rejected == 1  # the mistyped ID, every day of the year


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_the_national_plan_applies_to_any_year(day):
    plan = find_plan("current", day=day)
    assert plan.id == f"national-{day.year}" and plan.recurs == "yearly"
    assert plan.period.start == date(day.year, 1, 1) and plan.deadline == date(day.year, 12, 31)
    assert plan.name.startswith(f"{day.year - 1911}年度")
    assert find_plan("national", day=day) == plan
    assert find_plan(f"national-{day.year}") == plan  # the year in the id, whatever today is


def test_a_year_s_own_file_overrides_the_recurring_plan(tmp_path):
    source = Path(__file__).resolve().parent.parent / "plans" / "national.yaml"
    (tmp_path / "national.yaml").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    special = (
        source.read_text(encoding="utf-8")
        .replace("id: national\nrecurs: yearly", "id: national-2027")
        .replace("{start: 01-01, end: 12-31}", "{start: 2027-01-01, end: 2027-12-31}")
        .replace("deadline: 12-31", "deadline: 2027-12-31")
        .replace("minimum: 20", "minimum: 30")
    )
    (tmp_path / "national-2027.yaml").write_text(special, encoding="utf-8")
    catalog = Catalog.read(tmp_path)
    assert catalog.find("national-2027").requirements[0].minimum.other == 30
    assert catalog.find("national-2028").requirements[0].minimum.other == 20
    assert [p.id for p in catalog.current(date(2027, 5, 1))] == ["national-2027"]


def test_recurring_plan_dates_are_month_days_checked_for_each_year(tmp_path):
    text = (
        (Path(__file__).resolve().parent.parent / "plans" / "national.yaml")
        .read_text(encoding="utf-8")
        .replace("deadline: 12-31", "deadline: 02-29")
    )
    path = tmp_path / "national.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_plan(path, 2028).deadline == date(2028, 2, 29)
    with pytest.raises(PlanError, match="第 9 行 deadline：「02-29」2月29日不是每年都有"):
        load_plan(path, 2027)
    path.write_text(text.replace("deadline: 02-29", "deadline: 2026-12-31"), encoding="utf-8")
    with pytest.raises(PlanError, match="只寫月-日"):
        load_plan(path, 2027)


def test_plan_check_validates_a_recurring_plan_for_the_coming_year_too(tmp_path, capsys):
    text = (
        (Path(__file__).resolve().parent.parent / "plans" / "national.yaml")
        .read_text(encoding="utf-8")
        .replace("deadline: 12-31", "deadline: 02-29")
    )
    path = tmp_path / "national.yaml"
    path.write_text(text, encoding="utf-8")
    # Good in 2028, and 2027 is the coming year of 2026: refused before New Year's night.
    assert main(["plan", "check", str(path), "--as-of", "2026-12-01"]) == 2
    assert "2月29日不是每年都有" in capsys.readouterr().err
    assert main(["plan", "check", "plans/national.yaml", "--as-of", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "national-2026" in out and "national-2027" in out


def test_plans_lists_what_applies_to_which_year(capsys):
    assert main(["plans", "--as-of", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "national                 每年 1月1日至12月31日" in out
    assert (
        "2026 年（民國 115 年）適用：" in out and "2027 年（民國 116 年）適用：national-2027" in out
    )
    assert "115年12月1日 進行中（plan_id: current）：national-2026" in out


def test_current_on_new_year_s_day_judges_the_new_year_and_owes_the_old_one_its_final():
    night = tonight(Catalog.read(), "current", date(2027, 1, 1))
    assert [p.id for p in night.judged] == ["national-2027"]
    assert "national-2026" in [p.id for p in night.closing] and not night.warnings
    # 2026-12-31 (Thu) + 7 working days (1 January a holiday): registered by 2027-01-12.
    assert final_due_on(find_plan("national-2026")) == date(2027, 1, 13)


def test_a_closed_plan_named_by_id_is_warned_about_and_judged_no_more():
    night = tonight(Catalog.read(), "national-2026", date(2027, 1, 5))
    assert night.judged == [] and [p.id for p in night.closing] == ["national-2026"]
    assert "national-2026 已於 2026-12-31 結束" in night.warnings[0]
    assert "current" in night.warnings[0]


def test_notify_on_a_closed_plan_sends_no_reminder_or_daily_summary(engine, tmp_path, capsys):
    url = str(engine.url)
    write_inbox(build_sample(2026, date(2026, 12, 1), people=20), tmp_path / "inbox")
    assert main(["--database-url", url, "ingest", str(tmp_path / "inbox")]) == 0
    capsys.readouterr()
    argv = ["--database-url", url, "notify", "--plan", "national-2026", "--as-of", "2027-01-05"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "不在期間內" in out and "本資料庫未曾為此計畫寄信" in out
    assert main(["--database-url", url, "notices", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip() == ""  # the ledger is empty: nothing was queued


@pytest.mark.slow
@pytest.mark.parametrize(
    "day",
    [date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2), date(2027, 6, 30), date(2028, 2, 29)],
    ids=str,
)
def test_make_demo_works_on_the_day(day, tmp_path, prefect_harness, capsys, monkeypatch):
    """`learnhours demo` as `make demo` runs it, on a machine whose clock says `day`."""
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    # What the demo sets for itself, put back after the test.
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = tmp_path / "learnhours.toml"
    config.write_text('database_url = "sqlite:///var/warehouse.db"\n', encoding="utf-8")
    assert main(["--config", str(config), "demo", "--as-of", day.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"national-{day.year}：人員 200" in out
    assert (tmp_path / "var" / "warehouse.db").exists()
    assert list((tmp_path / "var" / "outbox").glob("*.eml"))


@pytest.mark.slow
def test_make_demo_on_new_years_day_by_the_clock(tmp_path, prefect_harness, capsys, monkeypatch):
    """`make demo` with no date given, on a machine whose clock says 2027-01-01 in Taipei."""
    from learnhours import taipei

    new_year = date(2027, 1, 1)
    monkeypatch.setattr(taipei, "taipei_today", lambda: new_year)
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = tmp_path / "learnhours.toml"
    config.write_text('database_url = "sqlite:///var/warehouse.db"\n', encoding="utf-8")
    assert main(["--config", str(config), "demo"]) == 0
    out = capsys.readouterr().out
    assert "資料截至 116年1月1日" in out and "national-2027：人員 200" in out
