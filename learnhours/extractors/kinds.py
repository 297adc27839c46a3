"""File kinds as data: a header signature plus a column map. A new export shape is a table entry."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


def normalize_header(cell: object) -> str:
    """`＊身分證字號 ` -> `身分證字號`: NFKC, no spaces, no required-marker asterisk.

    HR systems' templates write instructions into header cells: `出生日期(yyyy/mm/dd)`, or a line
    break then `請填民國年7碼`. The name is the whole cell when that is a column the product knows,
    else the cell without a trailing bracketed note, else its first line.
    """
    text = unicodedata.normalize("NFKC", str(cell or "")).replace("\xa0", "")
    lines = [
        line for line in ("".join(part.split()).lstrip("*") for part in text.splitlines()) if line
    ]
    whole = "".join(lines)
    if len(lines) <= 1 and not whole.endswith(_CLOSING):
        return whole
    for candidate in (whole, _bare(whole), lines[0], _bare(lines[0])):
        if candidate in KNOWN_HEADERS:
            return candidate
    return _bare(lines[0]) or whole


_CLOSING = (")", "]", "】", "}")
_NOTE = re.compile(r"^(.+?)[(\[【{][^()\[\]【】{}]*[)\]】}]$")


def _bare(header: str) -> str:
    """`出生日期(yyyy/mm/dd)` -> `出生日期`; `學員所屬機關(構)代碼` stays (the note is not last)."""
    match = _NOTE.match(header)
    return match.group(1) if match else header


@dataclass(frozen=True)
class FileKind:
    name: str
    label: str  # what a clerk calls it
    signature: frozenset[str]  # headers that must all be present
    columns: dict[str, str]  # header -> field
    required: tuple[str, ...]  # fields a row cannot do without
    gregorian: bool = False  # dates are Gregorian (e-learning), not ROC
    online: bool = False  # a learning platform's own records: digital unless they say otherwise
    is_roster: bool = False
    is_contacts: bool = False  # agencies' HR contacts, not people nor records
    # The one column the kind's tools leave unquoted (DOMAIN: the portal batch upload quotes every
    # field but 課程名稱): a row wider than its header is rejoined there, if it then validates.
    unquoted: str | None = None

    # Or, for a kind whose columns go by many names (the roster): fields that must each have a
    # column under one of its names, and headers of which at least one must be present.
    signature_fields: frozenset[str] = frozenset()
    signature_any: frozenset[str] = frozenset()

    def matches(self, present: set[str]) -> bool:
        fields = {self.columns[h] for h in present if h in self.columns}
        return (
            self.signature <= present
            and self.signature_fields <= fields
            and (not self.signature_any or bool(self.signature_any & present))
        )

    def field_map(self, header: list[str]) -> dict[int, str]:
        """Column index -> field, for the columns this kind knows; unknown extras are ignored.

        Raises AmbiguousHeader when two columns give the same field (the same header twice, or
        two names of one field): which one holds the right value is not ours to pick.
        """
        found: dict[int, str] = {}
        first: dict[str, int] = {}
        for i, h in enumerate(header):
            field = self.columns.get(h)
            if field is None:
                continue
            if field in first:
                raise AmbiguousHeader(self, header, first[field], i)
            first[field] = i
            found[i] = field
        return found


class AmbiguousHeader(ValueError):
    """Two header cells that map to one field; the message names both columns."""

    def __init__(self, kind: FileKind, header: list[str], one: int, other: int) -> None:
        a, b = header[one], header[other]
        same = f"「{a}」出現兩次" if a == b else f"「{a}」與「{b}」是同一個欄位"
        super().__init__(
            f"標題列的第 {one + 1} 欄「{a}」與第 {other + 1} 欄「{b}」重複（{same}），"
            f"無法判斷該用哪一欄；請刪除或改名其中一欄後再匯入（{kind.label}）"
        )


_RECORD_REQUIRED = ("person_id", "name", "course_name")

# Every header of every record kind, and the field it holds: a header means the same field in
# every file that has it, so a kind's column map is the list of its headers (`_record_columns`).
_RECORD_COLUMNS: dict[str, str] = {
    "身分證字號": "person_id",
    "姓名": "name",
    "服務機關代碼": "agency_code",
    "學員所屬機關(構)代碼": "agency_code",
    "服務機關": "agency",
    "課程代碼": "course_code",
    "課程名稱": "course_name",
    "名稱": "course_name",  # the old 19-column batch upload
    "期別": "session",
    "開課機關": "organizer",
    "課程類別代碼": "category_code",
    "學習性質": "mode",
    "數位時數": "digital_hours",
    "實體時數": "physical_hours",
    "認證時數": "certified_hours",
    "訓練總數": "total_count",
    "課程時數": "total_count",
    "訓練總數單位": "total_unit",
    "開課起始日期": "course_start",
    "起始日期": "course_start",
    "開課結束日期": "course_end",
    "終迄日期": "course_end",
    "上課起始日期": "class_start",
    "實際上課起始日期": "class_start",
    "上課結束日期": "class_end",
    "實際上課結束日期": "class_end",
    "訓練成績": "score",
    "測驗分數": "score",
    "及格分數": "pass_mark",
    "出勤上課狀況": "attendance",
    "登錄日期": "registered_on",
    "閱讀時數": "reading_time",
    "應閱讀時數": "required_reading",
    "問卷狀態": "questionnaire",
}


def _record_columns(*headers: str) -> dict[str, str]:
    """A record kind's column map from its headers (each argument: names separated by spaces)."""
    return {h: _RECORD_COLUMNS[h] for names in headers for h in names.split()}


