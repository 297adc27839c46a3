"""Turn one raw row of any record kind into a normalized learning record, or say why not."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

from learnhours.taipei import roc
from learnhours.transforms.dates import DateError, parse_date
from learnhours.transforms.field_labels import FIELD_LABELS
from learnhours.transforms.hours import (
    HOURS_PLACES,
    TOTAL_UNITS,
    HoursError,
    attendance_reason,
    base_quantity,
    digital_share,
    elearning_reason,
    hours_over_limit,
    learning_mode,
    parse_duration,
    parse_hours,
    zero_hours_reason,
)
from learnhours.transforms.ids import is_valid_id, mask_id, normalize_id


@dataclass(frozen=True)
class Problem:
    field: str
    value: str
    reason: str

    @property
    def column(self) -> str:
        return FIELD_LABELS.get(self.field, self.field)


class RowRejected(Exception):
    """A row refused whole. `person_id` is its 身分證字號 when that one is valid (the row failed for
    another reason), so the refusal can be shown to the person's HR clerk; None otherwise."""

    def __init__(self, problems: list[Problem], person_id: str | None = None) -> None:
        super().__init__("; ".join(p.reason for p in problems))
        self.problems = problems
        self.person_id = person_id


def clean(value: object) -> str:
    """NFKC (full-width digits), no &nbsp;, no stray spaces."""
    if value is None:
        return ""
    if type(value) is str:
        # NFKC leaves ASCII alone; names and course titles repeat, so the rest is cached.
        return value.strip() if value.isascii() else _clean_text(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).replace("\xa0", " ").strip()


@lru_cache(maxsize=16384)
def _clean_text(value: str) -> str:
    return unicodedata.normalize("NFKC", value).replace("\xa0", " ").strip()


# Export files repeat the same few dates, hour figures and IDs thousands of times: parse each once.
_parse_date_text = lru_cache(maxsize=4096)(parse_date)
_parse_hours_text = lru_cache(maxsize=1024)(partial(parse_hours, places=HOURS_PLACES))
_SCORES = frozenset({"score", "pass_mark"})  # numbers too, but not hours: any precision


_PASS_MARK = re.compile(r"(\d+(?:\.\d+)?)\s*分")


@lru_cache(maxsize=65536)
def _checked_id(value: str) -> tuple[str, bool]:
    pid = normalize_id(value)
    return pid, is_valid_id(pid)


class RowReader:
    """Field access that collects every problem of a row instead of stopping at the first.

    Shared by every row kind (learning records here, the roster in roster.py): each reads its
    fields through it and calls check() once, which refuses the row listing all its problems.
    """

    def __init__(self, fields: dict[str, object], gregorian: bool) -> None:
        self.fields = fields
        self.gregorian = gregorian
        self.problems: list[Problem] = []
        self.valid_id: str | None = None  # set by person_id() when the ID passes its checksum

    def text(self, field: str, *, required: bool = False) -> str:
        value = clean(self.fields.get(field))
        if required and not value:
            self.problems.append(
                Problem(field, "", f"必填欄位「{FIELD_LABELS.get(field, field)}」空白")
            )
        return value

    def date(self, field: str) -> date | None:
        raw = self.fields.get(field)
        try:
            if type(raw) is str:
                return _parse_date_text(raw, gregorian=self.gregorian)
            return parse_date(raw, gregorian=self.gregorian)
        except DateError as exc:
            self.problems.append(Problem(field, clean(raw), f"{FIELD_LABELS[field]}{exc}"))
            return None

    def hours(self, field: str) -> Decimal | None:
        """An hours figure (HOURS_PLACES decimals at most), or a score with `places=None`."""
        value = self.fields.get(field)
        try:
            if field in _SCORES:
                return parse_hours(value)
            if type(value) is str:
                return _parse_hours_text(value)
            return parse_hours(value, places=HOURS_PLACES)
        except HoursError as exc:
            self.problems.append(
                Problem(field, clean(self.fields.get(field)), f"{FIELD_LABELS[field]}：{exc}")
            )
            return None

    def pass_mark(self) -> Decimal | None:
        """及格分數 as a number, or as the course page writes it: `課程測驗：80分(含)以上`."""
        value = clean(self.fields.get("pass_mark"))
        match = _PASS_MARK.search(value)
        try:
            return parse_hours(match.group(1) if match else value)
        except HoursError as exc:
            self.problems.append(Problem("pass_mark", value, f"及格分數：{exc}"))
            return None

    def duration(self, field: str) -> Decimal | None:
        try:
            return parse_duration(self.fields.get(field))
        except HoursError as exc:
            self.problems.append(
                Problem(field, clean(self.fields.get(field)), f"{FIELD_LABELS[field]}：{exc}")
            )
            return None

    def person_id(self) -> str:
        raw = self.fields.get("person_id")
        pid, valid = _checked_id(raw if type(raw) is str else clean(raw))
        if not pid:
            self.problems.append(Problem("person_id", "", "必填欄位「身分證字號」空白"))
        elif not valid:
            # The value itself is personal data: keep only its masked form.
            masked = mask_id(pid) if len(pid) == 10 else "（格式不符）"
            self.problems.append(Problem("person_id", masked, "身分證字號格式或檢查碼錯誤"))
        else:
            self.valid_id = pid
        return pid

    def shown(self, field: str, value: dt.date) -> str:
        """A date cell as the file wrote it (text), or in ROC words for a real date cell (.xlsx)."""
        raw = self.fields.get(field)
        return clean(raw) if isinstance(raw, str) else roc(value)

    def check(self) -> None:
        if self.problems:
            raise RowRejected(self.problems, self.valid_id)

    def reject(self, problem: Problem) -> RowRejected:
        """The refusal of this row for one problem found after check()."""
        return RowRejected([problem], self.valid_id)


