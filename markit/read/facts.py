"""What the checks look at: a member's and an archive's facts, gathered by a reader and a data pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from markit.model.names import captured_name

__all__ = ["ArchiveFacts", "MemberFacts", "kept_name"]


def kept_name(name: str) -> str | None:
    """``MAR-INF/MANIFEST.json`` or ``MAR-INF/RECORD`` if the member *name* is one (whose bytes become
    :attr:`ArchiveFacts.manifest` or :attr:`ArchiveFacts.record`): :func:`~markit.model.names.captured_name`,
    asked only of names holding ``MAR-INF/``, as every name it accepts does (once normalised, ``MAR-INF``
    is followed by a ``/``)."""
    return captured_name(name) if "MAR-INF/" in name else None


class MemberFacts(Protocol):
    """What the checks need to know about one member (:class:`markit.formats.base.Member` has all of it)."""

    @property
    def name(self) -> str:
        """Its name, relative to the archive root (TorchServe's view: zip local header, tar after the root)."""

    @property
    def kind(self) -> str:
        """``file``, ``dir``, ``symlink``, ``hardlink`` or ``special``."""

    @property
    def size(self) -> int | None:
        """Declared uncompressed size; None when not known."""

    @property
    def compressed_size(self) -> int | None:
        """Declared stored size (zip only)."""

    @property
    def detail(self) -> str:
        """For links, the target; for special entries, what they are."""


@dataclass(frozen=True)
class ArchiveFacts:
    """Everything :func:`check_archive` looks at, gathered by a reader and a data pass."""

    label: str
    """The archive's file name as given (``-`` for stdin): TorchServe picks the format from it."""
    format: str
    """``zip``, ``tar``, ``tar.gz`` or ``directory``."""
    root: str | None
    """The top folder of a tar whose names all share one; None otherwise."""
    members: Sequence[MemberFacts]
    """Members with names relative to *root*, in archive order."""
    manifest: bytes | None = None
    """``MAR-INF/MANIFEST.json``'s bytes, or None if absent."""
    record: bytes | None = None
    """``MAR-INF/RECORD``'s bytes, or None if absent."""
    digests: Mapping[str, str] | None = None
    """SHA-256 (hex) and size of each file as read, by name; None if the data was not read."""
    sizes: Mapping[str, int] | None = None
    """Bytes of each file as read, by name."""
    stream_size: int | None = None
    """Bytes of the whole compressed stream (tar.gz), for its ratio."""
    complete: bool = True
    """False if the reader stopped early: then what is absent may only be unread, and is not reported."""

