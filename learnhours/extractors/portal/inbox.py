"""Saving exports into the inbox under readable names, and knowing (by content) what is there."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from datetime import date
from pathlib import Path

from learnhours.extractors.portal.report import FetchReport, SavedFile, SkippedFile
from learnhours.extractors.site_profile import SiteProfile

log = logging.getLogger(__name__)

_NOT_IN_A_NAME = re.compile(r"[^\w.]+")  # \w keeps CJK profile names readable


def export_stem(profile: SiteProfile, date_from: date, date_to: date) -> str:
    """`<profile>-<from>_<to>`: what an export holds, readable in the inbox and in HR's reports.

    Built only from the profile's name and the query dates, never from what the portal sends
    (its file name could carry an account or a national ID)."""
    name = _NOT_IN_A_NAME.sub("-", unicodedata.normalize("NFKC", profile.name)).strip("-.")
    return f"{name[:40] or 'export'}-{date_from.isoformat()}_{date_to.isoformat()}"


def store_export(
    body: bytes,
    page_no: int,
    profile: SiteProfile,
    inbox: Path,
    stem: str,
    known: set[str],
    seen: set[str] | frozenset[str],
    report: FetchReport,
) -> None:
    """Save an export into the inbox, unless the same content is there or was seen; note it."""
    digest = hashlib.sha256(body).hexdigest()
    if digest in known or digest in seen:
        reason = "already in the inbox" if digest in known else "seen before"
        report.skipped.append(SkippedFile(digest, len(body), reason, page_no))
        log.info("%s: page %d export %s… skipped (%s)", profile.name, page_no, digest[:12], reason)
        return
    path = _free_path(inbox, f"{stem}-p{page_no}-{digest[:12]}", profile.export.suffix)
    partial = inbox / f".{digest}.part"
    partial.write_bytes(body)
    os.replace(partial, path)  # whole file or nothing, even if the run is killed
    known.add(digest)
    report.saved.append(SavedFile(path, digest, len(body)))
    log.info(
        "%s: page %d export saved as %s (%d bytes)", profile.name, page_no, path.name, len(body)
    )


def _free_path(inbox: Path, stem: str, suffix: str) -> Path:
    """`stem + suffix`, or `stem-2 + suffix`... when a file (edited by hand?) already has the name."""
    path, n = inbox / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = inbox / f"{stem}-{n}{suffix}"
    return path


def inbox_hashes(inbox: Path) -> set[str]:
    """sha256 of the content of every file in the inbox, whatever its name: a name can lie (a file
    edited or copied by hand), the content cannot."""
    hashes = set()
    for path in inbox.iterdir():
        if not path.is_file() or path.name.startswith("."):
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        hashes.add(digest.hexdigest())
    return hashes