class Record(NamedTuple):
    """One normalized learning record (a warehouse row without lineage).

    A named tuple, not a dataclass: a million of these are made per large file, and a frozen
    dataclass costs several times more to build.
    """

    person_id: str
    course_key: str
    session: str
    start_date: date
    end_date: date
    name: str
    course_code: str | None
    course_name: str
    category_code: int | None
    quantity: Decimal
    unit: str
    zero_reason: str | None
    mode: str | None  # 學習性質: digital | physical | blended, when the source says it
    digital_share: Decimal  # the share of the hours learned digitally (hours.digital_share)
    digest: str
    # 服務機關代碼 as the source gives it (revision 0008): checked against the roster's agency.
    # Not in the digest: a record is the same learning whichever agency's export brought it.
    agency_code: str | None = None
    # 開課機關 as the source gives it (revision 0011): what a requirement's organizer filter reads.
    # Not in the digest either: the same learning, whoever's export named its organizer.
    organizer: str | None = None


def _normalize_row(
    fields: dict[str, object],
    *,
    gregorian: bool,
    required: tuple[str, ...],
    online: bool = False,
) -> Record:
    """The rules applied field by field: the reference the cached path in normalize_record follows."""
    row = RowReader(fields, gregorian)
    pid = row.person_id()
    for field in required:
        if field not in ("person_id",):
            row.text(field, required=True)
    name = row.text("name")
    course_name = row.text("course_name")
    course_code = row.text("course_code") or None
    session = row.text("session")
    category_text = row.text("category_code")
    category: int | None = None
    if category_text:
        if category_text.isdigit():
            category = int(category_text)
        else:
            row.problems.append(
                Problem("category_code", category_text, f"課程類別代碼「{category_text}」應為數字")
            )

    course_start, course_end = row.date("course_start"), row.date("course_end")
    class_start, class_end = row.date("class_start"), row.date("class_end")
    start = class_start or course_start
    end = class_end or course_end
    if (
        start is None
        and end is None
        and not any(p.field.endswith(("_start", "_end")) for p in row.problems)
    ):
        row.problems.append(Problem("class_end", "", "沒有上課或開課日期"))
    elif start and end and end < start:
        # Name the columns and quote the cells as written: the clerk fixes them in the source file.
        start_field = "class_start" if class_start else "course_start"
        end_field = "class_end" if class_end else "course_end"
        shown_start, shown_end = row.shown(start_field, start), row.shown(end_field, end)
        row.problems.append(
            Problem(
                end_field,
                shown_end,
                f"{FIELD_LABELS[end_field]}「{shown_end}」早於"
                f"{FIELD_LABELS[start_field]}「{shown_start}」",
            )
        )

    certified = row.hours("certified_hours")
    digital, physical = row.hours("digital_hours"), row.hours("physical_hours")
    total_count = row.hours("total_count")
    unit_text = row.text("total_unit") or "1"
    total_unit = TOTAL_UNITS.get(unit_text)
    if total_unit is None:
        row.problems.append(
            Problem("total_unit", unit_text, "訓練總數單位應為 1（小時）、2（天）或 6（學分）")
        )
    score, pass_mark = row.hours("score"), row.pass_mark()
    reading, required_reading = row.duration("reading_time"), row.duration("required_reading")
    row.check()

    base = base_quantity(certified, digital, physical, total_count, total_unit or "hour")
    if base is None:
        raise row.reject(
            Problem("hours", "", "沒有任何時數（認證時數、數位/實體時數、訓練總數皆空白）")
        )
    quantity, unit = base
    start = start or end
    end = end or start
    assert start is not None and end is not None  # a row without either was refused above
    over = hours_over_limit(certified, digital, physical, total_count, unit, start, end)
    if over is not None:
        field, value, why = over
        raise row.reject(Problem(field, clean(fields[field]) if field in fields else value, why))

    hours_for_attendance = quantity if unit == "hour" else Decimal(0)
    reason: str | None = attendance_reason(row.text("attendance"), hours_for_attendance)
    if "questionnaire" in fields or "reading_time" in fields:
        reason = reason or elearning_reason(
            score, pass_mark, reading, required_reading, row.text("questionnaire")
        )
    if not reason and quantity == 0:
        # Kept as a 0 h record, but with words for `explain` and the data, like any other 0 h.
        parsed = (("certified_hours", certified), ("digital_hours", digital),
                  ("physical_hours", physical), ("total_count", total_count))  # fmt: skip
        reason = zero_hours_reason({FIELD_LABELS[f]: v for f, v in parsed if f in fields})
    mode = learning_mode(row.text("mode"))
    share = digital_share(mode, digital, physical, online=online)
    head = _digest_head(
        course_code, course_name, category, quantity, unit, reason, end, mode, share
    )
    return Record(
        person_id=pid,
        course_key=f"code:{course_code}" if course_code else f"name:{course_name}",
        session=session,
        start_date=start,
        end_date=end,
        name=name,
        course_code=course_code,
        course_name=course_name,
        category_code=category,
        quantity=quantity,
        unit=unit,
        zero_reason=reason,
        mode=mode,
        digital_share=share,
        digest=hashlib.sha1(head + name.encode()).hexdigest(),
        agency_code=agency_code(fields.get("agency_code")),
        organizer=clean(fields.get("organizer")) or None,
    )


