"""The problems ``verify`` reports: their codes, severities and one message each.

Every check, on either side, says what is wrong with a :class:`Problem`; collecting
them (never raising the first) lets ``verify`` show every problem in one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CODES", "ERROR", "QUOTED_MAX", "WARNING", "Problem", "problem", "quote"]

ERROR = "error"
WARNING = "warning"
QUOTED_MAX = 4096  # characters of a name a message shows: a whole name of any length a filesystem takes

# Every code verify reports, and its severity. The first block is the list;
# ``torchserve-incompatible`` names its unnamed class "what would stop TorchServe
# from loading an otherwise sound archive".
CODES: Mapping[str, str] = {
    "not-an-archive": ERROR,
    "corrupt": ERROR,
    "crc-mismatch": ERROR,
    "digest-mismatch": ERROR,
    "record-mismatch": ERROR,
    "unsafe-path": ERROR,
    "link-entry": ERROR,
    "special-entry": ERROR,
    "duplicate-entry": ERROR,
    "bomb": ERROR,
    "missing-manifest": ERROR,
    "invalid-manifest": ERROR,
    "invalid-model-name": ERROR,
    "missing-file": ERROR,
    "excluded-file": WARNING,
    "no-record": WARNING,
    "torchserve-incompatible": WARNING,
    # workflow archives (.war): a spec TorchServe would refuse; a model url it may not find; a spec or
    # handler not read (kept files are capped), so not checked
    "invalid-workflow": ERROR,
    "model-url": WARNING,
    "workflow-unchecked": WARNING,
    # ``verify --signature`` (markit.trust): the OMS signature itself, then each entry against it
    "signature-invalid": ERROR,
    "signature-mismatch": ERROR,
    "unsigned-entry": ERROR,
    "missing-signed-entry": ERROR,
    # weight files (markit.weights): a pickle that imports what torch.load(weights_only=True) refuses, or
    # that markit could not scan to its end; a safetensors header that lies about its data
    "unsafe-pickle": ERROR,
    "invalid-weights": ERROR,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an archive."""

    code: str
    """One of :data:`CODES`."""
    severity: str
    """``error`` or ``warning``, fixed by the code."""
    path: str | None
    """The entry it concerns (relative to the archive root), or None for the whole archive."""
    message: str
    """What was expected and what was found; names the entry, not the archive."""

    def to_json(self) -> dict[str, Any]:
        """The problem as ``verify --json`` prints it."""
        return {"code": self.code, "severity": self.severity, "path": self.path, "message": self.message}


def problem(code: str, path: str | None, message: str) -> Problem:
    """A :class:`Problem` with the severity its *code* carries."""
    return Problem(code, CODES[code], path, message)


def quote(name: str) -> str:
    """*name* quoted for a message, every character that is not printable escaped (a name cannot drive
    the terminal): ``\\x0b``, ``\\x85``, ``\\u2028``. A name over :data:`QUOTED_MAX` characters
    is cut there, its length said."""
    if len(name) <= QUOTED_MAX:
        return repr(name)
    return f"{name[:QUOTED_MAX]!r}... ({len(name):,} characters)"
