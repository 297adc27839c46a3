"""Look inside an .xlsx before it is parsed: is it a workbook at all, and one that can be opened
without exhausting memory (a zip bomb) or expanding XML entities (billion laughs)?

A zip member never yields more than the size its directory entry declares (zipfile stops there
and fails the CRC), so checking the declared sizes bounds what parsing can unpack.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

MAX_ENTRIES = 10_000  # parts in the archive; a workbook has a few dozen
# Unpacked, all parts together: a 1 048 576-row export sheet is about 300 MB of XML.
MAX_UNCOMPRESSED_BYTES = 1 << 30
# The shared strings are held in memory whole while the sheet is read (the sheet itself streams).
MAX_SHARED_STRINGS_BYTES = 128 << 20
PROLOG_SAMPLE = 4096  # an XML part's declaration and root element start within this

_OTHER_OFFICE = (
    ("word/", "Word 文件（.docx）"),
    ("ppt/", "PowerPoint 簡報（.pptx）"),
    ("content.xml", "OpenDocument 文件（.odt/.ods）"),
)


class NotAWorkbook(Exception):
    """The file must not or cannot be opened as a workbook; the message says why, for people."""


def _mb(n: int) -> str:
    mb = n / (1 << 20)
    return f"{mb:,.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


def check_workbook(path: Path) -> None:
    """Raise NotAWorkbook unless `path` is an .xlsx that is safe to hand to the parser."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ENTRIES:
                raise NotAWorkbook(
                    f"壓縮檔內有 {len(entries):,} 個項目，超過 {MAX_ENTRIES:,} 個項目的上限，"
                    "不像是匯出的試算表；未讀取"
                )
            names = {e.filename for e in entries}
            if "xl/workbook.xml" not in names:
                other = next(
                    (w for p, w in _OTHER_OFFICE if any(n.startswith(p) for n in names)), None
                )
                what = other or "壓縮檔（.zip）"
                raise NotAWorkbook(
                    f"這是 {what}，不是試算表（.xlsx）；請以 Excel 另存為 .xlsx 或 CSV"
                )
            for entry in entries:
                if entry.filename.lower().endswith("sharedstrings.xml") and (
                    entry.file_size > MAX_SHARED_STRINGS_BYTES
                ):
                    raise NotAWorkbook(
                        f"共用字串表解壓縮後 {_mb(entry.file_size)}，超過 "
                        f"{_mb(MAX_SHARED_STRINGS_BYTES)} 的上限（可能是惡意的壓縮炸彈）；未讀取"
                    )
            total = sum(e.file_size for e in entries)
            if total > MAX_UNCOMPRESSED_BYTES:
                raise NotAWorkbook(
                    f"解壓縮後共 {_mb(total)}，超過 {_mb(MAX_UNCOMPRESSED_BYTES)} 的上限"
                    f"（檔案本身 {_mb(path.stat().st_size)}，可能是惡意的壓縮炸彈）；未讀取"
                )
            for entry in entries:
                if entry.filename.lower().endswith((".xml", ".rels")):
                    with archive.open(entry) as part:
                        problem = _prolog_problem(part.read(PROLOG_SAMPLE))
                    if problem:
                        raise NotAWorkbook(f"{entry.filename}：{problem}")
    except zipfile.BadZipFile:
        raise NotAWorkbook(
            "不是完整的 .xlsx 檔（可能下載不完整）；請重新下載或另存後再放入"
        ) from None
    except (EOFError, ValueError, NotImplementedError) as exc:
        raise NotAWorkbook(f".xlsx 檔內容損壞（{type(exc).__name__}）") from None


def _prolog_problem(sample: bytes) -> str | None:
    """Why an XML part must not be parsed: a document type (DOCTYPE) declares entities, which
    can expand a few bytes into gigabytes; a workbook's parts never have one. It can only come
    before the root element, so the part's beginning tells."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = sample.decode("utf-16", errors="ignore")
    else:
        text = sample.decode("utf-8", errors="ignore")
    at, size = 0, len(text)
    while True:
        while at < size and text[at] in "\ufeff \t\r\n":
            at += 1
        if text.startswith("<?", at) or text.startswith("<!--", at):
            end = "?>" if text.startswith("<?", at) else "-->"
            close = text.find(end, at)
            if close < 0:
                break
            at = close + len(end)
            continue
        if text.startswith("<!", at):
            return (
                "含有 XML 文件類型宣告（DOCTYPE）與實體定義（ENTITY），可展開成巨量資料"
                "（billion laughs 攻擊），試算表不會有；未讀取"
            )
        if text.startswith("<", at) and (
            text[at + 1 : at + 2].isalpha() or text[at + 1 : at + 2] == "_"
        ):
            return None  # the root element: nothing after it can declare entities
        break
    if len(sample) < PROLOG_SAMPLE:
        return None  # a short or odd part: the parser says what is wrong with it
    return "XML 開頭異常（前 4 KB 內沒有根元素），不像是試算表；未讀取"
