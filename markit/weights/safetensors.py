"""A ``.safetensors`` file's header: its tensors (dtype, shape, data offsets) and metadata, checked.

The format: an 8-byte little-endian header length N, N bytes of JSON (an object: per tensor
``{"dtype", "shape", "data_offsets": [begin, end]}``, offsets relative to the data that follows
the header, and an optional ``"__metadata__"`` of string to string), then the data. A header
"lies" (:class:`InvalidWeights`) where the safetensors library itself refuses it: N over
100 MB (:data:`HEADER_MAX`) or past the file's end, JSON that is not such an object, an
unknown dtype, tensors whose offsets overlap, leave gaps or run past the data, a shape
whose size disagrees with its offsets. :class:`HeaderReader` gathers the header from a
stream's first chunks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from markit.errors import ArchiveError

__all__ = ["DTYPE_BITS", "HEADER_MAX", "HeaderReader", "InvalidWeights", "SafetensorsHeader", "TensorInfo",
           "parse_header"]

HEADER_MAX = 100_000_000  # bytes: the safetensors library's own limit (MAX_HEADER_SIZE), a bound on what is held
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}
"""Bits per element of every dtype safetensors 0.6 knows."""


class InvalidWeights(ArchiveError):
    """A weights file whose header lies about its data (``invalid-weights``)."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor as the header declares it."""

    name: str
    dtype: str
    """One of :data:`DTYPE_BITS`."""
    shape: tuple[int, ...]
    begin: int
    """Its first byte, relative to the data section (which starts at ``8 + header_size``)."""
    end: int
    """One past its last byte, relative to the data section."""

    @property
    def parameters(self) -> int:
        """Elements: the product of the shape (1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a valid header declares."""

    tensors: tuple[TensorInfo, ...]
    """In the order of their data offsets."""
    metadata: dict[str, str] | None
    """``__metadata__``, if present."""
    header_size: int
    """N: the JSON's bytes (the data section starts at ``8 + header_size``)."""

    @property
    def parameters(self) -> int:
        """Elements over all tensors."""
        return sum(t.parameters for t in self.tensors)

    @property
    def dtypes(self) -> dict[str, int]:
        """Tensors per dtype, by dtype name, sorted."""
        counts: dict[str, int] = {}
        for t in self.tensors:
            counts[t.dtype] = counts.get(t.dtype, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def by_name(self) -> dict[str, TensorInfo]:
        """The tensors by name."""
        return {t.name: t for t in self.tensors}

    def to_json(self) -> dict[str, Any]:
        """``inspect --json``'s ``"safetensors"`` object."""
        return {"tensors": len(self.tensors), "parameters": self.parameters, "dtypes": self.dtypes,
                "metadata": self.metadata}


def header_length(first: bytes) -> int:
    """N from the first 8 bytes; :class:`InvalidWeights` if they are missing or N is over :data:`HEADER_MAX`."""
    if len(first) < 8:
        raise InvalidWeights(f"the file is {len(first)} bytes long: a safetensors file starts with an 8-byte length")
    n = int.from_bytes(first[:8], "little")
    if n > HEADER_MAX:
        raise InvalidWeights(f"the header length says {n:,} bytes, over the {HEADER_MAX:,}-byte limit")
    return n


def parse_header(data: bytes, file_size: int | None = None) -> SafetensorsHeader:
    """The header at the start of *data* (at least its first ``8 + N`` bytes; the whole file will do).

    *file_size*: the whole file's bytes (default: ``len(data)``), for the checks against the data's end.
    :class:`InvalidWeights` (an :class:`~markit.errors.ArchiveError`) says what lies.
    """
    n = header_length(data)
    size = len(data) if file_size is None else file_size
    if 8 + n > size:
        raise InvalidWeights(f"the header length says {n:,} bytes, past the file's end ({size:,} bytes)")
    if len(data) < 8 + n:
        raise InvalidWeights(f"only {len(data):,} bytes given of a {8 + n:,}-byte header")
    try:
        parsed = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidWeights(f"the header is not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise InvalidWeights("the header is not a JSON object")
    metadata = parsed.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise InvalidWeights("__metadata__ is not an object of strings")
    tensors = sorted((_tensor(name, spec) for name, spec in parsed.items()), key=lambda t: (t.begin, t.end))
    _check_layout(tensors, size - 8 - n)
    return SafetensorsHeader(tuple(tensors), metadata, n)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        names = [k for k, _ in pairs]
        raise ValueError(f"{next(k for k in names if names.count(k) > 1)!r} is named twice")
    return found


def _tensor(name: str, spec: Any) -> TensorInfo:
    if not isinstance(spec, dict) or set(spec) - {"dtype", "shape", "data_offsets"}:
        raise InvalidWeights(f"tensor {name!r}: not an object of dtype, shape and data_offsets")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise InvalidWeights(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_count(d) for d in shape):
        raise InvalidWeights(f"tensor {name!r}: the shape {shape!r} is not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise InvalidWeights(f"tensor {name!r}: data_offsets {offsets!r} are not [begin, end] with begin <= end")
    info = TensorInfo(name, dtype, tuple(shape), offsets[0], offsets[1])
    bits = info.parameters * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != info.end - info.begin:
        raise InvalidWeights(f"tensor {name!r}: shape {list(shape)} of {dtype} is {bits / 8:,g} bytes, its offsets"
                             f" hold {info.end - info.begin:,}")
    return info


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(tensors: list[TensorInfo], data_size: int) -> None:
    """Tensors sorted by offset must tile the data exactly: no overlap, no gap, nothing past the end."""
    at = 0
    for t in tensors:
        if t.begin < at:
            raise InvalidWeights(f"tensor {t.name!r} (bytes {t.begin:,}-{t.end:,}) overlaps the one before it,"
                                 f" which ends at {at:,}")
        if t.begin > at:
            raise InvalidWeights(f"a gap of {t.begin - at:,} bytes before tensor {t.name!r} (at {t.begin:,})")
        at = t.end
    if at > data_size:
        raise InvalidWeights(f"the tensors end at byte {at:,} of the data, which holds {data_size:,}")
    if at < data_size:
        raise InvalidWeights(f"{data_size - at:,} bytes of data after the last tensor (at {at:,})")


class HeaderReader:
    """Gathers a safetensors header from a stream's first chunks; the rest passes untouched."""

    __slots__ = ("data", "error", "known", "want")

    def __init__(self) -> None:
        self.data = bytearray()
        self.want = 8
        """Bytes to hold: 8, then 8 + N once N is known."""
        self.known = False
        """N has been read."""
        self.error: InvalidWeights | None = None

    def feed(self, chunk: bytes | memoryview) -> None:
        """The stream's next bytes."""
        view = memoryview(chunk)
        while view and len(self.data) < self.want and self.error is None:
            take = self.want - len(self.data)
            self.data += view[:take]
            view = view[take:]
            if not self.known and len(self.data) == 8:
                self.known = True
                try:
                    self.want = 8 + header_length(bytes(self.data))
                except InvalidWeights as error:
                    self.error = error

    @property
    def complete(self) -> bool:
        """The whole header is held (or the length alone was enough to refuse it)."""
        return self.error is not None or (self.known and len(self.data) >= self.want)

    def header(self, file_size: int) -> SafetensorsHeader:
        """The header, checked against the file's *file_size*; :class:`InvalidWeights` if it lies."""
        if self.error is not None:
            raise self.error
        return parse_header(bytes(self.data), file_size)
