"""``MAR-INF/RECORD``: the SHA-256 and size of every file in an archive.

In the spirit of a wheel's RECORD: one CSV row per file, ``name,sha256=<hex>,size``,
sorted as written, and a last row for the record itself with both fields empty.
Hex rather than a wheel's base64, so a row can be compared with ``sha256sum``. Parsed
strictly: a digest is exactly 64 of ``0-9a-f`` and a size ASCII digits (``int()`` would
take ``" 1_0"``, ``"²"`` or hex wrapped in vertical tabs and U+2028).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from markit.errors import ArchiveError
from markit.model.numbers import parse_decimal, parse_hex_digest
from markit.model.problems import quote

__all__ = ["RECORD_NAME", "RecordRow", "format_record", "parse_record"]

RECORD_NAME = "MAR-INF/RECORD"


@dataclass(frozen=True)
class RecordRow:
    """One file as the record lists it."""

    name: str
    """Archive name, relative to the archive root."""
    sha256: str
    """Lower-case hex SHA-256 of the file's bytes."""
    size: int
    """The file's size in bytes."""


def format_record(rows: Iterable[RecordRow], record_name: str = RECORD_NAME) -> bytes:
    """The record's bytes: a row per file, then ``MAR-INF/RECORD,,`` (*record_name*: ``WAR-INF/RECORD`` in a .war)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row.name, f"sha256={row.sha256}", row.size])
    writer.writerow([record_name, "", ""])
    return out.getvalue().encode("utf-8")


def parse_record(data: bytes, record_name: str = RECORD_NAME) -> list[RecordRow]:
    """The rows of a record (*record_name*, ``WAR-INF/RECORD`` in a .war), without its own row;
    :class:`ArchiveError` if malformed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArchiveError(f"{record_name}: not UTF-8 ({error.reason})") from None
    try:
        return _rows(text, record_name)
    except csv.Error as error:  # a NUL byte, a field over csv's size limit
        raise ArchiveError(f"{record_name}: not CSV ({error})") from None


def _rows(text: str, record_name: str = RECORD_NAME) -> list[RecordRow]:
    rows: list[RecordRow] = []
    for line, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        if len(fields) != 3:
            raise ArchiveError(f"{record_name}: line {line} has {len(fields)} fields, expected 3")
        name, digest, size = fields
        if name == record_name and not digest and not size:
            continue
        algorithm, _, value = digest.partition("=")
        sha256, number = parse_hex_digest(value), parse_decimal(size)
        if algorithm != "sha256" or sha256 is None or number is None:
            raise ArchiveError(f"{record_name}: line {line} is {quote(digest)}, {quote(size)}; expected"
                               " 'sha256=' and 64 lower-case hex digits, then a size in ASCII digits")
        rows.append(RecordRow(name, sha256, number))
    return rows
