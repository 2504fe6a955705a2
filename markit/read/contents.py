"""Checks of what the archive says about itself: its manifest, its record, and what TorchServe needs.

Pure functions of bytes and facts: the manifest and record bytes a data pass kept, and
the digests it computed. Nothing here reads a file, so the tests feed literals.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import Any

from markit.errors import ArchiveError
from markit.model.limits import MANIFEST_MAX, RECORD_MAX
from markit.model.manifest import BUILTIN_HANDLERS, MANIFEST_NAME, MODEL_NAME_RE, RUNTIMES
from markit.model.names import normalize
from markit.model.problems import Problem, problem, quote
from markit.model.record import RECORD_NAME, RecordRow, parse_record
from markit.model.workflow import WAR_RECORD_NAME
from markit.read.facts import ArchiveFacts

__all__ = ["check_manifest", "check_record", "check_torchserve", "name_problems", "parse_manifest", "read_manifest",
           "record_name_of", "record_rows"]


def parse_manifest(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The manifest as a dict, or None and why it is not one."""
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 ({error.reason} at byte {error.start})"
    except (ValueError, RecursionError) as error:
        return None, f"not JSON ({error or 'nested too deeply'})"
    if not isinstance(parsed, dict):
        return None, f"a JSON {type(parsed).__name__}, expected an object"
    return parsed, None


def _manifest_fields(manifest: dict[str, Any]) -> str | None:
    """Why the manifest's required fields are unusable, or None."""
    model = manifest.get("model")
    if not isinstance(model, dict):
        return "'model' is missing or not an object"
    for key in ("modelName", "handler"):
        if not isinstance(model.get(key), str) or not model[key]:
            return f"'model.{key}' is missing or not a non-empty string"
    runtime = manifest.get("runtime", "python")
    if runtime not in RUNTIMES:
        return f"'runtime' is {runtime!r}, expected one of {', '.join(RUNTIMES)}"
    for key in ("serializedFile", "modelFile", "requirementsFile", "configFile"):
        if key in model and not isinstance(model[key], str):
            return f"'model.{key}' is not a string"
    return None


