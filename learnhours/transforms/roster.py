"""Turn one roster (人員名冊) row into a person, or say why not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from learnhours.transforms.records import Problem, RowReader, clean
from learnhours.transforms.roster_codes import Meaning

# The staff kinds most plans bind; a roster may carry any other (工友, 技工, 教師, 工讀生 …): each
# plan's population says whom it binds.
CATEGORIES = ("編制內", "約聘", "約僱", "臨時")
_AGENCY_CODE = re.compile(r"^[0-9A-Z]{1,16}$")
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class Person:
    person_id: str
    name: str
    unit: str
    title: str
    is_supervisor: bool
    category: str
    hired_on: date | None
    left_on: date | None
    leave_from: date | None
    leave_to: date | None
    email: str | None
    attributes: dict[str, str]  # the roster's other columns by header (職等, 職務, 角色 …)
    agency: str = ""  # 機關名稱; "" when the roster has no agency column
    agency_code: str = ""  # 機關代碼, upper case
    supervisor_level: int | None = None  # 主管級別: 1 the highest (一級主管)
    unit_head: bool | None = None  # the roster's 單位主管 mark; None: not stated
    status: str = ""  # 在職狀態 without dates (留職停薪, 借調, 離職 …); "" in service
    leave_kind: str = ""  # the leave period's kind (延長病假, 公傷假 …); "": 留職停薪


@dataclass(frozen=True)
class Coded:
    """One code cell of a roster row: its code set, the code as written, what it means (None: the
    code tables do not know it)."""

    column: str
    code: str
    meaning: Meaning | None


_YES, _NO = ("Y", "是", "1", "TRUE", "V"), ("N", "否", "0", "FALSE", "")
_LEVEL = re.compile(r"^(?:第)?([0-9]+|[一二三四五六七八九])\s*(?:級)?")
_NUMERALS = {c: i for i, c in enumerate("一二三四五六七八九", start=1)}
_RANK = re.compile(r"(委任|薦任|簡任|荐任)?\s*第?\s*([0-9]+|[一二三四五六七八九十]+)\s*職等")


def _numeral(text: str) -> int:
    if text.isdigit():
        return int(text)
    if text.startswith("十"):
        return 10 + _NUMERALS.get(text[1:], 0)
    return _NUMERALS[text]


def _flag(row: RowReader, field: str, label: str) -> bool | None:
    value = row.text(field).upper()
    if value in _YES:
        return True
    if value in _NO:
        return None if not value else False
    row.problems.append(Problem(field, value, f"{label}欄應為 Y 或 N"))
    return None


def supervisor_level(text: str) -> tuple[bool, int | None]:
    """主管級別 `一級主管`, `2`, `二級` -> (a supervisor, level); empty, `0`, `00`, `無`, `非主管`:
    not one. HR systems write a code where the person is a supervisor and leave it empty where
    not (a police system pays the supervisor's allowance on exactly that), or pad a 0."""
    text = text.strip()
    if text in ("", "無", "否", "N", "非主管"):
        return False, None
    match = _LEVEL.match(text)
    level = _numeral(match.group(1)) if match else None
    if level == 0:
        return False, None
    return True, level


def rank_grade(text: str) -> tuple[str, int | None]:
    """`薦任第九職等` -> ("薦任", 9); `第9職等` -> ("", 9); other text -> ("", None)."""
    match = _RANK.search(text)
    if not match:
        return "", None
    grade = _numeral(match.group(2))
    return (match.group(1) or "").replace("荐", "薦"), grade if 1 <= grade <= 14 else None


def normalize_person(
    fields: dict[str, object],
    attributes: dict[str, str] | None = None,
    coded: tuple[Coded, ...] = (),
) -> Person:
    """A roster row as a person; `attributes`: the row's cells of columns the product has no
    field for, kept as written (cleaned of stray spaces) for plans to use; `coded`: its code
    cells (現職區分, 人員區分 …) with what the code tables say they mean.

    The staff category is the 人員類別 column when written, else the first code that names one;
    a supervisor is 主管 Y, a 主管級別, or a code that says so.
    """
    row = RowReader(fields, gregorian=False)
    pid = row.person_id()
    name = row.text("name", required=True)
    # A roster without a unit column (a training body's template): the agency is the unit.
    if "unit" in fields:
        unit = row.text("unit", required=True)
    else:
        unit = row.text("agency") or row.text("agency_code").upper() or "（未分單位）"
    title = row.text("title")
    known = [c.meaning for c in coded if c.meaning is not None]
    rank, grade = rank_grade(row.text("rank_text"))
    category = row.text("person_category").replace("約雇", "約僱")
    if not category:
        category = next((m.category_for(title) for m in known if m.category), "")
    if not category and rank:
        category = "編制內"  # 委任/薦任/簡任 第N職等: a civil servant of the establishment
    if not category and "person_category" in fields and not coded:
        row.text("person_category", required=True)  # the plain roster: 必填欄位「人員類別」空白
    elif not category:
        unknown = [c for c in coded if c.meaning is None and c.code]
        named = "、".join(f"{c.column}「{c.code}」" for c in unknown)
        row.problems.append(
            # Under the code column when a code is the cause: the clerk finds the cell.
            Problem(unknown[0].column, unknown[0].code, f"代碼表沒有{named}，無法判斷人員類別")
            if unknown
            else Problem(
                "person_category",
                "",
                "無法判斷人員類別：「人員類別」空白，也沒有可對照的代碼（如 現職區分）",
            )
        )
    supervisor = _flag(row, "supervisor", "主管")
    is_level, level = supervisor_level(row.text("supervisor_level"))
    if supervisor is None:
        by_code = next((m.supervisor for m in known if m.supervisor is not None), None)
        supervisor = is_level or bool(by_code)
    email_field = "email" if row.text("email") else "email_other"
    email = row.text(email_field) or None
    if email and not _EMAIL.match(email):
        row.problems.append(Problem(email_field, email, "電子郵件格式不正確"))
    if "\n" in name or "\r" in name:
        row.problems.append(Problem("name", name, "姓名含換行字元"))
    dates = {f: row.date(f) for f in ("hired_on", "left_on", "leave_from", "leave_to")}
    agency_code = row.text("agency_code").upper()
    if agency_code and not _AGENCY_CODE.match(agency_code):
        row.problems.append(
            Problem("agency_code", agency_code, "機關代碼應為英文字母與數字（如 379680000A）")
        )
    status = next((m.status for m in known if m.status), "")
    if _flag(row, "resigned", "是否離職") or _flag(row, "serving", "是否為現職") is False:
        status = "離職"
    unit_head = _flag(row, "unit_head", "單位主管")
    row.check()
    kept = {k: clean(v) for k, v in (attributes or {}).items() if clean(v)}
    # What the codes say, for plans' conditions (職等 >= 9), unless the roster has its own column.
    grade = grade or next((m.grade for m in known if m.grade), None)
    rank = rank or next((m.rank for m in known if m.rank), "")
    if grade and "職等" not in kept:
        kept["職等"] = str(grade)
    if rank and "官等" not in kept:
        kept["官等"] = rank
    return Person(
        person_id=pid,
        name=name,
        unit=unit,
        title=title,
        is_supervisor=supervisor,
        category=category,
        email=email,
        attributes=kept,
        agency=row.text("agency"),
        agency_code=agency_code,
        supervisor_level=level,
        unit_head=unit_head,
        status=status,
        leave_kind=row.text("leave_kind"),
        **dates,
    )


@dataclass(frozen=True)
class Contact:
    """An agency's HR contact (人事聯絡名單): the addresses its own summary goes to."""

    agency_code: str
    agency: str
    hr_addresses: tuple[str, ...]

    @property
    def agency_key(self) -> str:
        return self.agency_code or self.agency


def normalize_contact(fields: dict[str, object]) -> Contact:
    """A contacts row: an agency (its code, or its name) and one or more addresses, separated
    by `;`, `,`, `、` or spaces."""
    row = RowReader(fields, gregorian=False)
    code = row.text("agency_code").upper()
    agency = row.text("agency")
    if code and not _AGENCY_CODE.match(code):
        row.problems.append(
            Problem("agency_code", code, "機關代碼應為英文字母與數字（如 379680000A）")
        )
    if not code and not agency:
        row.problems.append(Problem("agency_code", "", "應填機關代碼或機關名稱"))
    written = row.text("hr_addresses", required=True)
    addresses = tuple(a for a in re.split(r"[;,，、\s]+", written) if a)
    bad = [a for a in addresses if not _EMAIL.match(a)]
    if bad:
        row.problems.append(Problem("hr_addresses", bad[0], "電子郵件格式不正確"))
    row.check()
    return Contact(code, agency, addresses)
