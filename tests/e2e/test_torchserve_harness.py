"""Prove the TorchServe harness with archives made by the real torch-model-archiver 0.12.0.

These do not use markit: they check that tests/e2e/torchserve.py starts a server, registers
each archive format TorchServe reads (zip ``.mar``, ``.tar.gz``, a plain folder), answers
predictions exactly as the example handler computes them in-process, reports errors, and
leaves no process behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from tests.e2e.torchserve import TorchServe, TorchServeError

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "squeezenet-like"
BODIES = [b"", b"a", b"hello world", bytes(range(256)), random.Random(7).randbytes(10_000)]


def _load_example_predict() -> Callable[[bytes, bytes, dict[str, str]], str]:
    spec = importlib.util.spec_from_file_location("_squeezenet_like_handler", EXAMPLE / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast("Callable[[bytes, bytes, dict[str, str]], str]", module.predict)


def expected_answer(body: bytes) -> dict[str, Any]:
    """What the example handler answers for *body*, computed without the server."""
    weights = (EXAMPLE / "squeezenet_like.bin").read_bytes()
    labels = json.loads((EXAMPLE / "index_to_name.json").read_text())
    extra = (EXAMPLE / "config" / "labels_extra.txt").read_text().strip()
    return {"label": _load_example_predict()(body, weights, labels), "extra": extra}


def archive_example(bin_dir: Path, export: Path, name: str, version: str, fmt: str) -> Path:
    """Run torch-model-archiver on the example; return the archive (or folder) it wrote.

    torch-model-archiver copies the *contents* of a folder named in ``--extra-files`` into the
    archive root (``--extra-files .../config`` would put ``labels_extra.txt`` at the top), so the
    folder passed is a staging folder that holds ``config/``.
    """
    staging = export / "extra"
    shutil.copytree(EXAMPLE / "config", staging / "config")
    cmd = [
        str(bin_dir / "torch-model-archiver"),
        "--model-name", name,
        "--version", version,
        "--serialized-file", str(EXAMPLE / "squeezenet_like.bin"),
        "--handler", str(EXAMPLE / "handler.py"),
        "--extra-files", f"{EXAMPLE / 'index_to_name.json'},{staging}",
        "-r", str(EXAMPLE / "requirements.txt"),
        "-c", str(EXAMPLE / "model-config.yaml"),
        "--archive-format", fmt,
        "--export-path", str(export),
        "--force",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    suffix = {"default": ".mar", "tgz": ".tar.gz", "no-archive": ""}[fmt]
    out = export / f"{name}{suffix}"
    assert out.exists(), f"torch-model-archiver wrote no {out.name}: {sorted(os.listdir(export))}"
    return out


def archive_names(path: Path) -> list[str]:
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tf:
            return sorted(m.name for m in tf.getmembers() if m.isfile())
    with zipfile.ZipFile(path) as zf:
        return sorted(n for n in zf.namelist() if not n.endswith("/"))


@pytest.mark.parametrize(
    ("fmt", "name", "version"),
    [
        ("default", "squeezenet-like", "1.0"),
        ("tgz", "squeezenet-like-tgz", "2.0"),
        ("no-archive", "squeezenet-like-dir", "3.0"),
    ],
)
def test_tma_archive_loads_and_predicts(
    torchserve_server: TorchServe, torchserve_bin: Path, tmp_path: Path, fmt: str, name: str, version: str
) -> None:
    built = archive_example(torchserve_bin, tmp_path, name, version, fmt)
    names = archive_names(built)
    prefix = f"{name}/" if fmt == "tgz" else ""  # tma's tar.gz has one top folder
    for member in ("MAR-INF/MANIFEST.json", "handler.py", "config/labels_extra.txt", "squeezenet_like.bin"):
        assert prefix + member in names, names

    target = torchserve_server.model_store / built.name
    if built.is_dir():
        shutil.copytree(built, target)
    else:
        shutil.copy2(built, target)

    assert torchserve_server.register(built.name) == name
    try:
        [description] = torchserve_server.describe(name)
        assert description["modelVersion"] == version
        for body in BODIES:
            assert torchserve_server.predict(name, body) == expected_answer(body), body[:20]
        assert torchserve_server.predict(name, b"hello world", version=version) == expected_answer(b"hello world")
    finally:
        torchserve_server.unregister(name)
    assert name not in [m["modelName"] for m in torchserve_server.list_models()]


def test_register_twice_is_a_conflict(torchserve_server: TorchServe, torchserve_bin: Path, tmp_path: Path) -> None:
    built = archive_example(torchserve_bin, tmp_path, "squeezenet-like-twice", "1.0", "default")
    shutil.copy2(built, torchserve_server.model_store / "squeezenet-like-twice.mar")
    shutil.copy2(built, torchserve_server.model_store / "squeezenet-like-twice-copy.mar")
    name = torchserve_server.register("squeezenet-like-twice.mar")
    try:
        with pytest.raises(TorchServeError) as err:
            torchserve_server.register("squeezenet-like-twice-copy.mar")
        assert err.value.status == 409, err.value
    finally:
        torchserve_server.unregister(name)


def test_broken_archive_is_refused(torchserve_server: TorchServe) -> None:
    (torchserve_server.model_store / "broken.mar").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(TorchServeError) as err:
        torchserve_server.register("broken.mar")
    assert err.value.status is not None and err.value.status >= 400, err.value


def test_stop_leaves_no_process(torchserve_bin: Path, tmp_path: Path) -> None:
    # A second server next to the session one: its own ports and TMPDIR, and nothing survives.
    with TorchServe(torchserve_bin, tmp_path) as server:
        assert server.list_models() == []
        pgid = server.process_group
        assert pgid is not None and server.is_running()
    assert server.process_group is None and not server.is_running()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert "Model server started." in server.server_log.read_text()