def check_manifest(manifest: bytes | None, names: Iterable[str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The parsed manifest (if it is a JSON object) and its problems.

    ``missing-manifest``, ``invalid-manifest``, ``invalid-model-name``, then
    ``missing-file`` for every file the manifest names that the archive lacks.
    """
    if manifest is None:
        return None, [problem("missing-manifest", None, f"no {MANIFEST_NAME}: TorchServe cannot load the archive")]
    parsed, found = read_manifest(MANIFEST_NAME, manifest, _manifest_fields)
    if parsed is None or found:
        return parsed, found
    found = name_problems(MANIFEST_NAME, "model", parsed["model"]["modelName"])
    return parsed, found + _missing_files(parsed, {normalize(n) for n in names})


def read_manifest(name: str, data: bytes, fields: Callable[[dict[str, Any]], str | None]
                  ) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Manifest *name*'s bytes parsed (if they are a JSON object), and ``invalid-manifest`` if they are too
    many, not a JSON object, or *fields* says why its fields are unusable."""
    if len(data) > MANIFEST_MAX:
        return None, [problem("invalid-manifest", name, f"{name}: over {MANIFEST_MAX:,} bytes")]
    parsed, why = parse_manifest(data)
    if parsed is None or (why := fields(parsed)) is not None:
        return parsed, [problem("invalid-manifest", name, f"{name}: {why}")]
    return parsed, []


def name_problems(manifest: str, what: str, name: str) -> list[Problem]:
    """``invalid-model-name`` if *name* (the model's or workflow's, as *manifest* gives it) is not one TorchServe
    takes."""
    if MODEL_NAME_RE.fullmatch(name):
        return []
    return [problem("invalid-model-name", manifest, f"{manifest}: {what} name {quote(name)} does not match"
                    f" {MODEL_NAME_RE.pattern}")]


def _handler_file(handler: str, runtime: str) -> str | None:
    """The file TorchServe imports for *handler* (a path relative to the root), or None for a built-in."""
    module = handler.partition(":")[0]
    if runtime == "LSP":
        return None if module in ("BaseHandler", "TorchScriptHandler") else f"{module}.so"
    if "/" not in module and not module.endswith(".py") and module in BUILTIN_HANDLERS:
        return None
    return module if module.endswith(".py") else f"{module}.py"


def _missing_files(manifest: dict[str, Any], names: set[str]) -> list[Problem]:
    model = manifest["model"]
    found = []
    wanted = [(f"model.{key}", model[key]) for key in ("serializedFile", "modelFile", "requirementsFile",
                                                         "configFile") if model.get(key)]
    handler_file = _handler_file(model["handler"], str(manifest.get("runtime", "python")))
    if handler_file is not None:
        wanted.insert(0, ("model.handler", handler_file))
    for key, name in wanted:
        if normalize(name) in names:
            continue
        base = name.rsplit("/", 1)[-1]
        deeper = sorted(n for n in names if n.endswith("/" + base))
        hint = f" (there is {quote(deeper[0])}, but TorchServe looks at the root)" if deeper else ""
        found.append(problem("missing-file", name, f"{MANIFEST_NAME}: {key} names {quote(name)},"
                             f" which the archive does not hold{hint}"))
    return found


def record_rows(data: bytes, record_name: str = RECORD_NAME) -> list[RecordRow] | Problem:
    """The rows of a ``MAR-INF/RECORD`` (or *record_name*), or the problem that stops them being read."""
    if len(data) > RECORD_MAX:
        return problem("corrupt", record_name, f"{record_name}: over {RECORD_MAX:,} bytes")
    try:
        return parse_record(data, record_name)
    except (ArchiveError, csv.Error) as error:
        return problem("corrupt", record_name, f"{record_name}: unreadable ({error})" if isinstance(error, csv.Error)
                       else str(error))


def record_name_of(facts: ArchiveFacts) -> str:
    """The record's name in *facts*' kind of archive: ``MAR-INF/RECORD``, or ``WAR-INF/RECORD`` in a workflow."""
    return WAR_RECORD_NAME if facts.kind == "workflow" else RECORD_NAME


def check_record(facts: ArchiveFacts, rows: list[RecordRow] | Problem | None = None) -> list[Problem]:
    """``record-mismatch`` and ``digest-mismatch`` against markit's ``MAR-INF/RECORD``; ``no-record`` without one.

    *rows* are :func:`record_rows` of ``facts.record`` when already parsed.
    """
    record_name = record_name_of(facts)
    if facts.record is None:
        return [problem("no-record", None, f"no {record_name}: the files' contents cannot be checked against"
                        " digests (the real archivers never write one; markit create does)")]
    record = record_rows(facts.record, record_name) if rows is None else rows
    if isinstance(record, Problem):
        return [record]
    files = {normalize(m.name): m.name for m in facts.members if m.kind == "file"}
    files.pop(record_name, None)
    found = []
    listed: set[str] = set()
    digests, sizes = facts.digests or {}, facts.sizes or {}
    for row in record:
        key = normalize(row.name)
        name = files.get(key)
        if key in listed:
            found.append(problem("record-mismatch", row.name, f"{record_name}: lists {quote(row.name)} twice"))
        elif name is None:
            found.append(problem("record-mismatch", row.name, f"{record_name}: lists {quote(row.name)},"
                                 " which the archive does not hold"))
        elif digests.get(name) != row.sha256 or sizes.get(name, row.size) != row.size:  # else nothing to say
            found += _digest_problems(row, name, facts, record_name)
        listed.add(key)
    for key, name in files.items():
        if key not in listed:
            found.append(problem("record-mismatch", name, f"entry {quote(name)}: not listed in {record_name}"))
    return found


def _digest_problems(row: RecordRow, name: str, facts: ArchiveFacts, record_name: str) -> list[Problem]:
    if facts.digests is None or name not in facts.digests:
        return []
    size = facts.sizes.get(name) if facts.sizes is not None else None
    if size is not None and size != row.size:
        return [problem("digest-mismatch", name, f"entry {quote(name)}: {size:,} bytes, {record_name} says"
                        f" {row.size:,}")]
    if facts.digests[name] != row.sha256:
        return [problem("digest-mismatch", name, f"entry {quote(name)}: SHA-256 is {facts.digests[name]},"
                        f" {record_name} says {row.sha256}")]
    return []


def check_torchserve(facts: ArchiveFacts, manifest: dict[str, Any] | None) -> list[Problem]:
    """``torchserve-incompatible`` warnings: what stops TorchServe loading an otherwise sound archive."""
    found = []
    base = facts.label.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    label = base.lower()
    if facts.format == "zip" and facts.label != "-" and not label.endswith(".mar"):
        found.append(problem("torchserve-incompatible", None, f"a zip archive named {quote(base)}:"
                             " TorchServe reads a file as zip only if its name ends in .mar"))
    if facts.format == "tar.gz" and label.endswith(".mar"):
        found.append(problem("torchserve-incompatible", None, f"a tar.gz archive named {quote(base)}:"
                             " TorchServe reads a .mar file as zip"))
    if facts.format == "tar":
        found.append(problem("torchserve-incompatible", None, "an uncompressed tar: TorchServe reads archives"
                             " not named .mar as gzip-compressed tar"))
    if facts.format in ("tar", "tar.gz") and facts.root is None and facts.members:
        found.append(problem("torchserve-incompatible", None, "the entries are not all under one top folder:"
                             " TorchServe drops the first component of every name in a tar"))
    handler = manifest.get("model", {}).get("handler") if manifest is not None else None
    module = handler.partition(":")[0] if isinstance(handler, str) else ""
    if "/" in module:
        found.append(problem("torchserve-incompatible", module, f"{MANIFEST_NAME}: the handler module"
                             f" {quote(module)} is in a subfolder: TorchServe imports it by its base name"
                             " from the archive root"))
    return found

