"""Open any file HR hands us as rows of text cells: CSV (UTF-8 or Big5), .xlsx, HTML-as-.xls, .xls."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from learnhours.extractors.kinds import FileKind, detect_kind, normalize_header

HEADER_SEARCH_ROWS = 10  # some exports put a title row or two above the header
Cells = list[Any]


class UnreadableFile(Exception):
    """The file as a whole cannot be read; the message says why in plain words."""


@dataclass
class Table:
    kind: FileKind
    header: list[str]
    rows: Iterator[tuple[int, Cells]]  # (1-based line or row number, cells)
    format: str  # csv | xlsx | xls | html
    encoding: str | None = None  # the text encoding of a CSV or HTML file
    # CSV only: the file's bytes read since the last call, as (first line, last line, bytes) - the
    # rows exactly as delivered, for keeping (source_blocks reads them back).
    take_source: Callable[[], tuple[int, int, bytes]] | None = None

    @property
    def is_spreadsheet(self) -> bool:
        return self.format in ("xlsx", "xls")


# --- CSV ----------------------------------------------------------------------------------------


def _decodes(line: bytes, encoding: str) -> bool:
    try:
        line.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def _sniff_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) or Big5, by which one reads more of the sample's lines.

    Decided line by line so that one damaged line does not make the whole file unreadable: the
    caller rejects that line alone.
    """
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    lines = head.splitlines()
    if len(lines) > 1 and len(head) >= 65536:
        lines.pop()  # the sample's last line may be cut mid-character
    utf8 = sum(_decodes(line, "utf-8") for line in lines)
    big5 = sum(_decodes(line, "cp950") or _decodes(line, "big5hkscs") for line in lines)
    if not lines or utf8 >= big5 and utf8 * 2 >= len(lines):
        return "utf-8"
    if big5 * 2 >= len(lines):
        return "cp950"
    raise UnreadableFile(
        "無法辨識文字編碼（不是 UTF-8 也不是 Big5）；請以「CSV UTF-8」或 Big5 另存後再放入"
    )


class LineDecoder:
    """Decodes byte lines one by one; a Big5 line with HKSCS characters falls back to big5hkscs."""

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        self.raw = raw
        self.encoding = encoding
        self.bad_lines: dict[int, str] = {}
        self.line = 0
        self.read: list[bytes] = []  # lines read since the last take()

    def take(self) -> tuple[int, int, bytes]:
        """The lines read since the last call, as bytes: (first line, last line, bytes)."""
        first = self.line - len(self.read) + 1
        data = b"".join(self.read)
        self.read.clear()
        return first, self.line, data

    def __iter__(self) -> Iterator[str]:
        keep = self.read.append
        for chunk in self.raw:
            self.line += 1
            keep(chunk)
            if self.line == 1 and self.encoding == "utf-8-sig":
                chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            for encoding in (
                (self.encoding, "big5hkscs") if self.encoding == "cp950" else (self.encoding,)
            ):
                try:
                    yield chunk.decode(encoding.removesuffix("-sig"))
                    break
                except UnicodeDecodeError:
                    continue
            else:
                self.bad_lines[self.line] = chunk.decode(self.encoding, errors="replace")
                yield "\n"  # keep line numbers; the row is rejected by the caller


def _csv_rows(path: Path) -> tuple[str, Iterator[tuple[int, Cells]], LineDecoder]:
    raw = path.open("rb")
    encoding = _sniff_encoding(raw.read(65536))
    raw.seek(0)
    decoder = LineDecoder(raw, encoding)
    reader = csv.reader(decoder, skipinitialspace=False)

    def rows() -> Iterator[tuple[int, Cells]]:
        try:
            for cells in reader:
                yield reader.line_num, cells
        except csv.Error as exc:
            raise UnreadableFile(f"第 {reader.line_num} 行 CSV 格式錯誤：{exc}") from exc
        finally:
            raw.close()

    return encoding, rows(), decoder


# --- spreadsheets and HTML ---------------------------------------------------------------------


