"""Check an installation's own mail templates before a night depends on them: each file is one
the product renders, reads as UTF-8 and Jinja2, and every notice renders with it on sample
people of the plan (a misspelt variable fails here, at start-up, not in the night's mail)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError

from learnhours.notifiers.digest_history import Standing
from learnhours.notifiers.drafts import Context, Recipient
from learnhours.notifiers.record_lists import Held, RecordBook
from learnhours.notifiers.reminders import digest_message, reminder_message
from learnhours.notifiers.render import TEMPLATE_NAMES, Templates
from learnhours.notifiers.summaries import Rollup, rollup_drafts, summary_drafts
from learnhours.plans import Plan
from learnhours.transforms.compiled_rules import judge
from learnhours.transforms.compliance import Member
from learnhours.transforms.explain import RejectedLine, StoredRecord
from learnhours.transforms.judged_results import agencies_of, people_of, units_of
from learnhours.transforms.judging_frames import members_frame, sums_frame

_SAMPLE_SENDER = "人事室 <hr@example.invalid>"
_SAMPLE_HR = ("hr@example.invalid",)


def check_templates(folder: Path | None, plans: Iterable[Plan]) -> list[str]:
    """What is wrong with the templates in `folder`, in words naming the file and line (an empty
    list: nothing, or no folder set). Every plan's notices are rendered once with them."""
    if folder is None:
        return []
    if not folder.is_dir():
        return [f"{folder}：找不到郵件範本資料夾（設定 templates_dir / LEARNHOURS_TEMPLATES_DIR）"]
    found = Templates(folder)
    problems = []
    for path in found.overrides():
        if path.name not in TEMPLATE_NAMES:
            problems.append(
                f"{path}：不是可覆寫的範本名稱（檔名打錯時不會生效）；可覆寫：{'、'.join(TEMPLATE_NAMES)}"
            )
            continue
        try:
            found.env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
        except UnicodeDecodeError:
            problems.append(f"{path}：不是 UTF-8 文字檔；請以 UTF-8 另存")
        except TemplateSyntaxError as exc:
            problems.append(f"{path} 第 {exc.lineno} 行：範本語法錯誤（{exc.message}）")
        except OSError as exc:
            problems.append(f"{path}：無法讀取（{exc.strerror or exc}）")
    if problems:
        return problems
    for plan in plans:
        problems += _trial(found, plan)
    return list(dict.fromkeys(problems))


def sample_notices(found: Templates, plan: Plan) -> list[tuple[str, Callable[[], object]]]:
    """Each kind of notice of `plan` written with `found` on sample people, as (template, a call
    that renders it): what a trial renders, and what a test can read."""
    stage = max(plan.reminders.stages)
    # A day of the plan's first reminder stage: the trial renders the same whatever the clock.
    today = max(plan.period.start, plan.period.end - timedelta(days=stage))
    population = sorted(plan.population) or ["編制內"]
    people = [
        Member(pid, name, "示範課", head, population[0], None, None, None,
               f"{pid.lower()}@example.invalid", title, "示範機關", code)
        for pid, name, head, title, code in (
            ("A123456789", "王小明", True, "課長", "A000000001"),
            ("B223456789", "林小華", False, "課員", "A000000001"),
            ("C123456789", "陳大同", False, "課員", "A000000002"),
        )
    ]  # fmt: skip
    sample = members_frame([m for m in people if plan.binds(m)] or people)
    frame = judge(plan, today, sample, sums_frame(plan, {}, {}), bound_only=False)
    units = units_of(plan, frame)
    agencies = agencies_of(plan, frame, units)
    judged = people_of(plan, frame, units, agencies)
    ctx = Context(plan, today, today, "", _SAMPLE_SENDER, _SAMPLE_HR, True, found)
    hr = [Recipient(a, a) for a in _SAMPLE_HR]
    short = [p for p in judged if p.status == "short"] or judged
    quality: dict[str, list] = {
        "rejected": [("範例.csv", 2, "身分證字號", "A12****789", "身分證字號格式或檢查碼錯誤")],
        "unknown": ["範例（1 筆）"],
        "unreminded": ["名冊上沒有電子郵件：1 人（名單見資料品質「未達成且無電子郵件」）"],
        "no_address_short": ["範例（示範課）"],
        "no_address_met": [],
        "bad_address": [],
        "failed": [],
        "other_agency": [],
    }
    sent = ["同仁提醒（截止前 30 天）：1 封"]
    # The unit's last digest a month ago, one of its people short then.
    then = {units[0].key: Standing(stage, today - timedelta(days=30), units[0].headcount, 1,
                                   frozenset({"B223456789"}))}  # fmt: skip
    return [
        ("reminder", lambda: reminder_message(ctx, short[0], stage, "a@example.invalid",
                                              records=_sample_records(today))),
        ("digest", lambda: digest_message(ctx, units[0], judged, stage, judged[0],
                                          {p.member.person_id: "今晚已寄提醒" for p in short},
                                          "a@example.invalid", history=then)),
        ("digest", lambda: digest_message(ctx, units[0], judged, stage, judged[0], {},
                                          "a@example.invalid", history={})),
        ("summary", lambda: summary_drafts(ctx, hr, judged, units, quality, sent,
                                           agency=agencies[0], records={}, attachments=())),
        ("summary", lambda: summary_drafts(ctx, hr, judged, units, quality, [],
                                           complete_on=plan.period.end)),
        ("rollup", lambda: rollup_drafts(ctx, hr, Rollup.of(agencies, {}, judged), quality,
                                         sent)),
    ]  # fmt: skip


