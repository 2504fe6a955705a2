"""``markit sign --sigstore`` and ``markit verify --identity``: keyless Sigstore signatures, tested without the network.

Nothing here reaches the real Sigstore (this machine has no network beyond 127.0.0.1). What is tested:

- the options: ``--sigstore`` against ``--private-key``/``--signing-certificate``, ``--identity`` against
  ``--public-key``/``--certificate-chain``, ``--staging``/``--trust-config`` only with the sigstore method;
- no identity token, or one that is not a usable JWT, is one line and exit 1, before any connection
  (a listening "proxy" on 127.0.0.1 and a socket guard prove nothing was attempted);
- the whole flow through ``model_signing``'s own Sigstore signer and verifier against a stand-in Sigstore
  on 127.0.0.1 (``tests/support/sigstore_local.py``: a Fulcio CA, a CT log, a Rekor log, an OIDC issuer),
  named by a ``--trust-config`` file: a certificate with an embedded SCT, a logged ``dsse`` entry, an
  inclusion proof, a signed checkpoint; verification offline (the stand-in stopped) with the identity policy.

Not tested here: the public Sigstore (production or ``--staging``: TUF, the real Fulcio and Rekor), ambient
credentials from a real CI, and the browser sign-in (markit has none).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import markit
from markit.errors import InputError, UsageError
from tests.support.oms import make_keys
from tests.support.sigstore_local import LocalSigstore, identity_token, local_sigstore

pytest.importorskip("model_signing")
pytest.importorskip("sigstore")

EMAIL = "release@example.com"
AMBIENT = ("SIGSTORE_IDENTITY_TOKEN", "GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "GITLAB_CI", "BUILDKITE",
           "CIRCLECI", "GOOGLE_SERVICE_ACCOUNT_NAME")


class Listener:
    """A TCP socket on 127.0.0.1 that counts connections: set as every proxy, it sees any HTTP(S) attempt."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sock.settimeout(0.05)
        self.connections = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def env(proxy: Listener, **extra: str) -> dict[str, str]:
    """The subprocess environment: no ambient identity, every proxy at *proxy*, 127.0.0.1 direct."""
    clean = {k: v for k, v in os.environ.items() if k not in AMBIENT and "proxy" not in k.lower()}
    proxies = {name: proxy.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")}
    return {**clean, **proxies, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **extra}


def run(proxy: Listener, *args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m markit ARGS`` with :func:`env` (``run_markit`` adds to ``os.environ``; this removes from it)."""
    return subprocess.run([sys.executable, "-m", "markit", *args], env=env(proxy, **extra), capture_output=True,
                          timeout=300, check=False)


@pytest.fixture
def mar(example: Path, tmp_path: Path) -> Path:
    made = markit.create(model_name="m", handler="handler:handle", model_path=str(example),
                         output=str(tmp_path / "m.mar"), force=True)
    return Path(made.archive)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """In this process: any connection or name lookup fails the test (and is recorded)."""
    tried: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        tried.append(args)
        raise AssertionError(f"network attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in AMBIENT:
        monkeypatch.delenv(name, raising=False)
    return tried


# -- options ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "says"), [
    (["sign", "{mar}"], b"--private-key (the key or certificate method) or --sigstore"),
    (["sign", "{mar}", "--sigstore", "--private-key", "{key}"], b"one of them"),
    (["sign", "{mar}", "--sigstore", "--signing-certificate", "{pub}"], b"no --signing-certificate"),
    (["sign", "{mar}", "--private-key", "{key}", "--identity-token", "x.y.z"], b"go with --sigstore"),
    (["sign", "{mar}", "--private-key", "{key}", "--use-ambient-credentials"], b"go with --sigstore"),
    (["sign", "{mar}", "--private-key", "{key}", "--staging"], b"they go with --sigstore"),
    (["sign", "{mar}", "--sigstore", "--staging", "--trust-config", "{pub}"], b"not both"),
    (["verify", "{mar}", "--identity", EMAIL, "--identity-provider", "https://i"], b"give it too"),
    (["verify", "{mar}", "--signature", "{sig}", "--identity", EMAIL], b"--identity and --identity-provider go"),
    (["verify", "{mar}", "--signature", "{sig}", "--identity-provider", "https://i"], b"one of them"),
    (["verify", "{mar}", "--signature", "{sig}", "--identity", EMAIL, "--identity-provider", "https://i",
      "--public-key", "{pub}"], b"one of them"),
    (["verify", "{mar}", "--signature", "{sig}", "--public-key", "{pub}", "--staging"], b"they go with --identity"),
    (["verify", "{mar}", "--signature", "{sig}", "--identity", EMAIL, "--identity-provider", "https://i",
      "--staging", "--trust-config", "{pub}"], b"not both"),
])
def test_option_conflicts_are_usage_errors(mar: Path, tmp_path: Path, proxy: Listener, args: list[str],
                                           says: bytes) -> None:
    keys = make_keys(tmp_path)
    filled = [a.format(mar=mar, key=keys.private, pub=keys.public, sig=tmp_path / "s.sig") for a in args]
    done = run(proxy, *filled)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and b"Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert proxy.connections == 0


# -- no usable identity token: one line, and no connection attempted -------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--use-ambient-credentials"], ["--staging"]])
def test_no_identity_token_is_one_line_before_any_network(mar: Path, proxy: Listener, extra: list[str]) -> None:
    done = run(proxy, "sign", str(mar), "--sigstore", *extra)
    assert done.returncode == 1, done.stderr
    assert b"--sigstore needs an OIDC identity token" in done.stderr and b"Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert proxy.connections == 0
    assert not Path(f"{mar}.sig").exists()


def expired_token() -> str:
    claims = json.loads(base64.urlsafe_b64decode(identity_token(EMAIL, "https://i").split(".")[1] + "=="))
    claims.update(iat=1_000_000_000, nbf=1_000_000_000, exp=1_000_000_600)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{body}."


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "expired"])
def test_an_unusable_token_is_one_line_before_any_network(mar: Path, proxy: Listener, token: str) -> None:
    token = expired_token() if token == "expired" else token
    done = run(proxy, "sign", str(mar), "--sigstore", SIGSTORE_IDENTITY_TOKEN=token)
    assert done.returncode == 1, done.stderr
    assert b"not a usable Sigstore identity token" in done.stderr and b"Traceback" not in done.stderr
    assert proxy.connections == 0
    assert not Path(f"{mar}.sig").exists()


def test_api_refuses_without_a_token_with_sockets_forbidden(mar: Path, no_network: list[Any]) -> None:
    with pytest.raises(InputError, match="needs an OIDC identity token"):
        markit.sign(str(mar), sigstore=True, use_ambient_credentials=True)
    with pytest.raises(InputError, match="not within its validity period|malformed"):
        markit.sign(str(mar), sigstore=True, identity_token=expired_token())
    with pytest.raises(UsageError):
        markit.verify(str(mar), signature=f"{mar}.sig", identity=EMAIL, identity_provider="https://i",
                      staging=True, trust_config="t.json")
    assert no_network == []
    assert not Path(f"{mar}.sig").exists()


# -- the whole flow against a stand-in Sigstore on 127.0.0.1 ------------------------------------------------------------


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[LocalSigstore, Path]]:
    with local_sigstore() as sigstore:
        yield sigstore, sigstore.trust_config(tmp_path / "trust.json")


def test_sign_then_verify_offline_with_the_identity(mar: Path, tmp_path: Path, proxy: Listener,
                                                   stand_in: tuple[LocalSigstore, Path]) -> None:
    sigstore, config = stand_in
    token = identity_token(EMAIL, sigstore.oidc_issuer)
    done = run(proxy, "sign", str(mar), "--sigstore", "--trust-config", str(config), "--json",
               SIGSTORE_IDENTITY_TOKEN=token)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["method"] == "sigstore" and out["files"] == 9
    assert sigstore.requests == ["GET /oidc/.well-known/openid-configuration", "POST /api/v2/signingCert",
                                 "POST /api/v1/log/entries"]
    bundle = json.loads(Path(out["signature"]).read_text())
    assert bundle["verificationMaterial"]["certificate"]["rawBytes"]  # Fulcio's certificate, not a key hint
    assert bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    sigstore.requests.clear()

    def verify(identity: str, issuer: str, archive: Path = mar) -> Any:
        return run(proxy, "verify", str(archive), "--signature", out["signature"], "--identity", identity,
                   "--identity-provider", issuer, "--trust-config", str(config), "--json")

    good = verify(EMAIL, sigstore.oidc_issuer)
    assert good.returncode == 0, good.stdout + good.stderr
    assert json.loads(good.stdout)["ok"] is True
    for identity, issuer in ((f"x{EMAIL}", sigstore.oidc_issuer), (EMAIL, "https://accounts.example.com")):
        bad = verify(identity, issuer)
        assert bad.returncode == 1
        problems = json.loads(bad.stdout)["problems"]
        assert [p["code"] for p in problems] == ["signature-invalid"], problems
        assert "not a Sigstore signature by" in problems[0]["message"]
    assert sigstore.requests == []  # verification used the trust config file only
    assert proxy.connections == 0


def test_a_changed_archive_is_reported_against_a_keyless_signature(example: Path, tmp_path: Path, proxy: Listener,
                                                                   stand_in: tuple[LocalSigstore, Path]) -> None:
    sigstore, config = stand_in
    folder = Path(markit.create(model_name="m", handler="handler:handle", model_path=str(example),
                                output=str(tmp_path / "m"), archive_format="no-archive").archive)
    signed = markit.sign(str(folder), sigstore=True, identity_token=identity_token(EMAIL, sigstore.oidc_issuer),
                         trust_config=str(config), signature=str(tmp_path / "folder.sig"))
    assert signed.method == "sigstore"
    (folder / "index_to_name.json").write_text('{"0": "changed"}')
    report = markit.verify(str(folder), signature=signed.signature, identity=EMAIL,
                           identity_provider=sigstore.oidc_issuer, trust_config=str(config))
    assert ("signature-mismatch", "index_to_name.json") in [(p.code, p.path) for p in report.problems]
    assert "signature-invalid" not in [p.code for p in report.problems]


def test_a_key_signature_is_not_a_keyless_one(mar: Path, tmp_path: Path, stand_in: tuple[LocalSigstore, Path],
                                              no_network: list[Any]) -> None:
    sigstore, config = stand_in
    keys = make_keys(tmp_path)
    markit.sign(str(mar), private_key=str(keys.private))
    report = markit.verify(str(mar), signature=f"{mar}.sig", identity=EMAIL, identity_provider=sigstore.oidc_issuer,
                           trust_config=str(config))
    assert [p.code for p in report.problems] == ["signature-invalid"]
    assert no_network == []


def test_a_trust_config_that_is_not_one_is_bad_input(mar: Path, tmp_path: Path,
                                                    stand_in: tuple[LocalSigstore, Path],
                                                    no_network: list[Any]) -> None:
    sigstore, _ = stand_in
    keys = make_keys(tmp_path)
    markit.sign(str(mar), private_key=str(keys.private))
    with pytest.raises(InputError, match="--trust-config"):
        markit.verify(str(mar), signature=f"{mar}.sig", identity=EMAIL, identity_provider=sigstore.oidc_issuer,
                      trust_config=str(keys.public))
    assert no_network == []


def test_the_guard_sees_a_real_attempt(mar: Path, tmp_path: Path, proxy: Listener) -> None:
    """The check of the no-network tests: a usable token and --staging do reach for the network (TUF, first),
    and that attempt lands on the listening "proxy" on 127.0.0.1, not on the Internet; one line, exit 1."""
    token = identity_token(EMAIL, "https://oauth2.sigstage.dev/auth")
    done = run(proxy, "sign", str(mar), "--sigstore", "--staging", SIGSTORE_IDENTITY_TOKEN=token,
               HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert done.returncode == 1, done.stderr
    assert b"cannot set up signing with Sigstore" in done.stderr and b"Traceback" not in done.stderr
    assert proxy.connections >= 1
    assert not Path(f"{mar}.sig").exists()


def test_verify_without_a_trust_config_fetches_the_root_and_says_so_when_it_cannot(
        mar: Path, tmp_path: Path, proxy: Listener) -> None:
    """Without --trust-config the production trust root comes through TUF: here that attempt lands on the
    listening "proxy" on 127.0.0.1 and fails, which is one line and exit 1, not a traceback."""
    keys = make_keys(tmp_path)
    markit.sign(str(mar), private_key=str(keys.private))
    done = run(proxy, "verify", str(mar), "--signature", f"{mar}.sig", "--identity", EMAIL, "--identity-provider",
               "https://accounts.example.com", HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert done.returncode == 1, done.stderr
    assert b"the Sigstore trust root: not usable" in done.stderr and b"Traceback" not in done.stderr
    assert proxy.connections >= 1
