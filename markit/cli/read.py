"""``markit inspect``, ``verify`` and ``unpack``: the typer commands of the read side.

They call only the public API (``markit.inspect``, ``markit.verify``, ``markit.unpack``),
whose modules load when a command runs, so ``markit inspect`` starts fast. Output: results on stdout,
problems on stderr (one line each, never a traceback); exit 0 ok, 1 bad or refused,
2 usage (unknown flag, missing argument). A path that does not exist, or is not a file, a folder or
``-``, is a bad archive (exit 1), and ``verify`` still reports on every other archive named.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec

import typer

import markit
from markit import ArchiveError, UsageError
from markit.cli.common import say
from markit.cli.progress import Progress

__all__ = ["inspect_cmd", "parse_size", "unpack_cmd", "verify_cmd"]

P = ParamSpec("P")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}

ArchiveArg = Annotated[str, typer.Argument(help="A .mar/zip, .tar, .tar.gz, a no-archive folder, - for stdin, or"
                                           " an s3://, gs://, http(s):// URL (s3:// needs the extra markit\\[s3], gs:// markit\\[gcs])."
                                           " The format is found from the bytes, not the name.", show_default=False)]
MaxSize = Annotated[str, typer.Option("--max-size", help="Refuse (bomb) archives whose entries declare more bytes"
                                      " than this in all: a number with an optional K/M/G/T suffix (powers of 1024).")]
MaxRatio = Annotated[float, typer.Option("--max-ratio", help="Refuse (bomb) an entry over 1 MiB, or a tar.gz stream,"
                                         " that expands more than this many times. Weights expand ~1.1 times, zeros"
                                         " up to 1032: raise it for highly compressible files.")]
QuietErrors = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only: no warnings, no summary line.")]
MaxEntries = Annotated[int, typer.Option("--max-entries", help="Refuse (bomb) archives with more entries than this.")]
SignatureOpt = Annotated[str | None, typer.Option("--signature", help="An OMS signature (markit sign, model_signing"
                                                  " sign) to check the archive's files against, in the same pass:"
                                                  " every file signed, none changed, none missing. One archive.",
                                                  show_default=False)]
PublicKeyOpt = Annotated[str | None, typer.Option("--public-key", help="PEM public key the --signature must be made"
                                                  " with (the key method).", show_default=False)]
ChainOpt = Annotated[list[str] | None, typer.Option("--certificate-chain", help="PEM certificates the --signature's"
                                                    " signing certificate must chain to (the certificate method;"
                                                    " repeatable).", show_default=False)]
IdentityOpt = Annotated[str | None, typer.Option("--identity", help="The signer a keyless Sigstore --signature must"
                                                 " name: the e-mail or URI in its Fulcio certificate (the sigstore"
                                                 " method; with --identity-provider).", show_default=False)]
ProviderOpt = Annotated[str | None, typer.Option("--identity-provider", help="The OIDC issuer URL that must have"
                                                 " vouched for --identity (e.g. https://github.com/login/oauth,"
                                                 " https://token.actions.githubusercontent.com).", show_default=False)]
StagingOpt = Annotated[bool, typer.Option("--staging", help="With --identity: trust Sigstore's staging instance"
                                          " instead of production.")]
TrustConfigOpt = Annotated[str | None, typer.Option("--trust-config", help="With --identity: the Sigstore client"
                                                    " trust configuration (JSON) to trust, read from this file"
                                                    " instead of fetched from Sigstore through TUF.",
                                                    show_default=False)]


def parse_size(text: str) -> int:
    """``1T``, ``500G``, ``1.5M``, ``1024`` as bytes (K, M, G, T, P are powers of 1024)."""
    match = _SIZE.match(text.strip())
    if match is None:
        raise UsageError(f"--max-size {text}: expected a number of bytes with an optional K/M/G/T/P suffix")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _limits(max_size: str, max_ratio: float, max_entries: int) -> markit.Limits:
    size = parse_size(max_size)
    if size <= 0 or max_ratio <= 0 or max_entries <= 0:
        raise UsageError("--max-size, --max-ratio and --max-entries must be above 0")
    return markit.Limits(max_size=size, max_ratio=max_ratio, max_entries=max_entries)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _contained(command: Callable[P, None]) -> Callable[P, None]:
    """Turn an OS error into an ArchiveError (one line, exit 1), and anything unforeseen into one line too."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise ArchiveError(f"{where}{error.strerror or error}") from None
        except (typer.Exit, ArchiveError, UsageError, markit.MarkitError, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - the contract is one line, never a traceback
            raise ArchiveError(f"internal error, please report it: {type(error).__name__}: {error}") from None

    return run


@_contained
def inspect_cmd(
    archive: ArchiveArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: format, root, manifest, entries.")]
    = False,
) -> None:
    """Show what an archive holds: model, version, handler, runtime, format, and every entry with its size,
    method and recorded digest; each weight file's format and pickle imports, a safetensors file's tensors.
    A zip file is listed from its central directory: of entry data, only weight files' first bytes are read."""
    from markit.cli.show import write_json, write_table

    bar = Progress.for_terminal(0, f"inspect {archive}", quiet=as_json or "://" not in archive)  # remote only
    try:
        info = markit.inspect(archive, notice=say, progress=bar.update)
    finally:
        bar.close()
    if as_json:
        write_json(info, sys.stdout)
        return
    write_table(info, sys.stdout)


@_contained
def verify_cmd(
    archives: Annotated[list[str], typer.Argument(help="Archives to check (- for stdin; URLs as for inspect, each"
                                                  " read once, in one pass).", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per archive (a list for several).")]
    = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    max_size: MaxSize = "1T",
    max_ratio: MaxRatio = 100.0,
    max_entries: MaxEntries = 100_000,
    signature: SignatureOpt = None,
    public_key: PublicKeyOpt = None,
    certificate_chain: ChainOpt = None,
    identity: IdentityOpt = None,
    identity_provider: ProviderOpt = None,
    staging: StagingOpt = False,
    trust_config: TrustConfigOpt = None,
) -> None:
    """Check archives and report every problem in one run: structure, CRC-32, recorded SHA-256, unsafe names,
    links, duplicates, bombs, the manifest and the files it names, what weight files' pickles import,
    safetensors headers; with --signature, its OMS signature too.
    Exit 1 if any archive is not ok."""
    limits = _limits(max_size, max_ratio, max_entries)
    if archives.count("-") > 1:
        raise UsageError("- (stdin) can be given once")
    if signature is not None and len(archives) > 1:
        raise UsageError("--signature checks one archive: name one")
    signed = {"signature": signature, "public_key": public_key, "certificate_chain": certificate_chain or (),
              "identity": identity, "identity_provider": identity_provider, "staging": staging,
              "trust_config": trust_config}
    reports = [_verify_one(path, limits, quiet=as_json, signed=signed) for path in archives]
    for report in reports:
        for line in report.lines():
            say(line)
    if as_json:
        shown = [r.to_json(strict=strict) for r in reports]
        print(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
    else:
        for r in reports:
            errors = sum(p.severity == "error" for p in r.problems)
            print(f"{r.archive}: {'ok' if r.ok(strict=strict) else 'FAILED'} ({_count(errors, 'error')},"
                  f" {_count(len(r.problems) - errors, 'warning')})")
    if not all(r.ok(strict=strict) for r in reports):
        raise typer.Exit(1)


def _verify_one(path: str, limits: markit.Limits, *, quiet: bool, signed: dict[str, Any]) -> markit.Report:
    bar = Progress.for_terminal(0, f"verify {path}", quiet=quiet)
    try:
        return markit.verify(path, limits=limits, progress=bar.update, **signed)
    finally:
        bar.close()


@_contained
def unpack_cmd(
    archive: ArchiveArg,
    dest: Annotated[str | None, typer.Option("--dest", "-d", help="Folder to create (default: ./NAME, the archive's"
                                             " name without .mar/.tar.gz/...; from stdin, the model name).",
                                             show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace DEST if it exists and is not empty.")] = False,
    quiet: QuietErrors = False,
    max_size: MaxSize = "1T",
    max_ratio: MaxRatio = 100.0,
    max_entries: MaxEntries = 100_000,
) -> None:
    """Unpack an archive into DEST, only if verify finds no error: otherwise nothing is written. Files go to a
    temporary folder beside DEST and are moved into place once every check passed; no link or special file is
    ever created, nothing is written outside DEST."""
    limits = _limits(max_size, max_ratio, max_entries)
    bar = Progress.for_terminal(0, f"unpack {archive}", quiet=quiet)
    try:
        try:
            done = markit.unpack(archive, dest, force=force, limits=limits, progress=bar.update)
        finally:
            bar.close()
    except markit.Refused as refused:
        for p in refused.problems:
            say(f"{archive}: {p.severity} {p.code}: {p.message}")
        raise
    if not quiet:
        for p in done.problems:
            say(f"{archive}: {p.severity} {p.code}: {p.message}")
        say(f"unpacked {archive} to {done.dest}: {done.files} files, {done.size:,} bytes")
