"""markit's public functions: create, inspect, verify and unpack, as the command line runs them.

Keyword arguments are named as the command line's long options (``--model-path`` is
``model_path``); each function returns the data the command's ``--json`` prints (the
result's ``to_json()``) and raises :class:`~markit.errors.MarkitError` subclasses.
Heavy modules are imported when a function runs, so ``import markit`` stays cheap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markit.errors import UsageError
from markit.model.limits import Limits
from markit.version import VERSION

if TYPE_CHECKING:
    from markit.read.diff import Diff
    from markit.read.summary import ArchiveInfo
    from markit.read.unpack import Unpacked
    from markit.read.verify import Report
    from markit.trust.oms import Anchor
    from markit.trust.sign import Signature
    from markit.write.create import Sources
    from markit.write.plan import Plan, Request

__all__ = ["Created", "create", "diff", "inspect", "sign", "unpack", "verify"]


@dataclass(frozen=True)
class Created:
    """What :func:`create` did: the plan it followed and, unless a dry run, what it wrote."""

    plan: Plan
    """Every file included or excluded, with its reason, and the manifest."""
    archive: str
    """The archive path (a folder for ``no-archive``), or ``-`` for stdout."""
    written: bool
    """False for a dry run."""
    files: int = 0
    """Members written, MAR-INF files included."""
    input_bytes: int = 0
    """Bytes of input read."""
    output_bytes: int = 0
    """Bytes of archive written (0 for a folder)."""
    seconds: float = 0.0
    """Wall time of the whole call."""

    def to_json(self) -> dict[str, Any]:
        """What ``create --json`` prints: the plan for a dry run, else the archive written."""
        if not self.written:
            return {"output": self.archive, **self.plan.to_json()}
        return {"archive": self.archive, "format": self.plan.archive_format, "files": self.files,
                "input_bytes": self.input_bytes, "output_bytes": self.output_bytes,
                "excluded": len(self.plan.exclusions), "seconds": round(self.seconds, 3)}


def create(
    *,
    model_name: str | None = None,
    handler: str,
    workflow_name: str | None = None,
    spec_file: str | None = None,
    model_path: str | None = None,
    serialized_file: str | None = None,
    model_file: str | None = None,
    extra_files: str | Sequence[str] | None = None,
    requirements_file: str | None = None,
    config_file: str | None = None,
    version: str | None = None,
    runtime: str = "python",
    export_path: str | None = None,
    archive_format: str | None = None,
    compression: str = "auto",
    output: str | None = None,
    exclude: Sequence[str] = (),
    force: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Created:
    """Archive a model as ``markit create`` does; *output* ``"-"`` writes to stdout. With *workflow_name* and
    *spec_file* (not *model_name*): a workflow archive (``NAME.war``), *handler* then its .py file.

    *progress*, if given, is called with (bytes read, bytes to read) as the data flows.
    With *dry_run*, nothing is checked on the output side and nothing is written.
    """
    from markit.engine.datapass import counter
    from markit.write.create import Sources, gather_inputs, write_plan
    from markit.write.plan import Request, archive_filename, format_for_output, make_plan

    started = time.monotonic()
    if output is not None and export_path is not None:
        raise UsageError("give -o/--output or --export-path, not both")
    fmt = format_for_output(output, archive_format) if output is not None else (archive_format or "default")
    name, kind = _archive_name(model_name, workflow_name, spec_file)
    target = None if output == "-" else (output or os.path.join(export_path or ".", archive_filename(name, fmt, kind)))
    if target is not None and not dry_run:
        _check_output(target, fmt, export_path, force=force)
    extras = extra_files if extra_files is None or isinstance(extra_files, str) else ",".join(extra_files)
    sources = Sources(model_path, serialized_file, model_file, handler, extras, requirements_file, config_file, spec_file)
    request = Request(
        model_name=name, kind=kind, handler=handler, archiver_version=f"markit {VERSION}", now=time.time(),
        runtime=runtime, version=version, archive_format=fmt, compression=compression,
        excludes=tuple(exclude), epoch=_epoch(), output_path=_local_path(target),
    )
    plan = make_plan(request, gather_inputs(sources)) if kind == "model" else _workflow_plan(request, sources)
    if dry_run:
        return Created(plan, target or "-", written=False)
    written = write_plan(plan, target, force=force, progress=counter(progress, plan.total_size))
    return Created(plan, written.target, True, written.files, written.input_bytes, written.output_bytes,
                   time.monotonic() - started)


def _archive_name(model_name: str | None, workflow_name: str | None, spec_file: str | None) -> tuple[str, str]:
    """The archive's name and kind (``model`` or ``workflow``) from the options that name it."""
    if model_name is not None and workflow_name is not None:
        raise UsageError("give --model-name (a model archive) or --workflow-name (a workflow archive), not both")
    if workflow_name is not None:
        if spec_file is None:
            raise UsageError("--workflow-name needs --spec-file: the workflow's YAML spec")
        return workflow_name, "workflow"
    if spec_file is not None:
        raise UsageError("--spec-file makes a workflow archive: name it with --workflow-name")
    if model_name is None:
        raise UsageError("give --model-name (a model archive) or --workflow-name with --spec-file (a workflow)")
    return model_name, "model"


