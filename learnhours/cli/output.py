"""What a command prints: tables for people (Chinese headings and words, ROC dates), CSV and JSON
for other tools (English keys, ISO dates), and text made safe for a terminal."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from learnhours.plain_hours import plain


def _rate(rate: Decimal) -> str:
    return plain(rate.quantize(Decimal("0.0001")))


def _shown(key: str, value: object) -> object:
    """A value as a table shows it to people: a rate as the mails say it (39.4%), a word for a
    code (VALUE_WORDS); CSV and JSON keep the value as the contract says (0.3939)."""
    if key == "rate" and isinstance(value, str) and value:
        from learnhours.notifiers.drafts import percent

        return percent(Decimal(value))
    return VALUE_WORDS.get(key, {}).get(str(value), value)


# Tables are for people: Chinese headings and words, ROC dates. CSV and JSON are contracts for
# other tools: English keys, the values as stored, ISO dates (README "Output formats").
HEADINGS = {
    "person_id": "身分證字號",
    "name": "姓名",
    "agency_code": "機關代碼",
    "agency": "機關",
    "unit": "單位",
    "units": "單位數",
    "status": "狀態",
    "needed_hours": "尚需時數",
    "total_hours": "總時數",
    "headcount": "人數",
    "met": "達成人數",
    "rate": "達成率",
    "file": "檔案",
    "line": "行",
    "column": "欄位",
    "value": "內容",
    "reason": "原因",
    "id": "編號",
    "plan": "計畫",
    "kind": "種類",
    "stage": "階段",
    "created": "排入日期",
    "to": "收件人",
    "subject": "主旨",
    "detail": "說明",
    "released": "改回待寄",
    "started": "開始",
    "finished": "結束",
    "state": "結果",
    "plans": "計畫",
    "files": "檔案數",
    "rows_loaded": "載入列數",
    "people": "人數",
    "short": "未達成",
    "mails_sent": "寄出郵件",
    "cause": "原因",
}
STATUS_WORDS = {**HEADINGS, "outcome": "獎懲"}
UNIT_WORDS = {**HEADINGS, "outcome": "等第"}
VALUE_WORDS = {
    "status": {
        "met": "已達成",
        "short": "未達成",
        "exempt": "免列計",
        "pending": "待寄",
        "sending": "寄送中",
        "sent": "已寄出",
        "failed": "寄送失敗",
        "superseded": "已取代",
    },
    "kind": {
        "reminder": "提醒",
        "digest": "單位摘要",
        "summary": "人事室摘要",
        "final": "年度結算",
        "admin": "作業失敗通知",
    },
    "state": {
        "running": "執行中",
        "completed": "完成",
        "warning": "完成（有警告）",
        "failed": "失敗",
        "cancelled": "已取消",
        "killed": "中斷",
    },
}


def _cell(value: object, table: bool) -> object:
    """A date or time as people read it (ROC) in a table, ISO in CSV and JSON."""
    from datetime import datetime

    from learnhours.taipei import roc

    if isinstance(value, datetime):
        return f"{roc(value.date())} {value:%H:%M:%S}" if table else f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return roc(value) if table else value.isoformat()
    return value


def _emit(rows: Iterable[dict], fmt: str, headings: dict[str, str] | None = None) -> None:
    """Rows as a table, CSV or JSON. CSV and JSON are written as the rows come (a nation's
    `status` is never all in memory); a table is laid out once every row is in."""
    table = fmt == "table"
    cells = ({k: _cell(v, table) for k, v in row.items()} for row in rows)
    if fmt == "json":
        # As json.dump(rows, indent=2) writes the whole list, a row at a time.
        opened = False
        for row in cells:
            sys.stdout.write(",\n" if opened else "[\n")
            sys.stdout.write(textwrap.indent(json.dumps(row, ensure_ascii=False, indent=2), "  "))
            opened = True
        sys.stdout.write("\n]\n" if opened else "[]\n")
    elif fmt == "csv":
        first = next(cells, None)
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(first) if first else [], lineterminator="\n"
        )
        writer.writeheader()
        if first is not None:
            writer.writerow(first)
            writer.writerows(cells)
    else:
        laid = list(cells)
        if not laid:
            print("（沒有資料）")
            return
        words = headings or HEADINGS
        keys = list(laid[0])
        # A file name or cell may hold escapes or newlines: shown escaped, one row a line.
        shown = [{k: printable(str(_shown(k, r[k]))) for k in keys} for r in laid]
        heads = [words.get(k, k) for k in keys]
        widths = [
            max(_width(h), *(_width(r[k]) for r in shown)) for h, k in zip(heads, keys, strict=True)
        ]
        print("  ".join(_pad(h, w) for h, w in zip(heads, widths, strict=True)).rstrip())
        for line in shown:
            print("  ".join(_pad(line[k], w) for k, w in zip(keys, widths, strict=True)).rstrip())


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _local(moment):  # noqa: ANN001, ANN202 - a datetime in Taipei, or "" for none
    from datetime import UTC

    from learnhours.taipei import TAIPEI

    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(TAIPEI).replace(tzinfo=None)


def _lines(text: str) -> str:
    """A message of several lines (one problem each), each line made printable."""
    return "\n".join(printable(line) for line in text.split("\n"))


def printable(text: str) -> str:
    """`text` safe for a terminal: control and format characters (ANSI escapes, newlines, tabs,
    bidi overrides) written as escapes (`\\x1b`, `\\n`, `\\u202e`): a file name prints as one
    plain line and cannot move the cursor, recolour or reorder what follows."""
    import unicodedata

    def bad(ch: str) -> bool:
        return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")

    if not any(bad(ch) for ch in text):
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if bad(ch) else ch for ch in text)


def command_path(anywhere: bool = False) -> str:
    """The `learnhours` command as a person can type it from where they are: `learnhours` when
    that is this one on PATH, else its path (`.venv/bin/learnhours` in the project folder; the
    whole path with `anywhere`, for a line that first changes folder), so that a line a command
    prints runs as printed."""
    import shutil
    from pathlib import Path

    given = Path(sys.argv[0]) if Path(sys.argv[0]).name == "learnhours" else None
    script = given or Path(sys.executable).with_name("learnhours")
    if not script.is_file():
        return "learnhours"
    script = script.absolute()
    on_path = shutil.which("learnhours")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "learnhours"
    here = Path.cwd()
    near = not anywhere and script.is_relative_to(here)
    return str(script.relative_to(here)) if near else str(script)
