"""``create``: inputs on disk -> snapshot -> plan -> writer -> sink.

The edges of the create pipeline: gathering the inputs the user named, and
running a plan through the writer for its format. The decisions are all in
:mod:`markit.plan`; this module only moves bytes and cleans up on failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from markit.engine.buffers import BufferRing
from markit.engine.datapass import WHOLE_MAX, Consumer, Digest, Feed, digest_of
from markit.errors import InputError, UsageError
from markit.formats.folder.writer import FolderWriter
from markit.formats.tar.writer import TarWriter
from markit.formats.zip.writer import ZipWriter
from markit.model.manifest import parse_handler
from markit.model.record import RecordRow, format_record
from markit.model.workflow import SPEC_MAX
from markit.storage.inputs import exists, pump, read_whole  # a local path or a URL
from markit.storage.remote import is_url
from markit.storage.sinks import FileSink, Sink, StreamSink
from markit.write.plan import Plan
from markit.write.snapshot import Input, expand, scan_input, split_extra_files

__all__ = ["Sources", "Written", "gather_inputs", "read_workflow_files", "write_plan"]


@dataclass(frozen=True)
class Sources:
    """The inputs as named on the command line (paths as typed)."""

    model_path: str | None = None
    serialized_file: str | None = None
    model_file: str | None = None
    handler: str = ""
    extra_files: str | None = None
    requirements_file: str | None = None
    config_file: str | None = None
    spec_file: str | None = None
    """``--spec-file``: set for a workflow archive (``.war``), whose ``--handler`` is a .py file."""


@dataclass(frozen=True)
class Written:
    """What :func:`write_plan` produced."""

    target: str
    """The archive path, or ``-`` for stdout."""
    files: int
    """Members written, MAR-INF files included."""
    input_bytes: int
    """Bytes of input read."""
    output_bytes: int
    """Bytes of archive written (0 for a folder)."""


def gather_inputs(sources: Sources) -> list[Input]:
    """Scan every input the user named, in the order torch-model-archiver copies them."""
    if sources.spec_file is not None:
        return _workflow_inputs(sources)
    inputs: list[Input] = []
    if sources.model_path is not None:
        model = scan_input("--model-path", sources.model_path)
        if not model.is_dir:
            raise InputError(f"--model-path {sources.model_path}: is a file, expected a folder")
        inputs.append(model)
    for flag, value in (("--serialized-file", sources.serialized_file), ("--model-file", sources.model_file)):
        if value is not None:
            inputs.append(_single_file(flag, value))
    handler_file = _handler_file(sources)
    if handler_file is not None:
        inputs.append(_single_file("--handler", handler_file))
    for item in split_extra_files(sources.extra_files or ""):
        inputs.extend(scan_input("--extra-files", match) for match in expand("--extra-files", item))
    for flag, value in (("--requirements-file", sources.requirements_file), ("--config-file", sources.config_file)):
        if value is not None:
            inputs.append(_single_file(flag, value))
    if not inputs:
        raise UsageError("nothing to archive: give --model-path, or files with --serialized-file and the like")
    return inputs


def _workflow_inputs(sources: Sources) -> list[Input]:
    """A workflow's inputs, in torch-workflow-archiver's order: the spec, the handler, the extra files."""
    assert sources.spec_file is not None
    if any(value is not None for value in (sources.model_path, sources.serialized_file, sources.model_file,
                                           sources.requirements_file, sources.config_file)):
        raise UsageError("--spec-file makes a workflow archive: give --handler and --extra-files only, not"
                         " --model-path, --serialized-file, --model-file, -r or -c")
    if not sources.handler:
        raise UsageError("a workflow archive needs --handler: the .py file of the DAG's functions")
    inputs = [_single_file("--spec-file", sources.spec_file), _single_file("--handler", sources.handler)]
    for item in split_extra_files(sources.extra_files or ""):
        inputs.extend(scan_input("--extra-files", match) for match in expand("--extra-files", item))
    return inputs


def read_workflow_files(inputs: list[Input]) -> tuple[bytes, bytes]:
    """The spec's and the handler's bytes, for the plan's checks (each read up to one byte past the cap; a URL's
    object over the cap is not fetched: its checks look at nothing but that length)."""
    found = {}
    for item in inputs:
        if item.flag in ("--spec-file", "--handler") and item.flag not in found:
            source = item.files[0]
            if is_url(source.path):
                over = source.size > SPEC_MAX
                found[item.flag] = bytes(SPEC_MAX + 1) if over else bytes(
                    read_whole(source.path, source.size, memoryview(bytearray(source.size)))[0])
                continue
            try:
                with open(source.path, "rb") as handle:
                    found[item.flag] = handle.read(SPEC_MAX + 1)
            except OSError as error:
                raise InputError(f"{item.flag} {item.given}: cannot read ({error.strerror})") from None
    return found["--spec-file"], found["--handler"]


def _single_file(flag: str, path: str) -> Input:
    found = scan_input(flag, path)
    if found.is_dir:
        raise InputError(f"{flag} {path}: is a folder, expected a file")
    return found


def _handler_file(sources: Sources) -> str | None:
    """The handler file to add at the root, if ``--handler`` names a file outside the model folder."""
    spec = parse_handler(sources.handler)
    if spec.path is None:
        return None
    if os.path.exists(spec.path):
        return spec.path
    if sources.model_path is not None:
        inside = os.path.join(sources.model_path, spec.path)
        if exists(inside):  # a URL too: a handler inside a remote --model-path
            # at the model folder's root it is already in; deeper, it must be copied to the root
            return None if os.path.dirname(spec.path) == "" else inside
    raise InputError(f"--handler {sources.handler}: handler file {spec.path} not found")


class Writer(Protocol):
    """What every format's writer does: take members (streamed, or whole from memory), then close the archive."""

    def add(self, name: str, size: int, mtime: float, mode: int, method: str, feed: Feed) -> Digest: ...
    def add_whole(self, name: str, mtime: float, mode: int, method: str, data: bytes | memoryview,
                  digest: Digest) -> None: ...
    def finish(self) -> None: ...


