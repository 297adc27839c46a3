"""A CSV file's bytes as numbered rows of cells, where every physical line ends up in a row or in
a refusal that says why: lines of bounded length, LF or CR line ends, a line in the file's other
encoding (UTF-8 or Big5) read as such, and a quote that never closes refused on its own line
instead of swallowing the lines after it. Cells are separated by commas or, in Excel's text
exports, by tabs; a UTF-16 file (Excel's 「Unicode 文字」) is read through its UTF-8 text."""

from __future__ import annotations

import codecs
import csv
import io
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

Cells = list[Any]

# A quoted cell may hold line breaks (Alt+Enter in Excel), over this many lines at most: a quote
# left open is found within so many lines, and reading the lines again after it costs no more.
MAX_RECORD_LINES = 100
UNDECODABLE = "此行文字無法以 Big5 或 UTF-8 解碼"
UNDECODABLE_UTF16 = "此行含有不成對的 UTF-16 字元，無法解碼（檔案可能已損壞）"
# A UTF-16 file by its byte order mark; its text reaches the line reader as UTF-8 (Utf16Text).
UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


class BadLine(list):
    """The (empty) cells of a line refused before it had cells, with the column and the reason."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__()
        self.column = column
        self.reason = reason


def line_end(sample: bytes) -> bytes:
    """The file's line end: LF (and CRLF), or CR alone as old Mac tools write it."""
    return b"\r" if b"\r" in sample and b"\n" not in sample else b"\n"


def header_width(header: list[str]) -> int:
    """The header's width without its trailing empty cells."""
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    return width


def _size(n: int) -> str:
    return f"{n // (1 << 20)} MB" if n >= 1 << 20 else f"{max(1, n // 1024)} KB"


class Utf16Text(io.RawIOBase):
    """A UTF-16 file with its byte order mark, read as the UTF-8 bytes of its text: lines then split
    at LF or CR as in any other file (in UTF-16 a 0x0A byte is half of many characters, 上 among
    them). What is not UTF-16 (a lone surrogate, an odd last byte) becomes bytes that are not
    UTF-8 either, so that line alone is refused."""

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        super().__init__()
        self.raw = raw
        raw.read(2)  # the byte order mark
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="surrogatepass")
        self._text = b""
        self._at = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._at >= len(self._text) and not self._ended:
            block = self.raw.read(1 << 16)
            try:
                text = self._decoder.decode(block, final=not block)
            except UnicodeDecodeError:  # the file ends inside a character
                text = "\udcff"
            self._text, self._at, self._ended = text.encode("utf-8", "surrogatepass"), 0, not block
        n = min(len(buffer), len(self._text) - self._at)
        buffer[:n] = self._text[self._at : self._at + n]
        self._at += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def utf16_text(raw: BinaryIO, encoding: str) -> BinaryIO:
    """`raw`, a UTF-16 file opened at its start, as the UTF-8 bytes of its text."""
    return io.BufferedReader(Utf16Text(raw, encoding), 1 << 16)


