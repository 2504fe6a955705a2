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
        # int(x, 16) strips these (vertical tab, form feed, U+0085, U+2028); int() takes '²', ' 3' and '1_0'
        b"a.txt,sha256=\x0b" + b"ab" * 31 + b"a,3\n",
        b"a.txt,sha256=\x0c" + b"ab" * 31 + b"a,3\n",
        "a.txt,sha256=\x85".encode() + b"ab" * 31 + b"a,3\n",
        "a.txt,sha256=\u2028".encode() + b"ab" * 31 + b"a,3\n",
        b"a.txt,sha256=" + b"AB" * 32 + b",3\n",
        b"a.txt,sha256=" + b"ab" * 32 + ",²\n".encode(),
        b"a.txt,sha256=" + b"ab" * 32 + b", 3\n",
        b"a.txt,sha256=" + b"ab" * 32 + b",1_0\n",
    ],
)
def test_malformed_records(data: bytes) -> None:
    with pytest.raises(ArchiveError, match="MAR-INF/RECORD"):
        parse_record(data)


def test_a_malformed_field_is_quoted_with_escapes() -> None:
    with pytest.raises(ArchiveError) as caught:
        parse_record("a.txt,sha256=\u2028".encode() + b"ab" * 31 + b"a,3\n")
    assert "\\u2028" in str(caught.value) and "\u2028" not in str(caught.value)
