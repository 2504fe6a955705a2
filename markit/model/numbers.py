"""Numbers written in an archive's text fields (tar sizes, pax records, RECORD rows), parsed strictly.

``str.isdigit()`` accepts ``"²"`` and ``int()`` accepts ``" 1_0\\n"``; a field an attacker
wrote must be plain ASCII digits, nothing else, or it is not a number.
"""

from __future__ import annotations

import re

__all__ = ["parse_decimal", "parse_hex_digest"]

_DECIMAL = re.compile(rb"[0-9]{1,20}")  # 20 digits: anything larger is no size a disk holds
_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_decimal(text: str | bytes) -> int | None:
    """*text* as a non-negative integer if it is 1-20 ASCII digits and nothing else, else None."""
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return int(raw) if _DECIMAL.fullmatch(raw) else None


def parse_hex_digest(text: str) -> str | None:
    """*text* if it is exactly 64 lower-case hex digits (a SHA-256 as markit writes it), else None."""
    return text if _HEX64.fullmatch(text) else None
