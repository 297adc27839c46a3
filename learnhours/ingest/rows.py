"""A file's rows as the normalizer takes them: the kind's fields in order, blank lines skipped;
lines the reader could not make cells of, cells holding a NUL and rows wider than their header
refused with a reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from operator import itemgetter

from learnhours.extractors.csv_text import BadLine
from learnhours.extractors.csv_text import header_width as csv_header_width
from learnhours.extractors.tables import Table
from learnhours.transforms.records import Problem, RowRejected
from learnhours.warehouse.driver_rows import Refused

Outcome = tuple[int, object, list]  # (line, what `make` gave or a Refused, the cells as read)


def field_names(table: Table) -> tuple[dict[int, str], tuple[str, ...]]:
    """(column index -> field, the fields in that order) of the columns the kind knows."""
    field_map = table.kind.field_map(table.header)
    return field_map, tuple(field_map.values())


def outcomes(
    table: Table, make: Callable[[tuple], object], current: list | None = None
) -> Iterator[Outcome]:
    """(line, outcome, the row's cells as read) for every non-blank row.

    `make` gets the row's values in the kind's field order (field_names) and gives the row to
    store, or raises RowRejected; the outcome is that row or a Refused (`current[0]`, if given,
    holds the row's cells while `make` runs: the roster keeps its other columns). A row wider than the
    header is refused: its cells cannot be trusted to their columns, unless rejoining the extra
    cells into the kind's one unquoted column (a comma in it is the usual cause) makes it valid.
    """
    field_map, _names = field_names(table)
    pick: Callable[[list], tuple] = (
        itemgetter(*field_map)
        if len(field_map) > 1
        else lambda cells: (cells[next(iter(field_map))],)
    )
    width = max(field_map, default=-1) + 1
    header_width = csv_header_width(table.header)
    # CSV only (only text can be rejoined), and only the kind's one unquoted column. Rejoined
    # elsewhere, a shift could line up again on wrong columns.
    unquoted = table.kind.unquoted
    free_text = next((i for i, n in field_map.items() if n == unquoted), None)
    if table.is_spreadsheet or unquoted is None or table.delimiter != ",":
        free_text = None  # a tab-separated file: a comma in a cell never splits it
    for line, cells in table.rows:
        if current is not None:
            current[0] = cells
        if type(cells) is BadLine:
            yield line, Refused([Problem(cells.column, "", cells.reason)], None), []
            continue
        try:
            joined = "".join(cells)  # all-text rows (CSV): one C call instead of a loop
        except TypeError:
            joined = "".join(c for c in cells if type(c) is str) + (
                "x" if any(c is not None and type(c) is not str for c in cells) else ""
            )
        if not joined.strip():
            continue
        if "\x00" in joined:
            # Stored by SQLite, refused by PostgreSQL: the same file must give the same result.
            at = next(i for i, c in enumerate(cells) if type(c) is str and "\x00" in c)
            column = table.header[at] if at < len(table.header) and table.header[at] else "整列"
            why = "此格含有 NUL 控制字元（\\x00），檔案可能已損壞；此列未匯入，請修正來源後重新匯出"
            yield line, Refused([Problem(column, "", why)], None), cells
            continue
        if len(cells) > header_width:
            used = len(cells)
            while used > header_width and not str(cells[used - 1] or "").strip():
                used -= 1  # trailing empty cells (a trailing comma) are harmless
            if used > header_width:
                problem, repaired = _too_wide(cells[:used], header_width, field_map, free_text)
                try:
                    if repaired is None:
                        raise RowRejected([problem])
                    # Kept only if every field then passes: a shift elsewhere fails a date or a number.
                    yield line, make(repaired), cells
                except RowRejected as exc:
                    yield line, Refused([problem], exc.person_id), cells
                continue
        values = pick(cells if len(cells) >= width else [*cells, *[""] * (width - len(cells))])
        try:
            yield line, make(values), cells
        except RowRejected as exc:
            yield line, Refused(exc.problems, exc.person_id), cells


def _too_wide(
    cells: list, header_width: int, field_map: dict[int, str], free_text: int | None
) -> tuple[Problem, tuple | None]:
    """The problem of a row with more cells than the header, and the row's values with the extra
    cells rejoined into the kind's unquoted column (commas put back) when there is one, for a try."""
    problem = Problem(
        "整列",
        "",
        f"此列有 {len(cells)} 欄，但標題列只有 {header_width} 欄（課程名稱含逗號時請加引號）",
    )
    if free_text is None or free_text >= header_width:
        return problem, None
    extra = len(cells) - header_width
    joined = ",".join(str(c) for c in cells[free_text : free_text + extra + 1])
    cells = [*cells[:free_text], joined, *cells[free_text + extra + 1 :]]
    return problem, tuple(cells[i] if i < len(cells) else "" for i in field_map)
