"""The small points a new office trips on (issue 30 point 11): no English a clerk sees, rates as
the mails say them, a digest line that does not repeat itself, example names that work, no
reference to files a clone does not have."""

from __future__ import annotations

import re
import subprocess
from datetime import date

import pytest

from learnhours.cli import main
from learnhours.ingest import ingest_file
from tests.conftest import ROOT
from tests.factories import export_file, new_id, person, record, roster_file

AS_OF = "2026-11-23"


@pytest.mark.parametrize("group", ["plan", "db"])
def test_a_group_of_commands_without_a_subcommand_says_its_help_in_chinese(group, capsys):
    assert main([group]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"用法：learnhours {group}") and "usage" not in out


def test_plan_check_says_why_a_file_cannot_be_read_in_chinese(tmp_path, capsys):
    cases = {
        tmp_path / "missing.yaml": "找不到這個檔案",
        tmp_path: "這是資料夾，不是計畫檔",
    }
    broken = tmp_path / "utf16.yaml"
    broken.write_bytes("id: x\n".encode("utf-16"))
    cases[broken] = "不是 UTF-8 文字檔（第 1 個位元組無法解讀）"
    for path, words in cases.items():
        assert main(["plan", "check", str(path)]) == 2
        err = capsys.readouterr().err
        assert words in err and "Errno" not in err and "codec" not in err, err


def test_units_table_shows_rates_as_the_mails_do_and_csv_keeps_the_fraction(
    engine, tmp_path, capsys
):
    met, others = new_id(), [new_id(), new_id()]
    ingest_file(engine, roster_file(tmp_path, [person(met), *map(person, others)]))
    rows = [record(met, code=f"C{i}", category=c, hours=h, day=date(2026, 3, i + 1))
            for i, (c, h) in enumerate([(501, 1), (339, 4), (393, 1), (502, 4), (12, 10)])]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, rows))
    argv = ["--database-url", str(engine.url), "units", "--plan", "national-2026", "--as-of", AS_OF]
    assert main([*argv, "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "33.3%" in table and "0.3333" not in table
    assert main([*argv, "--format", "csv"]) == 0
    assert "民政課,3,1,0.3333," in capsys.readouterr().out  # the CSV contract: a fraction


def test_a_digest_line_short_only_of_the_total_does_not_repeat_itself(engine, tmp_path):
    """`尚差 6 小時，須含 年度學習時數 6 小時` said the same thing twice."""
    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.plans import find_plan
    from learnhours.steps import send_plan
    from tests.factories import MAIL

    head, short = new_id(), new_id()
    people = [person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
              person(short, name="林小華", email="lin@example.gov.tw")]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    required = [(501, 1), (339, 4), (393, 1), (502, 4), (12, 8)]  # all but 2 of the 20 h
    rows = [record(pid, code=f"C{i}", category=c, hours=h, day=date(2026, 3, i + 1), name=n)
            for pid, n in ((head, "陳課長"), (short, "林小華"))
            for i, (c, h) in enumerate(required)]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, rows))
    backend = MemoryBackend()
    send_plan(engine, find_plan("national-2026"), date(2026, 11, 23), MAIL, backend=backend)
    digest = next(m for m in backend.outbox if str(m["Subject"]).startswith("【單位學習時數】"))
    text = digest.get_body(("plain",)).get_content()
    line = next(x for x in text.splitlines() if x.startswith("- 林小華"))
    assert "尚差 2 小時；" in line and "須含" not in line, line


def test_every_plan_file_name_the_docs_give_is_one_plan_check_takes():
    """docs/plans.md's first example, `我的機關-2027.yaml`, was refused by `plan check`."""
    text = (ROOT / "docs" / "plans.md").read_text("utf-8")
    names = set(re.findall(r"plans/(?:examples/)?([^\s/`*<>]+)\.yaml", text))
    assert names and all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", n) for n in names), names


def test_every_docs_path_the_readme_and_docs_name_is_in_the_repository():
    """README cited docs/screenshots/, which .gitignore kept out of every clone."""
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())  # fmt: skip
    folders = {str(p) for f in tracked for p in __import__("pathlib").PurePosixPath(f).parents}
    for doc in ["README.md", *(f for f in tracked if f.startswith("docs/") and f.endswith(".md"))]:
        for named in re.findall(r"docs/[A-Za-z0-9_./-]*[A-Za-z0-9_/]", (ROOT / doc).read_text("utf-8")):
            assert named.rstrip("/") in tracked | folders, f"{doc} names {named}"


def test_the_readme_lists_every_command_and_leads_from_the_demo_to_an_office_of_ones_own():
    import argparse

    from learnhours.cli.parser import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Commands") :].split("\n## ")[0]
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert [c for c in commands.choices if f"`learnhours {c}" not in table] == []
    after_demo = readme[: readme.index("## Commands")]
    assert "learnhours init" in after_demo and "docs/operations.md" in after_demo


def test_every_field_a_file_is_read_into_has_the_words_a_clerk_knows_it_by():
    """A column is named to the clerk by its label (欄位對應, a refused row's column): a field
    without one showed its English name, as 職稱→title did."""
    from learnhours.extractors.kinds import KINDS
    from learnhours.transforms.field_labels import FIELD_LABELS

    fields = {f for kind in KINDS for f in kind.columns.values()}
    assert sorted(f for f in fields if f not in FIELD_LABELS) == []
