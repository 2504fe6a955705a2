"""markit against the real torch-workflow-archiver 0.2.15 (in its own virtualenv): the same .war for the
same inputs, and markit reading the .war files it writes."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_markit
from tests.support.venvs import ensure_venv

pytestmark = pytest.mark.realtools

SPEC = """\
models:
  min-workers: 1
  batch-size: 1
  first:
    url: first.mar
  second:
    url: https://example.com/second.mar
    max-workers: 2
dag:
  pre: [first, second]
  first: [post]
  second: [post]
"""
HANDLER = "def pre(data, context):\n    return data\n\n\ndef post(data, context):\n    return data\n"


@pytest.fixture(scope="module")
def twa() -> Path:
    return ensure_venv("twa") / "torch-workflow-archiver"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "workflow.yaml").write_text(SPEC)
    (folder / "wf_handler.py").write_text(HANDLER)
    (folder / "labels.json").write_text('{"0": "a"}')
    (folder / "notes.txt").write_text("notes\n")
    return folder


def run_twa(twa: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(twa), *args], capture_output=True, text=True, timeout=120, check=False,
                          env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def both(twa: Path, src: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The same inputs through torch-workflow-archiver and markit: the two .war files."""
    args = ["--workflow-name", "cmp", "--spec-file", str(src / "workflow.yaml"), "--handler",
            str(src / "wf_handler.py"), "--extra-files", f"{src / 'labels.json'},{src / 'notes.txt'}"]
    theirs, ours = tmp_path / "twa", tmp_path / "markit"
    theirs.mkdir()
    ours.mkdir()
    done = run_twa(twa, tmp_path, *args, "--export-path", str(theirs))
    assert done.returncode == 0, done.stderr
    made = run_markit("create", "-q", *args, "--export-path", str(ours))
    assert made.returncode == 0, made.stderr
    return theirs / "cmp.war", ours / "cmp.war"


def test_same_files_and_manifest_as_torch_workflow_archiver(twa: Path, src: Path, tmp_path: Path) -> None:
    theirs, ours = both(twa, src, tmp_path)
    a, b = read_zip(theirs), read_zip(ours)
    assert set(a) == set(b) - {"WAR-INF/RECORD"}
    assert {n: v for n, v in a.items() if not n.startswith("WAR-INF/")} == {
        n: v for n, v in b.items() if not n.startswith("WAR-INF/")}
    ma, mb = json.loads(a["WAR-INF/MANIFEST.json"]), json.loads(b["WAR-INF/MANIFEST.json"])
    assert list(ma) == list(mb) == ["createdOn", "workflow", "archiverVersion"]
    assert ma["archiverVersion"] == "0.2.15"
    assert ma["workflow"] == mb["workflow"] == {"workflowName": "cmp", "specFile": "workflow.yaml",
                                                "handler": "wf_handler.py"}
    with zipfile.ZipFile(theirs) as z:  # what markit's plan stores or deflates is its own choice; theirs deflates all
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}


@pytest.mark.parametrize("stdin", [False, True])
def test_markit_verifies_and_inspects_their_war(twa: Path, src: Path, tmp_path: Path, stdin: bool) -> None:
    theirs, _ = both(twa, src, tmp_path)
    done = run_markit("verify", "--json", "-" if stdin else str(theirs), stdin=theirs.read_bytes() if stdin else None)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and [p["code"] for p in report["problems"]] == ["no-record"], report
    info = json.loads(run_markit("inspect", "--json", str(theirs)).stdout)
    assert info["manifest"]["workflow"]["specFile"] == "workflow.yaml"
    assert sorted(e["name"] for e in info["entries"]) == ["WAR-INF/MANIFEST.json", "labels.json", "notes.txt",
                                                         "wf_handler.py", "workflow.yaml"]


def test_markit_names_the_line_of_a_bad_spec_that_torch_workflow_archiver_let_in(twa: Path, src: Path,
                                                                                 tmp_path: Path) -> None:
    (src / "workflow.yaml").write_text(SPEC.replace("second: [post]", "second: [pre]"))
    done = run_twa(twa, tmp_path, "--workflow-name", "bad", "--spec-file", str(src / "workflow.yaml"), "--handler",
                   str(src / "wf_handler.py"), "--export-path", str(tmp_path))
    assert done.returncode == 0, done.stderr  # it never reads the spec
    report = json.loads(run_markit("verify", "--json", str(tmp_path / "bad.war")).stdout)
    messages = [p["message"] for p in report["problems"] if p["code"] == "invalid-workflow"]
    assert "workflow.yaml line 10: the dag has a cycle: 'pre' -> 'second' -> 'pre'" in messages, report
    made = run_markit("create", "--workflow-name", "bad", "--spec-file", str(src / "workflow.yaml"), "--handler",
                      str(src / "wf_handler.py"), "-o", str(tmp_path / "markit-bad.war"))
    assert made.returncode == 1 and b"line 10: the dag has a cycle" in made.stderr
    assert not (tmp_path / "markit-bad.war").exists()


def test_a_folder_in_extra_files_goes_in_with_markit_and_stops_torch_workflow_archiver(
        twa: Path, src: Path, tmp_path: Path) -> None:
    (src / "assets").mkdir()
    (src / "assets" / "vocab.txt").write_text("v")
    args = ["--workflow-name", "dirs", "--spec-file", str(src / "workflow.yaml"), "--handler",
            str(src / "wf_handler.py"), "--extra-files", str(src / "assets"), "--export-path", str(tmp_path)]
    assert run_twa(twa, tmp_path, *args).returncode != 0  # shutil.copy of a folder: IsADirectoryError
    assert run_markit("create", "-q", *args, "-f").returncode == 0
    assert "vocab.txt" in read_zip(tmp_path / "dirs.war")
