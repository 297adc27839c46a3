"""Hours written plainly, below every layer: what a plan's description, a mail and `explain` show.
Imports nothing of the product."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal) -> str:
    """Hours (or a rate) as people write them: 3, 1.5, 0.25 (no trailing zeros, no exponent)."""
    return format(value.normalize(), "f")
