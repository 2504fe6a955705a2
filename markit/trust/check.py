"""``markit verify --signature``: the signature checked, and the archive against it, in verify's one pass.

The signature is verified beside the data pass (:mod:`markit.trust.aside`): envelope, key or certificate
chain, statement. If that fails, one ``signature-invalid`` problem, reported first, and no entry is
compared (an unverified list says nothing). The archive is read exactly as ``verify`` reads it, with
SHA-256 on for every file, and the digests of that same pass are compared with the signed ones
(:mod:`markit.trust.compare`): nothing is unpacked and no byte is read twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from markit.model.limits import Limits
from markit.model.names import normalize
from markit.model.problems import Problem, problem
from markit.read.verify import Reading, Report, verify_path
from markit.trust.aside import Aside, start
from markit.trust.compare import compare, entry_digests
from markit.trust.oms import Anchor, SignatureError, Signed

__all__ = ["signature_inside", "verify_signed"]


def signature_inside(path: str, signature: str) -> str | None:
    """The signature's name inside the folder *path* if it lies there (``model_signing`` skips it too), else None."""
    if path == "-" or not os.path.isdir(path):
        return None
    folder, sig = os.path.realpath(path), os.path.realpath(signature)
    inside = os.path.relpath(sig, folder)
    return None if inside.startswith(("..", "/")) else normalize(inside.replace(os.sep, "/"))


class _Judged:
    """The signature's outcome, taken once: the verified list, or its ``signature-invalid`` problem."""

    def __init__(self, aside: Aside, signature: str) -> None:
        self.aside, self.signature = aside, signature
        self.taken = False
        self.signed: Signed | None = None
        self.problems: tuple[Problem, ...] = ()

    def take(self) -> Signed | None:
        if not self.taken:
            self.taken = True
            try:
                self.signed = self.aside.result()
            except SignatureError as error:
                self.problems = (problem("signature-invalid", None, f"--signature {self.signature}: {error}"),)
        return self.signed


def _against(judged: _Judged, skip: Sequence[str]) -> Callable[[Reading], Sequence[Problem]]:
    def check(reading: Reading) -> Sequence[Problem]:
        signed = judged.take()
        if signed is None:
            return ()
        complete = reading.written and reading.facts.complete
        return compare(signed, entry_digests(reading.facts), complete=complete, skip=skip)

    return check


def verify_signed(path: str, *, signature: str, anchor: Anchor, limits: Limits | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Report:
    """Every problem of the archive at *path*, and of its entries against the OMS *signature* checked with
    *anchor*; the signature's own failure is a ``signature-invalid`` problem, reported first.

    :class:`~markit.errors.InputError` if the signature or a key file cannot be read (bad input, not a bad
    archive).
    """
    inside = signature_inside(path, signature)
    aside = start(signature, anchor)
    try:
        judged = _Judged(aside, signature)
        report = verify_path(path, limits or Limits(), progress, sha=True,
                             check=_against(judged, () if inside is None else (inside,)))
        judged.take()  # the archive could not be read: the signature is still judged
    finally:
        aside.close()
    return Report(report.archive, (*judged.problems, *report.problems))
