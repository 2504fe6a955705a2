"""What the data pass finds in an archive: each member's bytes checked once, as they flow from the reader.

For every file member a :class:`MemberCheck` runs a :class:`~markit.engine.datapass.DataStream`
(CRC-32, checked against the zip header, and, when a digest record may exist, SHA-256),
keeps the bytes of ``MAR-INF/MANIFEST.json`` and ``MAR-INF/RECORD`` (up to a cap; what is kept is
:func:`markit.read.facts.kept_cap`'s call, a workflow's spec and handler too), and
scans weight files (:mod:`markit.read.weightscan`: a pickle's imports, a safetensors header), and
hands each chunk to an optional :class:`Writer`'s file (``unpack``): on the stream's
workers for large members, while this thread reads and inflates the next chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from markit.engine.datapass import DataStream, Digest
from markit.formats.base import Member, MemberSink
from markit.model.problems import Problem, problem, quote
from markit.read.facts import WORKFLOW_KEEP_BUDGET, kept_cap, workflow_candidate
from markit.read.weightscan import WeightFacts, WeightScan, scan_for

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["PROGRESS_STEP", "DataCheck", "FileOut", "MemberCheck", "Writer"]

PROGRESS_STEP = 1 << 20  # bytes passed between progress calls: a bar needs no finer, and 4 KiB files stay cheap


class FileOut(Protocol):
    """One file being written by a :class:`Writer`."""

    def write(self, chunk: bytes | memoryview) -> None:
        """Append *chunk*."""

    def close(self, keep: bool) -> None:
        """Finish the file; without *keep*, remove it."""


class Writer(Protocol):
    """Where ``unpack`` puts members: files and folders under a temporary tree."""

    def open(self, member: Member) -> FileOut | None:
        """Make a folder member (None), or open a file member for writing (None if it is not written)."""


class MemberCheck:
    """The sink for one file member: its data stream (CRC-32, SHA-256, the writer's file) and captured bytes."""

    __slots__ = ("cap", "kept", "member", "out", "owner", "sniffed", "stream", "weights")

    def __init__(self, owner: DataCheck, member: Member, out: FileOut | None) -> None:
        self.owner = owner
        self.out = out
        self.stream = DataStream(size=member.size, consume=out.write if out is not None else None, sha=owner.sha)
        self.cap = owner.keep_cap(member.name)
        self.kept = bytearray()
        self.member = member
        self.weights: WeightScan | None = None
        """What a weight file would import or declare, scanned as its bytes pass."""
        self.sniffed = False
        """Whether the first chunk has said if it may be a weight file."""

    def write(self, chunk: bytes | memoryview) -> None:
        self.stream.write(chunk)
        owner = self.owner
        owner.unreported += len(chunk)
        if owner.unreported >= PROGRESS_STEP:
            owner.report_progress()
        if len(self.kept) < self.cap:
            self.kept += chunk[: self.cap - len(self.kept)]
        if self.weights is not None:
            self.weights.write(chunk)
        elif not self.sniffed:  # the first chunk: may it be a weight file?
            self.sniffed = True
            self.weights = scan_for(self.member.name, self.member.size, chunk)
            if self.weights is not None:
                self.weights.write(chunk)

    def done(self, member: Member, complete: bool) -> None:
        self.owner.current = None
        try:
            digest = self.stream.finish()
        except BaseException:
            if self.out is not None:
                self.out.close(False)
            raise
        self.owner.finished(self, digest, member, complete)


class DataCheck:
    """Makes the sink for each member and gathers what the data pass found."""

    def __init__(self, *, sha: bool, writer: Writer | None = None, progress: Callable[[int], None] | None = None
                 ) -> None:
        self.sha = sha
        """Whether to compute SHA-256 (only useful when a record may exist)."""
        self.writer = writer
        self.progress = progress
        """Called with the bytes of file data passed since its last call: every MiB or so, and at the end."""
        self.unreported = 0
        """Bytes passed that :attr:`progress` has not been told of."""
        self.problems: list[Problem] = []
        self.digests: dict[str, str] = {}
        """SHA-256 of each complete file, by its name in the archive."""
        self.sizes: dict[str, int] = {}
        """Bytes read of each complete file that was hashed."""
        self.captured: dict[str, bytes] = {}
        """The bytes of MANIFEST.json and RECORD members (capped), by name in the archive."""
        self.current: MemberCheck | None = None
        """The member whose data is flowing, from its sink's opening until its :meth:`MemberCheck.done`."""
        self.keep_left = WORKFLOW_KEEP_BUDGET
        """Bytes of workflow candidates (:func:`~markit.read.facts.kept_cap`) that may still be kept."""
        self.weights: dict[str, WeightFacts] = {}
        """What each complete weight file says (format, imports, safetensors header), by name in the archive."""

    def keep_cap(self, name: str) -> int:
        """How much of member *name* to keep: :func:`~markit.read.facts.kept_cap`; nothing of a workflow
        candidate once it could overrun :data:`~markit.read.facts.WORKFLOW_KEEP_BUDGET`."""
        cap = kept_cap(name)
        return 0 if cap > self.keep_left and workflow_candidate(name) else cap

    def open(self, member: Member) -> MemberSink | None:
        """The sink for *member*'s data (files only; a folder is made at once when writing)."""
        if member.kind not in ("file", "dir"):
            return None
        out = self.writer.open(member) if self.writer is not None else None
        if member.kind != "file":
            return None
        self.current = MemberCheck(self, member, out)
        return self.current

    def report_progress(self) -> None:
        """Tell :attr:`progress` of the bytes passed since it was last told."""
        if self.progress is not None and self.unreported:
            self.progress(self.unreported)
        self.unreported = 0

    def finished(self, check: MemberCheck, digest: Digest, member: Member, complete: bool) -> None:
        """Record one member's results; keep its written file only if everything matched."""
        good = complete
        if complete and member.crc is not None and digest.crc != member.crc:
            good = False
            self.problems.append(problem("crc-mismatch", member.name, f"entry {quote(member.name)}: CRC-32 is"
                                         f" {digest.crc:#010x}, the header says {member.crc:#010x}"))
        if complete:
            if self.sha:  # sizes only matter next to digests: the reader checked declared sizes
                self.digests[member.name] = digest.sha256
                self.sizes[member.name] = digest.size
            if check.cap:
                self.captured[member.name] = bytes(check.kept)
                if workflow_candidate(member.name):
                    self.keep_left -= len(check.kept)
            if check.weights is not None and (weights := check.weights.finish(digest.size)) is not None:
                self.weights[member.name] = weights  # its problems: weight_problems, named relative to the root
        if check.out is not None:
            check.out.close(good)

    def close(self) -> None:
        """At the end, or after an error mid-member: let the workers finish with its chunks and close its file."""
        self.report_progress()
        if self.current is not None:
            self.current.stream.abandon()
            if self.current.out is not None:
                self.current.out.close(False)
            self.current = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
