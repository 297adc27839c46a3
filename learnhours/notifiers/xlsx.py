"""A small .xlsx writer for HR's workbooks: sheets that open ready to read, filter and print.

Written by hand (SpreadsheetML in a zip) rather than through openpyxl: a government's night makes
a workbook per agency, and openpyxl spends ~20 ms on each before the first row. Every text cell
is an inline string, so text from the input (a name written `=HYPERLINK(...)`) can never become
a formula; numbers are numbers, dates are dates; None and "" are empty cells.

A `Table` sheet has a title row (what it is, for which plan and day), a bold wrapped header row
with an autofilter, frozen below the header, columns as wide as their content (CJK characters
count double, as Excel draws them), and prints landscape, one page wide, the header on each page.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

Sheet = tuple[Sequence[str], Sequence[Sequence[object]]]  # header, rows

# Characters XML 1.0 cannot carry at all (a stray control character in a roster cell).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
# Cell formats, by index: 0 plain, 1 header (bold, wrapped, shaded, boxed), 2 title (bold, larger),
# 3 a rate (0.0%), 4 a date (yyyy-mm-dd), 5 wrapped text (long reasons).
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="0.0%"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="3"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="14"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFE8EDF3"/><bgColor indexed="64"/>'
    "</patternFill></fill></fills>"
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left style="thin"><color rgb="FF999999"/></left><right style="thin">'
    '<color rgb="FF999999"/></right><top style="thin"><color rgb="FF999999"/></top>'
    '<bottom style="thin"><color rgb="FF999999"/></bottom><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" '
    'applyBorder="1" applyAlignment="1"><alignment wrapText="1" vertical="center"/></xf>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyAlignment="1">'
    '<alignment wrapText="1" vertical="top"/></xf></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_HEADER, _TITLE, _STYLE_OF = 1, 2, {"percent": 3, "date": 4, "wrap": 5}
_WIDTHS = (14, 10, 14, 10, 10)  # a plain (header, rows) sheet's first columns; the rest are 12
_EPOCH = date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug already counted in)


@dataclass(frozen=True)
class Table:
    """A sheet: the title row above the header, and per column a number format by header name:
    "percent" (a rate 0.625 shown 62.5%), "date", or "wrap" (long text wrapped at MAX_WIDTH)."""

    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    title: str = ""
    formats: Mapping[str, str] = field(default_factory=dict)


MIN_WIDTH, MAX_WIDTH, HEADER_WIDTH = 6, 60, 18  # a header wider than 18 wraps instead


def display_width(value: object) -> int:
    """How many Latin characters wide a cell's text draws: CJK (three UTF-8 bytes) counts two."""
    if value is None:
        return 0
    if isinstance(value, Decimal | float):
        # As General shows it: at most about ten digits.
        text = f"{value:.10g}" if isinstance(value, float) else format(value.normalize(), "f")[:11]
    elif isinstance(value, datetime | date):
        text = "2026-01-01"
    else:
        text = str(value)
    if text.isascii():
        return len(text)
    return len(text) + (len(text.encode("utf-8")) - len(text)) // 2


def _column(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell(ref: str, value: object, style: str) -> str:
    if type(value) is str:  # most cells: the quick way first
        if not value:
            return ""
        text = escape(_NOT_XML.sub("", value))
        space = ' xml:space="preserve"' if text != text.strip() else ""
        return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float | Decimal):
        number = float(value) if isinstance(value, Decimal) else value
        return f'<c r="{ref}"{style}><v>{number}</v></c>'
    if isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        return f'<c r="{ref}" s="{_STYLE_OF["date"]}"><v>{(day - _EPOCH).days}</v></c>'
    text = escape(_NOT_XML.sub("", str(value)))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _widths(table: Table, columns: int) -> list[int]:
    """Each column as wide as its widest cell (a header counts up to HEADER_WIDTH: it wraps)."""
    widest = [min(display_width(h), HEADER_WIDTH) for h in table.header]
    widest += [0] * (columns - len(widest))
    percent = {i for i, h in enumerate(table.header) if table.formats.get(h) == "percent"}
    for i in range(columns):
        if i in percent:
            widest[i] = max(widest[i], len("100.0%"))
            continue
        # Each distinct value once: a unit or title column repeats a handful of values.
        values = {row[i] for row in table.rows if i < len(row)}
        values.discard(None)
        values.discard("")
        widest[i] = max([widest[i], *map(display_width, values)])
    return [max(MIN_WIDTH, min(MAX_WIDTH, w + 2)) for w in widest]