def agency_code(value: object) -> str | None:
    """An agency code as the warehouse keeps it: `379680000a ` -> `379680000A`; blank -> None."""
    text = clean(value).upper()
    return text or None


def _digest_head(
    course_code: str | None, course_name: str, category: int | None, quantity: Decimal,
    unit: str, reason: str | None, end: date, mode: str | None, share: Decimal,
) -> bytes:  # fmt: skip
    """The digest's input but the name, which comes last: what a correction changes.

    The last field, empty before revision 0007, is the learning mode and the digital share when
    the source gives them: a correction of the 數位/實體 split is a correction too.
    """
    before, after = _digest_around_end(
        course_code, course_name, category, quantity, unit, reason, mode, share
    )
    return before + end.isoformat().encode() + after


def _digest_around_end(
    course_code: str | None, course_name: str, category: int | None, quantity: Decimal,
    unit: str, reason: str | None, mode: str | None, share: Decimal,
) -> tuple[bytes, bytes]:  # fmt: skip
    """_digest_head's bytes before and after the end date (the only part that varies among one
    course's attendees)."""
    split = f"{mode or ''}:{share}" if mode or share else ""
    values = (course_code or "", course_name, str(category), str(quantity), unit, reason or "")
    return ("\x1f".join(values) + "\x1f").encode(), ("\x1f" + split).encode()


def normalize_record(
    fields: dict[str, object], *, gregorian: bool, required: tuple[str, ...], online: bool = False
) -> Record:
    """Apply rules 1-3 and 5's key to one row. Raises RowRejected listing every problem found."""
    normalize = record_maker(tuple(fields), gregorian, required, online=online)
    return Record._make(normalize(tuple(fields.values())))


