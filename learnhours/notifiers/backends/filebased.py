"""The file outbox, the default backend: one .eml file per message, named without personal data."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    Outgoing,
    not_attempted,
)

DEFAULT_OUTBOX_DIR = Path("var/outbox")


def outbox_name(message_id: str) -> str:
    """File name stem for a message: a hash, so no personal ID or name can reach the file system."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


class FileBackend(MailBackend):
    """Writes each message to `<directory>/<sha256(Message-ID)[:32]>.eml` (same message, same file)."""

    name = "file"

    def __init__(self, directory: Path = DEFAULT_OUTBOX_DIR) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileBackend(directory={str(self.directory)!r})"

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{outbox_name(message_id)}.eml"

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
            path = self.path_for(mid)
            tmp = path.with_name(path.name + ".tmp")
            try:
                tmp.write_bytes(message.raw)
                os.replace(tmp, path)  # atomic: a crash never leaves half a message behind
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                yield Delivery(mid, "retry", f"cannot write {path.name}: {exc.strerror or exc}")
                continue
            yield Delivery(mid, "sent", str(path))