AGENCY_EXPORT = FileKind(
    name="agency_export",
    label="機關學習紀錄匯出檔",
    signature=frozenset({"身分證字號", "姓名", "課程名稱", "課程類別代碼"}),
    columns=_record_columns(
        "身分證字號 姓名 服務機關代碼 服務機關 課程代碼 課程名稱 期別 開課機關 課程類別代碼",
        "學習性質 數位時數 實體時數 認證時數 開課起始日期 開課結束日期 上課起始日期 上課結束日期",
        "訓練成績 出勤上課狀況 登錄日期",
    ),
    required=(*_RECORD_REQUIRED, "category_code"),
)

# The portal's batch upload, both versions: the old one names the course and its dates otherwise
# and has no class dates.
_BATCH_HEADERS = (
    "身分證字號 姓名 課程代碼 期別 課程類別代碼 學習性質 數位時數 實體時數 訓練總數 訓練總數單位",
    "訓練成績 出勤上課狀況",
)

BATCH_UPLOAD = FileKind(
    name="batch_upload",
    label="終身學習入口網站批次上傳檔（25欄）",
    signature=frozenset({"身分證字號", "課程名稱", "實際上課起始日期", "訓練總數", "訓練總數單位"}),
    columns=_record_columns(
        *_BATCH_HEADERS, "課程名稱 開課起始日期 開課結束日期 實際上課起始日期 實際上課結束日期"
    ),
    required=(*_RECORD_REQUIRED, "category_code", "course_start", "course_end", "session"),
    unquoted="course_name",
)

BATCH_UPLOAD_19 = FileKind(
    name="batch_upload_19",
    label="終身學習入口網站批次上傳檔（舊版19欄）",
    signature=frozenset({"身分證字號", "名稱", "起始日期", "終迄日期", "訓練總數"}),
    columns=_record_columns(*_BATCH_HEADERS, "名稱 起始日期 終迄日期"),
    required=(*_RECORD_REQUIRED, "category_code", "course_start", "course_end"),
    unquoted="course_name",
)

ENVIRONMENT_UPLOAD = FileKind(
    name="environment_upload",
    label="環境教育時數上傳檔",
    signature=frozenset({"身分證字號", "課程名稱", "課程方法代碼", "課程時數"}),
    columns=_record_columns(
        "學員所屬機關(構)代碼 身分證字號 姓名 課程代碼 課程名稱 期別 課程類別代碼",
        "學習性質 數位時數 實體時數 課程時數 上課起始日期 上課結束日期",
    ),
    required=(*_RECORD_REQUIRED, "category_code", "class_start", "class_end"),
)

ELEARNING = FileKind(
    name="elearning",
    label="e等公務園+學習紀錄",
    signature=frozenset({"身分證字號", "課程名稱", "閱讀時數", "問卷狀態"}),
    columns=_record_columns(
        "身分證字號 姓名 課程代碼 課程名稱 課程類別代碼 認證時數 上課起始日期 上課結束日期",
        "測驗分數 及格分數 閱讀時數 應閱讀時數 問卷狀態",
    ),
    required=(*_RECORD_REQUIRED, "certified_hours", "class_start", "class_end"),
    gregorian=True,
    online=True,
)

