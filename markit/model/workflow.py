"""The workflow archive (``.war``): its names, its manifest (``WAR-INF/MANIFEST.json``), its name rule.

torch-workflow-archiver 0.2.15 writes ``WAR-INF/MANIFEST.json`` as
``{"createdOn", "workflow": {"workflowName", "specFile", "handler"}, "archiverVersion"}``, with the
spec, the handler and the extra files at the root. The spec's checks are in
:mod:`markit.model.spec` (kept apart: this module is imported by the read side for its names,
so it stays cheap to import).
"""

from __future__ import annotations

import re
from typing import Any

from markit.errors import InputError

__all__ = [
    "SPEC_MAX",
    "WAR_DIR",
    "WAR_MANIFEST_NAME",
    "WAR_RECORD_NAME",
    "build_workflow_manifest",
    "check_workflow_name",
]

WAR_DIR = "WAR-INF"
WAR_MANIFEST_NAME = "WAR-INF/MANIFEST.json"
WAR_RECORD_NAME = "WAR-INF/RECORD"
SPEC_MAX = 1 << 20  # 1 MiB: a spec or a workflow handler is a few KiB; past this it is checked no further
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")  # torch-workflow-archiver's workflow name rule


def check_workflow_name(name: str) -> str:
    """*name*, if it is a valid workflow name (torch-workflow-archiver's rule); else :class:`InputError`."""
    if not _NAME_RE.fullmatch(name):
        raise InputError(f"workflow name {name!r} is not valid: it must start with a letter or digit and hold"
                         " only letters, digits, '_', '-' and '.'")
    return name


def build_workflow_manifest(*, workflow_name: str, spec_file: str, handler: str, created: str,
                            archiver_version: str) -> dict[str, Any]:
    """``WAR-INF/MANIFEST.json`` as a dict, keys in torch-workflow-archiver's order; files by base name."""
    return {
        "createdOn": created,
        "workflow": {"workflowName": workflow_name, "specFile": spec_file.rsplit("/", 1)[-1],
                     "handler": handler.rsplit("/", 1)[-1]},
        "archiverVersion": archiver_version,
    }
