"""A zip inside an archive (what ``torch.save`` and ``torch.jit.save`` write), walked as its bytes pass.

:class:`ZipScan` takes the member's chunks in order, walks the inner zip's local headers and
feeds every ``*.pkl`` entry's data (inflated if deflated) to a
:class:`~markit.weights.pickles.PickleScan`. ``torch.save`` writes each entry with a data
descriptor and no sizes in its local header, so a stored entry's end is known only from
its pickle's STOP; the walk stops at the first stored entry of unknown length that is not
a pickle (a tensor's bytes), after ``torch.save``'s ``data.pkl``, which it writes first.
The inner zip's last 16 MiB are kept, and at the end its central directory, the one torch's
reader follows, says which ``*.pkl`` entries a load reads: each must be one the walk
scanned, at the same offset, with the same name and method; one it did not reach is read from
the kept bytes if it lies within them (a whole zip of up to 16 MiB: TorchScript's pickles, after
its tensors), and is otherwise reported as not scanned. A deflated pickle inflating over 100
times its size is not followed.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from markit.formats.zip.records import (
    FLAG_DESCRIPTOR,
    METHOD_DEFLATE,
    METHOD_STORE,
    SIG_LOCAL,
    Header,
    ZipStructureError,
    find_end,
    parse_central,
    parse_local,
)
from markit.weights.pickles import PickleScan

__all__ = ["TAIL_MAX", "ZipResult", "ZipScan"]

TAIL_MAX = 16 << 20  # 16 MiB of the inner zip's end kept for its central directory: ~150,000 entries
_END_REGION = 22 + 0xFFFF + 20  # the end record, its longest comment, the zip64 locator before it
_INFLATE_STEP = 1 << 20  # inflated bytes per call: a few compressed bytes cannot make the walk hold more
_RATIO_MAX = 100  # a pickle inflating more than this many times its deflated size is not followed (a bomb)
_LOCAL_SIG = struct.pack("<I", SIG_LOCAL)


@dataclass
class _Entry:
    """One local header the walk read."""

    name: str
    method: int
    scan: PickleScan | None = None


@dataclass
class _Data:
    """The entry whose data is passing."""

    entry: _Entry
    left: int | None  # stored bytes still to pass, None when only the data itself shows its end
    descriptor: bool
    inflate: zlib._Decompress | None = None
    passed: int = 0
    """Data bytes passed so far."""
    inflated: int = 0
    """Bytes the deflated data gave so far."""


@dataclass
class ZipResult:
    """What the walk and the central directory said."""

    pickles: list[tuple[str, PickleScan]] = field(default_factory=list)
    """Each ``*.pkl`` entry scanned, with its name in the inner zip (a name may come twice: each is kept)."""
    unscanned: list[str] = field(default_factory=list)
    """Why a ``*.pkl`` entry a load would read was not scanned (one sentence each)."""
    torchscript: bool = False
    """It holds a ``constants.pkl``: ``torch.load`` hands it to ``torch.jit.load``."""
    error: str | None = None
    """Why its central directory could not be read (then no torch reader loads it either)."""


class ZipScan:
    """Feed the inner zip's bytes (:meth:`feed`), then :meth:`finish`. *size*: its length, if declared."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.at = 0
        """Stream offset of the next byte fed."""
        self.walking = True
        """The walk goes on (False once it reached the central directory, or lost its way)."""
        self._held = bytearray()  # a header or a data descriptor being gathered
        self._held_at = 0
        self._descriptor = False  # _held is a data descriptor (and the 4 bytes after it)
        self._data: _Data | None = None
        self._entries: dict[int, _Entry] = {}
        self._tail = bytearray()
        self._tail_at = 0

    @property
    def scanned(self) -> bool:
        """A ``*.pkl`` entry has been read to its end."""
        return any(e.scan is not None and e.scan.done for e in self._entries.values())

    def feed(self, chunk: bytes | memoryview) -> None:
        """The next bytes."""
        view = memoryview(chunk)
        self._keep_tail(view)
        at = self.at
        while view and self.walking:
            rest = self._data_step(self._data, view) if self._data is not None else self._gather(view, at)
            at += len(view) - len(rest)
            view = rest
        self.at += len(chunk)

    def _keep_tail(self, view: memoryview) -> None:
        """Keep the last :data:`TAIL_MAX` bytes (only those, when the size is declared)."""
        start = 0 if self.size is None else max(0, self.size - TAIL_MAX - self.at)
        if start < len(view):
            if not self._tail:
                self._tail_at = self.at + start
            self._tail += view[start:]
        if len(self._tail) > 2 * TAIL_MAX:
            cut = len(self._tail) - TAIL_MAX
            del self._tail[:cut]
            self._tail_at += cut

    def _gather(self, view: memoryview, at: int) -> memoryview:
        """Gather a local header (or a data descriptor) from *view*, which starts at byte *at*; return the rest."""
        if not self._held:
            self._held_at = at
        if self._descriptor:
            need = 28  # the longest descriptor (24 bytes) and the signature after it
        elif len(self._held) < 30:
            need = 30
        else:
            need = 30 + int.from_bytes(self._held[26:28], "little") + int.from_bytes(self._held[28:30], "little")
        take = need - len(self._held)
        self._held += view[:take]
        rest = view[take:]
        if len(self._held) < need:
            return rest
        if self._descriptor:
            return self._after_descriptor(rest)
        if self._held[:4] != _LOCAL_SIG:
            self.walking = False  # the central directory (or bytes no reader walks through)
        elif need > 30:
            self._open(bytes(self._held))
            self._held.clear()
        return rest

    def _after_descriptor(self, rest: memoryview) -> memoryview:
        """Skip the data descriptor in :attr:`_held`: 12 or 20 bytes after an optional signature, its length
        told by the header that follows it, whose first bytes stay held."""
        held = bytes(self._held)
        self._held.clear()
        self._descriptor = False
        signed = held[:4] == b"PK\x07\x08"
        for size in (16, 24) if signed else (12, 20):
            if held[size : size + 4] in (_LOCAL_SIG, b"PK\x01\x02"):
                self._held = bytearray(held[size:])  # the next header's first bytes
                self._held_at += size
                return rest
        self.walking = False  # not told: the central directory decides
        return rest

    def _open(self, raw: bytes) -> None:
        try:
            header = parse_local(raw, self._held_at)
        except ZipStructureError:
            self.walking = False
            return
        entry = _Entry(header.name, header.method)
        self._entries[header.offset] = entry
        descriptor = bool(header.flags & FLAG_DESCRIPTOR)
        pickle = _is_pickle(header.name)
        if pickle and header.method in (METHOD_STORE, METHOD_DEFLATE):
            entry.scan = PickleScan()
        deflate = header.method == METHOD_DEFLATE and (pickle or descriptor)
        if descriptor and not deflate and entry.scan is None:
            self.walking = False  # a stored entry whose end only the central directory knows
            return
        left = None if descriptor else header.compressed_size
        self._data = _Data(entry, left, descriptor, zlib.decompressobj(-15) if deflate else None)

    def _data_step(self, data: _Data, view: memoryview) -> memoryview:
        """Pass the current entry's data from *view*; return the bytes after its end."""
        part = view if data.left is None else view[: data.left]
        scan = data.entry.scan
        used = len(part)
        ended = False
        if data.inflate is not None:
            try:
                used = self._inflate(data, part)
            except zlib.error:  # damaged deflate data: no reader gets past it either
                self.walking = False
                return view[len(view) :]
            ended = data.inflate.eof
        elif scan is not None:
            scan.feed(part)
            if data.left is None and scan.done:
                if not scan.pickles:  # it failed: where it ends is not known
                    self.walking = False
                    return view[len(view) :]
                used, ended = scan.end - data.passed, True
        data.passed += used
        if data.left is not None:
            data.left -= used
            ended = ended or data.left == 0
        if ended:
            self._data = None
            self._descriptor = data.descriptor
        return view[used:]

    def _inflate(self, data: _Data, part: memoryview) -> int:
        """Inflate *part* into the entry's scan, a bounded step at a time; the bytes of it the stream used."""
        inflate, scan = data.inflate, data.entry.scan
        assert inflate is not None
        out = inflate.decompress(part, _INFLATE_STEP)
        while True:
            data.inflated += len(out)
            if data.inflated > _RATIO_MAX * (data.passed + len(part)) + _INFLATE_STEP:  # a bomb: the walk ends
                if scan is not None and not scan.done:
                    scan.give_up(f"its deflated data inflates over {_RATIO_MAX} times: not scanned past byte"
                                 f" {data.inflated - len(out):,}")
                self.walking = False
                return len(part)
            if scan is not None and not scan.done:
                scan.feed(out)
            if inflate.eof or not inflate.unconsumed_tail:
                break
            out = inflate.decompress(inflate.unconsumed_tail, _INFLATE_STEP)
        return len(part) - len(inflate.unused_data) if inflate.eof else len(part)

    def finish(self) -> ZipResult:
        """At the member's end: the central directory's view of which pickles a load reads."""
        for entry in self._entries.values():
            if entry.scan is not None:
                entry.scan.close()
        result = ZipResult([(e.name, e.scan) for e in self._entries.values() if e.scan is not None])
        kept, base = self._tail, self._tail_at
        last = bytes(kept[-_END_REGION:])  # where the end record can be: no copy of the whole tail

        def read_at(at: int, n: int) -> bytes:
            return bytes(kept[max(0, at - base) : max(0, at - base + n)])

        try:
            end = find_end(last, base + len(kept) - len(last), read_at)
            if end.cd_offset < base:
                raise ZipStructureError(f"its central directory is over {TAIL_MAX:,} bytes: not read")
            directory = read_at(end.cd_offset, end.cd_size)
            at, headers = 0, []
            for _ in range(end.count):
                header = parse_central(directory, at, end.cd_offset + at)
                headers.append(header)
                at += header.length
        except (ZipStructureError, struct.error, ValueError) as error:
            result.error = str(error)
            return result
        result.torchscript = any(h.name.lower().rpartition("/")[2] == "constants.pkl" for h in headers)
        for h in headers:
            if _is_pickle(h.name):
                seen = self._entries.get(h.offset)
                if seen is not None and seen.scan is not None and seen.name == h.name and seen.method == h.method:
                    continue
                late = self._from_tail(h, read_at)  # the kept end holds it: read it as torch's reader does
                if late is not None:
                    result.pickles.append((h.name, late))
                else:
                    result.unscanned.append(f"{h.name} (at byte {h.offset:,}): the walk of its local headers"
                                            " did not reach it")
        return result

    def _from_tail(self, h: Header, read_at: Callable[[int, int], bytes]) -> PickleScan | None:
        """The pickle the central header *h* names, scanned from the kept end of the zip if it is all there: its
        local header at *h*'s offset gives where the data starts, *h* its method and length (as miniz reads it)."""
        local = read_at(h.offset, 30) if h.offset >= self._tail_at else b""
        if len(local) < 30 or local[:4] != _LOCAL_SIG or h.method not in (METHOD_STORE, METHOD_DEFLATE):
            return None
        start = h.offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        if start + h.compressed_size > self._tail_at + len(self._tail):
            return None
        data = memoryview(read_at(start, h.compressed_size))
        scan = PickleScan()
        if h.method == METHOD_STORE:
            scan.feed(data)
        else:
            try:
                self._inflate(_Data(_Entry(h.name, h.method, scan), None, False, zlib.decompressobj(-15)), data)
            except zlib.error:
                pass  # damaged: torch's reader fails there too
        scan.close()
        return scan


def _is_pickle(name: str) -> bool:
    """``*.pkl``, in any case: torch's zip reader (miniz) finds ``data.pkl`` by a name compared without case."""
    return name.lower().endswith(".pkl")
