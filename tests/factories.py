"""Small factories for test data: people, records and files in every shape the product reads."""

from __future__ import annotations

import random
from datetime import date
from io import BytesIO
from pathlib import Path

from learnhours.demo_data import (
    EXPORT_HEADER,
    ROSTER_HEADER,
    make_id,
    roc_text,
    write_csv,
    write_xlsx,
)
from learnhours.notifiers.backends import MailSettings
from learnhours.steps import Mail
from tests.conftest import WORKBOOK_PASSWORD

_rng = random.Random(20261123)

# Mail as a plan alone sets it (its sender and HR addresses), delivered to a test's own backend;
# the workbook password is the test installation's (conftest sets it for commands too).
MAIL = Mail(MailSettings(), workbook_password=WORKBOOK_PASSWORD)
# Over a real mail server (a loopback one in the tests): the shipped plans' reserved .example
# sender and HR are refused there (issue 30 point 3), so the settings name others, as an office's
# do. Not real addresses either: nothing a test sends leaves the loopback server.
SMTP_SENDER, SMTP_HR = "人事室 <hr@example.gov.tw>", "hr@example.gov.tw"
SMTP_MAIL = Mail(MailSettings(), mail_from=SMTP_SENDER, hr_addresses=(SMTP_HR,),
                 workbook_password=WORKBOOK_PASSWORD)  # fmt: skip


def unlocked(content: bytes, password: str = WORKBOOK_PASSWORD) -> BytesIO:
    """An attached workbook as HR opens it: decrypted with the password Excel asks for."""
    from msoffcrypto.format.ooxml import OOXMLFile

    locked = OOXMLFile(BytesIO(content))
    locked.load_key(password=password, verify_password=True)
    plain = BytesIO()
    locked.decrypt(plain)
    plain.seek(0)
    return plain


def new_id() -> str:
    return make_id(_rng)


def person(
    pid: str | None = None,
    *,
    name: str = "王小明",
    unit: str = "民政課",
    supervisor: bool = False,
    category: str = "編制內",
    email: str | None = "someone@example.gov.tw",
    left: date | None = None,
    leave: tuple[date, date] | None = None,
) -> dict[str, str]:
    return {
        "身分證字號": pid or new_id(),
        "姓名": name,
        "單位": unit,
        "職稱": "課員",
        "主管": "Y" if supervisor else "N",
        "人員類別": category,
        "到職日期": "100-08-01",
        "離職日期": roc_text(left) if left else "",
        "留職停薪起日": roc_text(leave[0]) if leave else "",
        "留職停薪迄日": roc_text(leave[1]) if leave else "",
        "電子郵件": email or "",
    }


def record(
    pid: str,
    *,
    code: str = "1001",
    course: str = "當前政府重大政策",
    category: int = 501,
    hours: float | str = 1,
    day: date = date(2023, 5, 10),
    session: str = "1",
    attendance: str = "全勤",
    name: str = "王小明",
    **overrides: object,
) -> dict[str, object]:
    row = {
        "身分證字號": pid,
        "姓名": name,
        "服務機關代碼": "379680000A",
        "服務機關": "示範鎮公所",
        "課程代碼": code,
        "課程名稱": course,
        "期別": session,
        "開課機關": "示範訓練中心",
        "課程類別代碼": category,
        "課程類別": "",
        "學習性質": 2,
        "數位時數": 0,
        "實體時數": hours,
        "認證時數": hours,
        "開課起始日期": roc_text(day),
        "開課結束日期": roc_text(day),
        "上課起始日期": roc_text(day),
        "上課結束日期": roc_text(day),
        "訓練成績": "",
        "出勤上課狀況": attendance,
        "登錄日期": roc_text(day),
    }
    row.update(overrides)
    return row


def roster_file(folder: Path, people: list[dict], name: str = "roster.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / name, ROSTER_HEADER, people, "utf-8-sig")


def export_file(
    folder: Path, rows: list[dict], name: str = "export.csv", encoding: str = "cp950"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if name.endswith(".xlsx"):
        return write_xlsx(folder / name, EXPORT_HEADER, rows)
    return write_csv(folder / name, EXPORT_HEADER, rows, encoding)


class FakeClock:
    """A monotonic clock that moves only when read (by `step`) or slept on; records the sleeps."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step  # time each clock read "takes", to mimic slow requests or sending
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def raw_csv(
    path: Path,
    header: list[str],
    rows: list[dict],
    encoding: str = "utf-8",
    newline: str = "\r\n",
) -> Path:
    """A CSV written cell by cell with no quoting at all, as a hand edit leaves it: a `"` or a
    control character in a cell reaches the file as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header), *(",".join(str(row.get(h, "")) for h in header) for row in rows)]
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def text_file(
    path: Path,
    header: list[str],
    rows: list[dict] | list[list],
    encoding: str = "utf-8",
    *,
    delimiter: str = ",",
    quoting: bool = True,
    newline: str = "\r\n",
) -> Path:
    """A text export as an office's tools write it: CSV or tab-separated (Excel's 「文字檔 (Tab 字元
    分隔)」), in UTF-8, Big5 (cp950) or UTF-16 with its byte order mark (`utf-16-le`, `utf-16-be`:
    Excel's 「Unicode 文字」). A row is a dict by header or a list of cells; `quoting` False writes
    every cell as it is (a hand edit: a stray quote or control character reaches the file)."""
    import csv
    import io

    cells = [[str(r.get(h, "")) for h in header] if isinstance(r, dict) else r for r in rows]
    if quoting:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
        writer.writerows([header, *cells])
        text = buffer.getvalue()
    else:
        text = "".join(delimiter.join(map(str, row)) + newline for row in [header, *cells])
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bom + text.encode(encoding))
    return path
