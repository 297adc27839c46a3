"""National ID (身分證字號 / 居留證號) validation and masking."""

from __future__ import annotations

import re
import unicodedata

# The letter's two-digit value, per the Ministry of the Interior's table.
_LETTER = dict(
    zip(
        "ABCDEFGHJKLMNPQRSTUVXYWZIO",
        range(10, 36),
        strict=True,
    )
)
_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)


def normalize_id(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value or "")).strip().upper()


def is_valid_id(pid: str) -> bool:
    """A letter, then 1/2 (or 8/9 for residents), then 8 digits, with a valid check digit."""
    if len(pid) != 10 or pid[0] not in _LETTER or not pid[1:].isdigit() or pid[1] not in "1289":
        return False
    tens, ones = divmod(_LETTER[pid[0]], 10)
    digits = (tens, ones, *map(int, pid[1:]))
    return sum(w * d for w, d in zip(_WEIGHTS, digits, strict=True)) % 10 == 0


def check_digit(prefix9: str) -> str:
    """The check digit that completes a 9-character ID prefix (letter + 8 digits)."""
    for digit in "0123456789":
        if is_valid_id(prefix9 + digit):
            return digit
    raise ValueError("no check digit completes this prefix")


def mask_id(pid: str) -> str:
    """A12****789: enough for a person to recognise their own ID, not enough to use it."""
    return f"{pid[:3]}****{pid[7:]}" if len(pid) == 10 else "****"


# Shaped like an ID: a letter, 1/2/8/9 or A-D, eight digits.
_SHAPE = r"[A-Z][0-9A-D][0-9]{8}"
# Standing alone in a text, in either case: a mailbox named by its owner's ID is often lowercase.
_ID_SHAPE = re.compile(rf"(?<![A-Za-z0-9]){_SHAPE}(?![0-9])", re.IGNORECASE)
_FULL = re.compile(_SHAPE)
_MASKED = re.compile(r"([A-Z][0-9A-D][0-9])\*{3,5}([0-9]{3})")  # as mask_id writes it, loosely


def id_shaped(text: str) -> bool:
    """Whether `text` (normalized) is shaped like a whole 身分證字號, whatever its check digit."""
    return _FULL.fullmatch(text) is not None


def unmasked(text: str) -> tuple[str, str] | None:
    """A masked ID as the mails print it (`A12****789`, any 3-5 stars) as (an SQL LIKE pattern
    for the IDs it may be, its mask_id form); None if `text` is not one."""
    found = _MASKED.fullmatch(text)
    if found is None:
        return None
    return f"{found[1]}____{found[2]}", f"{found[1]}****{found[2]}"


def scrub_ids(text: str) -> str:
    """Mask every ID-shaped token in a text (logs, errors, server replies) before a person sees it."""
    return _ID_SHAPE.sub(lambda m: mask_id(m[0]), text)


def national_id(letter: str = "A", sex: int = 1, serial: int = 0) -> str:
    """A 身分證字號 with a valid check digit: letter, 1/2 (or 8/9), 7 digits of serial, check.
    For sample data (the demo, the portal emulator, tests)."""
    prefix = f"{letter.upper()}{sex}{serial % 10**7:07d}"
    return prefix + check_digit(prefix)
