"""The file outbox, the default backend: one .eml file per message, named so that a clerk finds
the HR summary among a night's 79 (day, kind, reader: `2026-11-23_人事室摘要_hr_1f3a9c2e.eml`)
and never by a personal ID."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    Outgoing,
    not_attempted,
)
from learnhours.transforms.ids import scrub_ids

DEFAULT_OUTBOX_DIR = Path("var/outbox")


def outbox_name(message_id: str) -> str:
    """File name stem for a message: a hash, so no personal ID or name can reach the file system."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


_SHORT = 12  # hex digits of the Message-ID's hash after a readable name: unique in any outbox
_UNSAFE = re.compile(r"[^\w.@-]+")  # \w keeps CJK: a unit's name reads as the clerk wrote it


def readable_name(name: str, message_id: str) -> str:
    """`name` (the ledger's day, kind and reader) made safe for any file system, then a short
    hash of the Message-ID: the same message always the same file, two never one. A reader's
    mailbox named by its owner's 身分證字號 shows it masked (A12-789), never whole."""
    safe = _UNSAFE.sub("-", scrub_ids(name)).strip("-.")[:80]
    return f"{safe}_{outbox_name(message_id)[:_SHORT]}"


class FileBackend(MailBackend):
    """Writes each message to `<directory>/<day>_<kind>_<reader>_<hash>.eml` when the ledger says
    who it is for, else `<sha256(Message-ID)[:32]>.eml` (same message, same file)."""

    name = "file"

    def __init__(self, directory: Path = DEFAULT_OUTBOX_DIR) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileBackend(directory={str(self.directory)!r})"

    def path_for(self, message_id: str, name: str = "") -> Path:
        """Where a message is written: named for people when `name` says how; without it,
        the file already written for that Message-ID, whatever its name (else its hash)."""
        if name:
            return self.directory / f"{readable_name(name, message_id)}.eml"
        written = sorted(self.directory.glob(f"*_{outbox_name(message_id)[:_SHORT]}.eml"))
        return written[0] if written else self.directory / f"{outbox_name(message_id)}.eml"

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
        ready = False
        for message in messages:
            mid = message.message_id
            if not ready:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    err = BackendUnavailable(
                        f"outbox folder {self.directory}",
                        f"cannot be created ({exc.strerror or exc}); check the path and permissions",
                    )
                    yield Delivery(mid, "not_attempted", str(err))
                    yield from not_attempted(messages, str(err))
                    raise err from None
                ready = True
            path = self.path_for(mid, message.name)
            tmp = path.with_name(path.name + ".tmp")
            try:
                tmp.write_bytes(message.raw)
                os.replace(tmp, path)  # atomic: a crash never leaves half a message behind
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                yield Delivery(mid, "retry", f"cannot write {path.name}: {exc.strerror or exc}")
                continue
            yield Delivery(mid, "sent", str(path))
