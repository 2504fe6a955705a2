"""What the checks look at: a member's and an archive's facts, gathered by a reader and a data pass.

Which members' bytes the data pass keeps is decided here, by name alone: the manifest and record
of a model (``MAR-INF/``) or a workflow (``WAR-INF/``) archive (:func:`kept_name`), and, so that
``verify`` checks a workflow's spec against its handler in the same single pass, the files at the
root that can be a workflow's spec or handler (``.yaml``, ``.yml``, ``.py``), each up to
:data:`~markit.model.workflow.SPEC_MAX` and all together up to :data:`WORKFLOW_KEEP_BUDGET`
(:func:`kept_cap`). The manifest names the spec and handler, but a stream may bring it last
(torch-workflow-archiver writes it after the files), so candidates are kept as they pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from markit.model.limits import MANIFEST_MAX, RECORD_MAX
from markit.model.manifest import MANIFEST_NAME
from markit.model.names import captured_name, normalize
from markit.model.record import RECORD_NAME
from markit.model.workflow import SPEC_MAX, WAR_MANIFEST_NAME, WAR_RECORD_NAME

if TYPE_CHECKING:
    from markit.read.weightscan import WeightFacts

__all__ = ["WORKFLOW_KEEP_BUDGET", "ArchiveFacts", "Kept", "MemberFacts", "kept_cap", "kept_name", "sort_kept",
           "workflow_candidate"]

# Bytes of root .py/.yaml/.yml files one data pass keeps, all together: 16 MiB holds a spec and a handler
# (a few KiB each) beside thousands of small root modules, and bounds memory whatever the archive holds.
WORKFLOW_KEEP_BUDGET = 16 << 20
_WORKFLOW_SUFFIXES = (".yaml", ".yml", ".py")


def kept_name(name: str) -> str | None:
    """``MAR-INF/MANIFEST.json``, ``MAR-INF/RECORD``, ``WAR-INF/MANIFEST.json`` or ``WAR-INF/RECORD`` if the
    member *name* is one, at the root or one folder down (whose bytes become :attr:`ArchiveFacts.manifest`
    or :attr:`ArchiveFacts.record`): :func:`~markit.model.names.captured_name`, asked only of names
    holding ``MAR-INF/`` (as every name it accepts does, once normalised), and its twin for ``WAR-INF/``."""
    if "MAR-INF/" in name:
        return captured_name(name)
    if "WAR-INF/" in name:
        parts = normalize(name).split("/")
        tail = "/".join(parts[-2:])
        return tail if tail in (WAR_MANIFEST_NAME, WAR_RECORD_NAME) and len(parts) <= 3 else None
    return None


def workflow_candidate(name: str) -> bool:
    """Whether member *name* may be a workflow's spec or handler: a ``.yaml``, ``.yml`` or ``.py`` file at the
    root or one folder down (a tar's top folder)."""
    return name.endswith(_WORKFLOW_SUFFIXES) and name.count("/") <= 1 and "\\" not in name


def kept_cap(name: str) -> int:
    """How many bytes of member *name* the data pass keeps: one past its cap, so an oversized file shows as
    one; 0 for a member whose bytes are not kept. Workflow candidates also count against
    :data:`WORKFLOW_KEEP_BUDGET` (the data pass's business)."""
    kept = kept_name(name)
    if kept is not None:
        return (MANIFEST_MAX if kept in (MANIFEST_NAME, WAR_MANIFEST_NAME) else RECORD_MAX) + 1
    return SPEC_MAX + 1 if workflow_candidate(name) else 0


@dataclass(frozen=True)
class Kept:
    """The kept bytes sorted out: what kind of archive, its manifest and record, a workflow's files."""

    kind: str
    """``workflow`` if the archive has ``WAR-INF/MANIFEST.json`` and no ``MAR-INF/MANIFEST.json``, else ``model``."""
    manifest: bytes | None
    record: bytes | None
    workflow_files: dict[str, bytes]
    """Root files that may be a workflow's spec or handler, by name (empty for a model)."""


def sort_kept(captured: Mapping[str, bytes]) -> Kept:
    """:class:`Kept` from the bytes a pass kept, by member name relative to the archive's root."""
    if MANIFEST_NAME not in captured and WAR_MANIFEST_NAME in captured:
        files = {name: data for name, data in captured.items() if "/" not in name and workflow_candidate(name)}
        return Kept("workflow", captured[WAR_MANIFEST_NAME], captured.get(WAR_RECORD_NAME), files)
    return Kept("model", captured.get(MANIFEST_NAME), captured.get(RECORD_NAME), {})


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
    kind: str = "model"
    """``model`` (``MAR-INF/``) or ``workflow`` (``WAR-INF/``: then *manifest* and *record* are those)."""
    workflow_files: Mapping[str, bytes] | None = None
    """A workflow's candidate spec and handler files as kept (:func:`kept_cap`); None when no data was read."""
    weights: Mapping[str, WeightFacts] | None = None
    """What each weight file says (format, pickle imports, safetensors header), by name; None if no data was read."""