class _Course(NamedTuple):
    """What a row's course cells decide, whoever attended and whenever they did."""

    key: tuple  # (course key, session)
    course_start: date | None  # 開課起迄, for a row that leaves its class dates blank
    course_end: date | None
    # (certified, digital, physical, total count, unit): the per-day limit's input
    counts: tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None, str]
    middle: tuple  # the row between the name and the digest: course code .. digital share
    tail: tuple  # after the agency code: the organizer, then whatever the caller's convert adds
    digest: tuple[bytes, bytes]  # _digest_head's bytes before and after the end date
    never_over: bool  # within 24 h even on one day: no span of days can be over the limit


# Distinct course sessions remembered (a few hundred bytes each): bounds memory on huge files. A
# national month's export holds tens of thousands; when full, the older half is forgotten, so the
# courses still being attended stay.
_COURSE_CACHE_SIZE = 65536
_NAME_AT, _DIGEST_AT = Record._fields.index("name"), Record._fields.index("digest")
_AGENCY_AT = Record._fields.index("agency_code")
assert _AGENCY_AT == _DIGEST_AT + 1  # the row is rebuilt as (..., digest, agency, *tail)
# Cells each attendee has their own of (an e-learning course is finished on each person's own day,
# with their own score; 登錄日期 is the portal's): read per row, not part of the course's key.
# 登錄日期 is not read at all; a score only counts where e-learning rules read it (questionnaire).
_PER_ROW_DATES = ("class_start", "class_end")
_UNREAD = ("registered_on",)
_parse_score_text = lru_cache(maxsize=1024)(parse_hours)


def _as_record(record: Record) -> tuple:
    return record


