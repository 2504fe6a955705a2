"""The data pass: each member's bytes checked once, as they flow from the reader.

For every file member a :class:`MemberCheck` computes the CRC-32 (checked against
the zip header) and, when a digest record may exist, the SHA-256; it keeps the
bytes of ``MAR-INF/MANIFEST.json`` and ``MAR-INF/RECORD`` (up to a cap), and hands
each chunk to an optional :class:`Writer` (``unpack``). SHA-256 of large members runs
on a worker thread while this thread reads, inflates, checksums and writes the next
chunk: hashlib, zlib, isal and ``os.write`` release the GIL on large buffers.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from markit.archive import Member, MemberSink
from markit.checks import MANIFEST_MAX, RECORD_MAX, Problem, captured_name, problem, quote
from markit.codec import crc32
from markit.manifest import MANIFEST_NAME

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["THREADED_FROM", "DataPass", "FileOut", "MemberCheck", "Sha256Worker", "Writer"]

# Members above this hash on the worker thread; below, handing chunks over costs more than it saves.
THREADED_FROM = 4 << 20


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


class Sha256Worker:
    """SHA-256 updates on a second thread, in order; at most two chunks queued."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Any, bytes | memoryview] | None] = queue.Queue(maxsize=2)  # see archive.RING
        self._thread = threading.Thread(target=self._run, name="markit-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job[0].update(job[1])
            self._jobs.task_done()
        self._jobs.task_done()

    def update(self, sha: Any, chunk: bytes | memoryview) -> None:
        """Queue ``sha.update(chunk)``. At most three chunks are held (two queued, one hashing), so a
        chunk from a :class:`~markit.archive.BufferRing` is hashed before its buffer is reused."""
        self._jobs.put((sha, chunk))

    def wait(self) -> None:
        """Return once every queued update is done."""
        self._jobs.join()

    def close(self) -> None:
        """Stop the thread."""
        self._jobs.put(None)
        self._thread.join()


class MemberCheck:
    """The sink for one file member: CRC-32, SHA-256, size, captured bytes, the writer's file."""

    def __init__(self, owner: DataPass, member: Member, out: FileOut | None) -> None:
        self.owner = owner
        self.out = out
        self.size = 0
        self.crc = 0
        self.sha = hashlib.sha256() if owner.sha else None
        big = member.size is None or member.size > THREADED_FROM
        self.update: Callable[[bytes | memoryview], None] | None = None
        if self.sha is not None:
            self.update = (lambda chunk: owner.worker().update(self.sha, chunk)) if big else self.sha.update
        kept = captured_name(member.name)
        self.cap = 0 if kept is None else (MANIFEST_MAX if kept == MANIFEST_NAME else RECORD_MAX) + 1
        self.kept = bytearray()

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        self.crc = crc32(chunk, self.crc)
        if self.update is not None:
            self.update(chunk)
        if len(self.kept) < self.cap:
            self.kept += chunk[: self.cap - len(self.kept)]
        if self.out is not None:
            self.out.write(chunk)

    def done(self, member: Member, complete: bool) -> None:
        if self.sha is not None and self.update is not self.sha.update:
            self.owner.worker().wait()
        self.owner.finished(self, member, complete)


class DataPass:
    """Makes the sink for each member and gathers what the pass found."""

    def __init__(self, *, sha: bool, writer: Writer | None = None) -> None:
        self.sha = sha
        """Whether to compute SHA-256 (only useful when a record may exist)."""
        self.writer = writer
        self.problems: list[Problem] = []
        self.digests: dict[str, str] = {}
        """SHA-256 of each complete file, by its name in the archive."""
        self.sizes: dict[str, int] = {}
        """Bytes read of each complete file that was hashed."""
        self.captured: dict[str, bytes] = {}
        """The bytes of MANIFEST.json and RECORD members (capped), by name in the archive."""
        self._worker: Sha256Worker | None = None

    def worker(self) -> Sha256Worker:
        """The hashing thread, started on first use."""
        if self._worker is None:
            self._worker = Sha256Worker()
        return self._worker

    def open(self, member: Member) -> MemberSink | None:
        """The sink for *member*'s data (files only; a folder is made at once when writing)."""
        if member.kind not in ("file", "dir"):
            return None
        out = self.writer.open(member) if self.writer is not None else None
        return MemberCheck(self, member, out) if member.kind == "file" else None

    def finished(self, check: MemberCheck, member: Member, complete: bool) -> None:
        """Record one member's results; keep its written file only if everything matched."""
        good = complete
        if complete and member.crc is not None and check.crc != member.crc:
            good = False
            self.problems.append(problem("crc-mismatch", member.name, f"entry {quote(member.name)}: CRC-32 is"
                                         f" {check.crc:#010x}, the header says {member.crc:#010x}"))
        if complete:
            if check.sha is not None:  # sizes only matter next to digests: the reader checked declared sizes
                self.digests[member.name] = check.sha.hexdigest()
                self.sizes[member.name] = check.size
            if check.cap:
                self.captured[member.name] = bytes(check.kept)
        if check.out is not None:
            check.out.close(good)

    def close(self) -> None:
        """Stop the hashing thread."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
