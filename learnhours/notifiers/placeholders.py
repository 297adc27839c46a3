"""Addresses no real mail may go to: the names reserved for examples and tests (RFC 2606, RFC
6761) and the demo's own, so that a plan, a setting or a roster copied from the demo or the docs
never sends a real mail to a stranger — or the HR workbook, with its IDs, to nobody's office."""

from __future__ import annotations

from email.utils import parseaddr

# Top-level names that never resolve (RFC 2606, RFC 6761) and the second-level ones kept for
# documentation; the product's docs, plans and demo use `.example` (hr@township.example).
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
# What the demo and the shipped plans said before they used reserved names: an office's plan or
# settings copied then may still carry them.
DEMO_DOMAINS = ("demo.gov.tw",)


def domain_of(address: str) -> str:
    """`人事室 <hr@Township.Example>` -> `township.example`; "" when there is no domain."""
    plain = parseaddr(address)[1] or address
    return plain.rpartition("@")[2].strip().rstrip(".").lower()


def is_placeholder(address: str) -> bool:
    """Whether mail to (or from) this address must never go out over a real mail server."""
    domain = domain_of(address)
    if not domain:
        return False
    tld = domain.rpartition(".")[2]
    named = (*RESERVED_DOMAINS, *DEMO_DOMAINS)
    return tld in RESERVED_TLDS or any(domain == d or domain.endswith(f".{d}") for d in named)


def like_patterns() -> tuple[str, ...]:
    """SQL LIKE patterns (lower case) of the placeholder addresses, for the roster's column."""
    patterns = [f"%.{tld}" for tld in RESERVED_TLDS]
    for domain in (*RESERVED_DOMAINS, *DEMO_DOMAINS):
        patterns += [f"%@{domain}", f"%.{domain}"]
    return tuple(patterns)
