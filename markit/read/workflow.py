"""Checks of a workflow archive (``.war``): its ``WAR-INF/MANIFEST.json``, its files, its spec's DAG.

Pure functions of an :class:`~markit.read.facts.ArchiveFacts` whose kind is ``workflow``: the
manifest's bytes and the spec and handler the data pass kept. The spec's checks are
:func:`markit.model.workflow.check_spec`, the same that ``create`` runs before writing.
"""

from __future__ import annotations

from typing import Any

from markit.model.names import normalize
from markit.model.problems import Problem, problem, quote
from markit.model.spec import check_spec
from markit.model.workflow import SPEC_MAX, WAR_MANIFEST_NAME
from markit.read.contents import name_problems, read_manifest
from markit.read.facts import ArchiveFacts

__all__ = ["check_workflow", "check_workflow_torchserve"]

_FILES = ("specFile", "handler")


def _fields(manifest: dict[str, Any]) -> str | None:
    """Why the manifest's workflow fields are unusable, or None."""
    workflow = manifest.get("workflow")
    if not isinstance(workflow, dict):
        return "'workflow' is missing or not an object"
    for key in ("createdOn", "archiverVersion"):  # TorchServe's WorkflowArchive.validate() refuses without them
        if not isinstance(manifest.get(key), str):
            return f"'{key}' is missing or not a string (TorchServe refuses the workflow without it)"
    for key in ("workflowName", *_FILES):
        if not isinstance(workflow.get(key), str) or not workflow[key]:
            return f"'workflow.{key}' is missing or not a non-empty string"
    return None


def check_workflow(facts: ArchiveFacts) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The parsed ``WAR-INF/MANIFEST.json`` and every problem of the workflow archive *facts* describes.

    ``invalid-manifest``, ``invalid-model-name`` (the workflow's name), ``missing-file`` for the spec
    or handler the manifest names, ``invalid-workflow`` for the spec's errors (each naming its
    line), ``model-url`` for a url TorchServe may not find, ``workflow-unchecked`` for a spec or
    handler the data pass did not keep.
    """
    parsed, found = read_manifest(WAR_MANIFEST_NAME, facts.manifest or b"", _fields)
    if parsed is None or found:
        return parsed, found
    workflow = parsed["workflow"]
    found = name_problems(WAR_MANIFEST_NAME, "workflow", workflow["workflowName"])
    names = {normalize(m.name) for m in facts.members if m.kind == "file"}
    for key in _FILES:
        if normalize(workflow[key]) not in names:
            found.append(problem("missing-file", workflow[key], f"{WAR_MANIFEST_NAME}: workflow.{key} names"
                                 f" {quote(workflow[key])}, which the archive does not hold"))
    return parsed, found + _spec_problems(facts, normalize(workflow["specFile"]), normalize(workflow["handler"]),
                                          names)


def _spec_problems(facts: ArchiveFacts, spec: str, handler: str, names: set[str]) -> list[Problem]:
    """The spec's checks, when the data pass read it (not for ``unpack``'s early look, nor a missing spec)."""
    kept = facts.workflow_files
    if kept is None or spec not in names:
        return []
    found = []
    for name in (spec, handler):
        if name in names and name not in kept:
            found.append(problem("workflow-unchecked", name, f"{quote(name)} was not read, so the workflow is"
                                 f" not checked: markit keeps .yaml, .yml and .py files at the root (up to"
                                 f" {SPEC_MAX:,} bytes each, 16 MiB in all)"))
    if spec not in kept:
        return found
    for issue in check_spec(kept[spec], spec, kept.get(handler) if handler in names else None, handler):
        code = "workflow-unchecked" if issue.unchecked else "model-url" if issue.warning else "invalid-workflow"
        found.append(problem(code, spec, issue.message))
    return found


def check_workflow_torchserve(facts: ArchiveFacts) -> list[Problem]:
    """``torchserve-incompatible`` warnings for a workflow archive: TorchServe unzips any file it is given
    as a workflow (whatever its name), and takes no folder."""
    if facts.format != "zip":
        what = "folder" if facts.format == "directory" else facts.format
        return [problem("torchserve-incompatible", None, f"a {what} workflow archive: TorchServe registers"
                        " a workflow from a zip file (.war) only")]
    return []
