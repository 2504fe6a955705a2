"""What each weight file in an archive would do on load, found in the data pass: :class:`WeightScan`.

A member is a weight file by its name (``.pt``, ``.pth``, ``.bin``, ``.pkl``, ``.ckpt``, ``.pickle``,
``.safetensors``) or by its first bytes (a pickle of protocol 2 to 5, or a zip: what
``torch.save`` writes). Its chunks flow through the scanner its kind needs, in the one data
pass: a :class:`~markit.weights.pickles.PickleScan`, a :class:`~markit.read.torchzip.ZipScan`
(whose ``*.pkl`` entries are scanned), or a safetensors
:class:`~markit.weights.safetensors.HeaderReader`. :meth:`WeightScan.finish` gives its
:class:`WeightFacts`: the format, the globals its pickles import, the safetensors header, and
the ``unsafe-pickle`` and ``invalid-weights`` problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from markit.formats.base import Archive, Member
from markit.model.problems import Problem, problem, quote
from markit.read.torchzip import ZipScan
from markit.weights.allowlist import TORCHSCRIPT_PREFIXES
from markit.weights.names import PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, weight_name
from markit.weights.pickles import Finding, PickleScan
from markit.weights.safetensors import HeaderReader, InvalidWeights, SafetensorsHeader

__all__ = ["READ_THROUGH", "WeightFacts", "WeightScan", "WeightSink", "read_weights", "scan_for", "weight_problems"]

READ_THROUGH = 64 << 20  # bytes: ``inspect`` reads a zip up to this size through (~0.1 s), a larger one only its walk
_ZIP = b"PK\x03\x04"
_REFUSED = "which torch.load(weights_only=True) refuses: loading it with pickle can run any code"


def scan_for(name: str, size: int | None, first: bytes | memoryview) -> WeightScan | None:
    """A scan for a member whose first chunk is *first*, if its name or bytes say it may be a weight file.

    The data pass asks this once per member: most members (code, text, 20,000 small files) cost one call.
    """
    if (weight_name(name) or first[:4] == _ZIP or (len(first) >= 2 and first[0] == 0x80 and 2 <= first[1] <= 5)
            or (len(first) < 4 and (size is None or size > len(first)))):  # a first chunk too short to tell
        return WeightScan(name, size)
    return None


@dataclass(frozen=True)
class WeightFacts:
    """What one weight file says about itself."""

    format: str
    """``pickle``, ``torch-zip`` (``torch.save``), ``torchscript`` (``torch.jit.save``), ``safetensors``, or ``zip``
    (``inspect`` stopped before its pickles)."""
    imports: tuple[str, ...] = ()
    """Every global its pickles import (``module.name``), in order of first appearance."""
    safetensors: SafetensorsHeader | None = None
    """The header, when it is a valid safetensors file."""
    problems: tuple[Problem, ...] = ()
    """``unsafe-pickle`` and ``invalid-weights``."""
    note: str = ""
    """What was not listed, and why (a TorchScript pickle after tensor data)."""
    refused: tuple[str, ...] = ()
    """The imports ``torch.load(weights_only=True)`` refuses."""

    def to_json(self) -> dict[str, Any]:
        """``inspect --json``'s ``"weights"`` object."""
        return {"format": self.format, "imports": list(self.imports), "refused": list(self.refused),
                "note": self.note or None}


