"""``markit sign``: the typer command that signs an archive's files in the OpenSSF Model Signing (OMS) format.

It calls only the public API (``markit.sign``). Output: the signature file, a summary line on stderr
(``--json``: one object on stdout); exit 0 signed, 1 refused (the archive has an error ``verify``
reports, or a key or identity token cannot be used), 2 usage. Key and certificate signing work offline;
keyless Sigstore signing (``--sigstore``: an OIDC identity token, Fulcio and Rekor) needs the network.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

import markit
from markit import ArchiveError
from markit.cli.common import say
from markit.cli.progress import Progress
from markit.cli.read import ArchiveArg, MaxEntries, MaxRatio, MaxSize, QuietErrors, _limits

__all__ = ["sign_cmd"]

PrivateKey = Annotated[str | None, typer.Option("--private-key", help="PEM elliptic-curve private key (P-256, P-384"
                                                " or P-521, unencrypted) to sign with. Give its public key to"
                                                " verify. Or --sigstore.", show_default=False)]
Sigstore = Annotated[bool, typer.Option("--sigstore", help="Sign keylessly with Sigstore instead of a key: an OIDC"
                                        " identity token gets a short-lived Fulcio certificate and the signature"
                                        " is logged in Rekor (needs the network). Verify with --identity and"
                                        " --identity-provider.")]
IdentityToken = Annotated[str | None, typer.Option("--identity-token", help="OIDC identity token (JWT) for"
                                                   " --sigstore. Default: the SIGSTORE_IDENTITY_TOKEN environment"
                                                   " variable (safer: a command line shows in ps).",
                                                   show_default=False, metavar="TOKEN")]
Ambient = Annotated[bool, typer.Option("--use-ambient-credentials", help="With --sigstore and no token: take the"
                                       " CI's workload identity token (GitHub Actions, GitLab, Buildkite,"
                                       " CircleCI, GCP). There is no browser sign-in.")]
Staging = Annotated[bool, typer.Option("--staging", help="Use Sigstore's staging instance (test signatures) instead"
                                       " of production. Verify with --staging too.")]
TrustConfig = Annotated[str | None, typer.Option("--trust-config", help="Sigstore client trust configuration"
                                                 " (JSON: trusted root and signing config) of a private Sigstore"
                                                 " instance, instead of the public one.", show_default=False)]
SignatureOut = Annotated[str | None, typer.Option("--signature", help="Where to write the signature (a Sigstore"
                                                  " bundle, JSON). Default: ARCHIVE.sig beside the archive.",
                                                  show_default=False)]
SigningCertificate = Annotated[str | None, typer.Option("--signing-certificate", help="PEM certificate of"
                                                        " --private-key: the certificate method (verify then"
                                                        " with --certificate-chain).", show_default=False)]
Chain = Annotated[list[str] | None, typer.Option("--certificate-chain", help="PEM intermediate and root"
                                                 " certificates, put in the signature after the signing"
                                                 " certificate (repeatable).", show_default=False)]


def sign_cmd(
    archive: ArchiveArg,
    private_key: PrivateKey = None,
    signature: SignatureOut = None,
    signing_certificate: SigningCertificate = None,
    certificate_chain: Chain = None,
    sigstore: Sigstore = False,
    identity_token: IdentityToken = None,
    use_ambient_credentials: Ambient = False,
    staging: Staging = False,
    trust_config: TrustConfig = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace the signature file if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: archive, signature, method,"
                                          " model_name, files, problems.")] = False,
    quiet: QuietErrors = False,
    max_size: MaxSize = "1T",
    max_ratio: MaxRatio = 100.0,
    max_entries: MaxEntries = 100_000,
) -> None:
    """Sign every file of an archive (MAR-INF/ included, names as unpack writes them) in the OpenSSF Model Signing
    format, after reading it once and checking it as verify does: an archive with an error is refused. Check it
    with `markit verify ARCHIVE --signature S --public-key P`, or after `markit unpack` with
    `model_signing verify key FOLDER --signature S --public_key P`. Keyless: `--sigstore` with an OIDC identity
    token (needs the network), checked with `markit verify ARCHIVE --signature S --identity EMAIL_OR_URI
    --identity-provider ISSUER_URL`."""
    limits = _limits(max_size, max_ratio, max_entries)
    if sigstore and identity_token is None:
        identity_token = os.environ.get("SIGSTORE_IDENTITY_TOKEN") or None
    bar = Progress.for_terminal(0, f"sign {archive}", quiet=quiet or as_json)
    try:
        try:
            done = markit.sign(archive, private_key=private_key, signature=signature,
                               signing_certificate=signing_certificate, certificate_chain=certificate_chain or (),
                               sigstore=sigstore, identity_token=identity_token,
                               use_ambient_credentials=use_ambient_credentials, staging=staging,
                               trust_config=trust_config, force=force, limits=limits, progress=bar.update)
        finally:
            bar.close()
    except markit.SignRefused as refused:
        for p in refused.problems:
            say(f"{archive}: {p.severity} {p.code}: {p.message}")
        raise
    except markit.MarkitError:
        raise
    except OSError as error:
        raise ArchiveError(f"{error.filename or archive}: {error.strerror or error}") from None
    if as_json:
        print(json.dumps(done.to_json(), indent=2))
    elif not quiet:
        for p in done.problems:
            say(f"{archive}: {p.severity} {p.code}: {p.message}")
        say(f"signed {archive}: {done.files} files, {done.method} method, subject {done.model_name!r};"
            f" signature in {done.signature}")
