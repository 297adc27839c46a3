"""Open any file HR hands us as rows of text cells: CSV (UTF-8 or Big5, or UTF-16 with a byte order
mark; cells separated by commas or tabs), .xlsx, HTML-as-.xls, .xls."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

from learnhours.extractors.csv_text import (
    UTF16_BOMS,
    BadLine,
    Cells,
    CsvRows,
    LineDecoder,
    line_end,
    utf16_text,
)
from learnhours.extractors.file_checks import not_a_regular_file, os_error_words
from learnhours.extractors.kinds import AmbiguousHeader, FileKind, detect_kind, normalize_header
from learnhours.extractors.xlsx_guard import NotAWorkbook, check_workbook

HEADER_SEARCH_ROWS = 10  # some exports put a title row or two above the header
# The longest CSV line read (bytes); a longer one is refused alone, without being held in memory.
MAX_LINE_BYTES = 1 << 20
MAX_HTML_BYTES = 64 << 20  # an HTML table saved as .xls is parsed whole
_CONTROL_BYTES = [bytes([b]) for b in (*range(9), 11, 14, *range(16, 26), *range(28, 32), 127)]


class UnreadableFile(Exception):
    """The file as a whole cannot be read; the message says why in plain words."""


@dataclass
class Table:
    kind: FileKind
    header: list[str]
    rows: Iterator[tuple[int, Cells]]  # (1-based line or row number, cells)
    format: str  # csv | xlsx | xls | html
    encoding: str | None = None  # the text encoding of a CSV or HTML file
    delimiter: str = ","  # a CSV file's: a comma, or a tab (Excel's text exports)
    # CSV only: the file's bytes read since the last call, as (first line, last line, bytes) - the
    # rows exactly as delivered, for keeping (source_blocks reads them back).
    take_source: Callable[[], tuple[int, int, bytes]] | None = None
    # CSV only: where the file is and the last line of its header, so that its body can be read
    # again as columns (ingest.columns), and its line end (LF, or CR alone).
    path: Path | None = None
    header_end: int = 0
    newline: bytes = b"\n"

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
    if len(head) >= 65536 and not head.endswith((b"\n", b"\r")):
        # The sample's last line may be cut mid-character; a line longer than the sample is
        # judged by its whole characters.
        lines[-1:] = [] if len(lines) > 1 else [_whole_characters(lines[-1])]
    utf8 = sum(_decodes(line, "utf-8") for line in lines)
    big5 = sum(_decodes(line, "cp950") or _decodes(line, "big5hkscs") for line in lines)
    if not lines or utf8 >= big5 and utf8 * 2 >= len(lines):
        return "utf-8"
    if big5 * 2 >= len(lines):
        return "cp950"
    raise UnreadableFile(
        "無法辨識文字編碼（不是 UTF-8 也不是 Big5）；請以「CSV UTF-8」或 Big5 另存後再放入"
    )


def _whole_characters(line: bytes) -> bytes:
    """The line without a character cut at its end (at most 3 bytes of one)."""
    for cut in range(4):
        part = line[: len(line) - cut]
        if _decodes(part, "utf-8") or _decodes(part, "cp950"):
            return part
    return line


def _csv_rows(path: Path) -> tuple[str, str, CsvRows, Iterator[tuple[int, Cells]]]:
    """(encoding, delimiter, reader, rows) of a text file."""
    encoding, sample = _text_sample(path)
    delimiter = _delimiter(sample, encoding)
    raw = _open_text(path, encoding)
    decoder = LineDecoder(raw, encoding, newline=line_end(sample), max_line=MAX_LINE_BYTES)
    reader = CsvRows(decoder, delimiter)
    return encoding, delimiter, reader, _closing(reader.rows(), raw)


def _open_text(path: Path, encoding: str) -> BinaryIO:
    """The file's bytes as the line reader takes them: a UTF-16 file as its UTF-8 text."""
    raw = path.open("rb")
    return utf16_text(raw, encoding) if encoding in UTF16_BOMS.values() else raw


def _text_sample(path: Path) -> tuple[str, bytes]:
    """The file's encoding and its first 64 KB as the line reader will see them."""
    with path.open("rb") as raw:
        head = raw.read(65536)
        encoding = UTF16_BOMS.get(head[:2])
        if encoding is None:
            return _sniff_encoding(head), head
        raw.seek(0)
        with utf16_text(raw, encoding) as text:
            return encoding, text.read(65536)


def _delimiter(sample: bytes, encoding: str) -> str:
    """A tab when the sample's rows split at tabs show a header and split at commas do not:
    Excel's 「Unicode 文字」 and 「文字檔 (Tab 字元分隔)」 exports. Else a comma."""
    if b"\t" not in sample:
        return ","
    text = sample.decode("utf-8" if encoding in UTF16_BOMS.values() else encoding, "replace")

    def finds_header(delimiter: str) -> bool:
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for _n, cells in zip(range(HEADER_SEARCH_ROWS), rows, strict=False):
                if detect_kind([normalize_header(c) for c in cells]) is not None:
                    return True
        except csv.Error:  # a NUL or a stray CR: the reader refuses that line itself
            return False
        return False

    return "\t" if not finds_header(",") and finds_header("\t") else ","


