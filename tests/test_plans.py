"""Plans as data: the shipped plans load, and a typo in a plan is an error naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnhours.cli import main
from learnhours.plans import SHIPPED_PLANS, Plan, PlanError, find_plan, load_plan, plan_files

REQUIREMENT_IDS = ["total", "policy", "environment", "democracy", "gender"]
CODES = {
    "policy": {501},
    "environment": {*range(337, 346), 267, 268, 278, 336},
    "gender": {*range(386, 414), 516, 517},
}
CODES["democracy"] = CODES["gender"] | {502, 503, 504, 505, 7}

# Line numbers in the cases below count from the top of this text.
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
  - id: gender
    name: 性別主流化
    codes: [386-413]
    minimum: 2
reminders:
  stages: [30, 7]
  sender: 人事室 <hr@test.gov.tw>
"""
TIERS = """\
outcomes:
  - {text: 嘉獎2次, when: bundle_completed}
unit_tiers:
  - text: 單位主管嘉獎2次
    min_rate: 0.9
    counts: bundle_and_requirements
    average_at_least: {gendr: 2}
"""  # appended to GOOD: lines 19-25
BUNDLE = """\
bundle:
  name: 組裝課程
  course_count: 2
  total_hours: 3
  courses:
    - {code: A1, name: 甲, hours: 1}
"""  # appended to GOOD: lines 19-24


