"""Plans as data: the shipped plans load, and a typo in a plan is an error naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnhours.cli import main
from learnhours.plans import PlanError, find_plan, load_plan, plan_files

REQUIREMENT_IDS = ["total", "policy", "environment", "democracy", "gender"]
CODES = {
    "policy": {501},
    "environment": {*range(337, 346), 267, 268, 278, 336},
    "gender": {*range(386, 414), 516, 517},
}
CODES["democracy"] = CODES["gender"] | {502, 503, 504, 505, 7}

GOOD = """\
id: test-plan
name: 測試計畫
agency: 測試機關
period: {start: 2023-01-01, end: 2023-12-31}
deadline: 2023-12-31
population: [編制內]
requirements:
  - id: total
    name: 年度學習時數
    codes: all
    minimum: 20
reminders:
  stages: [30, 7]
"""


def _write(tmp_path: Path, text: str, name: str = "test-plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("plan_id", ["hsinchu-city-2023", "miaoli-zhunan-2018", "national-2026"])
def test_shipped_plans_have_the_five_requirements_with_domain_codes(plan_id):
    plan = find_plan(plan_id)
    assert [r.id for r in plan.requirements] == REQUIREMENT_IDS
    assert plan.requirements[0].codes == "all"
    for r in plan.requirements[1:]:
        assert set(r.codes) == CODES[r.id], r.id


def test_every_plan_file_loads():
    assert {p.stem for p in plan_files()} >= {"hsinchu-city-2023", "miaoli-zhunan-2018", "national-2026"}
    for path in plan_files():
        assert load_plan(path).id == path.stem


def test_good_plan_loads(tmp_path):
    assert load_plan(_write(tmp_path, GOOD)).requirements[0].target(False) == 20


def test_misspelt_key_is_an_error_naming_line_and_field(tmp_path):
    path = _write(tmp_path, GOOD.replace("    minimum: 20", "    minimun: 20"))
    with pytest.raises(PlanError) as err:
        load_plan(path)
    message = str(err.value)
    assert "第 11 行 requirements.0.minimun" in message
    # the missing `minimum` is reported too, at its requirement
    assert "requirements.0.minimum" in message


def test_duplicate_key_is_an_error_not_a_silent_override(tmp_path):
    path = _write(tmp_path, GOOD.replace("    minimum: 20", "    minimum: 20\n    minimum: 2"))
    with pytest.raises(PlanError, match=r"第 12 行 requirements\.0\.minimum"):
        load_plan(path)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("codes: all", "codes: [501, 345-337]", "第 10 行 requirements.0.codes"),
        ("codes: all", "codes: [政策]", "第 10 行 requirements.0.codes"),
        ("minimum: 20", "minimum: -1", "第 11 行 requirements.0.minimum"),
        ("population: [編制內]", "population: [正式]", "第 6 行 population.0"),
        ("deadline: 2023-12-31", "deadline: 2024-01-31", "(整份計畫)"),
        ("deadline: 2023-12-31", "deadline: 2023-02-30", "第 5 行 deadline"),
        ("  stages: [30, 7]", "  stages: [30, 30]", "第 13 行 reminders.stages"),
    ],
)
def test_bad_values_name_line_and_field(tmp_path, old, new, where):
    with pytest.raises(PlanError) as err:
        load_plan(_write(tmp_path, GOOD.replace(old, new)))
    assert where in str(err.value)


def test_role_figures_reject_unknown_role(tmp_path):
    text = GOOD.replace("minimum: 20", "minimum: {supervisor: 20, others: 20}")
    with pytest.raises(PlanError, match="requirements.0.minimum.others"):
        load_plan(_write(tmp_path, text))


def test_z6_bundle_must_match_its_annex_once_filled(tmp_path):
    bundle = (
        "bundle:\n  name: 組裝課程\n  course_count: 2\n  total_hours: 3\n  courses:\n"
        "    - {code: A1, name: 甲, hours: 1}\n"
    )
    with pytest.raises(PlanError, match="course_count 寫 2 門"):
        load_plan(_write(tmp_path, GOOD + bundle))


def test_z6_empty_bundle_loads_with_a_warning():
    assert any("尚未列出課程" in w for w in find_plan("miaoli-zhunan-2018").warnings())


def test_file_name_and_id_must_agree(tmp_path):
    _write(tmp_path, GOOD, name="other-name.yaml")
    with pytest.raises(PlanError, match="檔名為 other-name"):
        find_plan("other-name", tmp_path)


def test_plan_check_command_reports_the_line(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("    minimum: 20", "    minimun: 20"))
    assert main(["plan", "check", str(path)]) == 2
    assert "第 11 行" in capsys.readouterr().err
    assert main(["plan", "check", "plans/miaoli-zhunan-2018.yaml"]) == 0
    out = capsys.readouterr().out
    assert "cedaw（CEDAW教育訓練）" in out and "⚠" in out
