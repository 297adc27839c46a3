"""A reminder's list of the person's own records: read a group of short people at a time, in the
order the reminders are rendered (never a query per person, never a part's 100,000 people's
records at once), judged record by record as `learnhours explain` judges them, and written as a
clerk reads them: the most recent first, then a count of the rest."""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import Engine

from learnhours.notifiers.drafts import Context
from learnhours.plain_hours import plain
from learnhours.plans import CHANNEL_OF_KIND, Plan, TrackView, window_start
from learnhours.taipei import roc
from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.explain import RecordVerdict, RejectedLine, StoredRecord, judge_record
from learnhours.transforms.workdays import last_day_registered_in_time
from learnhours.warehouse import record_queries, rejection_queries

SHOWN = 10  # records listed of each kind (counted, not counted, refused); the rest are counted
GROUP = 500  # people whose records are read, and held, at once
MEMO = 100_000  # verdicts remembered at most (then forgotten, all at once)


@dataclass(frozen=True)
class Held:
    """One person's stored records (this year's) and the rejected rows carrying their ID."""

    records: Sequence[StoredRecord] = ()
    refused: Sequence[RejectedLine] = ()


# People's IDs -> what is held for each (one without any may be left out).
Reader = Callable[[Sequence[str]], Mapping[str, Held]]


class RecordBook:
    """Each reminded person's records, read `GROUP` people at a time in the order given by
    `expect` (the order their reminders are rendered in): only one group is held at once.

    `ahead`: the next group is read in a thread of its own while this one's reminders are
    rendered (the reader must then be one any thread may call: not an in-memory SQLite
    database's), so rendering does not wait on the database's reads of scattered records."""

    def __init__(self, read: Reader, group: int = GROUP, *, ahead: bool = False) -> None:
        self._read, self._group, self._ahead = read, group, ahead
        self._order: list[str] = []
        self._at: dict[str, int] = {}
        self._held: dict[str, Held] = {}
        self._next: _Reading | None = None  # the group after this one, being read
        self.reads = 0  # how many times the reader was asked (a test counts the queries)
        # A verdict by what it depends on: thousands take the same course, on days judged alike.
        self._verdicts: dict[tuple, RecordVerdict] = {}
        self._bounds: dict[tuple[str, date], tuple[date, ...]] = {}
        self._person_by_person: dict[str, bool] = {}

    def expect(self, order: Sequence[str]) -> None:
        """The people whose records will be asked for, in that order."""
        self._order = list(order)
        self._at = {pid: i for i, pid in enumerate(self._order)}
        self._held = {}
        self._next = None

    def of(self, person_id: str) -> Held:
        if person_id not in self._held:
            at = self._at.get(person_id)
            ids = self._order[at : at + self._group] if at is not None else [person_id]
            reading, self._next = self._next, None
            found = reading.result() if reading is not None and reading.ids == ids else None
            if found is None:
                found = self._read(ids)
                self.reads += 1
            self._held = {pid: found.get(pid, Held()) for pid in ids}
            if self._ahead and at is not None and at + self._group < len(self._order):
                self._next = _Reading(self._read, self._order[at + self._group : at + 2 * self._group])
                self.reads += 1
        return self._held[person_id]

    def judged(self, ctx: Context, p: PersonResult, r: StoredRecord) -> RecordVerdict:
        """`judge_record` for the person's record (`verdicts` of one)."""
        (found,) = self.verdicts(ctx, p, [r])
        if found.record is r:
            return found
        return RecordVerdict(r, found.hours, found.counts_for, found.why_not, found.left_out)

    def verdicts(
        self, ctx: Context, p: PersonResult, records: Sequence[StoredRecord]
    ) -> list[RecordVerdict]:
        """`judge_record` for each of the person's records, in order; the same course and hours
        on a track judged once for the days it judges alike (a requirement counted from each
        one's hire date is judged person by person). A verdict's `record` may be another
        person's, of the same course and hours on a day judged alike: the day and name a list
        shows are the record's own (`records`).

        A record's end date is judged only against the plan's and track's own days (the period,
        tonight, the counted-until day, each requirement's window and deadline: `_days`): a
        counted record's verdict is the same on every day between two of them; one not counted
        says its day in words and is judged per day."""
        track, today = p.track, ctx.today
        if track is None or self._per_person(track):
            return [judge_record(ctx.plan, r, today, track, p.member) for r in records]
        days = self._bounds.get((track.id, today))
        if days is None:
            days = self._bounds[(track.id, today)] = _days(ctx.plan, track, today)
        memo, out = self._verdicts, []
        for r in records:
            end = r.end_date
            key = (track.id, today, r.course_name, r.category_code, bisect_left(days, end),
                   bisect_right(days, end), r.quantity, r.unit, r.zero_reason, r.source_kind,
                   r.digital_share, r.organizer)  # fmt: skip
            found = memo.get(key)
            if found is _BY_DAY:
                found = memo.get((*key, end))
            if found is None:
                found = judge_record(ctx.plan, r, today, track, p.member)
                if len(memo) >= MEMO:
                    memo.clear()
                if found.why_not:
                    memo[key], memo[(*key, end)] = _BY_DAY, found
                else:
                    memo[key] = found
            out.append(found)
        return out

    def _per_person(self, track: TrackView) -> bool:
        found = self._person_by_person.get(track.id)
        if found is None:
            found = self._person_by_person[track.id] = any(c.per_person for c in track.checks)
        return found