class _RecordMaker:
    """Rows of one column layout -> records, remembering each distinct set of course cells.

    An export repeats the same course session (code, dates, hours, attendance) for every person who
    attended: those cells are validated once; per row only the ID, the name, the class dates and
    the score are read, through the same parsers. A row whose course cells were never seen, or
    whose own cells fail or raise any question (a date that is not one, an end before the start,
    more hours than its days hold), takes _normalize_row, which also supplies every rejection, so
    problems are found and worded in one place only.

    Called with the row's values in `names` order; gives convert(record): a tuple in Record's field
    order (the caller may change the values' types and append values of its own).
    """

    def __init__(self, names: tuple[str, ...], gregorian: bool, required: tuple[str, ...],
                 convert, online: bool = False) -> None:  # noqa: ANN001  # fmt: skip
        self.names, self.gregorian, self.required = names, gregorian, required
        self.online = online
        self.convert = convert
        self.courses: dict[tuple, _Course] = {}
        self.fast = "person_id" in names and "name" in names
        if not self.fast:
            return
        self.pid_at, self.name_at = names.index("person_id"), names.index("name")
        # The person's own cells (ID, name, agency code) are read per row; the rest is the course.
        self.agency_at = names.index("agency_code") if "agency_code" in names else None
        self.start_at, self.end_at = (
            names.index(f) if f in names else None for f in _PER_ROW_DATES
        )
        elearning = "questionnaire" in names or "reading_time" in names
        self.score_at = names.index("score") if "score" in names and not elearning else None
        own = {self.pid_at, self.name_at, self.agency_at, self.start_at, self.end_at,
               self.score_at, *(names.index(f) for f in _UNREAD if f in names)}  # fmt: skip
        rest = [i for i in range(len(names)) if i not in own]
        self.rest_at = tuple(rest)  # the course's cells (ingest.columns groups rows by them)
        self.rest = (
            itemgetter(*rest) if len(rest) > 1 else lambda values: tuple(values[i] for i in rest)
        )
        self.name_required = "name" in required
        # A required class date left blank is the plain path's to refuse.
        self.dates_required = tuple(
            at
            for f, at in zip(_PER_ROW_DATES, (self.start_at, self.end_at), strict=True)
            if at is not None and f in required
        )
        self.iso: bool | None = None  # whether convert writes dates as ISO text (the drivers do)

    def __call__(self, values: tuple) -> tuple:
        if not self.fast:
            return self._plain(values)
        rest = self.rest(values)
        try:
            "".join(rest)  # only all-text rows are remembered: 1 == 1.0 == True as dict keys
        except TypeError:
            return self._plain(values)
        course = self.courses.get(rest)
        if course is not None:
            row = self._cached(course, values)
            if row is not None:
                return row
        record = self._record(values)
        row = self.convert(record)
        if course is None:
            self._remember(rest, values, record, row)
        return row

    def _cached(self, course: _Course, values: tuple) -> tuple | None:
        """The row from the course's cells and the person's own, or None if anything about the
        person's cells needs _normalize_row's full reading."""
        raw_pid = values[self.pid_at]
        if type(raw_pid) is not str:
            return None
        pid, valid = _checked_id(raw_pid)
        name = clean(values[self.name_at])
        if not valid or not (name or not self.name_required):
            return None
        if any(not clean(values[at]) for at in self.dates_required):
            return None
        try:
            start = self._date(self.start_at, values) or course.course_start
            end = self._date(self.end_at, values) or course.course_end
            if self.score_at is not None and values[self.score_at]:
                _parse_score_text(values[self.score_at])
        except (DateError, HoursError, TypeError):
            return None
        if start is None and end is None:
            return None
        if start is not None and end is not None and end < start:
            return None
        start = start or end
        end = end or start
        assert start is not None and end is not None
        if not course.never_over and hours_over_limit(*course.counts, start, end) is not None:
            return None
        before, after = course.digest
        end_iso = end.isoformat()
        digest = hashlib.sha1(before + end_iso.encode() + after + name.encode()).hexdigest()
        agency = None if self.agency_at is None else agency_code(values[self.agency_at])
        dates = (start.isoformat(), end_iso) if self.iso else (start, end)
        return (pid, *course.key, *dates, name, *course.middle, digest, agency, *course.tail)

    def _date(self, at: int | None, values: tuple) -> date | None:
        if at is None:
            return None
        raw = values[at]
        if type(raw) is not str:
            raise TypeError  # a spreadsheet cell: the plain path reads it
        return _parse_date_text(raw, gregorian=self.gregorian)

    def _remember(self, rest: tuple, values: tuple, r: Record, row: tuple) -> None:
        """Keep what the course's cells decided (the row just made passed every check)."""
        fields = dict(zip(self.names, values, strict=True))
        reader = RowReader(fields, self.gregorian)
        course_start, course_end = reader.date("course_start"), reader.date("course_end")
        certified, digital = reader.hours("certified_hours"), reader.hours("digital_hours")
        physical, total = reader.hours("physical_hours"), reader.hours("total_count")
        if reader.problems:
            return
        if len(self.courses) >= _COURSE_CACHE_SIZE:
            for old in list(islice(self.courses, max(1, len(self.courses) // 2))):
                del self.courses[old]
        self.iso = isinstance(row[3], str)
        day = r.end_date
        self.courses[rest] = _Course(
            (r.course_key, r.session), course_start, course_end,
            (certified, digital, physical, total, r.unit),
            tuple(row[_NAME_AT + 1 : _DIGEST_AT]), tuple(row[_AGENCY_AT + 1 :]),
            _digest_around_end(r.course_code, r.course_name, r.category_code, r.quantity,
                               r.unit, r.zero_reason, r.mode, r.digital_share),
            hours_over_limit(certified, digital, physical, total, r.unit, day, day) is None,
        )  # fmt: skip

    def _record(self, values: tuple) -> Record:
        fields = dict(zip(self.names, values, strict=True))
        return _normalize_row(
            fields, gregorian=self.gregorian, required=self.required, online=self.online
        )

    def _plain(self, values: tuple) -> tuple:
        return self.convert(self._record(values))


@lru_cache(maxsize=64)
def record_maker(
    names: tuple[str, ...],
    gregorian: bool,
    required: tuple[str, ...],
    convert=_as_record,  # noqa: ANN001
    *,
    online: bool = False,
) -> _RecordMaker:
    """The normalizer of one column layout (see _RecordMaker), made once per layout and convert.

    `online`: the file is a learning platform's own records (e等公務園+), digital unless it says
    otherwise."""
    return _RecordMaker(names, gregorian, required, convert, online)