def _ref(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _sheet_xml(sheet: Sheet | Table, name: str, index: int) -> tuple[str, list[str]]:
    """The worksheet's XML, and the workbook's defined names it needs (filter, print titles)."""
    if not isinstance(sheet, Table):
        return _plain_sheet_xml(*sheet), []
    table = sheet
    width = max([1, len(table.header), *(len(r) for r in table.rows)])
    columns = [_column(i) for i in range(width)]
    widths = _widths(table, width)
    styles = [
        f' s="{_STYLE_OF[table.formats[h]]}"' if h in table.formats else "" for h in table.header
    ] + [""] * (width - len(table.header))
    top = 2 if table.title else 1  # the header's row
    last_row = top + len(table.rows)
    last = columns[-1]
    # A wrapped header needs its row tall enough: Excel does not grow it when opening the file.
    lines = max(
        (-(-display_width(h) // max(1, widths[i] - 1)) for i, h in enumerate(table.header)),
        default=1,
    )
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="A1:{last}{last_row}"/>'
        '<sheetViews><sheetView workbookViewId="0">'
        f'<pane ySplit="{top}" topLeftCell="A{top + 1}" activePane="bottomLeft" state="frozen"/>'
        f'<selection pane="bottomLeft" activeCell="A{top + 1}" sqref="A{top + 1}"/>'
        "</sheetView></sheetViews><cols>",
        *(
            f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
            for i, w in enumerate(widths)
        ),
        "</cols><sheetData>",
    ]
    if table.title:
        title = _cell("A1", table.title, f' s="{_TITLE}"')
        parts.append(f'<row r="1" ht="22" customHeight="1">{title}</row>')
    head = "".join(
        _cell(f"{columns[i]}{top}", v, f' s="{_HEADER}"') for i, v in enumerate(table.header)
    )
    parts.append(f'<row r="{top}" ht="{15 * min(lines, 4) + 3}" customHeight="1">{head}</row>')
    for number, row in enumerate(table.rows, start=top + 1):
        cells = "".join(_cell(f"{columns[i]}{number}", v, styles[i]) for i, v in enumerate(row))
        parts.append(f'<row r="{number}">{cells}</row>')
    parts.append("</sheetData>")
    area = f"$A${top}:${last}${last_row}"
    parts.append(f'<autoFilter ref="A{top}:{last}{last_row}"/>')
    if table.title:
        parts.append(f'<mergeCells count="1"><mergeCell ref="A1:{last}1"/></mergeCells>')
    parts.append(
        '<printOptions gridLines="1"/>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
        "<headerFooter><oddFooter>&amp;C&amp;P / &amp;N</oddFooter></headerFooter>"
        "</worksheet>"
    )
    sheet_ref = _ref(_title_text(name))
    names = [
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
        f"{escape(sheet_ref)}!{area}</definedName>",
        f'<definedName name="_xlnm.Print_Titles" localSheetId="{index}">'
        f"{escape(sheet_ref)}!${top}:${top}</definedName>",
    ]
    return "".join(parts), names


def _plain_sheet_xml(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    width = max([1, len(header), *(len(r) for r in rows)])
    columns = [_column(i) for i in range(width)]
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews><cols>',
        *(
            f'<col min="{i + 1}" max="{i + 1}" width="{_WIDTHS[i] if i < len(_WIDTHS) else 12}" '
            'customWidth="1"/>'
            for i in range(width)
        ),
        "</cols><sheetData>",
    ]
    for number, (row, style) in enumerate([(header, ' s="1"'), *((r, "") for r in rows)], start=1):
        cells = "".join(_cell(f"{columns[i]}{number}", v, style) for i, v in enumerate(row))
        parts.append(f'<row r="{number}">{cells}</row>')
    parts.append("</sheetData></worksheet>")
    return "".join(parts)


def _title_text(title: str) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    return re.sub(r"[\[\]:*?/\\]", "_", title)[:31] or "Sheet"


def _title(title: str) -> str:
    return escape(_title_text(title))


def workbook(sheets: Mapping[str, Sheet | Table]) -> bytes:
    """An .xlsx of the sheets, in order: a `Table` laid out for reading and printing, or a plain
    (header, rows) pair with a bold frozen header."""
    names = list(sheets)
    xml = [_sheet_xml(sheets[n], n, i) for i, n in enumerate(names)]
    defined = [d for _x, names_of in xml for d in names_of]
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.styles+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(names) + 1)
        )
        + "</Types>"
    )
    book = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        + "".join(
            f'<sheet name="{_title(n)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, n in enumerate(names, start=1)
        )
        + "</sheets>"
        + (f"<definedNames>{''.join(defined)}</definedNames>" if defined else "")
        + "</workbook>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(
            f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/'
            f'2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(names) + 1)
        )
        + f'<Relationship Id="rId{len(names) + 1}" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", book)
        z.writestr("xl/_rels/workbook.xml.rels", rels)
        z.writestr("xl/styles.xml", _STYLES)
        for i, (sheet_xml, _names) in enumerate(xml, start=1):
            z.writestr(f"xl/worksheets/sheet{i}.xml", sheet_xml)
    return buffer.getvalue()
