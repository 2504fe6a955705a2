"""markit create against the real torch-model-archiver 0.12.0 and MMS model-archiver 1.0.3.

Both tools run from their own virtualenvs on the same inputs as markit. The archives must
hold the same files with the same bytes, and torch-model-archiver's manifest must match
markit's field for field (``createdOn`` and ``archiverVersion`` aside).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, run_markit
from tests.support.venvs import ensure_venv

pytestmark = pytest.mark.realtools


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def tma_inputs(tmp_path: Path) -> list[str]:
    extra = tmp_path / "extra"
    shutil.copytree(EXAMPLE / "config", extra / "config")
    e = EXAMPLE
    return ["--model-name", "cmp", "-v", "3.1", "--serialized-file", str(e / "squeezenet_like.bin"),
            "--handler", str(e / "handler.py"), "--extra-files", f"{e / 'index_to_name.json'},{e / 'signature.json'},{extra}",
            "-r", str(e / "requirements.txt"), "-c", str(e / "model-config.yaml")]


@pytest.mark.parametrize("fmt", ["default", "zip-store"])
def test_same_files_and_manifest_as_torch_model_archiver(tmp_path: Path, fmt: str) -> None:
    args = tma_inputs(tmp_path)
    theirs, ours = tmp_path / "tma", tmp_path / "markit"
    theirs.mkdir()
    ours.mkdir()
    tma = ensure_venv("tma") / "torch-model-archiver"
    subprocess.run([str(tma), *args, "--archive-format", fmt, "--export-path", str(theirs)], check=True,
                   capture_output=True, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    done = run_markit("create", *args, "--archive-format", fmt, "--export-path", str(ours))
    assert done.returncode == 0, done.stderr
    a, b = read_zip(theirs / "cmp.mar"), read_zip(ours / "cmp.mar")
    assert {n: v for n, v in a.items() if not n.startswith("MAR-INF/")} == {n: v for n, v in b.items() if not n.startswith("MAR-INF/")}
    ma, mb = json.loads(a["MAR-INF/MANIFEST.json"]), json.loads(b["MAR-INF/MANIFEST.json"])
    for m in (ma, mb):
        m.pop("createdOn")
        m.pop("archiverVersion")
    assert ma == mb
    assert list(json.loads(a["MAR-INF/MANIFEST.json"])["model"]) == list(json.loads(b["MAR-INF/MANIFEST.json"])["model"])


def test_same_files_as_mms_model_archiver(tmp_path: Path) -> None:
    theirs, ours = tmp_path / "mms", tmp_path / "markit"
    theirs.mkdir()
    ours.mkdir()
    args = ["--model-name", "cmp", "--model-path", str(EXAMPLE), "--handler", "handler:handle"]
    subprocess.run([str(ensure_venv("mms") / "model-archiver"), *args, "--export-path", str(theirs)], check=True,
                   capture_output=True)
    assert run_markit("create", *args, "--export-path", str(ours)).returncode == 0
    a, b = read_zip(theirs / "cmp.mar"), read_zip(ours / "cmp.mar")
    assert {n: v for n, v in a.items() if not n.startswith("MAR-INF/")} == {n: v for n, v in b.items() if not n.startswith("MAR-INF/")}
    ma, mb = json.loads(a["MAR-INF/MANIFEST.json"]), json.loads(b["MAR-INF/MANIFEST.json"])
    assert (ma["runtime"], ma["model"]["modelName"], ma["model"]["handler"]) == \
        (mb["runtime"], mb["model"]["modelName"], mb["model"]["handler"])


@pytest.mark.parametrize("label", ["tma-default", "tma-zip-store", "tma-tgz"])
def test_replaying_the_committed_runs_gives_the_same_manifest_and_files(tmp_path: Path, label: str) -> None:
    """Fixtures written by the real tool (tests/fixtures/make_real.py): no venv needed."""
    import tarfile

    real = Path(__file__).parent / "fixtures" / "real"
    [run] = [r for r in json.loads((real / "commands.json").read_text())["runs"] if r["label"] == label]
    argv = [a for a in run["argv"][1:]]
    argv[argv.index("--export-path") + 1] = str(tmp_path)
    done = run_markit("create", *argv, cwd=EXAMPLE.parent.parent)
    assert done.returncode == 0, done.stderr
    if label == "tma-tgz":
        def read(path: Path) -> dict[str, bytes]:
            with tarfile.open(path) as t:
                return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}  # type: ignore[union-attr]
        theirs, ours = read(real / run["output"]), read(tmp_path / "squeezenet-like.tar.gz")
    else:
        theirs, ours = read_zip(real / run["output"]), read_zip(tmp_path / "squeezenet-like.mar")
    assert {n: v for n, v in theirs.items() if not n.startswith("MAR-INF/")} == \
        {n: v for n, v in ours.items() if not n.startswith("MAR-INF/")}
    fixture = json.loads((real / run["manifest"]).read_text())
    mine = json.loads(ours["MAR-INF/MANIFEST.json"])
    for m in (fixture, mine):
        m.pop("createdOn")
        m.pop("archiverVersion")
    assert mine == fixture
