"""``markit sign``: read an archive once, refuse what ``verify`` refuses, and sign its entries in the OMS format.

The archive is read through :func:`markit.read.verify.read_archive` with SHA-256 on for every file (its
``MAR-INF/RECORD`` is checked, never trusted), so every check ``verify`` runs runs here too, in the same
pass. The signature's resources are the archive's files, ``MAR-INF/`` included, under the names
``unpack`` writes them; its subject is the folder ``unpack`` would make. ``model_signing verify`` on
that folder then checks the same bytes the signature names.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markit.errors import ArchiveError, UsageError
from markit.formats.base import ArchiveProblem
from markit.formats.detect import open_archive
from markit.model.limits import Limits
from markit.model.problems import ERROR, Problem
from markit.read.unpack import default_dest
from markit.read.verify import Reading, read_archive
from markit.storage.sinks import check_destination
from markit.trust.compare import entry_digests
from markit.trust.oms import Keyless, KeyMaterial, sign_digests, signer_ready

__all__ = ["SignRefused", "Signature", "default_signature", "sign_archive"]


class SignRefused(ArchiveError):
    """``sign`` found errors in the archive; no signature was written. :attr:`problems` holds every problem."""

    def __init__(self, label: str, problems: tuple[Problem, ...]) -> None:
        errors = sum(p.severity == ERROR for p in problems)
        super().__init__(f"{label}: refused to sign ({errors} error{'s' * (errors != 1)}); no signature was written")
        self.problems = problems


@dataclass(frozen=True)
class Signature:
    """What :func:`sign_archive` wrote."""

    archive: str
    """The archive as named."""
    signature: str
    """The signature file written (a Sigstore bundle, JSON)."""
    method: str
    """``key``, ``certificate`` or ``sigstore``: how ``model_signing verify`` is told to check it."""
    model_name: str
    """The statement's subject: the folder name ``unpack`` gives the archive by default."""
    files: int
    """Files signed (every file entry, ``MAR-INF/`` included)."""
    problems: tuple[Problem, ...]
    """Warnings ``verify`` has about the archive (there were no errors)."""

    def to_json(self) -> dict[str, Any]:
        """What ``sign --json`` prints."""
        return {"archive": self.archive, "signature": self.signature, "method": self.method,
                "model_name": self.model_name, "files": self.files, "problems": [p.to_json() for p in self.problems]}


def default_signature(path: str) -> str:
    """``ARCHIVE.sig`` beside the archive (for a folder, beside it too: ``model/`` gives ``model.sig``)."""
    if path == "-" or "://" in path:
        raise UsageError(f"--signature is needed when the archive is {'stdin' if path == '-' else 'a URL'}")
    return os.path.normpath(path) + ".sig"


def _read(path: str, limits: Limits, progress: Callable[[int, int], None] | None) -> Reading:
    try:
        with open_archive(path, limits) as archive:
            reading = read_archive(archive, limits, progress=progress, sha=True)
    except ArchiveProblem as error:
        raise SignRefused(path, error.problems) from None
    if any(p.severity == ERROR for p in reading.problems) or not reading.facts.complete:
        raise SignRefused(path, reading.problems)
    return reading


def _subject(path: str, manifest: dict[str, Any] | None) -> str:
    """The folder's own name (as ``model_signing sign`` names it), else the one ``unpack`` gives the archive."""
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path))
    name = default_dest(path)
    if name is None:
        model = (manifest or {}).get("model")
        found = model.get("modelName") if isinstance(model, dict) else None
        name = found if isinstance(found, str) else "model"
    return name


def write_signature(target: str, text: str) -> None:
    """*text* to *target* atomically: a temporary file beside it, renamed over it when complete."""
    fd, temporary = tempfile.mkstemp(prefix=".markit-sig-", dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def sign_archive(path: str, key: KeyMaterial | Keyless, *, signature: str | None = None, force: bool = False,
                 limits: Limits | None = None, progress: Callable[[int, int], None] | None = None) -> Signature:
    """Sign every file of the archive at *path* (``-``: stdin) with *key*; the signature goes to *signature*
    (default :func:`default_signature`). The key (or a :class:`Keyless` identity token) and the output are
    checked before the archive is read.

    :class:`SignRefused` (with every problem) if ``verify`` finds an error; nothing is written then.
    """
    target = signature or default_signature(path)
    check_destination(target, force=force, what="signature")
    if os.path.isdir(target):
        raise UsageError(f"--signature {target}: is a folder; name the signature file")
    if path != "-" and os.path.exists(target) and os.path.exists(path) and os.path.samefile(path, target):
        raise UsageError(f"--signature {target}: that is the archive itself")
    signer = signer_ready(key)
    reading = _read(path, limits or Limits(), progress)
    digests = entry_digests(reading.facts)
    model_name = _subject(path, reading.manifest)
    write_signature(target, sign_digests(model_name, digests, signer))
    method = "sigstore" if isinstance(key, Keyless) else "key" if key.signing_certificate is None else "certificate"
    return Signature(path, target, method, model_name, len(digests), reading.problems)