class WeightScan:
    """The scanner for one member's bytes, chosen from its name and first bytes."""

    __slots__ = ("failed", "head", "name", "pickle", "safetensors", "size", "target", "zip")

    def __init__(self, name: str, size: int | None) -> None:
        self.name = name
        self.size = size
        self.head = bytearray()
        self.pickle: PickleScan | None = None
        self.zip: ZipScan | None = None
        self.safetensors: HeaderReader | None = HeaderReader() if name.endswith(SAFETENSORS_SUFFIX) else None
        self.target: Callable[[bytes | memoryview], None] | None = (
            self.safetensors.feed if self.safetensors is not None else None)
        """Where the bytes go once the kind is known."""
        self.failed = ""
        """Why the scan broke (a bug in markit): the file is then reported as not scanned, never passed."""

    def write(self, chunk: bytes | memoryview) -> None:
        """The member's next bytes."""
        if self.target is not None:
            self._feed(chunk)
        elif len(self.head) < 4 and not self.failed:
            take = 4 - len(self.head)
            self.head += chunk[:take]
            if len(self.head) == 4:
                self._choose()
                if self.target is not None:
                    self._feed(bytes(self.head))
                    self._feed(memoryview(chunk)[take:])

    def _feed(self, data: bytes | memoryview) -> None:
        assert self.target is not None
        try:
            self.target(data)
        except Exception as error:  # noqa: BLE001 - a scanner's bug must neither stop verify nor pass the file
            self.failed, self.target = f"{type(error).__name__}: {error}", None

    def _choose(self) -> None:
        head = bytes(self.head)
        if head == _ZIP:
            self.zip = ZipScan(self.size)
            self.target = self.zip.feed
        elif self.name.endswith(PICKLE_SUFFIXES) or (head[0] == 0x80 and 2 <= head[1] <= 5):
            self.pickle = PickleScan(many=True)
            self.target = self.pickle.feed

    @property
    def satisfied(self) -> bool:
        """Reading on would show nothing more that ``inspect`` lists."""
        if self.safetensors is not None:
            return self.safetensors.complete
        if self.zip is not None:  # a small zip is read through, for its central directory (TorchScript's pickles)
            return not self.zip.walking and (self.size is None or self.size > READ_THROUGH)
        if self.pickle is not None:
            return self.pickle.done
        return len(self.head) >= 4

    def finish(self, size: int, *, partial: bool = False) -> WeightFacts | None:
        """What the member showed, *size* its bytes; *partial*: the reading stopped once :attr:`satisfied`."""
        if not self.failed:
            try:
                return self._finish(size, partial)
            except Exception as error:  # noqa: BLE001 - as in write
                self.failed = f"{type(error).__name__}: {error}"
        code = "invalid-weights" if self.safetensors is not None else "unsafe-pickle"
        return WeightFacts("safetensors" if self.safetensors is not None else "pickle", problems=(
            problem(code, self.name, f"entry {quote(self.name)}: markit could not scan it (internal error, please"
                    f" report it: {self.failed})"),))

    def _finish(self, size: int, partial: bool) -> WeightFacts | None:
        if self.safetensors is not None:
            return self._safetensors(self.safetensors, size)
        if self.zip is not None:
            if partial and not self.zip.scanned:
                return WeightFacts("zip", note="its pickles come after data of unknown length: listed only when"
                                   " read through (verify)")
            return self._zip(self.zip)
        if self.pickle is None and len(self.head) < 4 and self.name.endswith(PICKLE_SUFFIXES):
            self.pickle = PickleScan(many=True)
            self.pickle.feed(bytes(self.head))
        if self.pickle is not None:
            return self._pickle(self.pickle)
        return None

    def _safetensors(self, reader: HeaderReader, size: int) -> WeightFacts:
        try:
            return WeightFacts("safetensors", safetensors=reader.header(size))
        except InvalidWeights as error:
            return WeightFacts("safetensors", problems=(
                problem("invalid-weights", self.name, f"entry {quote(self.name)}: {error}"),))

    def _pickle(self, scan: PickleScan) -> WeightFacts | None:
        scan.close()
        if not scan.pickles and not scan.findings and not scan.unscanned:
            return None  # named as weights, but raw data (or anything else): nothing to show or judge
        problems = self._unsafe(scan, "", False)
        return WeightFacts("pickle", tuple(scan.imports), problems=tuple(problems), refused=_refused([scan], False))

    def _zip(self, walk: ZipScan) -> WeightFacts | None:
        result = walk.finish()
        if not result.pickles and not result.unscanned:
            return None  # a zip with no pickle in it: not a torch file
        problems: list[Problem] = []
        imports: dict[str, None] = {}
        for inner, scan in result.pickles:
            imports.update(dict.fromkeys(scan.imports))
            problems += self._unsafe(scan, inner, result.torchscript)
        note = ""
        if result.torchscript and result.unscanned:  # torch.jit.load's C++ unpickler imports no Python
            note = f"{len(result.unscanned)} TorchScript pickle(s) after tensor data not listed"
        elif result.unscanned:
            problems += [problem("unsafe-pickle", self.name, f"entry {quote(self.name)}: {why}; torch.load reads"
                                 " it, and markit could not scan it") for why in result.unscanned]
        return WeightFacts("torchscript" if result.torchscript else "torch-zip", tuple(imports),
                           problems=tuple(problems), note=note,
                           refused=_refused([scan for _, scan in result.pickles], result.torchscript))

    def _unsafe(self, scan: PickleScan, inner: str, torchscript: bool) -> list[Problem]:
        where = f" of {inner}" if inner else ""
        found: dict[str, Finding] = {}
        for f in scan.unsafe:
            if not (torchscript and f.name.startswith(TORCHSCRIPT_PREFIXES)):
                found.setdefault(f.name, f)
        problems = [problem("unsafe-pickle", self.name, f"entry {quote(self.name)}: its pickle"
                            f" {'applies' if f.call else 'imports'} {f.name} (byte {f.offset:,}{where}), {_REFUSED}")
                    for f in found.values()]
        if scan.unscanned:
            problems.append(problem("unsafe-pickle", self.name, f"entry {quote(self.name)}{where}: {scan.error}"))
        return problems


