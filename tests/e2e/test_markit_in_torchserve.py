"""markit's archives in the real TorchServe 0.12.0: registered, loaded, and answering.

One case per way of writing: default (auto compression), zip-store, a zip written to
stdout through a pipe, a tgz (to a file and through a pipe), a no-archive folder, and
torch-model-archiver-style flags. Each must register and answer every body exactly as
the example handler computes it in-process. Each zip is also read by the Java oracle,
which walks local headers the way TorchServe's frontend does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_torchserve_harness import BODIES, EXAMPLE, expected_answer
from tests.e2e.torchserve import TorchServe
from tests.support.java import read_with_zipinputstream

pytestmark = pytest.mark.e2e

MARKIT = [sys.executable, "-m", "markit", "create", "--handler", "handler:handle", "-q"]


def build(store: Path, name: str, version: str, how: str) -> str:
    """Write the example into the model store as *how* says; return the file or folder name."""
    base = [*MARKIT, "--model-name", name, "--model-path", str(EXAMPLE), "--version", version]
    if how in ("default", "zip-store", "tgz", "no-archive"):
        subprocess.run([*base, "--archive-format", how, "--export-path", str(store)], check=True, timeout=120)
        return {"tgz": f"{name}.tar.gz", "no-archive": name}.get(how, f"{name}.mar")
    if how in ("pipe-zip", "pipe-tgz"):
        out = store / (f"{name}.mar" if how == "pipe-zip" else f"{name}.tar.gz")
        fmt = ["--archive-format", "tgz"] if how == "pipe-tgz" else []
        cmd = " ".join([*base, *fmt, "-o", "-"]) + f" | cat > {out}"
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, timeout=120)
        return out.name
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "version"),
    [("default", "1.1"), ("zip-store", "1.2"), ("pipe-zip", "1.3"), ("tgz", "1.4"), ("pipe-tgz", "1.5"),
     ("no-archive", "1.6")],
)
def test_markit_archive_loads_and_predicts(torchserve_server: TorchServe, how: str, version: str) -> None:
    name = f"markit-{how}"
    built = build(torchserve_server.model_store, name, version, how)
    if built.endswith(".mar"):
        names = {entry.name for entry in read_with_zipinputstream(torchserve_server.model_store / built)}
        assert {"MAR-INF/MANIFEST.json", "MAR-INF/RECORD", "handler.py", "config/labels_extra.txt"} <= names
    assert torchserve_server.register(built) == name
    try:
        [description] = torchserve_server.describe(name)
        assert description["modelVersion"] == version
        for body in BODIES:
            assert torchserve_server.predict(name, body) == expected_answer(body), body[:20]
    finally:
        torchserve_server.unregister(name)


def test_torch_model_archiver_flags_load(torchserve_server: TorchServe, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    shutil.copytree(EXAMPLE / "config", extra / "config")  # a folder's contents go to the root, as in tma
    e = EXAMPLE
    subprocess.run([sys.executable, "-m", "markit", "create", "-q", "--model-name", "markit-tma-flags", "-v", "2.0",
                    "--serialized-file", str(e / "squeezenet_like.bin"), "--handler", str(e / "handler.py"),
                    "--extra-files", f"{e / 'index_to_name.json'},{extra}", "-r", str(e / "requirements.txt"),
                    "-c", str(e / "model-config.yaml"), "--export-path", str(torchserve_server.model_store)],
                   check=True, timeout=120)
    assert torchserve_server.register("markit-tma-flags.mar") == "markit-tma-flags"
    try:
        assert torchserve_server.predict("markit-tma-flags", b"hello") == expected_answer(b"hello")
    finally:
        torchserve_server.unregister("markit-tma-flags")
