"""Safetensors headers (markit.weights.safetensors): what the real safetensors library writes parses to what it
says, and every way a header can lie is ``InvalidWeights``, whole or fed in chunks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save

from markit.weights.safetensors import HEADER_MAX, HeaderReader, InvalidWeights, parse_header


def written() -> bytes:
    return save({"w": np.zeros((3, 4), np.float32), "b": np.arange(5, dtype=np.int64), "h": np.ones(2, np.float16)},
                metadata={"format": "np", "step": "3"})


def crafted(header: dict[str, object], data: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def test_the_libraries_file_parses_to_what_it_wrote() -> None:
    header = parse_header(written())
    assert {t.name: (t.dtype, t.shape) for t in header.tensors} == {"w": ("F32", (3, 4)), "b": ("I64", (5,)),
                                                                    "h": ("F16", (2,))}
    assert header.parameters == 12 + 5 + 2
    assert header.dtypes == {"F16": 1, "F32": 1, "I64": 1}
    assert header.metadata == {"format": "np", "step": "3"}
    assert header.to_json() == {"tensors": 3, "parameters": 19, "dtypes": {"F16": 1, "F32": 1, "I64": 1},
                                "metadata": {"format": "np", "step": "3"}}


def test_offsets_locate_the_tensors_bytes() -> None:
    data = written()
    header = parse_header(data)
    start = 8 + header.header_size
    b = header.by_name["b"]
    assert np.frombuffer(data[start + b.begin : start + b.end], np.int64).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("step", [1, 3, 8, 9, 1 << 20])
def test_the_reader_gathers_the_header_from_chunks(step: int) -> None:
    data = written()
    reader = HeaderReader()
    for i in range(0, len(data), step):
        reader.feed(data[i : i + step])
    assert reader.complete
    assert reader.header(len(data)) == parse_header(data)


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
LIES = {
    "length past the end": (lambda: crafted({"a": F32_2}, b"\0" * 8, length=1000), "past the file's end"),
    "length over 100 MB": (lambda: struct.pack("<Q", HEADER_MAX + 1) + b"{}", "over the 100,000,000-byte limit"),
    "not JSON": (lambda: struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    "not an object": (lambda: crafted([], b""), "not a JSON object"),  # type: ignore[arg-type]
    "duplicate name": (lambda: struct.pack("<Q", 9) + b'{"a":1,"a":2}'[:9], "not valid JSON"),
    "unknown dtype": (lambda: crafted({"a": {**F32_2, "dtype": "F128"}}, b"\0" * 8), "unknown dtype"),
    "shape disagrees": (lambda: crafted({"a": {**F32_2, "shape": [3]}}, b"\0" * 8), "its offsets hold 8"),
    "overlap": (lambda: crafted({"a": F32_2, "b": {**F32_2, "data_offsets": [4, 12]}}, b"\0" * 12), "overlaps"),
    "gap": (lambda: crafted({"a": F32_2, "b": {**F32_2, "data_offsets": [12, 20]}}, b"\0" * 20), "a gap of 4"),
    "past the data": (lambda: crafted({"a": {**F32_2, "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
                      "end at byte 16 of the data, which holds 8"),
    "data after the last": (lambda: crafted({"a": F32_2}, b"\0" * 12), "4 bytes of data after the last tensor"),
    "bad metadata": (lambda: crafted({"__metadata__": {"k": 1}, "a": F32_2}, b"\0" * 8), "not an object of strings"),
    "negative offset": (lambda: crafted({"a": {**F32_2, "data_offsets": [-8, 0]}}, b""), "data_offsets"),
    "short file": (lambda: b"\x01\x00", "starts with an 8-byte length"),
}


@pytest.mark.parametrize("case", LIES)
def test_a_lying_header_is_invalid(case: str) -> None:
    make, said = LIES[case]
    with pytest.raises(InvalidWeights, match=said.replace("(", r"\(")):
        parse_header(make())


def test_duplicate_names_are_refused() -> None:
    raw = b'{"a":' + json.dumps(F32_2).encode() + b',"a":' + json.dumps(F32_2).encode() + b"}"
    with pytest.raises(InvalidWeights, match="named twice"):
        parse_header(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)


def test_a_huge_length_is_refused_without_gathering() -> None:
    reader = HeaderReader()
    reader.feed(struct.pack("<Q", HEADER_MAX + 1) + b"x" * 100)
    assert reader.complete and len(reader.data) == 8
    with pytest.raises(InvalidWeights):
        reader.header(1 << 40)


@pytest.mark.parametrize("case", [c for c in LIES if c != "duplicate name"])
def test_the_library_refuses_them_too(case: str) -> None:
    from safetensors.numpy import load

    with pytest.raises(Exception):  # noqa: B017 - its errors are of several kinds; that it refuses is the point
        load(LIES[case][0]())
