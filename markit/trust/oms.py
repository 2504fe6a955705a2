"""OMS signatures through the ``model-signing`` library: a statement signed from digests, a signature read back.

The library's public API (``model_signing.signing.Config().sign(folder, out)``) hashes a folder itself,
and ``verifying.Config().verify(folder, sig)`` hashes it again and raises one ``ValueError`` whose text
lists the differences. markit already has every entry's SHA-256 from its one pass over the archive, and
reports each difference as its own problem. So this module builds the library's own
``model_signing.manifest.Manifest`` from (name, digest) pairs, signs it with the library's ``Payload``
and signers, and reads a signature back with the library's verifiers, which return the signed manifest.
The in-toto statement, the DSSE envelope and its PAE, ECDSA, the Sigstore bundle, certificate chains
and keyless Sigstore (Fulcio, Rekor, the identity policy, through the library's ``sign_sigstore``) stay the library's: this module only moves names and digests in and out. It is the one
module that imports ``model_signing``, and it reaches its private ``_signing`` and ``_hashing``
modules (``docs/design.md``, "Signatures"), so ``pyproject.toml`` pins the extra below 2.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from markit.errors import ArchiveError, InputError

__all__ = [
    "HASH",
    "METHOD",
    "TOKEN_ENV",
    "Anchor",
    "KeyMaterial",
    "Keyless",
    "SignatureError",
    "Signed",
    "read_signature",
    "sign_digests",
    "signer_ready",
]

HASH = "sha256"  # the only digest markit computes; a signature over blake2/blake3 digests cannot be compared
METHOD = "files"  # one resource per file; "shards" (byte ranges of files) cannot be compared with whole entries
SIGNATURE_MAX = 64 << 20  # bytes: a statement lists ~120 bytes per entry, so 100,000 entries (--max-entries) ~14 MiB
_LIBRARY = ("manifest", "_hashing.hashing", "_signing.signing", "_signing.sign_sigstore_pb", "_signing.sign_ec_key")
_CERTIFICATES = "_signing.sign_certificate"  # pyOpenSSL and certifi: imported only for the certificate method
_SIGSTORE = "_signing.sign_sigstore"  # sigstore, requests, tuf (~0.4 s): imported only for keyless signatures
TOKEN_ENV = "SIGSTORE_IDENTITY_TOKEN"  # where sigstore-python's own CLI reads an OIDC identity token from
_AUDIENCE = "sigstore"  # the OIDC client id (token audience) Sigstore's public Fulcio accepts, model_signing's default


class SignatureError(ArchiveError):
    """A signature that is not an OMS bundle, was not made by the key or chain given, or was tampered with."""


@dataclass(frozen=True)
class KeyMaterial:
    """What signs: an elliptic-curve private key, and for the certificate method its certificate and chain."""

    private_key: str
    """PEM file of the private key (P-256, P-384 or P-521), unencrypted."""
    signing_certificate: str | None = None
    """PEM file of the key's certificate (the ``certificate`` method), or None (the ``key`` method)."""
    certificate_chain: tuple[str, ...] = ()
    """PEM files of the intermediate and root certificates, put into the bundle after the signing one."""


@dataclass(frozen=True)
class Keyless:
    """What signs keylessly (the ``sigstore`` method): an OIDC identity token that Fulcio turns into a
    short-lived certificate; the signature is logged in Rekor. Both need the network."""

    identity_token: str | None = None
    """The OIDC identity token (a JWT), or None to take one from the CI's workload identity (*ambient*)."""
    ambient: bool = False
    """Look for a workload identity token (GitHub Actions, GitLab, Buildkite, CircleCI, GCP) when none is given."""
    staging: bool = False
    """Sign with Sigstore's staging instance (test signatures) instead of the public production one."""
    trust_config: str | None = None
    """A Sigstore client trust configuration (JSON: trusted root and signing config) for a private instance."""


