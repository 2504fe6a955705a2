"""A stand-in Sigstore on 127.0.0.1 for the keyless tests: a Fulcio CA, a CT log, a Rekor log and an OIDC issuer.

Nothing here talks to the real Sigstore. The keys are made per test; the trust configuration written by
:meth:`LocalSigstore.trust_config` points the ``sigstore`` library at this server, so ``model_signing``'s own
Sigstore signer and verifier (which markit drives) run their real code paths: a CSR to "Fulcio", an
SCT (RFC 6962 precertificate form) checked against the CT key, a ``dsse/0.0.1`` entry "logged" in a
one-entry Merkle tree with a signed checkpoint and a signed entry timestamp. Minimal by design: one
log entry per request (tree size 1), no TSA, no consistency proofs, identity from the token unchecked
(the real Fulcio checks the token's signature; ``sigstore`` leaves that to Fulcio too).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

__all__ = ["LocalSigstore", "identity_token", "local_sigstore"]

ISSUER_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # Fulcio's OIDC issuer extension (v2, DER UTF8String)
ISSUER_V1_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # the same, raw bytes: what sigstore's Identity policy reads
SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")  # RFC 6962 embedded SCT list
LOG_ORIGIN = "rekor.local"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePrivateKey) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def identity_token(email: str, issuer: str, *, lifetime: int = 600) -> str:
    """An unsigned OIDC identity token (JWT) for *email* from *issuer*, audience ``sigstore``.

    ``sigstore`` reads a token's claims without checking its signature (Fulcio does that); this stand-in's
    Fulcio takes the claims as they are.
    """
    now = int(time.time())
    claims = {"iss": issuer, "sub": email, "email": email, "email_verified": True, "aud": "sigstore",
              "iat": now, "nbf": now, "exp": now + lifetime}
    parts = [{"alg": "none", "typ": "JWT"}, claims]
    return ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in parts) + "."


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def _der_octets(data: bytes) -> bytes:
    n = len(data)
    length = bytes([n]) if n < 128 else bytes([0x82]) + struct.pack(">H", n)
    return b"\x04" + length + data


class LocalSigstore:
    """The keys, the issued certificates and the log of one stand-in Sigstore instance."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.oidc_issuer = f"{url}/oidc"
        self.ca_key, self.ct_key, self.log_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        now = datetime.datetime.now(datetime.timezone.utc)
        self.start = now - datetime.timedelta(days=1)
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "local"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "local fulcio")])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(self.start).not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                  key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                  decipher_only=False), critical=True)
                     .add_extension(ski, critical=False)
                     .sign(self.ca_key, hashes.SHA256()))
        self.requests: list[str] = []
        self.entries = 0

    # -- Fulcio: a short-lived certificate with an embedded SCT ------------------------------------------------

    def certificate(self, csr_pem: bytes, token: str) -> list[str]:
        """The signing certificate for the CSR's key, naming the token's e-mail, and the CA: PEM strings."""
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        csr = x509.load_pem_x509_csr(csr_pem)
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.root.subject)
                   .public_key(csr.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(seconds=30))
                   .not_valid_after(now + datetime.timedelta(minutes=10))
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                key_cert_sign=False, crl_sign=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                                  critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(claims["email"])]), critical=True)
                   .add_extension(x509.UnrecognizedExtension(ISSUER_V1_OID, claims["iss"].encode()), critical=False)
                   .add_extension(x509.UnrecognizedExtension(ISSUER_OID, _der_utf8(claims["iss"])), critical=False))
        precert = builder.sign(self.ca_key, hashes.SHA256())
        sct = self._sct(precert.tbs_certificate_bytes, int(now.timestamp() * 1000))
        sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
        cert = builder.add_extension(x509.UnrecognizedExtension(SCT_OID, _der_octets(sct_list)), critical=False)
        signed = cert.sign(self.ca_key, hashes.SHA256())
        assert signed.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in (signed, self.root)]

    def _sct(self, tbs: bytes, millis: int) -> bytes:
        """An RFC 6962 v1 SCT over the precertificate *tbs*, signed by the CT log key."""
        entry = _key_id(self.ca_key) + struct.pack(">I", len(tbs))[1:] + tbs
        signed = struct.pack(">BBQH", 0, 0, millis, 1) + entry + struct.pack(">H", 0)
        signature = _sign(self.ct_key, signed)
        return (struct.pack(">B", 0) + _key_id(self.ct_key) + struct.pack(">QH", millis, 0)
                + struct.pack(">BBH", 4, 3, len(signature)) + signature)

    # -- Rekor v1: a dsse/0.0.1 entry with an inclusion proof, a checkpoint and a signed entry timestamp ------

    def log(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Rekor's answer to ``POST /api/v1/log/entries`` for a proposed ``dsse`` entry."""
        content = proposed["spec"]["proposedContent"]
        envelope = json.loads(content["envelope"])
        payload = base64.b64decode(envelope["payload"])
        body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(content["envelope"].encode()).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [{"signature": s["sig"], "verifier": content["verifiers"][0]} for s in envelope["signatures"]],
        }}, separators=(",", ":")).encode()
        root = hashlib.sha256(b"\x00" + body).digest()  # a tree of one leaf: its root is the leaf hash
        note = f"{LOG_ORIGIN}\n1\n{_b64(root)}\n"
        checkpoint = f"{note}\n\u2014 {LOG_ORIGIN} {_b64(_key_id(self.log_key)[:4] + _sign(self.log_key, note.encode()))}\n"
        integrated, log_id = int(time.time()), _key_id(self.log_key).hex()
        promise = rfc8785.dumps({"body": _b64(body), "integratedTime": integrated, "logID": log_id, "logIndex": 0})
        self.entries += 1
        return {"local-entry": {
            "body": _b64(body), "integratedTime": integrated, "logID": log_id, "logIndex": 0,
            "verification": {"signedEntryTimestamp": _b64(_sign(self.log_key, promise)),
                             "inclusionProof": {"logIndex": 0, "rootHash": root.hex(), "treeSize": 1, "hashes": [],
                                                "checkpoint": checkpoint}}}}

    # -- the client trust configuration ----------------------------------------------------------------------------

    def trust_config(self, path: Path) -> Path:
        """The ``ClientTrustConfig`` JSON (trusted root and signing config) for this instance, at *path*."""
        start = self.start.strftime("%Y-%m-%dT%H:%M:%SZ")

        def key(k: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            return {"baseUrl": url, "hashAlgorithm": "SHA2_256", "logId": {"keyId": _b64(_key_id(k))},
                    "publicKey": {"rawBytes": _b64(_spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                                  "validFor": {"start": start}}}

        def service(url: str) -> list[dict[str, Any]]:
            return [{"url": url, "majorApiVersion": 1, "validFor": {"start": start}, "operator": "local"}]

        root = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [key(self.log_key, self.url)], "ctlogs": [key(self.ct_key, self.url)],
                "certificateAuthorities": [{"subject": {"organization": "local", "commonName": "local fulcio"},
                                            "uri": self.url, "validFor": {"start": start}, "certChain": {
                                                "certificates": [{"rawBytes": _b64(self.root.public_bytes(
                                                    serialization.Encoding.DER))}]}}],
                "timestampAuthorities": []}
        signing = {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json", "caUrls": service(self.url),
                   "oidcUrls": service(self.oidc_issuer), "rekorTlogUrls": service(self.url), "tsaUrls": [],
                   "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}}
        path.write_text(json.dumps({"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                                    "trustedRoot": root, "signingConfig": signing}, indent=1))
        return path


def _handler(sigstore: LocalSigstore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            sigstore.requests.append(f"GET {self.path}")
            if self.path == "/oidc/.well-known/openid-configuration":
                self._answer(200, {"issuer": sigstore.oidc_issuer, "authorization_endpoint": f"{sigstore.url}/auth",
                                   "token_endpoint": f"{sigstore.url}/token"})
            else:
                self._answer(404, {"message": "not here"})

        def do_POST(self) -> None:
            sigstore.requests.append(f"POST {self.path}")
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/v2/signingCert":
                token = self.headers["Authorization"].removeprefix("Bearer ")
                chain = sigstore.certificate(base64.b64decode(request["certificateSigningRequest"]), token)
                self._answer(200, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}})
            elif self.path == "/api/v1/log/entries":
                self._answer(201, sigstore.log(request))
            else:
                self._answer(404, {"message": "not here"})

    return Handler


@contextmanager
def local_sigstore() -> Iterator[LocalSigstore]:
    """A :class:`LocalSigstore` served on 127.0.0.1 (a free port) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    sigstore = LocalSigstore(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(sigstore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sigstore
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