class LineDecoder:
    """Byte lines decoded one by one, each in the file's encoding or, failing that, the other one
    (a Big5 line with HKSCS characters in big5hkscs); a line longer than `max_line` bytes is not
    kept (memory stays flat): like an undecodable line, it is counted and named in bad_lines.

    A UTF-16 file (encoding `utf-16-le` or `utf-16-be`) is given as its UTF-8 text (utf16_text):
    every line is UTF-8, and a line that is not was not UTF-16 in the file."""

    def __init__(
        self, raw: BinaryIO, encoding: str, *, newline: bytes = b"\n", max_line: int = 1 << 20
    ) -> None:
        self.raw = raw
        self.encoding = encoding
        self.newline = newline
        self.max_line = max_line
        self.bad_lines: dict[int, str] = {}  # line -> why it has no cells
        self.line = 0
        self.read: list[bytes] = []  # the lines read and not yet taken, as the file has them
        base = encoding.removesuffix("-sig")
        self.encodings: tuple[str, ...] = (
            ("cp950", "big5hkscs", "utf-8") if base == "cp950" else (base, "cp950", "big5hkscs")
        )
        self.undecodable = UNDECODABLE
        if encoding in UTF16_BOMS.values():
            self.encodings, self.undecodable = ("utf-8",), UNDECODABLE_UTF16

    def take(self, upto: int | None = None) -> tuple[int, int, bytes]:
        """The lines read since the last call, up to line `upto` (default: all), as bytes:
        (first line, last line, bytes)."""
        last = self.line if upto is None else upto
        n = len(self.read) - (self.line - last)
        data = b"".join(self.read[:n])
        del self.read[:n]
        return last - n + 1, last, data

    def _lines(self) -> Iterator[bytes | int]:
        """The file's lines as bytes, or the size of a line over the bound."""
        limit = self.max_line
        if self.newline != b"\n":
            yield from self._cr_lines()
            return
        readline = self.raw.readline
        while True:
            chunk = readline(limit)
            if len(chunk) < limit or chunk.endswith(b"\n"):
                if not chunk:
                    return
                yield chunk
                continue
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):  # the rest of the line, not kept
                chunk = readline(limit)
                size += len(chunk)
            yield size

    def _cr_lines(self) -> Iterator[bytes | int]:
        limit, cr = self.max_line, b"\r"
        pending, skipped = b"", 0  # skipped: bytes of an over-long line dropped so far
        while block := self.raw.read(1 << 20):
            pending += block
            *lines, pending = pending.split(cr)
            for line in lines:
                if skipped:
                    yield skipped + len(line) + 1
                    skipped = 0
                elif len(line) >= limit:
                    yield len(line) + 1
                else:
                    yield line + cr
            if len(pending) >= limit:
                skipped += len(pending)
                pending = b""
        if skipped:
            yield skipped + len(pending)
        elif pending:
            yield pending

    def __iter__(self) -> Iterator[str]:
        keep, bad = self.read.append, self.bad_lines
        encodings = self.encodings
        bom = self.encoding == "utf-8-sig"
        for chunk in self._lines():
            self.line += 1
            if isinstance(chunk, int):
                keep(self.newline)  # a placeholder: the stored lines keep their numbers
                bad[self.line] = (
                    f"此行長達 {_size(chunk)}，超過每行 {_size(self.max_line)} 的上限"
                    "（可能不是匯出的資料檔，或換行字元遺失）；此行未匯入"
                )
                yield "\n"
                continue
            keep(chunk)
            if bom:
                chunk, bom = chunk.removeprefix(b"\xef\xbb\xbf"), False
            for encoding in encodings:
                try:
                    text = chunk.decode(encoding)
                    break
                except UnicodeDecodeError:
                    continue
            else:
                bad[self.line] = self.undecodable
                text = "\n"  # keep line numbers; the row is refused
            yield text


class _RecordTooLong(Exception):
    """A quoted cell went on for more than MAX_RECORD_LINES lines."""