# What HR systems call each roster field (差勤 CPAPE05M views, WebHR, police and university HR
# exports, training bodies' templates): any of the names is read as the field. Columns not named
# here are kept as the person's attributes (職等, 職務, 現職區分 …) for plans to use.
_ROSTER_NAMES: dict[str, tuple[str, ...]] = {
    "person_id": (
        "身分證字號",
        "身分證號",
        "身份證字號",
        "身份證號",
        "身分證統一編號",
        "PEIDNO",
        "MZ_ID",
        "IDNO",
    ),
    "name": ("姓名", "中文姓名", "PENAME"),
    "unit": ("單位", "服務單位", "單位名稱", "實際服務單位", "UNIT_NAME"),
    # Where the person serves (a government's agencies and schools in one roster): a unit is
    # the agency's unit. Without these columns the roster is one agency, the plan's.
    "agency": ("機關名稱", "機關", "服務機關", "ORG_NAME"),
    "agency_code": ("機關代碼", "服務機關代碼", "PEORG"),
    "title": ("職稱", "職稱名稱", "TITLE"),
    "supervisor": ("主管", "是否主管", "主管註記"),
    "supervisor_level": ("主管級別", "PECHIEF"),
    "unit_head": ("單位主管", "是否為單位主管", "單位主管註記"),
    "person_category": ("人員類別", "人員類別名稱"),
    "rank_text": ("官職等", "現支官職等", "部定官職等", "薪俸職等", "CRKCOD_NAME"),
    "hired_on": ("到職日期", "到職日", "任職起日", "PEACTDATE"),
    "left_on": ("離職日期", "離職日", "離退職日期", "任職迄日", "PELEVDATE"),
    "leave_from": ("留職停薪起日", "停(薪)職日", "停薪職日", "停職日"),
    "leave_to": ("留職停薪迄日",),
    # The kind of that leave: 留職停薪 (and its reason, 進修 …), 延長病假, 公傷假, 停職 ….
    "leave_kind": ("留職停薪事由", "留職停薪原因", "留停事由", "留停原因", "停職事由", "假別"),
    "resigned": ("是否離職",),  # Y: gone
    "serving": ("是否為現職",),  # N: gone
    "changed_at": ("異動時間", "異動日期", "資料異動時間", "PEUPDATE"),
    "email": ("電子郵件", "公司Email", "公務Email", "公務電子郵件", "EMAIL"),
    "email_other": ("Email", "E-mail", "電子信箱"),  # read when the office address is empty
}

# The roster's staff category comes from 人員類別, or from a code column the code tables know
# (transforms/roster_codes.yaml: these are its shipped columns), or from 官職等 text.
ROSTER_CATEGORY_SOURCES = frozenset(
    {"人員類別", "人員類別名稱", "現職區分", "現職區分代碼", "官職等代碼", "職等代碼", "現支官職等代碼",
     "PECRKCOD", "PEMEMCOD", "職務類別代碼", "人員區分", "人員區分代碼", "任職別", "人員別",
     *_ROSTER_NAMES["rank_text"]}
)  # fmt: skip

ROSTER = FileKind(
    name="roster",
    label="人員名冊",
    signature=frozenset(),
    columns={name: f for f, names in _ROSTER_NAMES.items() for name in names},
    required=("person_id", "name"),
    is_roster=True,
    signature_fields=frozenset({"person_id", "name"}),
    signature_any=ROSTER_CATEGORY_SOURCES,
)

# Each agency's HR contact (a government's agencies and schools): where its own summary goes.
CONTACTS = FileKind(
    name="contacts",
    label="人事聯絡名單",
    signature=frozenset({"人事電子郵件"}),
    columns={
        "機關代碼": "agency_code",
        "機關名稱": "agency",
        "機關": "agency",
        "人事電子郵件": "hr_addresses",
    },
    required=("hr_addresses",),
    is_contacts=True,
)

# Most specific first: the agency export's signature is a subset of several others'. The roster
# comes last: a file with course columns is records, whatever else it carries.
KINDS: tuple[FileKind, ...] = (
    CONTACTS,
    ELEARNING,
    ENVIRONMENT_UPLOAD,
    BATCH_UPLOAD,
    BATCH_UPLOAD_19,
    AGENCY_EXPORT,
    ROSTER,
)

# Every header name some kind reads, and the roster's code columns: a header cell written with
# instructions is read as one of these when it contains one.
KNOWN_HEADERS = frozenset(
    {h for kind in KINDS for h in kind.columns} | ROSTER_CATEGORY_SOURCES | {"在職狀態", "職等"}
)


def detect_kind(header: list[str]) -> FileKind | None:
    present = set(header)
    return next((kind for kind in KINDS if kind.matches(present)), None)
