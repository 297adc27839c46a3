"""A realistic sample agency for `learnhours demo` and the tests: roster and learning records."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from learnhours.transforms.ids import national_id

EXPORT_HEADER = [
    "身分證字號",
    "姓名",
    "服務機關代碼",
    "服務機關",
    "課程代碼",
    "課程名稱",
    "期別",
    "開課機關",
    "課程類別代碼",
    "課程類別",
    "學習性質",
    "數位時數",
    "實體時數",
    "認證時數",
    "開課起始日期",
    "開課結束日期",
    "上課起始日期",
    "上課結束日期",
    "訓練成績",
    "出勤上課狀況",
    "登錄日期",
]
ELEARNING_HEADER = [
    "身分證字號",
    "姓名",
    "課程代碼",
    "課程名稱",
    "課程類別代碼",
    "認證時數",
    "上課起始日期",
    "上課結束日期",
    "測驗分數",
    "及格分數",
    "閱讀時數",
    "應閱讀時數",
    "問卷狀態",
]
ROSTER_HEADER = [
    "身分證字號",
    "姓名",
    "單位",
    "職稱",
    "主管",
    "人員類別",
    "到職日期",
    "離職日期",
    "留職停薪起日",
    "留職停薪迄日",
    "電子郵件",
]

UNITS = ("民政課", "財政課", "建設課", "社會課", "行政課", "人事室")
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐周葉蘇莊呂江何蕭羅高"
GIVEN = "怡君雅婷志明俊傑淑芬家豪美玲建宏佩珊冠宇宗翰欣怡柏翰詩涵承恩子晴宥廷品妍"
AGENCY = ("379680000A", "示範鎮公所")

# (code, name, category code, category, hours)
COURSES = (
    ("1001", "當前政府重大政策：淨零轉型", 501, "當前政府重大政策", 1),
    ("1002", "當前政府重大政策：韌性台灣", 501, "當前政府重大政策", 2),
    ("2001", "氣候變遷調適與減緩", 339, "氣候變遷", 2),
    ("2002", "節能減碳生活實踐", 336, "節能減碳", 2),
    ("2003", "自然保育與生物多樣性", 341, "自然保育", 3),
    ("3001", "CEDAW導論", 393, "性別主流化", 2),
    ("3002", "性別影響評估實務", 390, "性別主流化", 1),
    ("3003", "廉政與服務倫理", 502, "廉政與服務倫理", 2),
    ("3004", "人權教育：兩公約", 503, "人權教育", 2),
    ("3005", "行政中立", 7, "行政中立", 1),
    ("4001", "公文寫作", 12, "普通行政", 3),
    ("4002", "資通安全通識", 521, "資通安全", 3),
    ("4003", "人工智慧應用入門", 540, "人工智慧", 3),
    ("4004", "法治教育：行政程序法", 327, "法治教育", 3),
    ("4005", "職場霸凌防治", 539, "職場霸凌", 2),
)
COMPLETE_SET = (
    "1001",
    "2001",
    "2002",
    "3001",
    "3003",
    "3004",
    "4001",
    "4002",
    "4003",
    "4004",
)  # 23 h


REGISTRATION_DAYS = 3  # a course shows in the exports this many days after it ends


def make_id(rng: random.Random, sex: str = "") -> str:
    """A random valid 身分證字號 for sample data."""
    letter = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZIO")
    return national_id(letter, int(sex or rng.choice("12")), rng.randrange(10**7))


def roc_text(d: date) -> str:
    return f"{d.year - 1911}-{d.month:02d}-{d.day:02d}"


@dataclass
class Sample:
    year: int
    roster: list[dict[str, str]] = field(default_factory=list)
    records: list[dict[str, object]] = field(default_factory=list)


def build_sample(
    year: int,
    as_of: date,
    *,
    people: int = 200,
    seed: int = 115,
    email_domain: str = "township.example",
) -> Sample:
    """A deterministic agency: most complete, some short, a few exempt, one duplicate-prone course.

    Its staff's addresses are in `email_domain`: a reserved name (RFC 2606) for the demo, which a
    real mail server refuses to send to (a test over a loopback server names another).

    The agency and its whole year of courses depend only on `year` and `seed`; `as_of` only decides
    which courses are registered by then (3 days after they end). So demos run on different days
    see the same people and a growing set of the same records, as HR would.
    """
    rng = random.Random(seed)
    sample = Sample(year)
    seen: set[str] = set()
    start = date(year, 1, 5)
    for index in range(people):
        pid = make_id(rng)
        while pid in seen:
            pid = make_id(rng)
        seen.add(pid)
        unit = UNITS[index % len(UNITS)]
        head = index < len(UNITS)
        category = "編制內"
        left = leave_from = leave_to = ""
        if index % 17 == 5:
            category = rng.choice(("約聘", "約僱"))
        if index % 50 == 7:
            category = "臨時"
        if index == 11:
            left = roc_text(date(year, 3, 31))
        if index == 23:
            leave_from, leave_to = roc_text(date(year - 1, 12, 1)), roc_text(date(year + 1, 1, 31))
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))
        email = "" if index % 41 == 13 else f"staff{index:03d}@{email_domain}"
        sample.roster.append(
            dict(
                zip(
                    ROSTER_HEADER,
                    (
                        pid,
                        name,
                        unit,
                        "課長" if head else rng.choice(("課員", "科員", "辦事員", "技士")),
                        "Y" if head else "N",
                        category,
                        roc_text(date(year - rng.randrange(1, 20), 8, 1)),
                        left,
                        leave_from,
                        leave_to,
                        email,
                    ),
                    strict=True,
                )
            )
        )
        profile = rng.random()
        if profile < 0.62:
            chosen = list(COMPLETE_SET)
        elif profile < 0.9:
            chosen = rng.sample(COMPLETE_SET, rng.randrange(2, len(COMPLETE_SET)))
        else:
            chosen = []
        extra = (
            rng.sample([c[0] for c in COURSES if c[0] not in chosen], rng.randrange(0, 3))
            if chosen
            else []
        )
        # Those who complete do so by October; the others spread their courses over the year.
        span = 280 if profile < 0.62 else 340
        for code in chosen + extra:
            course = next(c for c in COURSES if c[0] == code)
            day = start + timedelta(days=rng.randrange(span))
            attendance = "全勤"
            if rng.random() < 0.02 and course[4] >= 3:
                attendance = f"{roc_text(day)}~{roc_text(day)} 09:00~11:00 事假 共2小時"
            record = _record(pid, name, course, day, attendance, rng)
            if day + timedelta(days=REGISTRATION_DAYS) <= as_of:
                sample.records.append(record)
    return sample


def _record(
    pid: str, name: str, course: tuple, day: date, attendance: str, rng: random.Random
) -> dict:
    code, title, cat, cat_name, hours = course
    digital = rng.random() < 0.5
    return dict(
        zip(
            EXPORT_HEADER,
            (
                pid,
                name,
                AGENCY[0],
                AGENCY[1],
                code,
                title,
                f"{day.year - 1911}{day.month:02d}",
                "示範訓練中心",
                cat,
                cat_name,
                1 if digital else 2,
                hours if digital else 0,
                0 if digital else hours,
                hours,
                roc_text(day),
                roc_text(day),
                roc_text(day),
                roc_text(day),
                "",
                attendance,
                roc_text(day + timedelta(days=REGISTRATION_DAYS)),
            ),
            strict=True,
        )
    )


def _typo_row(sample: Sample) -> dict[str, object]:
    """A row to copy for the mistyped ID: the first record, or a made-up one on 1 January."""
    if sample.records:
        return sample.records[0]
    first = sample.roster[0]
    day = date(sample.year, 1, 1)
    return _record(
        str(first["身分證字號"]), str(first["姓名"]), COURSES[0], day, "全勤", random.Random(0)
    )


def write_csv(path: Path, header: list[str], rows: list[dict], encoding: str) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([row.get(h, "") for h in header] for row in rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[dict]) -> Path:
    """An .xlsx as the portal gives it: dates as real date cells, not text."""
    from openpyxl import Workbook

    from learnhours.transforms.dates import parse_date

    book = Workbook(write_only=True)
    sheet = book.create_sheet("學習紀錄")
    sheet.append(header)
    for row in rows:
        sheet.append(
            [
                parse_date(row[h]) if h.endswith("日期") and row.get(h) else row.get(h, "")
                for h in header
            ]
        )
    book.save(path)
    return path


def write_inbox(sample: Sample, inbox: Path) -> list[Path]:
    """The files an HR clerk would drop in the inbox: roster, a Big5 CSV and an .xlsx that overlap.

    Early in January no course of the year has been registered yet: the exports then hold only
    the row with a mistyped ID, as a first export of the year can.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    half = len(sample.records) // 2
    first, second = sample.records[: half + 20], sample.records[half:]  # 20 rows in both exports
    bad = dict(_typo_row(sample), **{"身分證字號": "A123456788"})  # rejected with a reason
    roc_year = sample.year - 1911
    return [
        write_csv(inbox / f"{roc_year}年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig"),
        write_csv(inbox / f"{roc_year}年學習紀錄-上半.csv", EXPORT_HEADER, [*first, bad], "cp950"),
        write_xlsx(inbox / f"{roc_year}年學習紀錄-下半.xlsx", EXPORT_HEADER, second),
    ]