def weight_problems(weights: dict[str, WeightFacts], root: str | None) -> list[Problem]:
    """Every weight file's problems, named relative to *root* (a tar's top folder), as every problem is."""
    if root is None:
        return [p for facts in weights.values() for p in facts.problems]
    found = []
    for name, facts in weights.items():
        relative = name.partition("/")[2]
        found += [replace(p, path=relative, message=p.message.replace(quote(name), quote(relative), 1))
                  for p in facts.problems]
    return found


def _refused(scans: list[PickleScan], torchscript: bool) -> tuple[str, ...]:
    names = (f.name for scan in scans for f in scan.unsafe if not f.call)
    return tuple(dict.fromkeys(n for n in names if not (torchscript and n.startswith(TORCHSCRIPT_PREFIXES))))


class _Satisfied(Exception):
    """Enough of a member has been read for ``inspect``."""


class WeightSink:
    """A member sink for ``inspect``: a :class:`WeightScan` whose facts land in *into* (by *key*).

    With *stop*, the reading is cut (:class:`_Satisfied`) as soon as the scan has what it lists.
    """

    def __init__(self, member: Member, into: dict[str, WeightFacts], key: str, *, stop: bool = False) -> None:
        self.scan = WeightScan(member.name, member.size)
        self.into, self.key, self.stop = into, key, stop
        self.passed = 0

    def write(self, chunk: bytes | memoryview) -> None:
        self.scan.write(chunk)
        self.passed += len(chunk)
        if self.stop and self.scan.satisfied:
            raise _Satisfied

    def done(self, member: Member, complete: bool) -> None:
        self.finish(member, partial=not complete)

    def finish(self, member: Member, *, partial: bool) -> None:
        """Record the facts (a partial read judges nothing about the member's end)."""
        facts = self.scan.finish(member.size if member.size is not None else self.passed, partial=partial)
        if facts is not None:
            self.into[self.key] = facts


def read_weights(archive: Archive, members: list[Member], root: str | None) -> dict[str, WeightFacts]:
    """What each weight file of an indexed archive says, reading as little of each as that takes (a safetensors
    header, a pickle to its STOP), by name relative to *root*."""
    found: dict[str, WeightFacts] = {}
    for m in members:
        if m.kind != "file" or not weight_name(m.name):
            continue
        sink = WeightSink(m, found, m.name if root is None else m.name.partition("/")[2], stop=True)
        try:
            archive.read(m, sink)
        except _Satisfied:
            sink.finish(m, partial=True)
    return found