@dataclass(frozen=True)
class Anchor:
    """What a signature must verify against: a public key, the certificates that root a chain, or for a
    keyless (Sigstore) signature the signer's identity and its OIDC issuer."""

    public_key: str | None = None
    """PEM file of the public key (the ``key`` method)."""
    certificate_chain: tuple[str, ...] = ()
    """PEM files of trusted certificates (the ``certificate`` method)."""
    identity: str | None = None
    """The signer's identity in its Fulcio certificate, an e-mail or a URI (the ``sigstore`` method)."""
    identity_provider: str | None = None
    """The OIDC issuer URL that vouched for *identity* (e.g. https://github.com/login/oauth)."""
    staging: bool = False
    """Trust Sigstore's staging instance instead of the production one (fetched through TUF: network)."""
    trust_config: str | None = None
    """A Sigstore client trust configuration (JSON) to trust instead: read from disk, no TUF fetch."""

    @property
    def method(self) -> str:
        """``key``, ``certificate`` or ``sigstore``."""
        if self.public_key is not None:
            return "key"
        return "sigstore" if self.identity is not None else "certificate"


@dataclass(frozen=True)
class Signed:
    """What a verified signature says: every signed file and its SHA-256."""

    model_name: str
    """The statement's subject name (informative only: a folder's name, or the archive's without suffix)."""
    digests: Mapping[str, str]
    """SHA-256 (hex) of each signed file, by its name relative to the model folder."""
    ignore_paths: tuple[str, ...]
    """Paths the signer left out on purpose (their files are not signed, and not reported as unsigned)."""


def _package_lazily() -> None:
    """Put ``model_signing`` in ``sys.modules`` without running its ``__init__`` yet.

    The package's ``__init__`` imports every signing method, keyless Sigstore's included (sigstore, requests,
    tuf): ~0.4 s of the ~0.5 s its import takes here, for code a key or certificate never runs. The package
    module is made from its own spec, so its submodules import as usual; the first attribute asked of it
    that is not a loaded submodule runs the real ``__init__`` (PEP 562 ``__getattr__``), so code that
    imports ``model_signing`` after markit sees the whole package.
    """
    if "model_signing" in sys.modules:
        return
    spec = importlib.util.find_spec("model_signing")
    if spec is None or spec.loader is None:
        raise ImportError("No module named 'model_signing'")
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def finish(name: str) -> Any:
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = finish  # type: ignore[method-assign]
    sys.modules["model_signing"] = package


