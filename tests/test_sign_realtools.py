"""markit's OMS signatures against the real ``model_signing`` CLI (model-signing 1.1.1, its own venv), both ways.

- markit signs an archive; ``markit unpack``; ``model_signing verify key|certificate`` accepts the folder,
  and refuses it once a file changed.
- ``model_signing sign`` signs a model folder; ``markit create`` archives it (.mar, .tar.gz); ``markit verify
  --signature`` accepts the archive. ``MAR-INF/`` is markit's, not the folder's: signed as is, its two files
  are ``unsigned-entry``; signed with ``--ignore-paths DIR/MAR-INF``, the archive verifies.
- Keyless (sigstore method), both ways, against the stand-in Sigstore on 127.0.0.1 (``--trust_config``), never
  the public one: markit's signature verifies with ``model_signing verify sigstore``, the CLI's with markit.
- The statement: the DSSE payload (the in-toto statement) markit signs for an archive is, value for value,
  the one ``model_signing sign`` signs for the unpacked folder, and byte for byte once its keys are sorted
  (ECDSA signatures differ on every run, and model-signing's own key order does too).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import markit
from tests.support.oms import make_chain, make_keys
from tests.support.sigstore_local import identity_token, local_sigstore
from tests.support.venvs import ensure_venv

pytestmark = pytest.mark.realtools
pytest.importorskip("model_signing")


def model_signing(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(ensure_venv("oms") / "model_signing"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False)
    if check:
        assert done.returncode == 0, f"model_signing {args}: {done.stdout}{done.stderr}"
    return done


def payload(signature: Path) -> bytes:
    return base64.b64decode(json.loads(signature.read_text())["dsseEnvelope"]["payload"])


def build(example: Path, out: Path, fmt: str = "default") -> Path:
    made = markit.create(model_name="m", handler="handler:handle", model_path=str(example), output=str(out),
                         archive_format=fmt, force=True)
    return Path(made.archive)


@pytest.fixture
def keys(tmp_path: Path) -> Any:
    return make_keys(tmp_path)


@pytest.mark.parametrize("name", ["m.mar", "m.tar.gz"])
def test_markit_signature_verifies_with_model_signing_after_unpack(example: Path, tmp_path: Path, keys: Any,
                                                                   name: str) -> None:
    archive = build(example, tmp_path / name, "tgz" if name.endswith(".tar.gz") else "default")
    sig = markit.sign(str(archive), private_key=str(keys.private)).signature
    folder = tmp_path / "unpacked"
    markit.unpack(str(archive), str(folder))
    done = model_signing("verify", "key", folder, "--signature", sig, "--public_key", keys.public)
    assert "Verification succeeded" in done.stdout
    (folder / "MAR-INF" / "MANIFEST.json").write_text('{"model": {"handler": "evil:run"}}')
    refused = model_signing("verify", "key", folder, "--signature", sig, "--public_key", keys.public, check=False)
    assert refused.returncode == 1 and "MAR-INF/MANIFEST.json" in refused.stderr


def test_markit_certificate_signature_verifies_with_model_signing(mar_and_chain: Any, tmp_path: Path) -> None:
    archive, chain = mar_and_chain
    sig = markit.sign(str(archive), private_key=str(chain.private), signing_certificate=str(chain.certificate),
                      certificate_chain=[str(chain.intermediate)]).signature
    folder = tmp_path / "unpacked"
    markit.unpack(str(archive), str(folder))
    done = model_signing("verify", "certificate", folder, "--signature", sig, "--certificate_chain", chain.root)
    assert "Verification succeeded" in done.stdout


@pytest.fixture
def mar_and_chain(example: Path, tmp_path: Path) -> Any:
    return build(example, tmp_path / "m.mar"), make_chain(tmp_path)


@pytest.mark.parametrize("name", ["m.mar", "m.tar.gz"])
def test_model_signing_signature_verifies_with_markit_on_the_archive(example: Path, tmp_path: Path, keys: Any,
                                                                    name: str) -> None:
    fmt = "tgz" if name.endswith(".tar.gz") else "default"
    plain, ignoring = tmp_path / "plain.sig", tmp_path / "ignoring.sig"
    model_signing("sign", "key", example, "--private_key", keys.private, "--signature", plain)
    model_signing("sign", "key", example, "--private_key", keys.private, "--signature", ignoring,
                  "--ignore-paths", example / "MAR-INF")
    archive = build(example, tmp_path / name, fmt)
    report = markit.verify(str(archive), signature=str(plain), public_key=str(keys.public))
    assert sorted((p.code, p.path) for p in report.problems) == [
        ("unsigned-entry", "MAR-INF/MANIFEST.json"), ("unsigned-entry", "MAR-INF/RECORD")]
    assert markit.verify(str(archive), signature=str(ignoring), public_key=str(keys.public)).problems == ()
    (example / "handler.py").write_text("def handle(data, context):\n    return ['changed']\n")
    build(example, archive, fmt)
    report = markit.verify(str(archive), signature=str(ignoring), public_key=str(keys.public))
    assert [(p.code, p.path) for p in report.problems] == [("signature-mismatch", "handler.py")]


def test_model_signing_certificate_signature_verifies_with_markit(mar_and_chain: Any, example: Path,
                                                                 tmp_path: Path) -> None:
    archive, chain = mar_and_chain
    sig = tmp_path / "cert.sig"
    model_signing("sign", "certificate", example, "--private_key", chain.private, "--signing_certificate",
                  chain.certificate, "--certificate_chain", chain.intermediate, "--signature", sig,
                  "--ignore-paths", example / "MAR-INF")
    assert markit.verify(str(archive), signature=str(sig), certificate_chain=[str(chain.root)]).problems == ()
    stranger = make_chain(tmp_path, "stranger")
    report = markit.verify(str(archive), signature=str(sig), certificate_chain=[str(stranger.root)])
    assert [p.code for p in report.problems] == ["signature-invalid"]


def test_keyless_both_ways_through_a_stand_in_sigstore(example: Path, tmp_path: Path) -> None:
    """The sigstore method with the real CLI, against the stand-in Sigstore on 127.0.0.1 named by --trust_config
    (tests/support/sigstore_local.py; never the public Sigstore): markit's keyless signature verifies with
    ``model_signing verify sigstore`` after unpack, and the CLI's verifies with ``markit verify --identity``."""
    with local_sigstore() as sigstore:
        config = sigstore.trust_config(tmp_path / "trust.json")
        token = identity_token("release@example.com", sigstore.oidc_issuer)
        who = ("--identity", "release@example.com")
        archive = build(example, tmp_path / "m.mar")
        ours = markit.sign(str(archive), sigstore=True, identity_token=token, trust_config=str(config)).signature
        folder = tmp_path / "unpacked"
        markit.unpack(str(archive), str(folder))
        done = model_signing("verify", "sigstore", folder, "--signature", ours, *who, "--identity_provider",
                             sigstore.oidc_issuer, "--trust_config", config)
        assert "Verification succeeded" in done.stdout
        stranger = model_signing("verify", "sigstore", folder, "--signature", ours, "--identity", "x@example.com",
                                 "--identity_provider", sigstore.oidc_issuer, "--trust_config", config, check=False)
        assert stranger.returncode == 1
        theirs = tmp_path / "theirs.sig"
        model_signing("sign", "sigstore", example, "--signature", theirs, "--identity_token", token, "--trust_config",
                      config, "--ignore-paths", example / "MAR-INF")
    report = markit.verify(str(archive), signature=str(theirs), identity=who[1],
                           identity_provider=sigstore.oidc_issuer, trust_config=str(config))
    assert report.problems == ()


