"""Keys and certificates for the signature tests, made with ``cryptography`` (EC P-256, PEM), never shipped.

:func:`make_keys` writes a key pair; :func:`make_chain` a small PKI: a root CA, an intermediate CA and a
signing certificate (key usage: digital signature) for a fresh key, as the ``certificate`` method takes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Chain", "Keys", "make_chain", "make_keys"]


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path


@dataclass(frozen=True)
class Chain:
    private: Path
    """The signing key."""
    certificate: Path
    """Its certificate, issued by the intermediate."""
    intermediate: Path
    root: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def make_keys(folder: Path, name: str = "key", curve: ec.EllipticCurve | None = None) -> Keys:
    """``NAME.pem`` (private) and ``NAME.pub`` (public) in *folder*."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    public = folder / f"{name}.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return Keys(_write_key(key, folder / f"{name}.pem"), public)


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
                 *, ca: bool, start: datetime.datetime) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                            crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def make_chain(folder: Path, name: str = "ca") -> Chain:
    """A root CA, an intermediate CA and a signing certificate, as PEM files in *folder*."""
    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate(f"{name} root", root_key, None, ca=True, start=now - datetime.timedelta(days=2))
    mid = _certificate(f"{name} intermediate", mid_key, (f"{name} root", root_key), ca=True,
                       start=now - datetime.timedelta(days=2))
    leaf = _certificate(f"{name} signer", leaf_key, (f"{name} intermediate", mid_key), ca=False,
                        start=now - datetime.timedelta(days=1))
    paths = [folder / f"{name}-{part}.pem" for part in ("signer", "intermediate", "root")]
    for path, cert in zip(paths, (leaf, mid, root)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Chain(_write_key(leaf_key, folder / f"{name}-signer-key.pem"), *paths)
