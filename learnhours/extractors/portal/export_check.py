"""Is a download a whole, readable export of the expected kind? Checked before it is saved."""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile

from bs4 import BeautifulSoup

from learnhours.extractors.portal.errors import DownloadCorrupt
from learnhours.extractors.site_profile import SiteProfile


def check_export(body: bytes, profile: SiteProfile, *, what: str = "the download") -> None:
    """Raise DownloadCorrupt unless `body` is a whole, readable export of the profile's kind."""
    spec, name = profile.export, profile.name
    if not body:
        raise DownloadCorrupt(f"{name}: {what} is empty")
    if spec.format == "xlsx":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as book:
                bad = book.testzip()
                names = book.namelist()
        except zipfile.BadZipFile:
            raise DownloadCorrupt(f"{name}: {what} is not a readable .xlsx (cut short?)") from None
        if bad or "xl/workbook.xml" not in names:
            raise DownloadCorrupt(f"{name}: {what} is a damaged .xlsx workbook")
        return
    text = _decode(body, spec.encodings)
    if text is None:
        raise DownloadCorrupt(
            f"{name}: {what} cannot be read as {' or '.join(spec.encodings)} (cut short inside a "
            "character, or another encoding: see export.encodings)"
        )
    if spec.format == "html":
        table = BeautifulSoup(text, "html.parser").find("table")
        if table is None:
            raise DownloadCorrupt(f"{name}: {what} holds no table")
        first = table.find("tr")
        header = [c.get_text(strip=True) for c in first.find_all(["th", "td"])] if first else []
        _check_header(header, profile, what)
        return
    if text.lstrip().startswith("<"):
        raise DownloadCorrupt(
            f"{name}: {what} is a web page, not a CSV file (an error page, or the export link "
            "now leads elsewhere: check pages.export_link)"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        _check_header(header, profile, what)
        for row in reader:
            if row and len(row) != len(header):
                raise DownloadCorrupt(
                    f"{name}: {what}: line {reader.line_num} has {len(row)} fields where the "
                    f"header has {len(header)}; the file is cut short or malformed"
                )
    except csv.Error as exc:
        raise DownloadCorrupt(
            f"{name}: {what}: line {reader.line_num} cannot be read as CSV ({exc}); the file is "
            "cut short or malformed"
        ) from None


def _check_header(header: list[str], profile: SiteProfile, what: str) -> None:
    found = {_column(c) for c in header}
    missing = [c for c in profile.export.required_columns if c not in found]
    if missing:
        raise DownloadCorrupt(
            f"{profile.name}: {what} is not a {profile.kind} export: its header lacks "
            f"{', '.join(missing)} (export.required_columns)"
        )


def _column(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().lstrip("\ufeff*").strip()


def _decode(body: bytes, encodings: tuple[str, ...]) -> str | None:
    for encoding in encodings:
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None
