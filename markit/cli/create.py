"""``markit create``: the typer command, its options named as torch-model-archiver's and model-archiver's."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

import markit
from markit.cli.common import say
from markit.cli.progress import Progress, human_bytes

if TYPE_CHECKING:
    from markit import Plan

__all__ = ["create"]


class ArchiveFormat(str, Enum):
    default = "default"
    zip_store = "zip-store"
    tgz = "tgz"
    no_archive = "no-archive"


class Compression(str, Enum):
    auto = "auto"
    store = "store"
    deflate = "deflate"


class Runtime(str, Enum):
    python = "python"
    python2 = "python2"
    python3 = "python3"
    LSP = "LSP"


ModelNameOptional = Annotated[str | None, typer.Option("--model-name", help="Model name: the archive is MODEL_NAME.mar. Letters, digits, '_', '-', '.'; starts with a letter or digit. (Or --workflow-name for a workflow.)", show_default=False)]
WorkflowNameOpt = Annotated[str | None, typer.Option("--workflow-name", help="Make a workflow archive (torch-workflow-archiver): WORKFLOW_NAME.war holding --spec-file, --handler (a .py file) and --extra-files. Same name rule as --model-name.", show_default=False)]
SpecFileOpt = Annotated[str | None, typer.Option("--spec-file", help="With --workflow-name: the workflow's YAML spec (models: with a url each, dag: of models and handler functions), checked before anything is written; archive root, workflow.specFile.", show_default=False)]
HandlerOpt = Annotated[str, typer.Option("--handler", help="Handler: module[:function] (MMS style, e.g. handler:handle), a .py file (copied to the archive root), or a TorchServe built-in (image_classifier, ...). For a workflow: the .py file whose top-level functions are the DAG's function nodes.")]
ModelPathOpt = Annotated[str | None, typer.Option("--model-path", help="Folder whose files (minus excluded ones) go to the archive root, subfolders kept. May be an s3:// or gs:// folder (listed once, each object read once; needs the extra markit\\[s3] / markit\\[gcs]).")]
SerializedFileOpt = Annotated[str | None, typer.Option("--serialized-file", help="Weights file (.pt, .pth, .bin, ...): archive root, base name; recorded as model.serializedFile. May be an s3://, gs:// or http(s):// URL.")]
ModelFileOpt = Annotated[str | None, typer.Option("--model-file", help="Model definition .py: archive root; recorded as model.modelFile.")]
ExtraFilesOpt = Annotated[str | None, typer.Option("--extra-files", help="Comma list of files, folders or globs: a file goes to the root by base name, a folder's contents to the root with subfolders kept. Items may be s3:// or gs:// URLs (globs too) or http(s):// files.")]
RequirementsFileOpt = Annotated[str | None, typer.Option("--requirements-file", "-r", help="requirements.txt for the model: archive root; model.requirementsFile.")]
ConfigFileOpt = Annotated[str | None, typer.Option("--config-file", "-c", help="Model config YAML: archive root; model.configFile.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Model version, written as model.modelVersion (left out if not given).")]
RuntimeOpt = Annotated[Runtime, typer.Option("--runtime", help="Runtime written in the manifest.")]
ExportPathOpt = Annotated[str | None, typer.Option("--export-path", help="Folder the archive is written to, which must exist, as for torch-model-archiver (default: the current folder).")]
ArchiveFormatOpt = Annotated[ArchiveFormat | None, typer.Option("--archive-format", help="default: .mar zip, compressed as --compression says; zip-store: .mar, nothing compressed; tgz: .tar.gz under a MODEL_NAME/ top folder; no-archive: a folder. (default: from -o's name, else default)", show_default=False)]
CompressionOpt = Annotated[Compression, typer.Option("--compression", help="For the default format. auto: deflate code/text suffixes (.py .json .txt .yaml ...) and other files up to 1 MiB; store weights and compressed suffixes (.bin .pt .safetensors .onnx ...) and other files over 1 MiB; any file deflate does not shrink is stored (in a file; -o - deflates every entry). store / deflate: every file.")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="Archive path; '-' writes the archive to stdout (zip unless --archive-format tgz); s3://bucket/key or gs://bucket/key uploads it as it is written (a multipart upload, completed only when the archive is whole).")]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", help="Leave out files matching this glob (archive name, or any path component if the glob has no '/'). Repeatable.")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing archive (or object, for an s3:// or gs:// output).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan (every file, included or excluded and why, and the manifest); write nothing.")]
AsJsonOpt = Annotated[bool, typer.Option("--json", help="Print the plan (with --dry-run) or the result as one JSON object on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary line.")]


def create(
    handler: HandlerOpt,
    model_name: ModelNameOptional = None,
    workflow_name: WorkflowNameOpt = None,
    spec_file: SpecFileOpt = None,
    model_path: ModelPathOpt = None,
    serialized_file: SerializedFileOpt = None,
    model_file: ModelFileOpt = None,
    extra_files: ExtraFilesOpt = None,
    requirements_file: RequirementsFileOpt = None,
    config_file: ConfigFileOpt = None,
    version: VersionOpt = None,
    runtime: RuntimeOpt = Runtime.python,
    export_path: ExportPathOpt = None,
    archive_format: ArchiveFormatOpt = None,
    compression: CompressionOpt = Compression.auto,
    output: OutputOpt = None,
    exclude: ExcludeOpt = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    as_json: AsJsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pack a model into an archive TorchServe and MMS load (torch-model-archiver / model-archiver flags),
    or a workflow into a .war (torch-workflow-archiver flags: --workflow-name, --spec-file, --handler).

    Excluded from folders: hidden files and folders, __MACOSX, .DS_Store, MANIFEST.json,
    *.pyc, __pycache__, a MAR-INF/ folder, the output itself, and --exclude globs.
    The archive holds MAR-INF/MANIFEST.json and MAR-INF/RECORD (SHA-256 and size of every file).
    With SOURCE_DATE_EPOCH set, output is byte-for-byte reproducible.
    """
    if output == "-" and not dry_run and sys.stdout.isatty():
        raise markit.UsageError("-o -: stdout is a terminal; redirect it to a file or a pipe, or give -o FILE")
    bar = Progress.for_terminal(0, model_name or workflow_name or "", quiet=quiet or as_json)
    try:
        made = markit.create(
            model_name=model_name, handler=handler, workflow_name=workflow_name, spec_file=spec_file,
            model_path=model_path, serialized_file=serialized_file,
            model_file=model_file, extra_files=extra_files, requirements_file=requirements_file,
            config_file=config_file, version=version, runtime=runtime.value, export_path=export_path,
            archive_format=archive_format.value if archive_format else None, compression=compression.value,
            output=output, exclude=exclude or (), force=force, dry_run=dry_run, progress=bar.update,
        )
    finally:
        bar.close()
    for note in made.plan.notes:
        say(f"note: {note}")
    if dry_run:
        _print_plan(made, as_json)
    elif as_json and output != "-":
        print(json.dumps(made.to_json()))
    elif not quiet:
        out = f", {human_bytes(made.output_bytes)} out" if made.output_bytes else ""
        say(f"wrote {made.archive} ({made.plan.archive_format}): {made.files} files,"
            f" {human_bytes(made.input_bytes)} in{out}, {len(made.plan.exclusions)} excluded, {made.seconds:.2f} s")


def _print_plan(made: markit.Created, as_json: bool) -> None:
    if as_json:
        print(json.dumps(made.to_json(), indent=2))
        return
    plan: Plan = made.plan
    print(_escaped(f"plan: {plan.model_name} ({plan.archive_format}) -> {made.archive}"))
    for e in plan.entries:
        print(_escaped(f"  include  {e.name}  {human_bytes(e.size)}  {e.method} ({e.why})  from {e.origin}"))
    for x in plan.exclusions:
        print(_escaped(f"  exclude  {x.name}  ({x.reason})  from {x.origin}"))
    print(f"  generate {plan.manifest_name}, {plan.record_name}")
    print("manifest:")
    print(plan.manifest_data.decode())


def _escaped(text: str) -> str:
    """*text* with bytes of a path that are not UTF-8 (an excluded file's name) shown as ``\\xe9``: printable
    whatever stdout's error handler."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
