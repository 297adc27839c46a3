"""Plans checked against people (issue 30 point 4): a staff category no code table and no roster
uses is refused with the nearest one, by `plan check` and by every command; and no night sends
two open plans' mail to the same person."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from learnhours.cli import main
from learnhours.ingest import ingest_file
from learnhours.warehouse.schema import notice
from tests.conftest import ROOT
from tests.factories import export_file, new_id, person, record, roster_file

AS_OF = "2026-11-23"


def _plans(folder: Path, monkeypatch, **edits: str) -> Path:
    """The shipped national plan in a folder of the test's own, with `edits` (old=new text)
    applied; LEARNHOURS_PLANS_DIR points at it."""
    folder.mkdir()
    text = (ROOT / "plans" / "national.yaml").read_text("utf-8")
    for old, new in edits.values():
        text = text.replace(old, new)
    (folder / "national.yaml").write_text(text, "utf-8")
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(folder))
    return folder / "national.yaml"


def _people(engine, tmp_path, categories=("編制內", "編制內", "約聘")) -> None:
    ids = [new_id() for _ in categories]
    people = [person(pid, name=f"同仁{i}", category=c, email=f"p{i}@example.gov.tw")
              for i, (pid, c) in enumerate(zip(ids, categories, strict=True))]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(ids[0], day=date(2026, 5, 1))]))


TYPO = ("population: [編制內, 約聘, 約僱]", "population: [編製內, 約聘, 約僱]")


def test_a_population_typo_is_refused_by_plan_check_with_the_nearest_category(
    tmp_path, monkeypatch, capsys
):
    """The issue's plan: `plan check` said rc 0, then 189 of 193 people were exempt."""
    path = _plans(tmp_path / "plans", monkeypatch, typo=TYPO)
    assert main(["plan", "check", str(path), "--as-of", AS_OF]) == 2
    err = capsys.readouterr().err
    assert "第 11 行 population[第 1 項]：「編製內」不是名冊或代碼表中的人員類別：是否為「編制內」？" in err


def test_a_condition_on_a_misspelt_category_is_refused_at_its_line(tmp_path, monkeypatch, capsys):
    who = ("population: [編制內, 約聘, 約僱]\n",
           "population: [編制內, 約聘, 約僱]\nwho:\n  - 人員類別 in [約聘, 編製內]\n")  # fmt: skip
    path = _plans(tmp_path / "plans", monkeypatch, who=who)
    assert main(["plan", "check", str(path), "--as-of", AS_OF]) == 2
    assert "第 13 行 who[第 1 項]：「編製內」不是名冊或代碼表中的人員類別：是否為「編制內」？" in capsys.readouterr().err


def test_a_category_of_the_offices_own_roster_is_known_once_the_roster_is_in(
    engine, tmp_path, monkeypatch, capsys
):
    """法官 is in no shipped code table: refused (with what is known) until a roster says it."""
    judges = ("population: [編制內, 約聘, 約僱]", "population: [法官, 編制內]")
    path = _plans(tmp_path / "plans", monkeypatch, judges=judges)
    argv = ["--database-url", str(engine.url), "plan", "check", str(path), "--as-of", AS_OF]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "「法官」不是名冊或代碼表中的人員類別" in err and "請先匯入名冊" in err
    assert "roster_codes" in err
    _people(engine, tmp_path, ("法官", "編制內"))
    assert main(argv) == 0


@pytest.mark.parametrize(
    "command",
    [["status"], ["units"], ["notify", "--dry-run"], ["notify"], ["explain", "同仁0"]],
    ids=lambda c: " ".join(c),
)
def test_every_command_refuses_a_plan_with_an_unknown_category(
    engine, tmp_path, monkeypatch, capsys, command
):
    _people(engine, tmp_path)
    _plans(tmp_path / "plans", monkeypatch, typo=TYPO)
    argv = ["--database-url", str(engine.url), *command, "--plan", "national-2026", "--as-of", AS_OF]
    assert main(argv) == 2
    assert "是否為「編制內」？" in capsys.readouterr().err
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 0