# In the verdicts' memo: the days of this class are judged one by one (a verdict not counted).
_BY_DAY = RecordVerdict(StoredRecord(None, "", "", None, date.min, date.min, Decimal(0), "", None,
                                     "", "", 0, 0, 0), Decimal(0), (), "by day")  # fmt: skip


class _Reading:
    """One group's records read in a thread of its own; `result` waits for them (and raises
    what the reader raised)."""

    def __init__(self, read: Reader, ids: list[str]) -> None:
        self.ids = ids
        self._found: Mapping[str, Held] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(read,), daemon=True,
                                        name="learnhours-records")  # fmt: skip
        self._thread.start()

    def _run(self, read: Reader) -> None:
        try:
            self._found = read(self.ids)
        except BaseException as exc:  # raised where the records are asked for
            self._error = exc

    def result(self) -> Mapping[str, Held]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._found


def _days(plan: Plan, track: TrackView, today: date) -> tuple[date, ...]:
    """The days `judge_record` compares a record's end date with, for a track without a
    requirement counted from each one's own hire date: sorted."""
    years = max((c.years for c in track.checks), default=1)
    days = {plan.period.start, plan.period.end, today, track.counted_until,
            window_start(plan.period.start, years)}  # fmt: skip
    for c in track.checks:
        days.add(window_start(plan.period.start, c.years))
        if c.deadline is not None:
            days.add(c.deadline)
    return tuple(sorted(days))


def earliest_counted(plan: Plan) -> date | None:
    """The earliest course end a record of the plan can count with: its tracks' longest window
    (a requirement over two years reaches into last year); None when some requirement counts over
    each person's own window from their hire date (it may reach further back)."""
    starts = []
    for track in plan.track_views:
        if any(c.per_person for c in track.checks):
            return None
        years = max((c.years for c in track.checks), default=1)
        starts.append(window_start(plan.period.start, years))
    return min(starts, default=plan.period.start)


def any_thread_reads(engine: Engine) -> bool:
    """Whether another thread sees what this one does (an in-memory SQLite database is one per
    thread)."""
    return not (engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"))


def from_warehouse(engine: Engine, plan: Plan) -> Reader:
    """A reader of the warehouse: a group's records that can count for the plan and their
    rejected rows, two queries a group."""
    since = earliest_counted(plan)

    def read(ids: Sequence[str]) -> dict[str, Held]:
        with engine.connect() as connection:
            records = record_queries.records_of(connection, ids, since=since)
            refused = rejection_queries.rejections_of(connection, ids)
        return {pid: Held(records.get(pid, ()), refused.get(pid, ())) for pid in ids}

    return read


# Course names are stored NFKC-normalised for matching (`人權教育:兩公約`); a reader wrote and
# expects the full-width punctuation of Chinese text, back where a Chinese character touches it.
_CJK = "\u3400-\u9fff\uf900-\ufaff"
_PUNCT = re.compile(rf"(?<=[{_CJK}])[:;,!?()]|[:;,!?()](?=[{_CJK}])")
_FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in ":;,!?()"}


