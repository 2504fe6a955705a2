"""``markit sign`` and ``markit verify --signature``: OMS signatures over an archive's entries, checked in one pass.

The statement is read back with the standard library only (JSON, base64, hashlib) and every digest is
checked against the files read by ``zipfile``/``tarfile``, which markit did not write. Keys and a small
CA chain are made per test (``tests/support/oms.py``). The real ``model_signing`` CLI is in
``test_sign_realtools.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

import markit
from markit.errors import InputError, OutputError, UsageError
from markit.read import verify as read_verify
from markit.trust.compare import compare, is_ignored
from markit.trust.oms import Signed
from tests.conftest import run_markit
from tests.support.oms import make_chain, make_keys

pytest.importorskip("model_signing")


def statement(signature: Path) -> dict[str, Any]:
    bundle = json.loads(signature.read_text())
    return dict(json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"])))


def build(example: Path, out: Path, fmt: str = "default") -> Path:
    made = markit.create(model_name="m", handler="handler:handle", model_path=str(example), output=str(out),
                         archive_format=fmt, force=True)
    return Path(made.archive)


def codes(report: markit.Report) -> list[tuple[str, str | None]]:
    return [(p.code, p.path) for p in report.problems]


@pytest.fixture
def keys(tmp_path: Path) -> Any:
    return make_keys(tmp_path)


@pytest.fixture
def mar(example: Path, tmp_path: Path) -> Path:
    return build(example, tmp_path / "m.mar")


# -- the pure comparison ---------------------------------------------------------------------------------------


SIGNED = Signed("m", {"a": "1" * 64, "d/b": "2" * 64}, ("skipme",))


@pytest.mark.parametrize(("entries", "complete", "want"), [
    ({"a": "1" * 64, "d/b": "2" * 64}, True, []),
    ({"a": "f" * 64, "d/b": "2" * 64}, True, [("signature-mismatch", "a")]),
    ({"a": "1" * 64, "d/b": "2" * 64, "new": "3" * 64}, True, [("unsigned-entry", "new")]),
    ({"a": "1" * 64}, True, [("missing-signed-entry", "d/b")]),
    ({"a": "1" * 64}, False, []),  # a reader that stopped early: what is absent may be unread
    ({"a": "1" * 64, "d/b": "2" * 64, "skipme": "4" * 64, "skipme/x": "5" * 64}, True, []),  # ignore_paths
    ({"e": "1" * 64}, True, [("unsigned-entry", "e"), ("missing-signed-entry", "a"), ("missing-signed-entry", "d/b")]),
])
def test_compare_names_each_difference(entries: dict[str, str], complete: bool, want: list[tuple[str, str]]) -> None:
    assert [(p.code, p.path) for p in compare(SIGNED, entries, complete=complete)] == want
    assert all(p.severity == "error" for p in compare(SIGNED, entries, complete=complete))


def test_ignore_paths_match_whole_components_and_dot_is_everything() -> None:
    assert is_ignored("MAR-INF/RECORD", ["MAR-INF"]) and is_ignored("MAR-INF", ["MAR-INF/"])
    assert not is_ignored("MAR-INFO/x", ["MAR-INF"]) and not is_ignored("a", ["b"])
    assert is_ignored("anything/at/all", ["."])
    assert compare(SIGNED, {**SIGNED.digests, "model.sig": "0" * 64}, skip=("model.sig",)) == []


# -- sign: what the signature holds ----------------------------------------------------------------------------


def test_sign_lists_every_entry_with_its_sha256_in_the_oms_statement(mar: Path, keys: Any) -> None:
    done = markit.sign(str(mar), private_key=str(keys.private))
    assert done.signature == f"{mar}.sig" and done.method == "key" and done.model_name == "m"
    with zipfile.ZipFile(mar) as z:
        truth = {i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist() if not i.is_dir()}
    assert "MAR-INF/MANIFEST.json" in truth and "MAR-INF/RECORD" in truth and done.files == len(truth)
    body = statement(Path(done.signature))
    assert body["_type"] == "https://in-toto.io/Statement/v1"
    assert body["predicateType"] == "https://model_signing/signature/v1.0"
    assert body["predicate"]["serialization"] == {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
    resources = body["predicate"]["resources"]
    assert [r["name"] for r in resources] == sorted(truth)
    assert {r["name"]: r["digest"] for r in resources} == truth and {r["algorithm"] for r in resources} == {"sha256"}
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert body["subject"] == [{"name": "m", "digest": {"sha256": root}}]
    assert markit.verify(str(mar), signature=done.signature, public_key=str(keys.public)).problems == ()


@pytest.mark.parametrize("fmt", ["tgz", "no-archive"])
def test_tgz_and_folder_are_signed_by_the_names_unpack_writes(example: Path, tmp_path: Path, keys: Any,
                                                              fmt: str) -> None:
    archive = build(example, tmp_path / ("m.tar.gz" if fmt == "tgz" else "m"), fmt)
    done = markit.sign(str(archive), private_key=str(keys.private), signature=str(tmp_path / "s.sig"))
    names = [r["name"] for r in statement(tmp_path / "s.sig")["predicate"]["resources"]]
    if fmt == "tgz":
        with tarfile.open(archive) as t:
            assert names == sorted(m.name.partition("/")[2] for m in t.getmembers() if m.isfile())
    assert "MAR-INF/MANIFEST.json" in names and not any(n.startswith(("m/", "./")) for n in names)
    assert done.model_name == "m"
    assert markit.verify(str(archive), signature=done.signature, public_key=str(keys.public)).problems == ()


def test_sign_reads_the_archive_once(mar: Path, keys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from markit.trust import sign as trust_sign

    calls = []
    real = trust_sign.read_archive

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("sha"))
        return real(*args, **kwargs)

    monkeypatch.setattr(trust_sign, "read_archive", counted)
    markit.sign(str(mar), private_key=str(keys.private))
    assert calls == [True]


# -- sign: what it refuses -------------------------------------------------------------------------------------


def test_sign_refuses_what_verify_refuses_and_writes_nothing(mar: Path, keys: Any) -> None:
    with zipfile.ZipFile(mar) as z:
        info = z.getinfo("squeezenet_like.bin")  # stored: flip a byte in the middle of its data
    data = bytearray(mar.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    mar.write_bytes(bytes(data))
    with pytest.raises(markit.SignRefused) as refused:
        markit.sign(str(mar), private_key=str(keys.private))
    assert {p.code for p in refused.value.problems} & {"crc-mismatch", "digest-mismatch", "corrupt"}
    assert not Path(f"{mar}.sig").exists()


def test_sign_refuses_bad_keys_and_an_existing_signature_before_reading(mar: Path, keys: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    for bad in (rsa_key, garbage, tmp_path / "missing.pem"):
        with pytest.raises(InputError):
            markit.sign(str(mar), private_key=str(bad))
    assert not Path(f"{mar}.sig").exists()
    markit.sign(str(mar), private_key=str(keys.private))
    with pytest.raises(OutputError, match="already exists"):
        markit.sign(str(mar), private_key=str(keys.private))
    markit.sign(str(mar), private_key=str(keys.private), force=True)
    with pytest.raises(UsageError):
        markit.sign("-", private_key=str(keys.private))  # stdin: name the signature
    with pytest.raises(UsageError):
        markit.sign(str(mar), private_key=str(keys.private), signature=str(mar), force=True)


# -- verify: each way a signed archive can be wrong ------------------------------------------------------------


def test_wrong_key_and_tampered_statement_are_signature_invalid(mar: Path, keys: Any, tmp_path: Path) -> None:
    sig = Path(markit.sign(str(mar), private_key=str(keys.private)).signature)
    other = make_keys(tmp_path, "other")
    report = markit.verify(str(mar), signature=str(sig), public_key=str(other.public))
    assert codes(report) == [("signature-invalid", None)] and not report.ok()

    bundle = json.loads(sig.read_text())
    body = statement(sig)
    body["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    sig.write_text(json.dumps(bundle))
    assert codes(markit.verify(str(mar), signature=str(sig), public_key=str(keys.public))) == [
        ("signature-invalid", None)]
    sig.write_text("{not json")
    report = markit.verify(str(mar), signature=str(sig), public_key=str(keys.public))
    assert codes(report) == [("signature-invalid", None)] and "not an OMS signature" in report.problems[0].message


def test_changed_added_and_removed_files_are_each_reported(example: Path, tmp_path: Path, keys: Any) -> None:
    mar = build(example, tmp_path / "m.mar")
    sig = markit.sign(str(mar), private_key=str(keys.private)).signature
    (example / "index_to_name.json").write_text('{"0": "changed"}')
    (example / "extra.txt").write_text("new\n")
    (example / "requirements.txt").unlink()
    build(example, mar)
    found = codes(markit.verify(str(mar), signature=sig, public_key=str(keys.public)))
    assert ("signature-mismatch", "index_to_name.json") in found
    assert ("unsigned-entry", "extra.txt") in found
    assert ("missing-signed-entry", "requirements.txt") in found
    assert ("signature-mismatch", "MAR-INF/RECORD") in found  # the record changed with them
    assert {c for c, _ in found} <= {"signature-mismatch", "unsigned-entry", "missing-signed-entry"}


def test_verify_with_a_signature_is_one_pass_with_sha256_on(mar: Path, keys: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sig = markit.sign(str(mar), private_key=str(keys.private)).signature
    calls = []
    real = read_verify.read_archive

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("sha"))
        return real(*args, **kwargs)

    monkeypatch.setattr(read_verify, "read_archive", counted)
    assert markit.verify(str(mar), signature=sig, public_key=str(keys.public)).ok()
    assert calls == [True]


def test_folder_with_its_signature_inside(example: Path, tmp_path: Path, keys: Any) -> None:
    folder = build(example, tmp_path / "m", "no-archive")
    sig = folder / "model.sig"
    markit.sign(str(folder), private_key=str(keys.private), signature=str(sig))
    report = markit.verify(str(folder), signature=str(sig), public_key=str(keys.public))
    # not unsigned-entry (model_signing skips its signature inside the folder too); the RECORD still lacks it
    assert codes(report) == [("record-mismatch", "model.sig")]


def test_certificate_method_checks_the_chain(mar: Path, tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    done = markit.sign(str(mar), private_key=str(chain.private), signing_certificate=str(chain.certificate),
                       certificate_chain=[str(chain.intermediate), str(chain.root)])
    assert done.method == "certificate"
    assert markit.verify(str(mar), signature=done.signature, certificate_chain=[str(chain.root)]).problems == ()
    stranger = make_chain(tmp_path, "stranger")
    report = markit.verify(str(mar), signature=done.signature, certificate_chain=[str(stranger.root)])
    assert codes(report) == [("signature-invalid", None)] and "chain" in report.problems[0].message
    with pytest.raises(InputError):  # the certificate is not the key's
        markit.sign(str(mar), private_key=str(stranger.private), signing_certificate=str(chain.certificate),
                    force=True)


# -- the command line ------------------------------------------------------------------------------------------


def test_cli_sign_and_verify(mar: Path, keys: Any, tmp_path: Path) -> None:
    done = run_markit("sign", str(mar), "--private-key", str(keys.private))
    assert done.returncode == 0, done.stderr
    assert b"signed" in done.stderr and Path(f"{mar}.sig").exists()
    ok = run_markit("verify", str(mar), "--signature", f"{mar}.sig", "--public-key", str(keys.public), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"archive": str(mar), "ok": True, "problems": []}
    other = make_keys(tmp_path, "other")
    bad = run_markit("verify", str(mar), "--signature", f"{mar}.sig", "--public-key", str(other.public))
    assert bad.returncode == 1 and b"error signature-invalid" in bad.stderr and b"Traceback" not in bad.stderr


@pytest.mark.parametrize(("args", "code", "says"), [
    (["verify", "{mar}", "--public-key", "{pub}"], 2, b"--signature"),
    (["verify", "{mar}", "{mar}", "--signature", "{mar}.sig", "--public-key", "{pub}"], 2, b"one archive"),
    (["verify", "{mar}", "--signature", "{mar}.sig"], 2, b"--public-key"),
    (["verify", "{mar}", "--signature", "{mar}.nope", "--public-key", "{pub}"], 1, b"No such file"),
    (["sign", "{mar}", "--private-key", "{mar}", "-f"], 1, b"not a usable key"),
    (["sign", "{mar}", "--private-key", "{key}"], 1, b"already exists (use -f"),
    (["sign", "{mar}", "--private-key", "{key}", "--certificate-chain", "{pub}"], 2, b"--signing-certificate"),
])
def test_cli_bad_input_is_one_line(mar: Path, keys: Any, args: list[str], code: int, says: bytes) -> None:
    markit.sign(str(mar), private_key=str(keys.private))
    filled = [a.format(mar=mar, pub=keys.public, key=keys.private) for a in args]
    done = run_markit(*filled)
    assert done.returncode == code, done.stderr
    assert says in done.stderr and b"Traceback" not in done.stderr


FORKED = """
import os, sys, threading
from markit.errors import InputError
from markit.trust.aside import start
from markit.trust.oms import Anchor, SignatureError
assert threading.active_count() == 1 and "model_signing" not in sys.modules
sig, pub, other = sys.argv[1:4]
aside = start(sig, Anchor(public_key=pub))
child = aside._pid
assert child > 0 and "model_signing" not in sys.modules  # imported in the child only
signed = aside.result()
aside.close()
print(len(signed.digests), signed.model_name)
for anchor, expected in ((Anchor(public_key=other), SignatureError), (Anchor(public_key=sig + ".nope"), InputError)):
    aside = start(sig, anchor)
    try:
        aside.result()
    except expected as error:
        print(type(error).__name__)
    aside.close()