# --- two open plans for the same people -----------------------------------------------------


def _copied_plan(tmp_path, monkeypatch) -> None:
    """The docs said: copy the national plan for your agency. Both are open; both bind all."""
    path = _plans(tmp_path / "plans", monkeypatch)
    copy = path.read_text("utf-8").replace("id: national", "id: mine")
    (path.parent / "mine.yaml").write_text(copy, "utf-8")


def test_run_refuses_two_open_plans_binding_the_same_people_before_anything(
    engine, tmp_path, monkeypatch, capsys
):
    """The issue's night: `run` sent both plans' mail, 158 mails, a head got 4."""
    _people(engine, tmp_path)
    _copied_plan(tmp_path, monkeypatch)
    (tmp_path / "inbox").mkdir()
    monkeypatch.setenv("LEARNHOURS_INBOX", str(tmp_path / "inbox"))
    code = main(["--database-url", str(engine.url), "run", "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2
    assert "mine-2026 與 national-2026 都約束同樣的 3 人" in err
    assert "本次未寄出任何通知" in err and "who:" in err and "population" in err
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 0


def test_plans_whose_populations_divide_the_roster_are_not_refused(engine, tmp_path, monkeypatch):
    from learnhours.plans import Catalog
    from learnhours.steps.coverage import refuse_overlaps

    _people(engine, tmp_path, ("編制內", "約聘"))
    path = _plans(tmp_path / "plans", monkeypatch,
                  own=("population: [編制內, 約聘, 約僱]", "population: [編制內]"))  # fmt: skip
    other = path.read_text("utf-8").replace("id: national", "id: contract")
    (path.parent / "contract.yaml").write_text(
        other.replace("population: [編制內]", "population: [約聘, 約僱]"), "utf-8"
    )
    plans = Catalog.read(path.parent).current(date(2026, 11, 23))
    assert [p.id for p in plans] == ["contract-2026", "national-2026"]
    refuse_overlaps(engine, plans)  # each binds one of the two: nothing refused


@pytest.mark.slow
def test_the_nightly_flow_refuses_two_plans_binding_the_roster_it_just_read(
    prefect_harness, tmp_path, monkeypatch
):
    """The roster comes in with tonight's inbox: refused after the ingest, before any plan."""
    from learnhours.flows.nightly import nightly
    from learnhours.warehouse.db import connect

    _copied_plan(tmp_path, monkeypatch)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    roster_file(tmp_path / "inbox", [person(), person()])
    url = f"sqlite:///{tmp_path / 'w.db'}"
    state = nightly(inbox=tmp_path / "inbox", as_of=date(2026, 11, 23), database_url=url,
                    return_state=True)  # fmt: skip
    assert state.is_failed() and "mine-2026 與 national-2026 都約束同樣的 2 人" in state.message
    with connect(url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 0


@pytest.mark.slow
def test_run_refuses_two_plans_binding_the_roster_of_its_own_inbox_as_a_plan_to_fix(
    prefect_harness, tmp_path, monkeypatch, capsys
):
    """A new office's first night: the roster is in tonight's inbox, the plan was copied as the
    docs said. Refused after the ingest, before any plan: exit 2 (a plan file to fix), as when
    the roster was already in, not 1 as for a night that broke."""
    _copied_plan(tmp_path, monkeypatch)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    roster_file(tmp_path / "inbox", [person(), person()])
    url = f"sqlite:///{tmp_path / 'w.db'}"
    argv = ["--database-url", url, "run", "--as-of", AS_OF, "--inbox", str(tmp_path / "inbox"),
            "--outbox", str(tmp_path / "outbox")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "mine-2026 與 national-2026 都約束同樣的 2 人" in err and "who:" in err
    assert not list((tmp_path / "outbox").glob("*.eml"))
