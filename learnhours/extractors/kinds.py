"""File kinds as data: a header signature plus a column map. A new export shape is a table entry."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


def normalize_header(cell: object) -> str:
    """`＊身分證字號 ` -> `身分證字號`: NFKC, no spaces, no required-marker asterisk."""
    text = unicodedata.normalize("NFKC", str(cell or "")).replace("\xa0", "")
    return "".join(text.split()).lstrip("*")


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

AGENCY_EXPORT = FileKind(
    name="agency_export",
    label="機關學習紀錄匯出檔",
    signature=frozenset({"身分證字號", "姓名", "課程名稱", "課程類別代碼"}),
    columns={
        "身分證字號": "person_id",
        "姓名": "name",
        "服務機關代碼": "agency_code",
        "服務機關": "agency",
        "課程代碼": "course_code",
        "課程名稱": "course_name",
        "期別": "session",
        "開課機關": "organizer",
        "課程類別代碼": "category_code",
        "學習性質": "mode",
        "數位時數": "digital_hours",
        "實體時數": "physical_hours",
        "認證時數": "certified_hours",
        "開課起始日期": "course_start",
        "開課結束日期": "course_end",
        "上課起始日期": "class_start",
        "上課結束日期": "class_end",
        "訓練成績": "score",
        "出勤上課狀況": "attendance",
        "登錄日期": "registered_on",
    },
    required=(*_RECORD_REQUIRED, "category_code"),
)

BATCH_UPLOAD = FileKind(
    name="batch_upload",
    label="終身學習入口網站批次上傳檔（25欄）",
    signature=frozenset({"身分證字號", "課程名稱", "實際上課起始日期", "訓練總數", "訓練總數單位"}),
    columns={
        "身分證字號": "person_id",
        "課程名稱": "course_name",
        "開課起始日期": "course_start",
        "開課結束日期": "course_end",
        "姓名": "name",
        "課程類別代碼": "category_code",
        "期別": "session",
        "訓練總數": "total_count",
        "訓練總數單位": "total_unit",
        "訓練成績": "score",
        "出勤上課狀況": "attendance",
        "學習性質": "mode",
        "數位時數": "digital_hours",
        "實體時數": "physical_hours",
        "課程代碼": "course_code",
        "實際上課起始日期": "class_start",
        "實際上課結束日期": "class_end",
    },
    required=(*_RECORD_REQUIRED, "category_code", "course_start", "course_end", "session"),
    unquoted="course_name",
)

BATCH_UPLOAD_19 = FileKind(
    name="batch_upload_19",
    label="終身學習入口網站批次上傳檔（舊版19欄）",
    signature=frozenset({"身分證字號", "名稱", "起始日期", "終迄日期", "訓練總數"}),
    columns={
        "身分證字號": "person_id",
        "名稱": "course_name",
        "起始日期": "course_start",
        "終迄日期": "course_end",
        "姓名": "name",
        "課程類別代碼": "category_code",
        "期別": "session",
        "訓練總數": "total_count",
        "訓練總數單位": "total_unit",
        "訓練成績": "score",
        "出勤上課狀況": "attendance",
        "學習性質": "mode",
        "數位時數": "digital_hours",
        "實體時數": "physical_hours",
        "課程代碼": "course_code",
    },
    required=(*_RECORD_REQUIRED, "category_code", "course_start", "course_end"),
    unquoted="course_name",
)

ENVIRONMENT_UPLOAD = FileKind(
    name="environment_upload",
    label="環境教育時數上傳檔",
    signature=frozenset({"身分證字號", "課程名稱", "課程方法代碼", "課程時數"}),
    columns={
        "學員所屬機關(構)代碼": "agency_code",
        "身分證字號": "person_id",
        "課程名稱": "course_name",
        "上課起始日期": "class_start",
        "姓名": "name",
        "課程類別代碼": "category_code",
        "期別": "session",
        "上課結束日期": "class_end",
        "課程時數": "total_count",
        "學習性質": "mode",
        "數位時數": "digital_hours",
        "實體時數": "physical_hours",
        "課程代碼": "course_code",
    },
    required=(*_RECORD_REQUIRED, "category_code", "class_start", "class_end"),
)

ELEARNING = FileKind(
    name="elearning",
    label="e等公務園+學習紀錄",
    signature=frozenset({"身分證字號", "課程名稱", "閱讀時數", "問卷狀態"}),
    columns={
        "身分證字號": "person_id",
        "姓名": "name",
        "課程代碼": "course_code",
        "課程名稱": "course_name",
        "課程類別代碼": "category_code",
        "認證時數": "certified_hours",
        "上課起始日期": "class_start",
        "上課結束日期": "class_end",
        "測驗分數": "score",
        "及格分數": "pass_mark",
        "閱讀時數": "reading_time",
        "應閱讀時數": "required_reading",
        "問卷狀態": "questionnaire",
    },
    required=(*_RECORD_REQUIRED, "certified_hours", "class_start", "class_end"),
    gregorian=True,
    online=True,
)

ROSTER = FileKind(
    name="roster",
    label="人員名冊",
    signature=frozenset({"身分證字號", "姓名", "單位", "人員類別"}),
    columns={
        "身分證字號": "person_id",
        "姓名": "name",
        "單位": "unit",
        # Where the person serves (a government's agencies and schools in one roster): a unit is
        # the agency's unit. Without these columns the roster is one agency, the plan's.
        "機關名稱": "agency",
        "機關": "agency",
        "服務機關": "agency",
        "機關代碼": "agency_code",
        "服務機關代碼": "agency_code",
        "職稱": "title",
        "主管": "supervisor",
        "人員類別": "person_category",
        "到職日期": "hired_on",
        "離職日期": "left_on",
        "留職停薪起日": "leave_from",
        "留職停薪迄日": "leave_to",
        "電子郵件": "email",
    },
    required=("person_id", "name", "unit", "person_category"),
    is_roster=True,
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

# Most specific first: the agency export's signature is a subset of several others'.
KINDS: tuple[FileKind, ...] = (
    CONTACTS,
    ELEARNING,
    ENVIRONMENT_UPLOAD,
    BATCH_UPLOAD,
    BATCH_UPLOAD_19,
    ROSTER,
    AGENCY_EXPORT,
)


def detect_kind(header: list[str]) -> FileKind | None:
    present = set(header)
    return next((kind for kind in KINDS if kind.signature <= present), None)
