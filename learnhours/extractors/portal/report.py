"""What a fetch run did: files saved, files skipped, pages read, logins repeated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SavedFile:
    path: Path
    sha256: str
    bytes: int


@dataclass(frozen=True)
class SkippedFile:
    sha256: str
    bytes: int
    reason: str  # "already in the inbox" or "seen before"
    page: int


@dataclass
class FetchReport:
    profile: str
    saved: list[SavedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    pages: int = 0
    relogins: int = 0
    no_records: bool = False  # the portal said explicitly that the query found nothing