def _workflow_plan(request: Request, sources: Sources) -> Plan:
    """The plan of a workflow archive: its inputs scanned, its spec and handler read and checked."""
    from markit.write.create import gather_inputs, read_workflow_files
    from markit.write.workflow import make_workflow_plan

    inputs = gather_inputs(sources)
    spec, handler = read_workflow_files(inputs)
    return make_workflow_plan(request, inputs, spec, handler)


def _local_path(target: str | None) -> str | None:
    """Where the archive goes, as inputs are named (an input there is left out): a local file's real path, a URL
    as given; None for stdout."""
    if not target:
        return None
    return target if "://" in target else os.path.realpath(target)


def _check_output(target: str, fmt: str, export_path: str | None, *, force: bool) -> None:
    """Refuse an output that cannot be written, before any input is read. A missing ``--export-path`` is
    refused, not created, as torch-model-archiver and MMS model-archiver refuse it."""
    from markit.storage.remote import is_url
    from markit.storage.sinks import check_destination

    if is_url(target):  # an object store: refused here if it is taken (without -f) or cannot be written
        from markit.storage.upload import check_remote_destination

        if fmt == "no-archive":
            raise UsageError(f"{target}: --archive-format no-archive writes a local folder; give a local path")
        check_remote_destination(target, force=force)
        return
    check_destination(target, force=force, what="output folder" if fmt == "no-archive" else "archive",
                      shown=None if export_path is None else f"--export-path {export_path}")


def _epoch() -> float | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: expected a whole number of seconds")
    return float(value)


def inspect(path: str, *, notice: Callable[[str], None] | None = None,
            progress: Callable[[int, int], None] | None = None) -> ArchiveInfo:
    """What the archive at *path* (a file, a folder, ``-`` for stdin, or an ``s3://``, ``gs://``, ``http(s)://``
    URL) holds, as ``markit inspect`` shows it.

    A zip file is listed from its central directory: of entry data, only weight files' first bytes are read
    (a safetensors header, a pickle to its STOP: ``info.weights``); a remote zip by range requests
    (its ends, central directory and MAR-INF files only). *notice* gets a line to show the user (a remote
    tar.gz has no index and is read through); *progress* (bytes fetched, 0) for each remote request.
    :class:`~markit.errors.ArchiveError` if it is missing or cannot be read through.
    """
    from markit.read.summary import summarize

    fetched = 0

    def on_fetch(n: int) -> None:  # not engine.datapass.counter: inspect does not load the data pass
        nonlocal fetched
        fetched += n
        if progress is not None:
            progress(fetched, 0)

    return summarize(path, notice=notice, on_fetch=on_fetch if progress is not None else None)


def verify(path: str, *, limits: Limits | None = None, progress: Callable[[int, int], None] | None = None,
           signature: str | None = None, public_key: str | None = None,
           certificate_chain: Sequence[str] = (), identity: str | None = None,
           identity_provider: str | None = None, staging: bool = False, trust_config: str | None = None) -> Report:
    """Every problem of the archive at *path*, as ``markit verify`` reports them; nothing is raised for a
    bad archive (a missing or unreadable path is a problem of its report too).

    *progress*, if given, is called with (file bytes checked, bytes the archive's index declares, or 0
    when it has none: a stream, a tar). With *signature* (an OMS signature file) and *public_key* or
    *certificate_chain* (PEM files), the entries are also checked against it in the same pass
    (``signature-invalid``, ``signature-mismatch``, ``unsigned-entry``, ``missing-signed-entry``); a key
    or signature file that cannot be read raises :class:`~markit.errors.InputError`. A keyless Sigstore
    signature is checked against *identity* and *identity_provider* instead, with Sigstore's production
    trust root (*staging*: its staging one; both fetched through TUF) or the *trust_config* file given.
    """
    if signature is None:
        if public_key is not None or certificate_chain or identity is not None or identity_provider is not None:
            raise UsageError("--public-key, --certificate-chain and --identity check a --signature: give it too")
        from markit.read.verify import verify_path

        return verify_path(path, limits or Limits(), progress)
    from markit.trust.check import verify_signed

    anchor = _anchor(public_key, certificate_chain, identity=identity, identity_provider=identity_provider,
                     staging=staging, trust_config=trust_config)
    return verify_signed(path, signature=signature, anchor=anchor, limits=limits, progress=progress)


