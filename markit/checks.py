"""The problems ``verify`` reports, and the pure checks that find them.

Every check is a function of data: member records, manifest bytes, record rows,
digests computed elsewhere. Nothing here reads a file, so the tests feed literals.
Each check returns a list of :class:`Problem`; :func:`check_archive` runs them all
and returns every problem at once, never just the first.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from markit.errors import ArchiveError
from markit.manifest import BUILTIN_HANDLERS, MANIFEST_NAME, MODEL_NAME_RE, RUNTIMES
from markit.record import RECORD_NAME, RecordRow, parse_record
from markit.rules import excluded_name

__all__ = [
    "CODES",
    "ERROR",
    "MANIFEST_MAX",
    "RECORD_MAX",
    "WARNING",
    "ArchiveFacts",
    "Limits",
    "MemberFacts",
    "Problem",
    "captured_name",
    "check_archive",
    "check_duplicates",
    "check_kinds",
    "check_limits",
    "check_manifest",
    "check_paths",
    "check_record",
    "check_torchserve",
    "excluded_problems",
    "normalize",
    "problem",
    "quote",
    "unsafe_reason",
]

ERROR = "error"
WARNING = "warning"

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
}

MANIFEST_MAX = 1 << 20  # 1 MiB: a manifest is under 1 KiB; more is not a manifest
RECORD_MAX = 32 << 20  # 32 MiB: a row is ~150 bytes, so ~220,000 files, over the --max-entries default
_DRIVE = re.compile(r"^[A-Za-z]:")
_RATIO_FROM = 1 << 20  # ratios are judged only for entries that declare more than 1 MiB


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
    """*name* quoted for a message, control characters escaped (a name cannot drive the terminal)."""
    return repr(name)


@dataclass(frozen=True)
class Limits:
    """The limits past which an archive is a ``bomb``; ``verify``/``unpack`` flags change them."""

    max_size: int = 1 << 40
    """Total declared bytes, once uncompressed: 1 TiB, twice the largest checkpoints served today."""
    max_ratio: float = 1100.0
    """Uncompressed / compressed bytes of one entry (zip) or of the whole stream (tar.gz).
    Deflate cannot exceed 1032:1, so a higher declared ratio is a lie whatever the data."""
    max_entries: int = 100_000
    """Entries: a model archive holds tens to thousands; 100,000 leaves room for a checkpoint split
    in many shards or a vendored dataset. Reading costs up to ~1 KB of memory per entry, so memory
    stays under 64 MiB up to ~25,000 entries and grows past it (~100 MiB at the limit)."""


class MemberFacts(Protocol):
    """What the checks need to know about one member (:class:`markit.archive.Member` has all of it)."""

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


def unsafe_reason(name: str) -> str | None:
    """Why *name* cannot be written under a destination folder, or None if it can."""
    if name == "":
        return "the name is empty"
    if "\x00" in name:
        return "the name holds a NUL character"
    if "\\" in name:
        return "the name holds a backslash (a folder separator on Windows)"
    if name.startswith("/"):
        return "the name is an absolute path"
    if _DRIVE.match(name):
        return "the name starts with a drive letter"
    if ".." in name.split("/"):
        return "the name has a '..' component"
    return None


def captured_name(name: str) -> str | None:
    """``MAR-INF/MANIFEST.json`` or ``MAR-INF/RECORD`` if *name* is one, at the root or one folder down."""
    parts = normalize(name).split("/")
    tail = "/".join(parts[-2:])
    if tail in (MANIFEST_NAME, RECORD_NAME) and len(parts) <= 3:
        return tail
    return None


def normalize(name: str) -> str:
    """*name* with empty and ``.`` components dropped: ``./a//b/`` is ``a/b``."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def check_paths(members: Iterable[MemberFacts]) -> list[Problem]:
    """``unsafe-path`` for names that could land outside the destination."""
    found = []
    for m in members:
        reason = unsafe_reason(m.name)
        if reason is None and normalize(m.name) == "" and m.kind != "dir":
            reason = "the name has no file name in it"
        if reason is not None:
            found.append(problem("unsafe-path", m.name, f"entry {quote(m.name)}: {reason}"))
    return found


_KIND_WORDS = {"symlink": "a symbolic link", "hardlink": "a hard link"}


def check_kinds(members: Iterable[MemberFacts]) -> list[Problem]:
    """``link-entry`` and ``special-entry``: only regular files and folders are allowed."""
    found = []
    for m in members:
        if m.kind in _KIND_WORDS:
            target = f" to {quote(m.detail)}" if m.detail else ""
            found.append(problem("link-entry", m.name, f"entry {quote(m.name)}: {_KIND_WORDS[m.kind]}{target},"
                                 " expected a regular file or folder"))
        elif m.kind == "special":
            found.append(problem("special-entry", m.name, f"entry {quote(m.name)}: {m.detail or 'a special file'},"
                                 " expected a regular file or folder"))
    return found


def check_duplicates(members: Iterable[MemberFacts]) -> list[Problem]:
    """``duplicate-entry``: one name twice after normalisation, or a name that is both file and folder."""
    seen: dict[str, MemberFacts] = {}
    found = []
    for m in members:
        key = normalize(m.name)
        first = seen.get(key)
        if first is not None and not (first.kind == m.kind == "dir"):
            found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: the same name as entry"
                                 f" {quote(first.name)} once normalised ({quote(key)})"))
        seen.setdefault(key, m)
    for key, m in seen.items():
        parts = key.split("/")
        for depth in range(1, len(parts)):
            parent = seen.get("/".join(parts[:depth]))
            if parent is not None and parent.kind != "dir":
                found.append(problem("duplicate-entry", m.name, f"entry {quote(m.name)}: its folder"
                                     f" {quote(parent.name)} is also an entry of kind {parent.kind}"))
                break
    return found