class Outcome(Protocol):
    """Where the output becomes real, or disappears: a sink, or the folder writer."""

    def commit(self) -> None: ...
    def abort(self) -> None: ...


def open_output(plan: Plan, target: str | None, *, force: bool) -> tuple[Outcome, Sink | None]:
    """Where *plan*'s bytes go: a sink (file or stdout), or the folder writer for no-archive."""
    if plan.archive_format == "no-archive":
        assert target is not None
        folder = FolderWriter(target, force=force)
        return folder, None
    if target is not None and is_url(target):  # an object store: a multipart upload, atomic as a file is
        from markit.storage.upload import UploadSink

        upload = UploadSink(target, force=force, planned=plan.total_size)
        return upload, upload
    sink: Sink = StreamSink() if target is None else FileSink(target, force=force)
    return sink, sink


def make_writer(plan: Plan, outcome: Outcome, sink: Sink | None) -> Writer:
    """The writer for *plan*'s format (it may write a header at once)."""
    if sink is None:
        assert isinstance(outcome, FolderWriter)
        return outcome
    if plan.archive_format == "tgz":
        return TarWriter(sink, plan.model_name, plan.generated_mtime)
    return ZipWriter(sink, keep_smaller=plan.keep_smaller)


def write_plan(plan: Plan, target: str | None, *, force: bool, progress: Callable[[int], None] | None = None) -> Written:
    """Write *plan* to *target* (None: stdout), calling *progress* with each chunk's bytes. On any failure, nothing
    is left behind."""
    outcome, sink = open_output(plan, target, force=force)
    try:
        writer = make_writer(plan, outcome, sink)
        rows = _write_members(plan, writer, progress)
        writer.finish()
        outcome.commit()
    except BaseException:
        outcome.abort()
        raise
    return Written(target or "-", len(rows) + 1, plan.total_size, sink.position if sink else 0)


def _file_feed(path: str, size: int, progress: Callable[[int], None] | None, ring: BufferRing) -> Feed:
    """Read *path* into a writer; only the first pass counts as progress (the zip writer may read an entry
    a second time, to store what deflate did not shrink)."""
    passes = 0

    def feed(use: Consumer) -> Digest:
        nonlocal passes
        passes += 1
        return pump(path, size, use, progress if passes == 1 else None, ring)

    return feed


def _ignore(n: int) -> None:
    """No progress to report."""


def _write_members(plan: Plan, writer: Writer, progress: Callable[[int], None] | None) -> list[RecordRow]:
    """Every member: the manifest, the files (up to :data:`WHOLE_MAX` read whole, larger ones streamed), the record.

    Small files' bytes are reported to *progress* a MiB or so at a time (and before a large file), not per file.
    """
    mtime = plan.generated_mtime
    method = plan.generated_method
    data = plan.manifest_data
    manifest = digest_of(data)
    writer.add_whole(plan.manifest_name, mtime, 0o644, method, data, manifest)
    rows = [RecordRow(plan.manifest_name, manifest.sha256, manifest.size)]
    add_whole = writer.add_whole
    buffer = memoryview(bytearray(WHOLE_MAX + 1))  # every small file is read into it, then written before the next
    ring = BufferRing()  # one set of read buffers for every larger file
    report = progress or _ignore
    unreported = 0  # bytes of small files read and not yet reported
    for e in plan.entries:
        if e.size <= WHOLE_MAX:
            whole, digest = read_whole(e.source, e.size, buffer)
            add_whole(e.name, e.mtime, e.mode, e.method, whole, digest)
            unreported += e.size
            if unreported >= WHOLE_MAX:
                report(unreported)
                unreported = 0
        else:
            if unreported:
                report(unreported)
                unreported = 0
            digest = writer.add(e.name, e.size, e.mtime, e.mode, e.method, _file_feed(e.source, e.size, progress, ring))
        rows.append(RecordRow(e.name, digest.sha256, digest.size))
    if unreported:
        report(unreported)
    record = format_record(rows, plan.record_name)
    writer.add_whole(plan.record_name, mtime, 0o644, method, record, digest_of(record))
    return rows