class CsvRows:
    """(line, cells) for each row of the decoder's lines, cells separated by `delimiter` (a comma,
    or a tab in Excel's text exports); a row over several lines is numbered by its last line, as
    csv counts. A refused line gives a BadLine.

    A quote that opens a cell and does not close on its line makes the following lines part of
    that cell. When such a row cannot be one (the file ends inside the quote, the row is wider
    than the header, a cell holds a whole row's worth of commas, or it goes on for more than
    MAX_RECORD_LINES lines), the line where the quote opened is refused, naming the column, and
    the lines after it are read again as rows of their own.
    """

    def __init__(self, decoder: LineDecoder, delimiter: str = ",") -> None:
        self.decoder = decoder
        self.delimiter = delimiter
        self.width = 0  # the header's width (header_width), once known (know_header); 0 before
        self.header: list[str] = []
        self.line = 0  # the last line handed to the csv reader
        self._source = iter(decoder)
        self._again: deque[str] = deque()  # lines to read again, after a refused one
        self._taken: list[str] = []  # the lines of the row being read
        self._ended = False

    def know_header(self, header: list[str]) -> None:
        """The file's header, once found: rows are then judged against its width."""
        self.width, self.header = header_width(header), header

    def take_source(self) -> tuple[int, int, bytes]:
        """The file's bytes of the rows given since the last call (LineDecoder.take): lines read
        ahead and to be read again are left for the next call."""
        return self.decoder.take(self.line)

    # The csv reader's line source.
    def __iter__(self) -> CsvRows:
        return self

    def __next__(self) -> str:
        taken = self._taken
        if len(taken) >= MAX_RECORD_LINES:
            raise _RecordTooLong
        if self._again:
            text = self._again.popleft()
        else:
            try:
                text = next(self._source)
            except StopIteration:
                self._ended = True
                raise
        self.line += 1
        taken.append(text)
        return text

    def rows(self) -> Iterator[tuple[int, Cells]]:
        reader = csv.reader(self, delimiter=self.delimiter)
        bad = self.decoder.bad_lines
        taken = self._taken
        while True:
            taken.clear()
            start = self.line + 1
            self._ended = False
            try:
                cells = next(reader)
            except StopIteration:
                return
            except _RecordTooLong:
                yield self._refuse(start, self._open_quote(start))
                continue
            except csv.Error as exc:
                if len(taken) > 1:
                    yield self._refuse(start, self._open_quote(start))
                else:
                    yield self._refuse(start, ("整列", _csv_error(exc)))
                continue
            end = self.line
            if end == start and end in bad:
                yield end, BadLine("整列", bad[end])
            elif (end > start or self._ended) and self._swallowed(cells, start, end):
                yield self._refuse(start, self._open_quote(start))
            else:
                yield end, cells

    def _swallowed(self, cells: Cells, start: int, end: int) -> bool:
        """Whether a row read over lines start..end (or up to the end of the file) is really a
        quote left open over other rows."""
        if self._ended and _quote_left_open(self._taken, self.delimiter):
            return True
        bad = self.decoder.bad_lines
        if any(line in bad for line in range(start + 1, end + 1)):
            return True
        width = self.width
        if not width or end == start:
            return False
        used = len(cells)
        while used > width and not cells[used - 1].strip():
            used -= 1
        if used > width:
            return True
        comma = self.delimiter
        return any(("\n" in c or "\r" in c) and c.count(comma) >= width - 1 for c in cells)

    def _open_quote(self, start: int) -> tuple[str, str]:
        """(column, reason) of the quote that opened on line `start` and did not close there."""
        first = next(csv.reader([self._taken[0]], delimiter=self.delimiter), [])
        at = len(first) - 1
        column = self.header[at] if 0 <= at < len(self.header) and self.header[at] else "整列"
        return column, (
            f'引號（"）從第 {start} 行起沒有結束，其後各行會被併入這一格：此行未匯入，其後各行'
            "照常讀取；請刪除多餘的引號，或以一對引號括住整格（格內的引號寫成兩個）"
        )

    def _refuse(self, start: int, problem: tuple[str, str]) -> tuple[int, Cells]:
        """Line `start` refused; the other lines the csv reader took with it are read again."""
        self._again.extendleft(reversed(self._taken[1:]))
        self.line = start
        return start, BadLine(*problem)


def _quote_left_open(texts: list[str], delimiter: str) -> bool:
    """Whether these lines, read as CSV, end inside a quoted cell (the reader asks for more)."""
    asked = False

    def lines() -> Iterator[str]:
        nonlocal asked
        yield from texts[:-1]
        yield texts[-1] if texts[-1].endswith(("\n", "\r")) else texts[-1] + "\n"
        asked = True

    next(csv.reader(lines(), delimiter=delimiter), None)
    return asked


def _csv_error(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"此行有一格超過 CSV 每格 {csv.field_size_limit()} 字元的上限；此行未匯入"
    if "NUL" in text:  # older Pythons' csv refuses a NUL itself
        return "此行含有 NUL 控制字元（\\x00），檔案可能已損壞；此列未匯入，請修正來源後重新匯出"
    if "new-line character" in text:
        return "此行中間有單獨的換行字元（CR），無法判斷分行；請以 Excel「CSV UTF-8」另存後再匯入"
    return f"此行不是有效的 CSV（{text}）；此行未匯入"