def check_limits(facts: ArchiveFacts, limits: Limits) -> list[Problem]:
    """``bomb``: declared sizes and compression ratios beyond *limits*."""
    found = []
    total = sum(m.size or 0 for m in facts.members)
    if total > limits.max_size:
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes in all, over the limit of"
                             f" {limits.max_size:,} (--max-size)"))
    for m in facts.members:
        size, packed = m.size or 0, m.compressed_size
        if packed is not None and size > _RATIO_FROM and size > limits.max_ratio * max(packed, 1):
            found.append(problem("bomb", m.name, f"entry {quote(m.name)}: declares {size:,} bytes from {packed:,}"
                                 f" compressed, a ratio over the limit of {limits.max_ratio:g} (--max-ratio)"))
    stream = facts.stream_size
    if stream is not None and total > _RATIO_FROM and total > limits.max_ratio * max(stream, 1):
        found.append(problem("bomb", None, f"the entries declare {total:,} bytes from a {stream:,}-byte stream,"
                             f" a ratio over the limit of {limits.max_ratio:g} (--max-ratio)"))
    return found


def excluded_problems(members: Iterable[MemberFacts]) -> list[Problem]:
    """``excluded-file`` warnings for what ``create`` leaves out and the real tools let in."""
    found = []
    for m in members:
        for part in normalize(m.name).split("/"):
            reason = excluded_name(part) if part not in ("MANIFEST.json", "..") else None
            if reason is not None:
                found.append(problem("excluded-file", m.name, f"entry {quote(m.name)}: {reason}; markit create"
                                     " leaves such files out"))
                break
    return found


def _parse_manifest(data: bytes) -> tuple[dict[str, Any] | None, str | None]:
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
    if len(manifest) > MANIFEST_MAX:
        return None, [problem("invalid-manifest", MANIFEST_NAME, f"{MANIFEST_NAME}: over {MANIFEST_MAX:,} bytes")]
    parsed, why = _parse_manifest(manifest)
    if parsed is None or (why := _manifest_fields(parsed)) is not None:
        return parsed, [problem("invalid-manifest", MANIFEST_NAME, f"{MANIFEST_NAME}: {why}")]
    model = parsed["model"]
    found = []
    if not MODEL_NAME_RE.fullmatch(model["modelName"]):
        found.append(problem("invalid-model-name", MANIFEST_NAME, f"{MANIFEST_NAME}: model name"
                             f" {quote(model['modelName'])} does not match {MODEL_NAME_RE.pattern}"))
    return parsed, found + _missing_files(parsed, {normalize(n) for n in names})


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


def check_record(facts: ArchiveFacts) -> list[Problem]:
    """``record-mismatch`` and ``digest-mismatch`` against markit's ``MAR-INF/RECORD``; ``no-record`` without one."""
    if facts.record is None:
        return [problem("no-record", None, f"no {RECORD_NAME}: the files' contents cannot be checked against"
                        " digests (the real archivers never write one; markit create does)")]
    if len(facts.record) > RECORD_MAX:
        return [problem("corrupt", RECORD_NAME, f"{RECORD_NAME}: over {RECORD_MAX:,} bytes")]
    try:
        record = parse_record(facts.record)
    except (ArchiveError, csv.Error) as error:
        return [problem("corrupt", RECORD_NAME, f"{RECORD_NAME}: unreadable ({error})" if isinstance(error, csv.Error)
                        else str(error))]
    files = {normalize(m.name): m.name for m in facts.members if m.kind == "file"}
    files.pop(RECORD_NAME, None)
    found = []
    listed: set[str] = set()
    for row in record:
        key = normalize(row.name)
        if key in listed:
            found.append(problem("record-mismatch", row.name, f"{RECORD_NAME}: lists {quote(row.name)} twice"))
        elif key not in files:
            found.append(problem("record-mismatch", row.name, f"{RECORD_NAME}: lists {quote(row.name)},"
                                 " which the archive does not hold"))
        else:
            found += _digest_problems(row, files[key], facts)
        listed.add(key)
    for key, name in files.items():
        if key not in listed:
            found.append(problem("record-mismatch", name, f"entry {quote(name)}: not listed in {RECORD_NAME}"))
    return found


def _digest_problems(row: RecordRow, name: str, facts: ArchiveFacts) -> list[Problem]:
    if facts.digests is None or name not in facts.digests:
        return []
    size = facts.sizes.get(name) if facts.sizes is not None else None
    if size is not None and size != row.size:
        return [problem("digest-mismatch", name, f"entry {quote(name)}: {size:,} bytes, {RECORD_NAME} says"
                        f" {row.size:,}")]
    if facts.digests[name] != row.sha256:
        return [problem("digest-mismatch", name, f"entry {quote(name)}: SHA-256 is {facts.digests[name]},"
                        f" {RECORD_NAME} says {row.sha256}")]
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


def check_archive(facts: ArchiveFacts, limits: Limits) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Every check over *facts*: the parsed manifest (or None) and all the problems found."""
    members = facts.members
    found = check_paths(members) + check_kinds(members) + check_duplicates(members)
    found += check_limits(facts, limits)
    found += excluded_problems(members)
    if not facts.complete:
        return None, found
    manifest, manifest_problems = check_manifest(facts.manifest, (m.name for m in members if m.kind == "file"))
    found += manifest_problems
    found += check_record(facts)
    found += check_torchserve(facts, manifest)
    return manifest, found
