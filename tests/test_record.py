"""MAR-INF/RECORD: writing and parsing."""

from __future__ import annotations

import pytest

from markit.errors import ArchiveError
from markit.model.record import RecordRow, format_record, parse_record

DIGEST = "ab" * 32


def test_round_trip_with_awkward_names() -> None:
    rows = [RecordRow("a,b.txt", DIGEST, 3), RecordRow('q"uote/ü.bin', "cd" * 32, 0)]
    data = format_record(rows)
    assert data.endswith(b"MAR-INF/RECORD,,\n")
    assert parse_record(data) == rows


@pytest.mark.parametrize(
    "data",
    [
        b"a.txt,sha256=zz,3\n",
        b"a.txt,md5=" + b"ab" * 32 + b",3\n",
        b"a.txt,sha256=" + b"ab" * 32 + b",-1\n",
        b"a.txt,sha256=" + b"ab" * 32 + b"\n",
        b"a.txt,sha256=" + b"g" * 64 + b",3\n",
        b"\xff\xfe,sha256=" + b"ab" * 32 + b",3\n",
        b"a" * 200_000 + b",sha256=" + b"ab" * 32 + b",3\n",
    ],
)
def test_malformed_records(data: bytes) -> None:
    with pytest.raises(ArchiveError, match="MAR-INF/RECORD"):
        parse_record(data)