def _xlsx_rows(path: Path) -> Iterator[tuple[int, Cells]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    handle = path.open("rb")  # a file object: openpyxl would refuse a name not ending in .xlsx
    try:
        book = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
        handle.close()
        raise UnreadableFile(f"不是完整的 .xlsx 檔（可能下載不完整）：{exc}") from exc
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
        raise UnreadableFile(f".xlsx 檔內容損壞：{exc}") from exc
    finally:
        book.close()
        handle.close()


def _xls_rows(path: Path) -> Iterator[tuple[int, Cells]]:
    import xlrd

    try:
        book = xlrd.open_workbook(path, on_demand=True)
    except xlrd.XLRDError as exc:
        raise UnreadableFile(f"不是可讀的 .xls 檔：{exc}") from exc
    sheet = book.sheet_by_index(0)
    for r in range(sheet.nrows):
        cells: Cells = []
        for c in range(sheet.ncols):
            cell = sheet.cell(r, c)
            if cell.ctype == xlrd.XL_CELL_DATE:
                cells.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode).date())
            elif cell.ctype == xlrd.XL_CELL_NUMBER and float(cell.value).is_integer():
                cells.append(int(cell.value))
            else:
                cells.append(cell.value)
        yield r + 1, cells


def _html_rows(path: Path) -> tuple[str, Iterator[tuple[int, Cells]]]:
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    encoding = _sniff_encoding(data[:65536])
    soup = BeautifulSoup(data, "html.parser", from_encoding=encoding.removesuffix("-sig"))
    table = soup.find("table")
    if table is None:
        raise UnreadableFile("HTML 檔裡沒有表格（<table>）")

    def rows() -> Iterator[tuple[int, Cells]]:
        for number, tr in enumerate(table.find_all("tr"), start=1):
            yield number, [td.get_text(" ", strip=True) for td in tr.find_all(["td", "th"])]

    return encoding, rows()


# --- entry --------------------------------------------------------------------------------------


def _cell_text(value: object) -> object:
    if isinstance(value, (date, datetime)):
        return value
    return "" if value is None else value


def open_table(path: Path) -> Table:
    """Detect the file's format by content and its kind by header; raise UnreadableFile if neither."""
    try:
        head = path.open("rb").read(8)
    except OSError as exc:
        raise UnreadableFile(f"無法開啟檔案：{exc.strerror}") from exc
    if not head:
        raise UnreadableFile("檔案是空的")
    decoder = None
    encoding: str | None = None
    if head.startswith(b"PK\x03\x04"):
        form, rows = "xlsx", _xlsx_rows(path)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        form, rows = "xls", _xls_rows(path)
    elif head.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"<"):
        form = "html"
        encoding, rows = _html_rows(path)
    else:
        if b"\x00" in path.open("rb").read(4096):
            raise UnreadableFile("不是文字檔（含二進位資料）；請確認是否為匯出的 CSV / Excel 檔")
        form = "csv"
        encoding, rows, decoder = _csv_rows(path)

    seen: list[list[str]] = []
    for number, cells in rows:
        header = [normalize_header(c) for c in cells]
        kind = detect_kind(header)
        if kind is not None:
            if decoder is not None:
                # CSV cells are already text; only lines that could not be decoded need flagging.
                decoder.take()  # the header and the lines above it
                body = _flag_bad_lines(rows, decoder.bad_lines)
                return Table(kind, header, body, form, encoding, decoder.take)
            body = ((n, [_cell_text(c) for c in row]) for n, row in rows)
            return Table(kind, header, body, form, encoding)
        if any(header):
            seen.append(header)
        if number >= HEADER_SEARCH_ROWS:
            break
    first = "、".join(h for h in seen[0] if h)[:120] if seen else "（沒有內容）"
    raise UnreadableFile(
        f"看不出是哪一種檔案：前 {HEADER_SEARCH_ROWS} 列沒有可辨識的標題列（第一列是：{first}）"
    )


# The cells of a line that decodes neither as Big5 nor as UTF-8: refused by the reader's caller.
UNDECODABLE = ["\x00UNDECODABLE"]


def _flag_bad_lines(
    rows: Iterator[tuple[int, Cells]], bad: dict[int, str]
) -> Iterator[tuple[int, Cells]]:
    for number, cells in rows:
        yield number, (UNDECODABLE if number in bad else cells)