def _anchor(public_key: str | None, certificate_chain: Sequence[str], *, identity: str | None,
            identity_provider: str | None, staging: bool, trust_config: str | None) -> Anchor:
    from markit.trust.oms import Anchor

    if [public_key is not None, bool(certificate_chain), identity is not None].count(True) != 1:
        raise UsageError("--signature needs --public-key (the key method), --certificate-chain (the certificate"
                         " method) or --identity with --identity-provider (the sigstore method), one of them")
    if (identity is None) != (identity_provider is None):
        raise UsageError("--identity and --identity-provider go together (the sigstore method)")
    _keyless_options(identity is not None, staging, trust_config, "--identity")
    return Anchor(public_key=public_key, certificate_chain=tuple(certificate_chain), identity=identity,
                  identity_provider=identity_provider, staging=staging, trust_config=trust_config)


def _keyless_options(keyless: bool, staging: bool, trust_config: str | None, method: str) -> None:
    """--staging and --trust-config choose a Sigstore instance: only for the sigstore method, and one of them."""
    if not keyless and (staging or trust_config is not None):
        raise UsageError(f"--staging and --trust-config choose a Sigstore instance: they go with {method}")
    if staging and trust_config is not None:
        raise UsageError("--staging or --trust-config, not both: each names the Sigstore instance to use")


def sign(path: str, *, private_key: str | None = None, signature: str | None = None,
         signing_certificate: str | None = None, certificate_chain: Sequence[str] = (), sigstore: bool = False,
         identity_token: str | None = None, use_ambient_credentials: bool = False, staging: bool = False,
         trust_config: str | None = None, force: bool = False, limits: Limits | None = None,
         progress: Callable[[int, int], None] | None = None) -> Signature:
    """Sign every file of the archive at *path* in the OpenSSF Model Signing format, as ``markit sign`` does.

    The archive is read once and checked as :func:`verify` checks it; with an error,
    :class:`~markit.trust.sign.SignRefused` (its ``problems`` list them all) and nothing is written. The
    signature goes to *signature* (default ``ARCHIVE.sig``; an existing one only with *force*). With
    *signing_certificate* (and *certificate_chain*) it is the ``certificate`` method, else ``key``. With
    *sigstore* instead of *private_key*, keyless Sigstore: *identity_token* (or the CI's workload identity,
    *use_ambient_credentials*) is checked offline, then Fulcio and Rekor are used (the network).
    Needs the ``markit[sign]`` extra (the ``model-signing`` package).
    """
    from markit.trust.oms import Keyless, KeyMaterial
    from markit.trust.sign import sign_archive

    if (private_key is None) == (not sigstore):
        raise UsageError("sign needs --private-key (the key or certificate method) or --sigstore (keyless), one"
                         " of them")
    if not sigstore and (identity_token is not None or use_ambient_credentials):
        raise UsageError("--identity-token and --use-ambient-credentials go with --sigstore")
    if sigstore and (signing_certificate is not None or certificate_chain):
        raise UsageError("--sigstore gets its certificate from Fulcio: no --signing-certificate or"
                         " --certificate-chain")
    _keyless_options(sigstore, staging, trust_config, "--sigstore")
    if certificate_chain and signing_certificate is None:
        raise UsageError("--certificate-chain goes with --signing-certificate (the certificate method)")
    key: KeyMaterial | Keyless
    if private_key is None:
        key = Keyless(identity_token, use_ambient_credentials, staging, trust_config)
    else:
        key = KeyMaterial(private_key, signing_certificate, tuple(certificate_chain))
    return sign_archive(path, key, signature=signature, force=force, limits=limits, progress=progress)


def unpack(path: str, dest: str | None = None, *, force: bool = False, limits: Limits | None = None,
           progress: Callable[[int, int], None] | None = None) -> Unpacked:
    """Unpack *path* into *dest* (default: the archive's name without its suffix), only if it has no error.

    :class:`~markit.read.unpack.Refused` (with every problem) if it has one; nothing is written then.
    *progress* is called as for :func:`verify`.
    """
    from markit.read.unpack import unpack as unpack_archive

    if dest == "":
        raise UsageError("-d/--dest is empty: name the folder to create, or leave -d out for the default")
    return unpack_archive(path, dest, force=force, limits=limits or Limits(), progress=progress)


def diff(old: str, new: str, *, limits: Limits | None = None,
         progress: Callable[[int, int], None] | None = None) -> Diff:
    """What differs between the archives at *old* and *new* (each a file, a folder, or ``-`` for stdin, once),
    as ``markit diff`` shows it: entries added, removed and changed (by size and SHA-256), manifest fields.

    Each archive is read once, every file hashed. :class:`~markit.errors.ArchiveError` if one cannot be
    read, or if ``verify`` would find it corrupt (:class:`~markit.read.diff.Uncomparable`, with the problems).
    *progress* is called with (file bytes checked of both, bytes their indexes declare so far; 0 while one
    without an index, a stream or a tar, is read).
    """
    from markit.read.diff import diff_paths

    if old == "-" and new == "-":
        raise UsageError("- (stdin) can be given once")
    return diff_paths(old, new, limits or Limits(), progress)