aside = start(sig, Anchor(public_key=pub))
child = aside._pid
aside.close()  # never waited for: killed and reaped
try:
    os.waitpid(child, os.WNOHANG)
except ChildProcessError:
    print("reaped")
"""


def test_the_signature_is_checked_in_a_forked_child_when_the_process_has_one_thread(mar: Path, keys: Any,
                                                                                   tmp_path: Path) -> None:
    import subprocess
    import sys

    sig = markit.sign(str(mar), private_key=str(keys.private)).signature
    other = make_keys(tmp_path, "other")
    done = subprocess.run([sys.executable, "-c", FORKED, sig, str(keys.public), str(other.public)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["9 m", "SignatureError", "InputError", "reaped", ""]


def test_the_library_package_loads_whole_on_first_use_after_markit() -> None:
    import subprocess
    import sys

    script = ("import sys, markit.trust.oms as oms; oms._library()\n"
              "assert 'sigstore' not in sys.modules  # the keyless method's imports were skipped\n"
              "import model_signing\n"
              "print(model_signing.__version__, model_signing.signing.Config.__name__, 'sigstore' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:] == ["Config", "True"]


def test_cli_certificate_method(mar: Path, tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    signed = run_markit("sign", str(mar), "--private-key", str(chain.private), "--signing-certificate",
                        str(chain.certificate), "--certificate-chain", str(chain.intermediate), "--json")
    assert signed.returncode == 0, signed.stderr
    assert json.loads(signed.stdout)["method"] == "certificate"
    ok = run_markit("verify", str(mar), "--signature", f"{mar}.sig", "--certificate-chain", str(chain.root))
    assert ok.returncode == 0, ok.stderr
    stranger = make_chain(tmp_path, "stranger")
    bad = run_markit("verify", str(mar), "--signature", f"{mar}.sig", "--certificate-chain", str(stranger.root))
    assert bad.returncode == 1 and b"error signature-invalid" in bad.stderr and b"chain" in bad.stderr