def _library(*, certificates: bool = False, sigstore: bool = False) -> types.SimpleNamespace:
    """The library's modules, typed ``Any`` (it is only partly annotated); a missing extra is one clear line."""
    try:
        _package_lazily()
        names = (*_LIBRARY, *[_CERTIFICATES] * certificates, *[_SIGSTORE] * sigstore)
        modules = {name.rpartition(".")[2]: importlib.import_module(f"model_signing.{name}") for name in names}
    except ImportError as error:
        raise InputError(f"signatures need the model-signing package ({error}): pip install 'markit[sign]'") from None
    return types.SimpleNamespace(**modules)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The library prints a notice on stdout for bundles without a key hint; stdout is markit's (``--json``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _signer(lib: types.SimpleNamespace, key: KeyMaterial) -> Any:
    try:
        if key.signing_certificate is None:
            return lib.sign_ec_key.Signer(Path(key.private_key))
        return lib.sign_certificate.Signer(Path(key.private_key), Path(key.signing_certificate),
                                           [Path(p) for p in key.certificate_chain])
    except OSError as error:
        raise InputError(f"{error.filename or key.private_key}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 - the library raises ValueError, TypeError, AttributeError (RSA key)
        raise InputError(f"--private-key {key.private_key}: not a usable key ({_reason(error)}): markit signs with"
                         " an unencrypted PEM elliptic-curve key (P-256, P-384 or P-521), and its certificate"
                         " must hold the same key") from None


def _identity_token(key: Keyless) -> str:
    """The OIDC token to sign with, checked offline (a JWT for Sigstore, within its validity period).

    Given, else the CI's workload identity when *ambient* (the ``id`` package asks the CI only where its
    variables say it runs there). markit runs no interactive browser sign-in, so without a token this is
    one line, before anything would reach the network.
    """
    token = key.identity_token
    if not token and key.ambient:
        from id import IdentityError as AmbientError  # sigstore's dependency: only needed here
        from id import detect_credential

        try:
            token = detect_credential(_AUDIENCE)
        except AmbientError as error:
            raise InputError(f"--use-ambient-credentials: {error}") from None
    if not token:
        raise InputError(f"--sigstore needs an OIDC identity token: --identity-token TOKEN or {TOKEN_ENV}, or"
                         " --use-ambient-credentials in a CI with a workload identity (GitHub Actions, GitLab,"
                         " Buildkite, CircleCI, GCP); markit opens no browser sign-in (`model_signing sign"
                         " sigstore` on the unpacked folder does)")
    from sigstore.oidc import IdentityError, IdentityToken  # loaded with the sigstore method only

    try:
        IdentityToken(token, _AUDIENCE)
    except IdentityError as error:
        raise InputError(f"--sigstore: not a usable Sigstore identity token ({_reason(error)})") from None
    return token


def _keyless_signer(lib: types.SimpleNamespace, key: Keyless) -> Any:
    token = _identity_token(key)
    config = Path(key.trust_config) if key.trust_config else None
    try:  # the first network use: TUF for the trust root, then the OIDC issuer's configuration
        return lib.sign_sigstore.Signer(identity_token=token, use_ambient_credentials=False,
                                        use_staging=key.staging, trust_config=config)
    except OSError as error:
        raise InputError(f"{error.filename or 'sigstore'}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 - TUF, requests and the trust config's parser each raise their own
        raise InputError(f"--sigstore: cannot set up signing with Sigstore ({_reason(error)})") from None


def signer_ready(key: KeyMaterial | Keyless) -> Any:
    """The library's signer for *key*, loaded now (so a bad key or token is refused before the archive is read).

    A :class:`Keyless` signer needs an identity token (checked offline first) and then the network.
    """
    if isinstance(key, Keyless):
        return _keyless_signer(_library(sigstore=True), key)
    return _signer(_library(certificates=key.signing_certificate is not None), key)


def sign_digests(model_name: str, digests: Mapping[str, str], signer: Any) -> str:
    """The OMS signature (a Sigstore bundle, JSON) over *digests* (SHA-256 hex by file name), as ``model_signing
    sign`` writes it for a folder named *model_name* holding those files."""
    lib = _library()
    serialization = lib.manifest.SerializationType.from_args({"method": METHOD, "hash_type": HASH,
                                                              "allow_symlinks": False})
    items = [lib.manifest.FileManifestItem(path=PurePosixPath(name), digest=lib.hashing.Digest(HASH, bytes.fromhex(hex_)))
             for name, hex_ in digests.items()]
    payload = lib.signing.Payload(lib.manifest.Manifest(model_name, items, serialization))
    return str(signer.sign(payload).bundle.to_json())


def _verifier(lib: types.SimpleNamespace, anchor: Anchor) -> Any:
    if anchor.identity is not None:
        return _keyless_verifier(lib, anchor)
    shown = f"--public-key {anchor.public_key}" if anchor.public_key else "--certificate-chain"
    try:
        if anchor.public_key is not None:
            return lib.sign_ec_key.Verifier(Path(anchor.public_key))
        return lib.sign_certificate.Verifier([Path(p) for p in anchor.certificate_chain])
    except OSError as error:
        raise InputError(f"{error.filename or shown}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 - ValueError for a bad PEM, AttributeError for an RSA key
        raise InputError(f"{shown}: not usable ({_reason(error)}): expected a PEM elliptic-curve public key"
                         " (P-256, P-384 or P-521), or PEM certificates") from None


def _keyless_verifier(lib: types.SimpleNamespace, anchor: Anchor) -> Any:
    """Sigstore's verifier for *anchor*'s identity: a --trust-config is read from disk; otherwise the
    production or staging trust root comes through TUF (the network)."""
    config = Path(anchor.trust_config) if anchor.trust_config else None
    try:
        return lib.sign_sigstore.Verifier(identity=anchor.identity, oidc_issuer=anchor.identity_provider,
                                          use_staging=anchor.staging, trust_config=config)
    except OSError as error:
        raise InputError(f"{error.filename or '--trust-config'}: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 - pydantic/protobuf for a bad trust config, TUF errors
        shown = f"--trust-config {anchor.trust_config}" if config else "the Sigstore trust root"
        raise InputError(f"{shown}: not usable ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def read_signature(path: str, anchor: Anchor) -> Signed:
    """The files and digests the OMS signature at *path* signs, once it verifies against *anchor*.

    :class:`SignatureError` if it is not a bundle, is not signed by *anchor*'s key or chain, was altered,
    or signs something markit cannot compare (shards, another hash); :class:`InputError` if a file
    cannot be read or a key is not a key.
    """
    lib = _library(certificates=anchor.method == "certificate", sigstore=anchor.method == "sigstore")
    verifier = _verifier(lib, anchor)
    try:
        if os.path.getsize(path) > SIGNATURE_MAX:
            raise SignatureError(f"{path}: over {SIGNATURE_MAX >> 20} MiB, no OMS signature is that large")
        kind = lib.sign_sigstore if anchor.method == "sigstore" else lib.sign_sigstore_pb  # sigstore's Bundle or the pb one
        signature = kind.Signature.read(Path(path))
    except OSError as error:
        raise InputError(f"--signature {path}: {error.strerror or error}") from None
    except SignatureError:
        raise
    except Exception as error:  # noqa: BLE001 - JSON, a missing key, a pydantic validation error
        raise SignatureError(f"not an OMS signature (a Sigstore bundle in JSON): {_reason(error)}") from None
    try:
        with _quiet():
            manifest = verifier.verify(signature)
    except Exception as error:  # noqa: BLE001 - InvalidSignature, ValueError, an X.509 store error, KeyError
        raise SignatureError(_invalid(error, anchor)) from None
    return _signed(manifest)


def _invalid(error: BaseException, anchor: Anchor) -> str:
    if type(error).__name__ == "VerificationError" and anchor.method == "sigstore":
        return (f"not a Sigstore signature by {anchor.identity} (issuer {anchor.identity_provider}) that the"
                f" trust root vouches for ({_reason(error)})")
    if type(error).__name__ == "InvalidSignature":
        made = "the public key given" if anchor.public_key else "the certificate in the bundle"
        return f"the envelope's signature does not verify with {made}: another key signed it, or the statement changed"
    if type(error).__name__ == "X509StoreContextError":
        return f"the signing certificate does not chain to the --certificate-chain given ({_reason(error)})"
    return f"the signature does not verify ({_reason(error)})"


def _signed(manifest: Any) -> Signed:
    serialization: dict[str, Any] = dict(manifest.serialization_type)
    method, hash_type = serialization.get("method"), serialization.get("hash_type")
    if method != METHOD or hash_type != HASH:
        raise SignatureError(f"the signature lists {method!r} hashed with {hash_type!r}; markit compares whole files"
                             f" by SHA-256: re-sign with model_signing's defaults (files, sha256) or with markit sign")
    digests = {}
    for resource in manifest.resource_descriptors():
        if resource.digest.algorithm != HASH:
            raise SignatureError(f"resource {resource.identifier!r} is hashed with {resource.digest.algorithm!r}")
        digests[str(resource.identifier)] = str(resource.digest.digest_hex)
    ignored = tuple(str(p) for p in serialization.get("ignore_paths", ()))
    return Signed(str(manifest.model_name), digests, tuple(sorted(ignored)))
