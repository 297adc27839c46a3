"""ROC (民國) and Gregorian date parsing at the edges; ISO dates everywhere inside."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

from learnhours.taipei import ROC_OFFSET

_SEPARATED = re.compile(r"^(\d{2,4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})$")
_WORDS = re.compile(r"^(?:民國)?\s*(\d{2,4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?$")
_COMPACT_ROC = re.compile(r"^(\d{2,3})(\d{2})(\d{2})$")  # 1120301, 990105
_COMPACT_AD = re.compile(r"^(\d{4})(\d{2})(\d{2})$")  # 20230301


# Separators NFKC leaves alone: Big5 "／" (A241) decodes as cp950 U+2215 ∕, and Big5 has its own
# slashes and dashes (╱ A2AC, ╴ A15A, ﹣ A1DF, – A156) that clerks type in dates.
_SEPARATORS = str.maketrans(
    {"\u2215": "/", "\u2571": "/", "\u2044": "/", "\u2574": "-", "\ufe63": "-", "\u2013": "-",
     "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-"}
)  # fmt: skip


class DateError(ValueError):
    """A date text that is not a real date in any accepted shape."""


def _year(text: str, *, gregorian: bool) -> int:
    year = int(text)
    if gregorian or year >= 1000:
        return year
    return year + ROC_OFFSET


def parse_date(value: object, *, gregorian: bool = False) -> date | None:
    """Parse a date cell; None for an empty cell.

    Accepts real date cells (xlsx), ROC text (`112-03-01`, `112/03/01`, `1120301`, `民國112年3月1日`)
    and, with ``gregorian=True`` or a four-digit year, Gregorian text. A time part after a space is
    ignored. Raises DateError naming what was expected.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = unicodedata.normalize("NFKC", str(value)).replace("\xa0", " ").strip()
    if not text:
        return None
    if not text.isascii():
        text = text.translate(_SEPARATORS)
    text = text.split(" ")[0] if re.match(r"^\d", text) else text
    match = _SEPARATED.match(text) or _WORDS.match(text)
    if match:
        y, m, d = match.groups()
        year = _year(y, gregorian=gregorian)
    elif (match := _COMPACT_AD.match(text)) and (gregorian or int(text[:4]) > 1911 + 200):
        y, m, d = match.groups()
        year = int(y)
    elif match := _COMPACT_ROC.match(text):
        y, m, d = match.groups()
        year = _year(y, gregorian=gregorian)
    else:
        raise DateError(f"「{text}」不是日期，應為民國年月日，如 112-03-01、112/03/01、1120301")
    try:
        return date(year, int(m), int(d))
    except ValueError:
        raise DateError(f"「{text}」不是存在的日期") from None