def _closing(rows: Iterator[tuple[int, Cells]], handle: BinaryIO) -> Iterator[tuple[int, Cells]]:
    try:
        yield from rows
    finally:
        handle.close()


# --- spreadsheets and HTML ---------------------------------------------------------------------


def _xlsx_rows(path: Path) -> Iterator[tuple[int, Cells]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        check_workbook(path)
    except NotAWorkbook as exc:
        raise UnreadableFile(str(exc)) from None
    handle = path.open("rb")  # a file object: openpyxl would refuse a name not ending in .xlsx
    try:
        book = load_workbook(handle, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, InvalidFileException) as exc:
        handle.close()
        raise UnreadableFile(f"不是完整的 .xlsx 檔（可能下載不完整）：{exc}") from exc
    except ParseError as exc:
        handle.close()
        raise UnreadableFile(f".xlsx 檔的 XML 格式錯誤：{exc}") from None
    try:
        sheet = book.worksheets[0]
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError) as exc:
        raise UnreadableFile(f".xlsx 檔內容損壞：{exc}") from exc
    except ParseError as exc:
        raise UnreadableFile(f".xlsx 檔的 XML 格式錯誤：{exc}") from None
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

    if path.stat().st_size > MAX_HTML_BYTES:  # parsed whole, in memory
        raise UnreadableFile(
            f"HTML 格式的試算表大於 {MAX_HTML_BYTES >> 20} MB，超過上限；請以 Excel 另存為 .xlsx 或 CSV"
        )
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


def read_head(path: Path, size: int) -> bytes:
    """The file's first bytes; UnreadableFile (in words, with the path) for anything but a
    readable regular file: a named pipe or a device is never opened (it could block forever)."""
    try:
        problem = not_a_regular_file(path)
        if problem:
            raise UnreadableFile(problem)
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise UnreadableFile(os_error_words(exc, path)) from None


def _cell_text(value: object) -> object:
    if isinstance(value, (date, datetime)):
        return value
    return "" if value is None else value


def open_table(path: Path) -> Table:
    """Detect the file's format by content and its kind by header; raise UnreadableFile if neither."""
    head = read_head(path, 4096)
    if not head:
        raise UnreadableFile("檔案是空的")
    csv_reader: CsvRows | None = None
    encoding: str | None = None
    delimiter = ","
    if head.startswith(b"PK\x03\x04"):
        form, rows = "xlsx", _xlsx_rows(path)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        form, rows = "xls", _xls_rows(path)
    elif head.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"<"):
        form = "html"
        encoding, rows = _html_rows(path)
    else:
        if head.startswith(b"\xff\xfe\x00\x00"):
            raise UnreadableFile(
                "檔案是 UTF-32 編碼，無法讀取；請以 Excel「CSV UTF-8」或「Unicode 文字」另存後再匯入"
            )
        text = head
        if head[:2] in UTF16_BOMS:  # Excel's 「Unicode 文字」: judged by its text, not its bytes
            with utf16_text(path.open("rb"), UTF16_BOMS[head[:2]]) as utf8:
                text = utf8.read(4096)
        # A NUL or two is a damaged cell (its row is refused); many control bytes are a binary
        # file (or UTF-16 without its byte order mark).
        if sum(map(text.count, _CONTROL_BYTES)) > max(2, len(text) // 100):
            raise UnreadableFile("不是文字檔（含二進位資料）；請確認是否為匯出的 CSV / Excel 檔")
        form = "csv"
        encoding, delimiter, csv_reader, rows = _csv_rows(path)

    seen: list[list[str]] = []
    bad: list[tuple[int, str]] = []  # lines above the header that could not be read
    for number, cells in rows:
        if type(cells) is BadLine:
            bad.append((number, cells.reason))
        header = [normalize_header(c) for c in cells]
        kind = detect_kind(header)
        if kind is not None:
            try:
                kind.field_map(header)
            except AmbiguousHeader as exc:
                rows.close()  # type: ignore[attr-defined]
                raise UnreadableFile(str(exc)) from None
            if csv_reader is not None:
                csv_reader.know_header(header)
                csv_reader.take_source()  # the header and the lines above it
                return Table(
                    kind, header, rows, form, encoding, delimiter, csv_reader.take_source, path,
                    csv_reader.line, csv_reader.decoder.newline,
                )  # fmt: skip
            body = ((n, [_cell_text(c) for c in row]) for n, row in rows)
            return Table(kind, header, body, form, encoding)
        if any(header):
            seen.append(header)
        if number >= HEADER_SEARCH_ROWS:
            break
    if hasattr(rows, "close"):
        rows.close()
    if bad and not seen:
        line, reason = bad[0]
        why = reason.removeprefix("此行").removesuffix("；此行未匯入")
        raise UnreadableFile(f"第 {line} 行{why}；找不到標題列，本檔未匯入")
    first = "、".join(h for h in seen[0] if h)[:120] if seen else "（沒有內容）"
    raise UnreadableFile(
        f"看不出是哪一種檔案：前 {HEADER_SEARCH_ROWS} 列沒有可辨識的標題列（第一列是：{first}）"
    )