def _write(tmp_path: Path, text: str, name: str = "test-plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str, name: str = "test-plan.yaml") -> list[str]:
    """The problem lines of the PlanError a plan text raises, without the header naming the file."""
    with pytest.raises(PlanError) as err:
        load_plan(_write(tmp_path, text, name), 2027)
    header, *lines = str(err.value).split("\n")
    assert header.endswith(f"計畫檔有 {len(lines)} 個問題：")
    return [line.strip() for line in lines]


@pytest.mark.parametrize("plan_id", ["hsinchu-city-2023", "miaoli-zhunan-2018", "national-2026"])
def test_shipped_plans_have_the_five_requirements_with_domain_codes(plan_id):
    plan = find_plan(plan_id)
    assert [r.id for r in plan.requirements] == REQUIREMENT_IDS
    assert plan.requirements[0].codes == "all"
    for r in plan.requirements[1:]:
        assert set(r.codes) == CODES[r.id], r.id


def test_every_plan_file_loads():
    assert {p.stem for p in plan_files()} >= {"hsinchu-city-2023", "miaoli-zhunan-2018", "national"}
    for path in plan_files():
        plan = load_plan(path, 2031)
        assert plan.id == (f"{path.stem}-2031" if plan.recurs else path.stem)


def test_libyaml_reads_every_shipped_plan_as_pyyaml_does_node_for_node():
    """Plans are read with libyaml's parser, for speed: the data, and the line of every node the
    clerk's messages point at, are PyYAML's own."""
    import yaml

    from learnhours.plans.files import _parsed
    from learnhours.plans.messages import FastPlanLoader, PlanLoader

    def lines(node):
        children = node.value if isinstance(node.value, list) else []
        flat = [c for pair in children for c in (pair if isinstance(pair, tuple) else (pair,))]
        return [(node.tag, node.start_mark.line, node.end_mark.line), *(x for c in flat for x in lines(c))]

    paths = [*plan_files(), *sorted((SHIPPED_PLANS / "examples").glob("*.yaml"))]
    assert len(paths) > 10 and FastPlanLoader.__mro__[1] is yaml.CSafeLoader
    for path in paths:
        text = path.read_text(encoding="utf-8")
        (fast, fast_data), (slow, slow_data) = _parsed(text, FastPlanLoader), _parsed(text, PlanLoader)
        assert fast_data == slow_data and lines(fast) == lines(slow), path


def test_good_plan_loads(tmp_path):
    assert load_plan(_write(tmp_path, GOOD)).requirement("gender").target(False) == 2


# One row per kind of mistake: what the clerk wrote instead, and the exact lines they read back.
FIELD_MISTAKES = [
    pytest.param(
        "    minimum: 2\n",
        "    minimun: 2\n",
        [
            "第 12 行 requirements[gender].minimum：缺少必填欄位「minimum」",
            "第 15 行 requirements[gender].minimun：不認得的欄位「minimun」，是否為「minimum」？",
        ],
        id="misspelt-key-suggests-the-field",
    ),
    pytest.param(
        "period: {start: 2023-01-01, end: 2023-12-31}",
        "period: {start: 2023-01-01, end: 2023-12-31, foo: 1}",
        ["第 4 行 period.foo：不認得的欄位「foo」；這裡可寫：start、end"],
        id="unknown-key-lists-the-fields",
    ),
    pytest.param(
        "agency: 測試機關\n",
        "",
        ["第 1 行 agency：缺少必填欄位「agency」"],
        id="missing-top-level-field",
    ),
    pytest.param(
        "deadline: 2023-12-31",
        "deadline: 2023-02-30",
        ["第 5 行 deadline：應為日期（YYYY-MM-DD），但寫的是「2023-02-30」（沒有這一天）"],
        id="impossible-date",
    ),
    pytest.param(
        "deadline: 2023-12-31",
        "deadline: 年底",
        ["第 5 行 deadline：應為日期（YYYY-MM-DD），但寫的是「年底」"],
        id="not-a-date",
    ),
    pytest.param(
        "stages: [30, 7]",
        "stages: [30, 7.5]",
        ["第 17 行 reminders.stages[第 2 項]：應為整數，但寫的是「7.5」"],
        id="not-an-integer-counts-items-from-1",
    ),
    pytest.param(
        "minimum: 20",
        "minimum: 二十",
        ["第 11 行 requirements[total].minimum：應為數字，但寫的是「二十」"],
        id="not-a-number-once-not-per-role",
    ),
    pytest.param(
        "minimum: 20",
        "minimum:",
        ["第 11 行 requirements[total].minimum：沒有填值"],
        id="empty-value",
    ),
    pytest.param(
        "minimum: 20",
        "minimum: -1",
        ["第 11 行 requirements[total].minimum：應大於或等於 0，但寫的是「-1」"],
        id="negative-hours",
    ),
    pytest.param(
        "minimum: 20",
        "minimum: {supervisor: 20, others: 20}",
        [
            "第 11 行 requirements[total].minimum.other：缺少必填欄位「other」",
            "第 11 行 requirements[total].minimum.others：不認得的欄位「others」，是否為「other」？",
        ],
        id="unknown-role",
    ),
    pytest.param(
        "    codes: all\n",
        "    codes: all\n    mode: online\n",
        [
            "第 11 行 requirements[total].mode：應為下列之一：「digital」、「physical」，但寫的是「online」"
        ],
        id="not-one-of-the-choices",
    ),
    pytest.param(
        "population: [編制內]",
        "population: 編制內",
        ["第 6 行 population：應為清單，如 [a, b]，但寫的是「編制內」"],
        id="not-a-list",
    ),
    pytest.param(
        "population: [編制內]",
        "population: []",
        ["第 6 行 population：至少要寫 1 項"],
        id="empty-list",
    ),
    pytest.param(
        "codes: all",
        "codes: [501, 345-337]",
        ["第 10 行 requirements[total].codes：「345-337」不是代碼區間，應如 337-345"],
        id="reversed-code-range",
    ),
    pytest.param(
        "codes: all",
        "codes: [政策]",
        ["第 10 行 requirements[total].codes：「政策」不是類別代碼（應為數字）"],
        id="code-not-a-number",
    ),
    pytest.param(
        "- id: gender",
        "- id: Gender",
        [
            "第 12 行 requirements[Gender].id："
            "只能用小寫英文、數字與底線，並以英文字母開頭，如 gender，但寫的是「Gender」"
        ],
        id="id-pattern",
    ),
    pytest.param(
        "  stages: [30, 7]",
        "  stages: [30, 30]",
        ["第 17 行 reminders.stages：stages 應為不重複的非負天數，如 [60, 30, 14, 7]"],
        id="repeated-stage",
    ),
    pytest.param(
        "    minimum: 2\n",
        "    minimum: 2\n    minimum: 3\n",
        ["第 16 行 requirements[gender].minimum：同一層重複寫了「minimum」，第 15 行已經寫過"],
        id="key-written-twice-not-a-silent-override",
    ),
    pytest.param(
        "period: {start: 2023-01-01, end: 2023-12-31}",
        "period: {start: 2023-12-31, end: 2023-01-01}",
        ["第 4 行 period.end：早於 start（2023-12-31），但寫的是「2023-01-01」"],
        id="period-backwards",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), FIELD_MISTAKES)
def test_plan_field_mistake_is_named_in_chinese_at_its_line(tmp_path, old, new, expected):
    assert old in GOOD
    assert _problems(tmp_path, GOOD.replace(old, new, 1)) == expected


# Checks across fields: each points at the line of the field to fix, never at the top of the file.
MODEL_MISTAKES = [
    pytest.param(
        GOOD.replace("- id: gender", "- id: total"),
        ["第 12 行 requirements[第 2 項].id：id「total」重複：第 1 項已經用過"],
        id="duplicate-requirement-id-at-the-repeat",
    ),
    pytest.param(
        GOOD.replace("deadline: 2023-12-31", "deadline: 2024-01-31"),
        ["第 5 行 deadline：應在 period 之內（2023-01-01 至 2023-12-31），但寫的是「2024-01-31」"],
        id="deadline-outside-period",
    ),
    pytest.param(
        GOOD.replace("deadline: 2023-12-31", "deadline: 2023-12-31\njudge_date: 2022-08-31"),
        [
            "第 6 行 judge_date：應在 period 之內（2023-01-01 至 2023-12-31），但寫的是「2022-08-31」"
        ],
        id="judge-date-outside-period",
    ),
    pytest.param(
        GOOD + TIERS,
        [
            "第 20 行 outcomes[第 1 項].when：「bundle_completed」要用到組裝課程，但計畫沒有 bundle",
            "第 24 行 unit_tiers[第 1 項].counts：「bundle_and_requirements」要用到組裝課程，但計畫沒有 bundle",
            "第 25 行 unit_tiers[第 1 項].average_at_least.gendr：沒有 id 為「gendr」的要求，是否為「gender」？",
        ],
        id="tiers-name-unknown-requirement-and-missing-bundle",
    ),
    pytest.param(
        GOOD + TIERS.replace("counts: bundle_and_requirements", "counts: mett") + BUNDLE,
        [
            "第 24 行 unit_tiers[第 1 項].counts："
            "應為下列之一：「met」、「bundle_and_requirements」、「bundle_or_requirements」，"
            "但寫的是「mett」，是否為「met」？",
            "第 25 行 unit_tiers[第 1 項].average_at_least.gendr：沒有 id 為「gendr」的要求，是否為「gender」？",
            "第 28 行 bundle.course_count：course_count 寫 2 門，courses 卻列了 1 門",
        ],
        id="bundle-present-but-annex-and-tier-wrong",
    ),
    pytest.param(
        GOOD
        + BUNDLE.replace("course_count: 2", "course_count: 1")
        + "    - {code: A1, name: 乙, hours: 2}\n",
        ["第 25 行 bundle.courses[第 2 項].code：code「A1」重複：第 1 項已經用過"],
        id="z6-bundle-course-code-twice",
    ),
    pytest.param(
        GOOD.replace(
            "    minimum: 2\n",
            "    minimum: 2\n    including: {id: total, name: x, codes: [393], minimum: 1}\n",
        ),
        ["第 16 行 requirements[gender].including.id：id「total」重複：第 1 項已經用過"],
        id="including-id-clashes",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_MISTAKES)
def test_plan_check_across_fields_points_at_the_offending_line(tmp_path, text, expected):
    assert _problems(tmp_path, text) == expected


def test_plan_every_problem_reported_at_once_a_bad_date_hides_nothing(tmp_path):
    text = (
        GOOD.replace("deadline: 2023-12-31", "deadline: 2023-02-30")
        .replace("- id: gender", "- id: total")
        .replace("    minimum: 20", "    minimun: 20")
        .replace("  stages: [30, 7]", "  stages: [30, 7]\n  contcat: 人事室")
    )
    assert _problems(tmp_path, text) == [
        "第 5 行 deadline：應為日期（YYYY-MM-DD），但寫的是「2023-02-30」（沒有這一天）",
        "第 8 行 requirements[第 1 項].minimum：缺少必填欄位「minimum」",
        "第 11 行 requirements[第 1 項].minimun：不認得的欄位「minimun」，是否為「minimum」？",
        "第 12 行 requirements[第 2 項].id：id「total」重複：第 1 項已經用過",
        "第 18 行 reminders.contcat：不認得的欄位「contcat」，是否為「contact」？",
    ]


def test_plan_messages_carry_no_pydantic_english(tmp_path):
    text = GOOD.replace("    minimum: 2\n", "    minimun: 2\n").replace(
        "stages: [30, 7]", "stages: [a]"
    )
    message = "\n".join(_problems(tmp_path, text))
    for english in ("Field required", "Extra inputs", "Input should", "valid integer"):
        assert english not in message


def test_plan_yaml_syntax_error_names_the_line(tmp_path):
    # PyYAML notices at the next line's `:`; the unclosed `[` is where the clerk should look.
    with pytest.raises(PlanError, match=r"第 8 行: YAML 格式錯誤，從第 6 行開始（常見原因"):
        load_plan(_write(tmp_path, GOOD.replace("population: [編制內]", "population: [編制內\n")))


def test_plan_built_in_code_still_checked_across_fields():
    with pytest.raises(ValueError, match=r"deadline：應在 period 之內"):
        Plan.model_validate(
            {
                "id": "x",
                "name": "x",
                "agency": "x",
                "period": {"start": "2023-01-01", "end": "2023-12-31"},
                "deadline": "2024-01-01",
                "population": ["編制內"],
                "reminders": {"stages": [7], "sender": "人事室 <hr@x.gov.tw>"},
                "requirements": [{"id": "total", "name": "x", "codes": "all", "minimum": 1}],
            }
        )


def test_z6_empty_bundle_loads_with_a_warning():
    assert any("尚未列出課程" in w for w in find_plan("miaoli-zhunan-2018").warnings())


def test_file_name_and_id_must_agree(tmp_path):
    _write(tmp_path, GOOD, name="other-name.yaml")
    with pytest.raises(PlanError, match="檔名為 other-name"):
        find_plan("other-name", tmp_path)


def test_plan_check_command_reports_the_line(tmp_path, capsys):
    path = _write(tmp_path, GOOD.replace("    minimum: 20", "    minimun: 20"))
    assert main(["plan", "check", str(path)]) == 2
    assert "第 11 行 requirements[total].minimun：不認得的欄位「minimun」，是否為「minimum」？" in (
        capsys.readouterr().err
    )
    assert main(["plan", "check", "plans/miaoli-zhunan-2018.yaml"]) == 0
    out = capsys.readouterr().out
    assert "cedaw（CEDAW教育訓練）" in out and "⚠" in out


def test_plan_error_example_in_docs_is_what_plan_check_prints(tmp_path):
    """docs/plans.md teaches the messages: its example is the national plan with four typos."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "plans.md").read_text(
        encoding="utf-8"
    )
    block = docs.split("$ learnhours plan check plans/test.yaml\n", 1)[1].split("```", 1)[0]
    shown = [line.strip() for line in block.splitlines()[1:]]
    lines = (SHIPPED_PLANS / "national.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[31] = lines[31].replace("minimum", "minimun")  # line 32: gender's minimum
    lines[20] = lines[20].replace("environment", "policy")  # line 21
    text = (
        "".join(lines)
        .replace("id: national", "id: test")
        .replace("deadline: 12-31", "deadline: 02-30")
        .replace("[337-345,", "[345-337,")
    )
    assert _problems(tmp_path, text, "test.yaml") == shown