@lru_cache(maxsize=4096)  # a night lists a few thousand courses, each for thousands of people
def as_written(course: str) -> str:
    """A stored course name with the punctuation beside Chinese characters full-width again."""
    return _PUNCT.sub(lambda m: _FULL_WIDTH[m.group()], course)


@lru_cache(maxsize=64)
def _unsure_after(today: date, lag: int) -> date:
    """The last course end surely registered by `today`: a course ending after it may still be
    inside its registration lag (H4)."""
    return last_day_registered_in_time(today, lag)


def _lag(track: TrackView | None, r: StoredRecord) -> int:
    if track is None:
        return 0
    lags = track.lags
    return lags.get(CHANNEL_OF_KIND.get(r.source_kind, ""), lags.get("default", track.lag))


def record_list(ctx: Context, p: PersonResult, book: RecordBook) -> dict[str, object]:
    """What the reminder shows of the person's records: the counted ones (date, course, hours,
    what each counts toward), the ones not counted and why, the rows refused with their reason,
    each kind the most recent `SHOWN` and a count of the rest; which may still be inside their
    registration lag, and from which day a course may not be registered yet."""
    track = p.track
    held = book.of(p.member.person_id)
    judged = zip(held.records, book.verdicts(ctx, p, held.records), strict=True)
    newest = sorted(judged, key=_newest_first, reverse=True)
    # A record no requirement of the plan takes (a kind it leaves out, another organizer's) is
    # not counted either, its reason the requirements' own.
    counted = [(r, v) for r, v in newest if not v.why_not and v.counts_for]
    # Last year's records are not this year's business unless they count (a two-year window).
    start = ctx.plan.period.start
    others = [(r, v) for r, v in newest if (v.why_not or not v.counts_for) and r.end_date >= start]
    lag = track.lag if track else 0
    # A refused row with several problems is one row: its reasons, which name their columns.
    lines: dict[tuple[str, int], list[str]] = {}
    for r in held.refused:
        lines.setdefault((r.file_name, r.line_no), []).append(r.reason)
    refused = [{"where": f"{name} 第 {line} 行", "why": "；".join(dict.fromkeys(why))}
               for (name, line), why in lines.items()]  # fmt: skip
    return {
        "counted": [_counted_row(ctx.today, track, r, v) for r, v in counted[:SHOWN]],
        "counted_count": len(counted),
        "earlier": max(0, len(counted) - SHOWN),
        "others": [_other_row(ctx.today, track, r, v) for r, v in others[:SHOWN]],
        "others_count": len(others),
        "refused": refused[:SHOWN],
        "refused_count": len(refused),
        "lag": lag,
        "unsure_from": roc(_unsure_after(ctx.today, lag) + timedelta(days=1)),
    }


def _recent(today: date, track: TrackView | None, r: StoredRecord) -> int:
    """The record's registration lag when it ended too recently to be surely registered, else 0."""
    lag = _lag(track, r)
    return lag if lag and r.end_date > _unsure_after(today, lag) else 0


def _newest_first(judged: tuple[StoredRecord, RecordVerdict]) -> tuple[date, str]:
    return judged[0].end_date, judged[0].course_name


def _counted_row(
    today: date, track: TrackView | None, r: StoredRecord, v: RecordVerdict
) -> dict[str, object]:
    return {
        "day": roc(r.end_date),
        "course": as_written(r.course_name),
        "hours": _plain(v.hours),
        "toward": "、".join(v.counts_for),
        "left_out": "；".join(v.left_out),
        "recent": _recent(today, track, r),
    }


def _other_row(
    today: date, track: TrackView | None, r: StoredRecord, v: RecordVerdict
) -> dict[str, object]:
    return {
        "day": roc(r.end_date),
        "course": as_written(r.course_name),
        "why": v.why_not or "；".join(v.left_out) or "不屬於本計畫任何一項要求",
        "recent": _recent(today, track, r),
    }


_plain = lru_cache(maxsize=256)(plain)  # a list's hours: a few values, each for many records
