"""A batch's well-formed rows judged and made into driver rows as columns (ingest.columns): the
person's own cells checked, the digest and (PostgreSQL) the COPY text put together in Polars, as
records._RecordMaker._cached makes them row by row."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from operator import methodcaller
from typing import Any, ClassVar

import polars as pl

from learnhours.transforms import records
from learnhours.warehouse.driver_rows import copy_text

_HEX = methodcaller("hexdigest")
BAD = "\x00bad"  # a value a check refused (no cell holds a NUL: such lines are the reader's)
_COURSES_KEPT = 65536
# A 身分證字號's letter as its check digit counts it (transforms.ids), and the weights.
_LETTERS = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36), strict=True))
_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
# driver_rows.copy_text's escapes, the backslash first: the others put backslashes in.
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


class Courses:
    """The courses met in the file so far, by their cells as one text: what records._Course says
    of each, as columns (`known`, joined to each batch) and as lists by index (`ci`).

    Forgotten whole when it holds _COURSES_KEPT (memory stays bounded on any file): the row
    normalizer keeps its own courses (records._COURSE_CACHE_SIZE), which fill this again."""

    _SCHEMA: ClassVar = {
        "key": pl.String, "ci": pl.Int32, "cs": pl.String, "ce": pl.String,
        "never_over": pl.Boolean, "b": pl.String, "a": pl.String, "coded": pl.Boolean,
    }  # fmt: skip
    # PostgreSQL's COPY text of the course's values: before the dates, between the name and the
    # digest, after the agency code.
    _TEXTS: ClassVar = {"kt": pl.String, "mt": pl.String, "tt": pl.String}

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.schema = {**self._SCHEMA, **(self._TEXTS if postgres else {})}
        self.forget()

    def forget(self) -> None:
        self.known = pl.DataFrame(schema=self.schema)
        self.index: dict[str, int] = {}  # a course's cells as one text -> its `ci`
        self.keys: list[tuple] = []
        self.middles: list[tuple] = []
        self.tails: list[tuple] = []

    def add(self, found: list[tuple[str, Any]]) -> None:
        if len(self.keys) + len(found) > _COURSES_KEPT:
            self.forget()
        start = len(self.keys)
        for key, course in found:
            self.index[key] = len(self.keys)
            self.keys.append(course.key)
            self.middles.append(course.middle)
            self.tails.append(course.tail)
        columns = {
            "key": [key for key, _c in found],
            "ci": range(start, start + len(found)),
            "cs": [c.course_start.isoformat() if c.course_start else None for _k, c in found],
            "ce": [c.course_end.isoformat() if c.course_end else None for _k, c in found],
            "never_over": [c.never_over for _k, c in found],
            "b": [c.digest[0].decode() for _k, c in found],
            "a": [c.digest[1].decode() for _k, c in found],
            "coded": [c.middle[0] is not None for _k, c in found],
        }
        if self.postgres:
            for name, part in zip(self._TEXTS, ("key", "middle", "tail"), strict=True):
                columns[name] = ["\t".join(map(copy_text, getattr(c, part))) for _k, c in found]
        rows = pl.DataFrame(columns, schema=self.schema)
        self.known = pl.concat([self.known, rows], rechunk=False)


def judged(frame: pl.DataFrame, maker: Any, gregorian: bool) -> pl.DataFrame:
    """The person's own cells judged (the ID in columns, the rest once per distinct value by the
    row path's functions), their dates put with the course's; `ok`: the row is made here."""

    def mapped(column: str, judge: Callable[[str], str | None]) -> pl.Expr:
        values = frame[column].unique().to_list()
        return pl.col(column).replace_strict(
            values, [judge(v) for v in values], default=None, return_dtype=pl.String
        )

    def date(raw: str) -> str | None:
        try:
            day = records._parse_date_text(raw, gregorian=gregorian)
        except Exception:  # noqa: BLE001 - the row path says what it is
            return BAD
        return day.isoformat() if day is not None else None

    def score(raw: str) -> str | None:
        if not raw:
            return None
        try:
            records._parse_score_text(raw)
        except Exception:  # noqa: BLE001 - the row path says what it is
            return BAD
        return None

    none = pl.lit(None, dtype=pl.String)
    columns = frame.columns
    frame = frame.with_columns(
        mapped("name", records.clean),
        mapped("s0", date) if "s0" in columns else none.alias("s0"),
        mapped("e0", date) if "e0" in columns else none.alias("e0"),
        mapped("score", score) if "score" in columns else none.alias("score"),
        mapped("agency", records.agency_code) if "agency" in columns else none.alias("agency"),
    )
    frame = frame.with_columns(
        pl.coalesce("s0", "cs").alias("s1"), pl.coalesce("e0", "ce").alias("e1")
    ).with_columns(pl.coalesce("s1", "e1").alias("start"), pl.coalesce("e1", "s1").alias("end"))
    bad = (
        pl.col("ci").is_null()
        | (pl.col("ci") < 0)
        | ~valid_id(pl.col("pid"))
        | (pl.col("s0") == BAD).fill_null(False)
        | (pl.col("e0") == BAD).fill_null(False)
        | (pl.col("score") == BAD).fill_null(False)
        | (pl.col("start").is_null() & pl.col("end").is_null())
        | (pl.col("end") < pl.col("start")).fill_null(False)
        | ~pl.col("never_over").fill_null(False)
    )
    if maker.name_required:
        bad = bad | (pl.col("name") == "")
    for column, at in (("s0", maker.start_at), ("e0", maker.end_at)):
        if at is not None and at in maker.dates_required:
            bad = bad | pl.col(column).is_null()
    return frame.with_columns((~bad).alias("ok"))


def made_rows(
    fast: pl.DataFrame, first: int, courses: Courses
) -> tuple[list[int], list, list[int]]:
    """The driver rows of rows that passed, as records._RecordMaker._cached makes them, each
    with its line: (indexes, rows, positions of rows whose course has no code)."""
    if not fast.height:
        return [], [], []
    codeless = fast.with_row_index("pos").filter(~pl.col("coded"))["pos"].to_list()
    # The digest's input (records._digest_head and the name), put together in columns.
    inputs = fast.select(pl.concat_str("b", "end", "a", "name").cast(pl.Binary)).to_series()
    digests = list(map(_HEX, map(hashlib.sha1, inputs.to_list())))
    fast = fast.with_columns(
        pl.Series("digest", digests, dtype=pl.String),
        (pl.col("i").cast(pl.Int64) + first).alias("line"),
    )
    at = fast["i"].to_list()
    columns = [fast[c].to_list() for c in ("pid", "name", "start", "end", "agency", "ci")]
    lines = fast["line"].to_list()
    keys, middles, tails = courses.keys, courses.middles, courses.tails
    if not courses.postgres:
        rows = [
            (pid, *keys[ci], start, end, name, *middles[ci], digest, agency, *tails[ci], line)
            for pid, name, start, end, agency, ci, digest, line in zip(
                *columns, digests, lines, strict=True
            )
        ]  # fmt: skip
        return at, rows, codeless
    # PostgreSQL's rows carry their COPY text line (driver_rows.with_copy_text) before it.
    texts = fast.select(
        pl.concat_str(
            "pid", "kt", "start", "end", _escaped(pl.col("name")), "mt", "digest",
            _escaped(pl.col("agency")).fill_null("\\N"), "tt", separator="\t",
        )
    ).to_series().to_list()  # fmt: skip
    rows = [
        (pid, *keys[ci], start, end, name, *middles[ci], digest, agency, *tails[ci], text, line)
        for pid, name, start, end, agency, ci, digest, text, line in zip(
            *columns, digests, texts, lines, strict=True
        )
    ]  # fmt: skip
    return at, rows, codeless


def _escaped(text: pl.Expr) -> pl.Expr:
    """driver_rows.copy_text of a text column (None stays null)."""
    for plain, escaped in _COPY_ESCAPES:
        text = text.str.replace_all(plain, escaped, literal=True)
    return text


def valid_id(pid: pl.Expr) -> pl.Expr:
    """transforms.ids.is_valid_id in columns, for IDs written as normalize_id leaves them (one
    capital letter, nine digits): anything else is the row path's to normalize and judge."""
    letter = pid.str.slice(0, 1).replace_strict(
        list(_LETTERS), list(_LETTERS.values()), default=0, return_dtype=pl.Int32
    )
    digits = [pid.str.slice(k, 1).cast(pl.Int32, strict=False) for k in range(1, 10)]
    total = (letter // 10) * _WEIGHTS[0] + (letter % 10) * _WEIGHTS[1]
    for weight, digit in zip(_WEIGHTS[2:], digits, strict=True):
        total = total + weight * digit
    shaped = pid.str.contains(r"^[A-Z][1289][0-9]{8}$")
    return (shaped & (total % 10 == 0)).fill_null(False)
