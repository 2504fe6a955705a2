"""markit: create, inspect, verify and unpack TorchServe / MMS model archives.

The public API, the same functions the ``markit`` command runs::

    import markit

    made = markit.create(model_name="m", handler="handler:handle", model_path="model/", output="m.mar")
    report = markit.verify("m.mar")
    info = markit.inspect("m.mar")
    done = markit.unpack("m.mar", "m/")

Names are loaded when first used, so ``import markit`` costs almost nothing. docs/api.md
documents each function with examples.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from markit.errors import ArchiveError, ConflictError, InputError, MarkitError, OutputError, UsageError
from markit.version import VERSION

if TYPE_CHECKING:
    from markit.api import Created, create, diff, inspect, sign, unpack, verify
    from markit.formats.base import ArchiveProblem, Member
    from markit.model.limits import Limits
    from markit.model.problems import Problem
    from markit.read.diff import Diff
    from markit.read.summary import ArchiveInfo
    from markit.read.unpack import Refused, Unpacked
    from markit.read.verify import Report
    from markit.trust.sign import Signature, SignRefused
    from markit.write.plan import Entry, Exclusion, Plan

__all__ = [
    "ArchiveError",
    "ArchiveInfo",
    "ArchiveProblem",
    "ConflictError",
    "Created",
    "Diff",
    "Entry",
    "Exclusion",
    "InputError",
    "Limits",
    "MarkitError",
    "Member",
    "OutputError",
    "Plan",
    "Problem",
    "Refused",
    "Report",
    "SignRefused",
    "Signature",
    "Unpacked",
    "UsageError",
    "__version__",
    "create",
    "diff",
    "inspect",
    "sign",
    "unpack",
    "verify",
]

__version__ = VERSION

_HOME = {
    "create": "markit.api", "inspect": "markit.api", "verify": "markit.api", "unpack": "markit.api",
    "Created": "markit.api", "ArchiveInfo": "markit.read.summary", "Report": "markit.read.verify",
    "Unpacked": "markit.read.unpack", "Refused": "markit.read.unpack", "Limits": "markit.model.limits",
    "Problem": "markit.model.problems", "Member": "markit.formats.base", "ArchiveProblem": "markit.formats.base",
    "Plan": "markit.write.plan", "Entry": "markit.write.plan", "Exclusion": "markit.write.plan",
    "sign": "markit.api", "Signature": "markit.trust.sign", "SignRefused": "markit.trust.sign",
    "diff": "markit.api", "Diff": "markit.read.diff",
}


def __getattr__(name: str) -> Any:
    """Load a public name from the module that holds it, on first use."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'markit' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
