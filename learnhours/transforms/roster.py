"""Turn one roster (人員名冊) row into a person, or say why not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from learnhours.transforms.records import Problem, RowReader, clean

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


def normalize_person(fields: dict[str, object], attributes: dict[str, str] | None = None) -> Person:
    """A roster row as a person; `attributes`: the row's cells of columns the product has no
    field for, kept as written (cleaned of stray spaces) for plans to use."""
    row = RowReader(fields, gregorian=False)
    pid = row.person_id()
    name = row.text("name", required=True)
    unit = row.text("unit", required=True)
    category = row.text("person_category", required=True).replace("約雇", "約僱")
    supervisor = row.text("supervisor").upper()
    if supervisor not in ("", "Y", "N", "是", "否"):
        row.problems.append(Problem("supervisor", supervisor, "主管欄應為 Y 或 N"))
    email = row.text("email") or None
    if email and not _EMAIL.match(email):
        row.problems.append(Problem("email", email, "電子郵件格式不正確"))
    if "\n" in name or "\r" in name:
        row.problems.append(Problem("name", name, "姓名含換行字元"))
    dates = {f: row.date(f) for f in ("hired_on", "left_on", "leave_from", "leave_to")}
    agency_code = row.text("agency_code").upper()
    if agency_code and not _AGENCY_CODE.match(agency_code):
        row.problems.append(
            Problem("agency_code", agency_code, "機關代碼應為英文字母與數字（如 379680000A）")
        )
    row.check()
    return Person(
        person_id=pid,
        name=name,
        unit=unit,
        title=row.text("title"),
        is_supervisor=supervisor in ("Y", "是"),
        category=category,
        email=email,
        attributes={k: clean(v) for k, v in (attributes or {}).items() if clean(v)},
        agency=row.text("agency"),
        agency_code=agency_code,
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
