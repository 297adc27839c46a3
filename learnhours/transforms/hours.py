"""How many hours a record earns: DOMAIN "How the product counts", rules 1-3."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from learnhours.plain_hours import plain
from learnhours.taipei import roc

ZERO = Decimal(0)

# The plausibility check at load knows no plan, so it converts days and credits with the default
# factors (plans.py: hours_per_day 6, hours_per_credit 18); counting uses the plan's own.
MAX_HOURS_A_DAY = Decimal(24)
DEFAULT_HOURS_PER = {"hour": Decimal(1), "day": Decimal(6), "credit": Decimal(18)}
_UNIT_WORDS = {"day": "天", "credit": "學分"}

# 訓練總數單位 code -> our unit; day and credit are turned into hours by the plan's factors.
TOTAL_UNITS = {
    "1": "hour",
    "小時": "hour",
    "2": "day",
    "天": "day",
    "6": "credit",
    "學分": "credit",
}

_ABSENCE_WORDS = ("事假", "病假", "喪假", "請假", "缺課", "公假", "婚假", "產假")
_ABSENT_HOURS = re.compile(r"共\s*(\d+(?:\.\d+)?)\s*(小時|時|分鐘|分)")


class HoursError(ValueError):
    """A cell that should hold hours but does not."""


# What a number cell may hold: digits with an optional decimal point. Decimal() itself takes more
# (`1_0` is 10, `1e1`, `NaN`): never what a clerk meant.
_PLAIN_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")
# Hours are kept to the hundredth (the warehouse's numeric(8, 2)); a finer figure is refused, not
# rounded behind the clerk's back. Trailing zeros (`3.000`) are fine.
HOURS_PLACES = 2


def parse_hours(
    text: object, *, allow_empty: bool = True, places: int | None = None
) -> Decimal | None:
    """`1.5`, `３`, `2 小時` -> Decimal; empty -> None; negative or non-numeric -> HoursError.

    `places`: the most decimal places the value may have (hours: HOURS_PLACES). A spreadsheet's
    number is read as Excel shows it (15 significant digits: 0.1 + 0.2 is 0.3).
    """
    if isinstance(text, float):
        text = format(text, ".15g")
    shown = unicodedata.normalize("NFKC", str(text if text is not None else "")).strip()
    value = shown.removesuffix("小時").strip()
    if not value:
        if allow_empty:
            return None
        raise HoursError("時數空白")
    if value.startswith("-") and _PLAIN_NUMBER.fullmatch(value[1:].strip()):
        raise HoursError(f"時數不可為負數（{shown}）")
    if not _PLAIN_NUMBER.fullmatch(value):
        raise HoursError(f"「{shown}」不是數字")
    try:
        hours = Decimal(value)
    except InvalidOperation:
        raise HoursError(f"「{shown}」不是數字") from None
    if places is not None and hours != hours.quantize(Decimal(1).scaleb(-places)):
        raise HoursError(
            f"「{shown}」的小數超過 {places} 位；時數最小記到 0.{'0' * (places - 1)}1 小時"
        )
    return hours


def parse_duration(text: object) -> Decimal | None:
    """閱讀時數 `H:MM:SS` (or plain hours) -> hours as Decimal."""
    value = unicodedata.normalize("NFKC", str(text or "")).strip()
    if not value:
        return None
    if ":" in value:
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
            raise HoursError(f"「{value}」不是時間長度，應如 1:30:00")
        h, m, *s = (int(p) for p in parts)
        seconds = h * 3600 + m * 60 + (s[0] if s else 0)
        return (Decimal(seconds) / 3600).quantize(Decimal("0.0001"))
    return parse_hours(value)


def base_quantity(
    certified: Decimal | None,
    digital: Decimal | None,
    physical: Decimal | None,
    total_count: Decimal | None,
    total_unit: str,
) -> tuple[Decimal, str] | None:
    """Rule 1: 認證時數 when > 0; else 數位 + 實體; else 訓練總數 in its unit. None if nothing given."""
    if certified is not None and certified > 0:
        return certified, "hour"
    if (digital or ZERO) + (physical or ZERO) > 0:
        return (digital or ZERO) + (physical or ZERO), "hour"
    if total_count is not None and total_count > 0:
        return total_count, total_unit
    if (
        certified is not None
        or digital is not None
        or physical is not None
        or total_count is not None
    ):
        return ZERO, "hour"
    return None


def zero_hours_reason(given: dict[str, Decimal | None]) -> str:
    """Why a record with no positive hours earns 0 h, naming its hour columns (label -> value)."""
    blank = [label for label, value in given.items() if value is None]
    zero = [label for label, value in given.items() if value is not None]
    parts = []
    if blank:
        parts.append(f"{'、'.join(blank)}空白")
    if zero:
        parts.append(f"{'、'.join(zero)}{'皆' if len(zero) > 1 else ''}為 0")
    return f"時數為 0：{'，'.join(parts)}"


# 學習性質 as the portal codes it (DOMAIN: 1 數位, 2 實體, 3 混成), or in words.
LEARNING_MODES = {
    "1": "digital",
    "數位": "digital",
    "2": "physical",
    "實體": "physical",
    "3": "blended",
    "混成": "blended",
}
SHARE = Decimal("0.0001")


def learning_mode(text: str) -> str | None:
    """digital | physical | blended, or None when the cell is empty or says something else."""
    return LEARNING_MODES.get(text.strip())


def digital_share(
    mode: str | None, digital: Decimal | None, physical: Decimal | None, *, online: bool
) -> Decimal:
    """The share (0 to 1) of a record's hours that were learned digitally.

    数位時數 and 實體時數 say it when given; else the 學習性質: 數位 is all digital, 實體 none;
    a platform's own records (e等公務園+) are digital. A blended course without the split, or a
    record that says nothing, counts as not digital: a digital minimum is never met on a guess.
    """
    d, p = digital or ZERO, physical or ZERO
    if d + p > 0:
        return (d / (d + p)).quantize(SHARE)
    if mode == "digital" or (online and mode is None):
        return Decimal(1)
    return ZERO


class _Span:
    """The course period in words, made only when a refusal is worded."""

    def __init__(self, start: date, end: date, days: int, limit: Decimal) -> None:
        self.start, self.end, self.days, self.limit = start, end, days, limit

    def __format__(self, _spec: str) -> str:
        return (
            f"課程期間 {roc(self.start)}至{roc(self.end)} 共 {self.days} 天，每天最多 24 小時，"
            f"合計上限 {plain(self.limit)} 小時"
        )


def hours_over_limit(
    certified: Decimal | None,
    digital: Decimal | None,
    physical: Decimal | None,
    total_count: Decimal | None,
    unit: str,
    start: date,
    end: date,
) -> tuple[str, str, str] | None:
    """(field, value, reason) when a record claims more than 24 h per calendar day of its span.

    Follows base_quantity to name the cell the hours came from. None when plausible.
    """
    days = (end - start).days + 1
    limit = MAX_HOURS_A_DAY * days
    # Worded only for a refusal: the check runs on every row of a file.
    span = _Span(start, end, days, limit)
    if certified is not None and certified > 0:
        if certified > limit:
            return (
                "certified_hours",
                plain(certified),
                f"認證時數 {plain(certified)} 小時超過上限：{span}",
            )
        return None
    digital, physical = digital or ZERO, physical or ZERO
    if digital + physical > 0:
        if digital + physical <= limit:
            return None
        if not digital or not physical:
            field, label = (
                ("physical_hours", "實體時數") if physical else ("digital_hours", "數位時數")
            )
            value = physical or digital
            return field, plain(value), f"{label} {plain(value)} 小時超過上限：{span}"
        shown = f"{plain(digital)}+{plain(physical)}"
        return (
            "hours",
            shown,
            (
                f"數位時數 {plain(digital)} + 實體時數 {plain(physical)} = "
                f"{plain(digital + physical)} 小時超過上限：{span}"
            ),
        )
    if total_count is None or total_count <= 0:
        return None
    hours = total_count * DEFAULT_HOURS_PER[unit]
    if hours <= limit:
        return None
    if unit == "hour":
        claimed = f"{plain(total_count)} 小時"
    else:
        factor = plain(DEFAULT_HOURS_PER[unit])
        claimed = f"{plain(total_count)} {_UNIT_WORDS[unit]}（以每{_UNIT_WORDS[unit]} {factor} 小時計為 {plain(hours)} 小時）"
    return "total_count", plain(total_count), f"訓練總數 {claimed}超過上限：{span}"


def absent_hours(attendance: str) -> Decimal | None:
    """Hours of leave or absence written in 出勤上課狀況; 0 for 全勤 or empty; None if unstated."""
    text = unicodedata.normalize("NFKC", attendance or "").strip()
    if not text or text == "全勤":
        return ZERO
    stated = _ABSENT_HOURS.findall(text)
    if stated:
        return sum(
            (Decimal(n) / 60 if unit.startswith("分") else Decimal(n) for n, unit in stated), ZERO
        )
    if any(word in text for word in _ABSENCE_WORDS):
        return None
    return ZERO


def attendance_reason(attendance: str, course_hours: Decimal) -> str | None:
    """Rule 2 / H5: absent for more than a third of the course's hours -> the record earns 0 h."""
    absent = absent_hours(attendance)
    if absent is None or course_hours <= 0:
        return None
    if absent * 3 > course_hours:
        return f"缺課 {plain(absent)} 小時，超過課程時數 {plain(course_hours)} 小時的三分之一"
    return None


def elearning_reason(
    score: Decimal | None,
    pass_mark: Decimal | None,
    reading: Decimal | None,
    required_reading: Decimal | None,
    questionnaire: str,
) -> str | None:
    """Rule 3: an e-learning course counts only when test, reading time and questionnaire all pass."""
    failures = []
    if pass_mark is not None and (score is None or score < pass_mark):
        failures.append(
            f"測驗 {plain(score) if score is not None else '未作答'} 分，未達 {plain(pass_mark)} 分"
        )
    if required_reading is not None and (reading or ZERO) < required_reading:
        failures.append(
            f"閱讀時數 {plain(reading or ZERO)} 小時，未達應閱讀 {plain(required_reading)} 小時"
        )
    if questionnaire.strip() and questionnaire.strip() != "已填寫":
        failures.append("問卷未填寫")
    return "；".join(failures) or None