def _sample_records(today: date) -> RecordBook:
    """A reminded person's records as the warehouse gives them: one counted, one ended too
    recently to be surely registered, one not counted, and a refused row carrying their ID."""

    def record(name: str, code: int, hours: int, ended: date, zero: str | None = None) -> StoredRecord:
        return StoredRecord(None, name, "1", code, ended, ended, Decimal(hours), "hour", zero,
                            "agency_export", "範例.csv", 2, 1, 1)  # fmt: skip

    held = Held(
        [
            record("當前政府重大政策", 501, 2, today - timedelta(days=60)),
            record("環境教育", 339, 3, today - timedelta(days=1)),
            record("公文寫作", 12, 3, today - timedelta(days=30), "請假超過課程時數三分之一"),
        ],
        [RejectedLine("範例.csv", 3, "上課結束日期", "日期格式錯誤")],
    )
    return RecordBook(lambda ids: {pid: held for pid in ids})


def _trial(found: Templates, plan: Plan) -> list[str]:
    """Render each kind of notice of `plan` with `found`; the problems met, in words."""
    problems = []
    for kind, attempt in sample_notices(found, plan):
        try:
            attempt()
        except (TemplateError, TypeError, ValueError, AttributeError) as exc:
            where = _where(found, exc.__traceback__) or f"{kind}.txt / {kind}.html"
            problems.append(f"{where}：{_words(exc)}")
    return problems


def _where(found: Templates, tb: TracebackType | None) -> str:
    """The override file and line a rendering failed in, from the traceback Jinja2 rewrites
    with the template's own lines."""
    folder = str(found.folder) if found.folder else None
    last = ""
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if folder and name.startswith(folder):
            last = f"{name} 第 {tb.tb_lineno} 行"
        tb = tb.tb_next
    return last


_UNDEFINED = re.compile(r"'(?P<name>[^']+)' is undefined")
_NO_ATTRIBUTE = re.compile(
    r"'(?:[\w.]+\.)?(?P<kind>[^'.]+?)(?: object)?' has no attribute '(?P<name>[^']+)'"
)


def _words(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        text = exc.message or ""
        if found := _UNDEFINED.search(text):
            what = f"沒有變數「{found['name']}」"
        elif found := _NO_ATTRIBUTE.search(text):
            what = f"{found['kind']} 沒有屬性「{found['name']}」"
        else:
            what = text
        return f"用到範本沒有的變數或屬性：{what}；可用的變數見 docs/templates.md"
    return f"試寫範例信失敗（{type(exc).__name__}：{exc}）"
