"""The file plan: which files go into the archive, under which names, and why.

Pure: :func:`make_plan` takes a :class:`Request` and the scanned inputs and
returns a :class:`Plan` (entries, exclusions with reasons, the manifest). It reads
no disk, so its tests feed it literal snapshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markit.errors import ConflictError, InputError, UsageError
from markit.model.manifest import (
    MANIFEST_NAME,
    RUNTIMES,
    build_manifest,
    check_model_name,
    created_on,
    manifest_bytes,
    parse_handler,
)
from markit.model.names import RESERVED_DIR, excluded_name
from markit.model.record import RECORD_NAME
from markit.model.workflow import WAR_MANIFEST_NAME, WAR_RECORD_NAME
from markit.write.rules import choose_method, glob_rule
from markit.write.snapshot import Input, SourceFile

__all__ = [
    "ARCHIVE_FORMATS",
    "COMPRESSIONS",
    "Entry",
    "Exclusion",
    "Plan",
    "Request",
    "archive_filename",
    "entries_of",
    "format_for_output",
    "make_plan",
    "place_inputs",
]

ARCHIVE_FORMATS = ("default", "zip-store", "tgz", "no-archive")
COMPRESSIONS = ("auto", "store", "deflate")
ZIP_FORMATS = ("default", "zip-store")


@dataclass(frozen=True)
class Request:
    """What the user asked ``create`` for, with paths already resolved."""

    model_name: str
    """``--model-name``."""
    handler: str
    """``--handler`` as given."""
    archiver_version: str
    """Written as the manifest's ``archiverVersion``."""
    now: float
    """The time of the run: entry times for generated files when no epoch is set."""
    runtime: str = "python"
    """``--runtime``."""
    version: str | None = None
    """``-v/--version``: the manifest's ``modelVersion``; left out when None."""
    archive_format: str = "default"
    """One of :data:`ARCHIVE_FORMATS`."""
    compression: str = "auto"
    """One of :data:`COMPRESSIONS`."""
    excludes: tuple[str, ...] = ()
    """``--exclude`` globs."""
    epoch: float | None = None
    """``SOURCE_DATE_EPOCH``: every time in the archive, when set."""
    output_path: str | None = None
    """The absolute output path, so an output inside an input is not archived."""
    kind: str = "model"
    """``model`` (a ``.mar``: MAR-INF/) or ``workflow`` (a ``.war``: WAR-INF/, *model_name* is the workflow's)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A file that goes into the archive."""

    name: str
    """Archive name, relative to the archive root."""
    source: str
    """The file to read."""
    size: int
    """Bytes, as scanned."""
    mode: int
    """Normalised permissions: 0o755 if any execute bit was set, else 0o644."""
    mtime: float
    """Entry time: ``SOURCE_DATE_EPOCH`` if set, else the file's mtime."""
    method: str
    """``store`` or ``deflate`` (zip formats); ``gzip`` (tgz); ``copy`` (no-archive)."""
    origin: str
    """The input it came from, e.g. ``--model-path squeezenet``."""
    why: str
    """Why this method was chosen."""


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A file or folder of an input that stays out, and why."""

    name: str
    """Its path relative to its input."""
    source: str
    """Its path on disk."""
    origin: str
    """The input it came from."""
    reason: str
    """Why it is left out."""


@dataclass(frozen=True)
class Plan:
    """Everything the writer needs, decided in advance."""

    model_name: str
    archive_format: str
    entries: tuple[Entry, ...]
    """Files in archive order (sorted by name)."""
    exclusions: tuple[Exclusion, ...]
    manifest: dict[str, Any]
    generated_mtime: float
    """Entry time of the generated MAR-INF files."""
    notes: tuple[str, ...] = field(default=())
    """Warnings for the user that do not stop the build."""
    compression: str = "auto"
    """``--compression``; under ``auto`` a zip file keeps any entry deflate does not shrink stored."""
    kind: str = "model"
    """``model`` (MAR-INF/ files) or ``workflow`` (WAR-INF/ files, a ``.war``)."""

    @property
    def manifest_name(self) -> str:
        """The manifest's archive name: ``MAR-INF/MANIFEST.json`` or ``WAR-INF/MANIFEST.json``."""
        return WAR_MANIFEST_NAME if self.kind == "workflow" else MANIFEST_NAME

    @property
    def record_name(self) -> str:
        """The record's archive name: ``MAR-INF/RECORD`` or ``WAR-INF/RECORD``."""
        return WAR_RECORD_NAME if self.kind == "workflow" else RECORD_NAME

    @property
    def generated_method(self) -> str:
        """How MAR-INF/MANIFEST.json and MAR-INF/RECORD are written: stored where every file is (zip-store,
        ``--compression store``), as torch-model-archiver's zip-store stores every entry; else deflated."""
        return "store" if self.archive_format == "zip-store" or self.compression == "store" else "deflate"

    @property
    def keep_smaller(self) -> bool:
        """Whether the zip writer stores a deflate entry that deflate does not shrink (``--compression auto``)."""
        return self.archive_format == "default" and self.compression == "auto"

    @property
    def manifest_data(self) -> bytes:
        """``MAR-INF/MANIFEST.json`` as written."""
        return manifest_bytes(self.manifest)

    @property
    def total_size(self) -> int:
        """Bytes of input data the archive holds."""
        return sum(entry.size for entry in self.entries)

    def to_json(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict (what ``--dry-run --json`` prints)."""
        return {
            ("workflow_name" if self.kind == "workflow" else "model_name"): self.model_name,
            "archive_format": self.archive_format,
            "entries": [
                {"name": e.name, "source": e.source, "size": e.size, "mode": f"{e.mode:o}",
                 "method": e.method, "origin": e.origin, "why": e.why}
                for e in self.entries
            ],
            "excluded": [
                {"name": x.name, "source": x.source, "origin": x.origin, "reason": x.reason}
                for x in self.exclusions
            ],
            "manifest": self.manifest,
            "notes": list(self.notes),
        }


def archive_filename(model_name: str, archive_format: str, kind: str = "model") -> str:
    """The file (or folder) name an archive gets in the export path (``NAME.war`` for a workflow)."""
    if kind == "workflow":
        return f"{model_name}.war"
    if archive_format == "tgz":
        return f"{model_name}.tar.gz"
    if archive_format == "no-archive":
        return model_name
    return f"{model_name}.mar"


def format_for_output(output: str, archive_format: str | None) -> str:
    """The archive format for ``-o OUTPUT``, checked against the name TorchServe will see.

    TorchServe picks the reader from the file name: ``.mar`` is read as zip and
    anything else as tar.gz, so a zip named ``.tar.gz`` or a tgz named ``.mar``
    would be refused. Without ``--archive-format``, the name decides; ``-`` is zip.
    """
    is_tgz_name = output.endswith((".tar.gz", ".tgz"))
    is_mar_name = output.endswith(".mar")
    if archive_format is None:
        return "tgz" if is_tgz_name else "default"
    if archive_format in ZIP_FORMATS and is_tgz_name:
        raise UsageError(f"-o {output}: a zip archive named .tar.gz is refused by TorchServe; name it .mar")
    if archive_format == "tgz" and is_mar_name:
        raise UsageError(f"-o {output}: a tgz archive named .mar is refused by TorchServe; name it .tar.gz")
    if archive_format == "no-archive" and output == "-":
        raise UsageError("-o -: the no-archive format writes a folder, not a stream")
    return archive_format


def _method(request: Request, name: str, size: int) -> tuple[str, str]:
    if request.archive_format == "tgz":
        return "gzip", "tgz compresses the whole stream"
    if request.archive_format == "no-archive":
        return "copy", "no-archive copies files"
    if request.archive_format == "zip-store":
        return "store", "--archive-format zip-store"
    return choose_method(name, size, request.compression)


def _exclusion_rule(request: Request) -> Callable[[SourceFile, bool], str | None]:
    """Why a file (of a folder input, or named itself) stays out, or None: a function built once per plan.

    What a file's folders say is worked out once per folder (its files share it), then the file's own name.
    """
    out = request.output_path
    under_out = None if out is None else out.rstrip("/") + "/"
    by_glob = glob_rule(request.excludes)
    folders: dict[str, str | None] = {"": None}

    def excluded(source: SourceFile, in_folder: bool) -> str | None:
        if under_out is not None and (source.path == out or source.path.startswith(under_out)):
            return "the output archive itself"
        if not in_folder:
            return None  # a file named on the command line goes in as named
        folder, _, base = source.name.rpartition("/")
        reason = folders[folder] if folder in folders else folders.setdefault(folder, _folder_reason(folder))
        if reason is None and not folder and base == RESERVED_DIR:
            reason = _folder_reason(base)
        return reason or excluded_name(base) or by_glob(source.name)

    return excluded


def _folder_reason(folder: str) -> str | None:
    """Why everything under *folder* (a '/'-separated path, not empty) stays out, or None."""
    parts = folder.split("/")
    if parts[0] == RESERVED_DIR:
        return f"{RESERVED_DIR}/ is reserved: markit writes the archive's own"
    for part in parts:
        reason = excluded_name(part)
        if reason is not None:
            return reason
    return None


def _check_request(request: Request) -> None:
    check_model_name(request.model_name)
    if request.runtime not in RUNTIMES:
        raise UsageError(f"--runtime {request.runtime}: expected one of {', '.join(RUNTIMES)}")
    if request.archive_format not in ARCHIVE_FORMATS:
        raise UsageError(f"--archive-format {request.archive_format}: expected one of {', '.join(ARCHIVE_FORMATS)}")
    if request.compression not in COMPRESSIONS:
        raise UsageError(f"--compression {request.compression}: expected one of {', '.join(COMPRESSIONS)}")
    if request.compression != "auto" and request.archive_format != "default":
        raise UsageError(
            f"--compression {request.compression} applies to --archive-format default only"
            f" (zip-store stores, tgz gzips, no-archive copies)"
        )


def make_plan(request: Request, inputs: Sequence[Input]) -> Plan:
    """Decide every file: its archive name and method, or why it is left out."""
    _check_request(request)
    handler = parse_handler(request.handler)
    taken, exclusions = place_inputs(request, inputs)
    _check_handler(handler.module_file, handler.text, taken)
    generated = request.epoch if request.epoch is not None else request.now
    manifest = build_manifest(
        model_name=request.model_name,
        handler=handler,
        runtime=request.runtime,
        created=created_on(generated, utc=request.epoch is not None),
        archiver_version=request.archiver_version,
        serialized_file=_named(inputs, "--serialized-file"),
        model_file=_named(inputs, "--model-file"),
        version=request.version,
        requirements_file=_named(inputs, "--requirements-file"),
        config_file=_named(inputs, "--config-file"),
    )
    return Plan(request.model_name, request.archive_format, entries_of(request, taken),
                tuple(exclusions), manifest, generated, compression=request.compression)


def place_inputs(request: Request, inputs: Sequence[Input]
                 ) -> tuple[dict[str, tuple[SourceFile, str]], list[Exclusion]]:
    """Every input file's archive name (with the input it came from), or why it stays out.

    :class:`ConflictError` if two different files land on one name; :class:`InputError` for a name
    that is not UTF-8.
    """
    taken: dict[str, tuple[SourceFile, str]] = {}
    exclusions: list[Exclusion] = []
    conflicts: list[str] = []
    excluded = _exclusion_rule(request)
    for item in inputs:
        origin = f"{item.flag} {item.given}"
        for skip in item.skipped:
            exclusions.append(Exclusion(skip.name, skip.path, origin, skip.reason))
        for source in item.files:
            reason = excluded(source, item.is_dir)
            if reason is None and source.name in taken:
                first, first_origin = taken[source.name]
                if first.path != source.path:
                    conflicts.append(
                        f"{source.name!r} comes from both {first.path} ({first_origin})"
                        f" and {source.path} ({origin})"
                    )
                    continue
                reason = f"the same file is already included from {first_origin}"
            if reason is not None:
                exclusions.append(Exclusion(source.name, source.path, origin, reason))
            else:
                taken[source.name] = (source, origin)
    if conflicts:
        raise ConflictError("two inputs land on the same archive name: " + "; ".join(conflicts))
    _check_utf8(inputs, taken)
    return taken, exclusions


def entries_of(request: Request, taken: dict[str, tuple[SourceFile, str]]) -> tuple[Entry, ...]:
    """The included files in archive order, each with its method, normalised mode and entry time."""
    entries = []
    for name in sorted(taken):
        source, origin = taken[name]
        method, why = _method(request, name, source.size)
        mode = 0o755 if source.mode & 0o111 else 0o644
        mtime = request.epoch if request.epoch is not None else source.mtime
        entries.append(Entry(name, source.path, source.size, mode, mtime, method, origin, why))
    return tuple(entries)


def _check_utf8(inputs: Sequence[Input], taken: dict[str, tuple[SourceFile, str]]) -> None:
    """Refuse files whose names are not UTF-8 (bytes the file system holds, decoded as surrogates).

    Refused rather than left out: a file in the model folder is there for the handler, and an
    archive silently without it loads, then fails at inference, far from the cause; the files
    that are left out (hidden, byte code) are ones no model needs. The name cannot go in as it
    is: zip names, tar names and MAR-INF/RECORD are UTF-8, and TorchServe's Java unzip refuses
    a malformed one. So the user chooses: rename the file, or leave it out with ``--exclude``.
    """
    bad = [(_escaped(os.path.join(item.given, source.name) if item.is_dir else item.given), item.is_dir)
           for item in inputs for source in item.files
           if not _is_utf8(source.name) and taken.get(source.name, (None,))[0] is source]
    if not bad:
        return
    listed = ", ".join(path for path, _ in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    found, them = ("the file name is", "it") if len(bad) == 1 else (f"{len(bad)} file names are", "them")
    leave = f", or leave {them} out with --exclude" if any(in_folder for _, in_folder in bad) else ""
    raise InputError(f"{listed}: {found} not valid UTF-8, which archive names must be (TorchServe reads them as"
                     f" UTF-8); rename {them}{leave}")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(text: str) -> str:
    """*text* with the bytes that are not UTF-8 shown as ``\\xe9``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _named(inputs: Sequence[Input], flag: str) -> str | None:
    for item in inputs:
        if item.flag == flag and not item.is_dir:
            return os.path.basename(item.given)
    return None


def _check_handler(module_file: str | None, text: str, taken: dict[str, Any]) -> None:
    if module_file is None or module_file in taken:
        return
    deeper = sorted(name for name in taken if name.endswith("/" + module_file))
    hint = f"; found {deeper[0]}, but" if deeper else ";"
    raise InputError(
        f"--handler {text}: {module_file} is not at the archive root{hint} TorchServe imports"
        " the handler module by its base name from the root"
    )