@pytest.mark.parametrize("name", ["m.mar", "m.tar.gz"])
def test_the_signed_statement_is_byte_identical_to_model_signing_on_the_unpacked_folder(
        example: Path, tmp_path: Path, keys: Any, name: str) -> None:
    archive = build(example, tmp_path / name, "tgz" if name.endswith(".tar.gz") else "default")
    ours = Path(markit.sign(str(archive), private_key=str(keys.private)).signature)
    folder = tmp_path / "out" / "m"  # the subject is the folder's name: unpack's default, "m"
    folder.parent.mkdir()
    markit.unpack(str(archive), str(folder))
    theirs = tmp_path / "theirs.sig"
    # --no-ignore-git-paths: else the CLI records the git paths it skipped as ignore_paths in the statement
    model_signing("sign", "key", folder, "--private_key", keys.private, "--signature", theirs, "--no-ignore-git-paths")
    # The same statement, value for value; as bytes, equal once keys are sorted: model-signing 1.1.1 builds the
    # predicate as a protobuf Struct, whose map order changes from one run to the next (two runs of its own
    # CLI on one folder give differently ordered payloads), so no two signers' payload bytes are comparable.
    assert json.loads(payload(ours)) == json.loads(payload(theirs))
    canonical = [json.dumps(json.loads(payload(s)), sort_keys=True).encode() for s in (ours, theirs)]
    assert canonical[0] == canonical[1]
    ours_bundle, theirs_bundle = json.loads(ours.read_text()), json.loads(theirs.read_text())
    assert ours_bundle["mediaType"] == theirs_bundle["mediaType"]
    assert ours_bundle["verificationMaterial"] == theirs_bundle["verificationMaterial"]  # the same key hint


def test_the_readme_signature_example_runs_as_written(example: Path, tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```bash\n(openssl ecparam.*?)```", readme, re.DOTALL)
    assert block is not None
    build(example, tmp_path / "squeezenet.mar")
    shutil.copytree(example, tmp_path / "model_dir")
    chain = make_chain(tmp_path)
    for source, name in ((chain.private, "signer-key.pem"), (chain.certificate, "signer.pem"),
                         (chain.intermediate, "intermediate.pem"), (chain.root, "root.pem")):
        shutil.copy(source, tmp_path / name)
    script = re.sub(r"^markit ", f"{sys.executable} -m markit ", block.group(1), flags=re.MULTILINE)
    env = {**os.environ, "PATH": f"{ensure_venv('oms')}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok (0 errors, 0 warnings)") == 4 and "Verification succeeded" in done.stdout
