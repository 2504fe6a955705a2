"""``MAR-INF/RECORD``: the SHA-256 and size of every file in an archive.

In the spirit of a wheel's RECORD: one CSV row per file, ``name,sha256=<hex>,size``,
sorted as written, and a last row for the record itself with both fields empty.
Hex rather than a wheel's base64, so a row can be compared with ``sha256sum``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from markit.errors import ArchiveError

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


def format_record(rows: Iterable[RecordRow]) -> bytes:
    """The record's bytes: a row per file, then ``MAR-INF/RECORD,,``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row.name, f"sha256={row.sha256}", row.size])
    writer.writerow([RECORD_NAME, "", ""])
    return out.getvalue().encode("utf-8")


def parse_record(data: bytes) -> list[RecordRow]:
    """The rows of a record, without the record's own row; :class:`ArchiveError` if malformed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArchiveError(f"{RECORD_NAME}: not UTF-8 ({error.reason})") from None
    try:
        return _rows(text)
    except csv.Error as error:  # a NUL byte, a field over csv's size limit
        raise ArchiveError(f"{RECORD_NAME}: not CSV ({error})") from None


def _rows(text: str) -> list[RecordRow]:
    rows: list[RecordRow] = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        if len(fields) != 3:
            raise ArchiveError(f"{RECORD_NAME}: line {number} has {len(fields)} fields, expected 3")
        name, digest, size = fields
        if name == RECORD_NAME and not digest and not size:
            continue
        algorithm, _, value = digest.partition("=")
        if algorithm != "sha256" or len(value) != 64 or not size.isdigit():
            raise ArchiveError(f"{RECORD_NAME}: line {number} is not 'name,sha256=<hex>,size'")
        try:
            int(value, 16)
        except ValueError:
            raise ArchiveError(f"{RECORD_NAME}: line {number}: {value!r} is not hex") from None
        rows.append(RecordRow(name, value.lower(), int(size)))
    return rows
