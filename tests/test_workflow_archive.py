"""Workflow archives (.war) end to end without outside tools: ``markit create --workflow-name`` and
``verify``/``inspect``/``unpack`` on markit's .war and on hand-made ones, read back with ``zipfile``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import markit
from tests.conftest import run_markit

SPEC = """\
models:
  min-workers: 1
  first:
    url: first.mar
  second:
    url: second.mar
dag:
  pre: [first]
  first: [second]
"""
HANDLER = "def pre(data, context):\n    return data\n"
MANIFEST = {"createdOn": "01/01/2020 00:00:00",
            "workflow": {"workflowName": "wf", "specFile": "spec.yaml", "handler": "wf_handler.py"},
            "archiverVersion": "0.2.15"}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "assets" / "sub").mkdir(parents=True)
    (src / "spec.yaml").write_text(SPEC)
    (src / "wf_handler.py").write_text(HANDLER)
    (src / "labels.txt").write_text("a\nb\n")
    (src / "assets" / "a.json").write_text("{}")
    (src / "assets" / "sub" / "b.txt").write_text("b")
    (src / "assets" / "WAR-INF").mkdir()
    (src / "assets" / "WAR-INF" / "RECORD").write_text("stale")
    return src


def flags(src: Path, *extra: str) -> list[str]:
    return ["create", "-q", "--workflow-name", "wf", "--spec-file", str(src / "spec.yaml"), "--handler",
            str(src / "wf_handler.py"), *extra]


def read_zip(data: bytes | Path) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as z:
        assert z.testzip() is None
        return {info.filename: z.read(info) for info in z.infolist()}


def test_create_writes_the_files_manifest_and_record(inputs: Path, tmp_path: Path) -> None:
    extra = f"{inputs / 'labels.txt'},{inputs / 'assets'}"
    done = run_markit(*flags(inputs, "--extra-files", extra, "--export-path", str(tmp_path)))
    assert done.returncode == 0, done.stderr
    files = read_zip(tmp_path / "wf.war")
    assert set(files) == {"WAR-INF/MANIFEST.json", "WAR-INF/RECORD", "spec.yaml", "wf_handler.py", "labels.txt",
                          "a.json", "sub/b.txt"}  # a folder's contents at the root, subfolders kept; its WAR-INF/ out
    manifest = json.loads(files["WAR-INF/MANIFEST.json"])
    assert manifest["workflow"] == MANIFEST["workflow"] and list(manifest) == list(MANIFEST)
    rows = [line.split(",") for line in files["WAR-INF/RECORD"].decode().splitlines()]
    assert rows[-1] == ["WAR-INF/RECORD", "", ""]
    for name, digest, size in rows[:-1]:
        assert digest == "sha256=" + hashlib.sha256(files[name]).hexdigest() and int(size) == len(files[name])


def test_dry_run_shows_the_plan_and_writes_nothing(inputs: Path, tmp_path: Path) -> None:
    done = run_markit(*flags(inputs, "--extra-files", str(inputs / "assets"), "--dry-run", "--json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["workflow_name"] == "wf" and plan["output"] == "./wf.war"
    assert plan["manifest"]["workflow"] == MANIFEST["workflow"]
    assert {x["name"]: x["reason"] for x in plan["excluded"]} == {
        "WAR-INF/RECORD": "WAR-INF/ is reserved: markit writes the archive's own"}
    assert not (tmp_path / "wf.war").exists()
    text = run_markit(*flags(inputs, "--dry-run"), cwd=tmp_path)
    assert b"generate WAR-INF/MANIFEST.json, WAR-INF/RECORD" in text.stdout


def test_reproducible_with_source_date_epoch_and_the_same_to_stdout(inputs: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    outs = []
    for n in (1, 2):
        done = run_markit(*flags(inputs, "-o", str(tmp_path / f"{n}.war")), env=env)
        assert done.returncode == 0, done.stderr
        outs.append((tmp_path / f"{n}.war").read_bytes())
    assert outs[0] == outs[1]
    assert json.loads(read_zip(outs[0])["WAR-INF/MANIFEST.json"])["createdOn"] == "14/11/2023 22:13:20"
    piped = run_markit(*flags(inputs, "-o", "-"), env=env)
    assert piped.returncode == 0, piped.stderr
    assert read_zip(piped.stdout) == read_zip(outs[0])


def test_a_spec_error_names_its_line_and_leaves_nothing(inputs: Path, tmp_path: Path) -> None:
    (inputs / "spec.yaml").write_text(SPEC.replace("first: [second]", "first: [third]"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "wf.war").write_bytes(b"the old archive")
    done = run_markit(*flags(inputs, "--export-path", str(out), "-f"))
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        (f"markit: --spec-file {inputs / 'spec.yaml'}: spec.yaml line 9: dag node 'third' is neither a model of"
         " 'models:' nor a function defined at the top level of wf_handler.py")]
    assert sorted(os.listdir(out)) == ["wf.war"] and (out / "wf.war").read_bytes() == b"the old archive"


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        (["--model-name", "m"], 2, "not both"),
        (["--archive-format", "tgz"], 2, "a workflow archive (.war) is a zip"),
        (["--model-path", "."], 2, "--spec-file makes a workflow archive"),
    ],
)
def test_usage_errors_are_one_line(inputs: Path, tmp_path: Path, extra: list[str], code: int, words: str) -> None:
    done = run_markit(*flags(inputs, *extra, "-o", str(tmp_path / "x.war")))
    assert done.returncode == code and words in done.stderr.decode()
    assert len(done.stderr.decode().strip().splitlines()) == 1 and not (tmp_path / "x.war").exists()


def test_a_workflow_name_needs_a_spec_and_the_handler_is_a_py_file(inputs: Path, tmp_path: Path) -> None:
    done = run_markit("create", "--workflow-name", "wf", "--handler", str(inputs / "wf_handler.py"))
    assert done.returncode == 2 and b"--workflow-name needs --spec-file" in done.stderr
    (inputs / "h.txt").write_text(HANDLER)
    done = run_markit("create", "--workflow-name", "wf", "--spec-file", str(inputs / "spec.yaml"), "--handler",
                      str(inputs / "h.txt"), "-o", str(tmp_path / "x.war"))
    assert done.returncode == 1 and b"a workflow's handler is a .py file" in done.stderr


def test_without_pyyaml_create_says_which_extra_to_install(inputs: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['yaml'] = None; sys.argv[0] = 'markit'; from markit.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, *flags(inputs, "-o", str(tmp_path / "x.war"))],
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == ("markit: reading a workflow spec needs PyYAML:"
                                            " pip install 'markit[workflow]'")


def test_the_api_makes_a_workflow(inputs: Path, tmp_path: Path) -> None:
    made = markit.create(workflow_name="wf", spec_file=str(inputs / "spec.yaml"),
                         handler=str(inputs / "wf_handler.py"), export_path=str(tmp_path))
    assert made.archive == os.path.join(str(tmp_path), "wf.war") and made.plan.kind == "workflow"
    assert made.files == 4
    report = markit.verify(made.archive)
    assert report.ok(strict=True), report.problems


def test_markit_verifies_and_inspects_its_own_war_from_a_file_and_stdin(inputs: Path, tmp_path: Path) -> None:
    run_markit(*flags(inputs, "-o", str(tmp_path / "wf.war")))
    for args, stdin in (([str(tmp_path / "wf.war")], None), (["-"], (tmp_path / "wf.war").read_bytes())):
        done = run_markit("verify", "--strict", "--json", *args, stdin=stdin)
        assert done.returncode == 0 and json.loads(done.stdout)["problems"] == [], done.stdout
    shown = run_markit("inspect", str(tmp_path / "wf.war")).stdout.decode()
    assert "workflow  wf" in shown and "spec      spec.yaml" in shown and "handler   wf_handler.py" in shown
    info = json.loads(run_markit("inspect", "--json", str(tmp_path / "wf.war")).stdout)
    assert info["manifest"]["workflow"]["workflowName"] == "wf"
    assert {e["name"]: e["sha256"] for e in info["entries"]}["spec.yaml"] == hashlib.sha256(SPEC.encode()).hexdigest()


def test_unpack_names_the_folder_after_the_workflow(inputs: Path, tmp_path: Path) -> None:
    made = tmp_path / "made"
    made.mkdir()
    run_markit(*flags(inputs, "-o", str(made / "wf.war")))
    for args, stdin in (([str(made / "wf.war")], None), (["-"], (made / "wf.war").read_bytes())):
        out = tmp_path / ("file" if stdin is None else "stdin")
        out.mkdir()
        done = run_markit("unpack", *args, cwd=out, stdin=stdin)
        assert done.returncode == 0, done.stderr
        assert os.listdir(out) == ["wf"]  # wf.war -> wf/; from stdin, workflow.workflowName
        assert (out / "wf" / "spec.yaml").read_text() == SPEC


def war(path: Path, files: dict[str, str | bytes], manifest: object = MANIFEST, *, last: bool = True) -> Path:
    """A .war as torch-workflow-archiver writes one (files, then the manifest) or the manifest first."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        body = manifest if isinstance(manifest, (str, bytes)) else json.dumps(manifest, indent=2)
        if not last:
            z.writestr("WAR-INF/MANIFEST.json", body)
        for name, data in files.items():
            z.writestr(name, data)
        if last:
            z.writestr("WAR-INF/MANIFEST.json", body)
    return path


def codes(path: Path, *, stdin: bool = False) -> list[tuple[str, str | None, str]]:
    done = run_markit("verify", "--json", "-" if stdin else str(path), stdin=path.read_bytes() if stdin else None)
    return [(p["code"], p["path"], p["message"]) for p in json.loads(done.stdout)["problems"]]


GOOD_FILES: dict[str, str | bytes] = {"spec.yaml": SPEC, "wf_handler.py": HANDLER}


@pytest.mark.parametrize("stdin", [False, True])
def test_verify_names_the_spec_line_of_a_bad_dag_in_one_pass(tmp_path: Path, stdin: bool) -> None:
    bad = SPEC.replace("  second:\n    url: second.mar\n", "  second:\n    batch-size: 1\n")
    found = codes(war(tmp_path / "bad.war", {"spec.yaml": bad, "wf_handler.py": HANDLER}), stdin=stdin)
    assert ("invalid-workflow", "spec.yaml", "spec.yaml line 5: model 'second' has no url") in found
    assert [c for c, _, _ in found] == ["invalid-workflow", "no-record"]


@pytest.mark.parametrize(
    ("files", "manifest", "expected"),
    [
        ({"spec.yaml": SPEC}, MANIFEST, ("missing-file", "wf_handler.py")),
        ({"wf_handler.py": HANDLER}, MANIFEST, ("missing-file", "spec.yaml")),
        (GOOD_FILES, "{not json", ("invalid-manifest", "WAR-INF/MANIFEST.json")),
        (GOOD_FILES, {k: v for k, v in MANIFEST.items() if k != "createdOn"}, ("invalid-manifest",
                                                                               "WAR-INF/MANIFEST.json")),
        (GOOD_FILES, {**MANIFEST, "workflow": {"workflowName": "wf"}}, ("invalid-manifest", "WAR-INF/MANIFEST.json")),
        (GOOD_FILES, {**MANIFEST, "workflow": {**MANIFEST["workflow"], "workflowName": "w f"}},  # type: ignore[dict-item]
         ("invalid-model-name", "WAR-INF/MANIFEST.json")),
        ({"spec.yaml": SPEC.replace("url: first.mar", "url: models/first.mar"), "wf_handler.py": HANDLER}, MANIFEST,
         ("model-url", "spec.yaml")),
        ({"spec.yaml": SPEC, "wf_handler.py": "def post(d, c): pass\n"}, MANIFEST, ("invalid-workflow", "spec.yaml")),
        ({"spec.txt": SPEC, "wf_handler.py": HANDLER},
         {**MANIFEST, "workflow": {**MANIFEST["workflow"], "specFile": "spec.txt"}},  # type: ignore[dict-item]
         ("workflow-unchecked", "spec.txt")),
    ],
)
def test_verify_reports_each_workflow_problem(tmp_path: Path, files: dict[str, str | bytes], manifest: object,
                                              expected: tuple[str, str]) -> None:
    found = codes(war(tmp_path / "x.war", files, manifest))
    assert expected in [(c, p) for c, p, _ in found], found


def test_verify_checks_a_war_against_its_record(inputs: Path, tmp_path: Path) -> None:
    run_markit(*flags(inputs, "-o", str(tmp_path / "wf.war")))
    files = read_zip(tmp_path / "wf.war")
    files["wf_handler.py"] = HANDLER.replace("data", "rows").encode()
    with zipfile.ZipFile(tmp_path / "changed.war", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    found = codes(tmp_path / "changed.war")
    assert [(c, p) for c, p, _ in found] == [("digest-mismatch", "wf_handler.py")]


def test_a_tar_workflow_is_not_what_torchserve_loads(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "wf.tar.gz", "w:gz") as tar:
        for name, data in {**GOOD_FILES, "WAR-INF/MANIFEST.json": json.dumps(MANIFEST)}.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(f"wf/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    found = codes(tmp_path / "wf.tar.gz")
    assert [c for c, _, _ in found] == ["no-record", "torchserve-incompatible"]


def test_unpack_takes_a_sound_war_and_refuses_a_bad_spec(inputs: Path, tmp_path: Path) -> None:
    run_markit(*flags(inputs, "-o", str(tmp_path / "wf.war")))
    done = run_markit("unpack", str(tmp_path / "wf.war"), "-d", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["WAR-INF", "spec.yaml", "wf_handler.py"]
    bad = war(tmp_path / "bad.war", {"spec.yaml": SPEC.replace("[second]", "[pre]"), "wf_handler.py": HANDLER})
    done = run_markit("unpack", str(bad), "-d", str(tmp_path / "bad"))
    assert done.returncode == 1 and b"invalid-workflow" in done.stderr and not (tmp_path / "bad").exists()


def test_what_the_data_pass_keeps_is_bounded_and_what_it_did_not_keep_is_said(tmp_path: Path) -> None:
    """16 root .py files of 1 MiB use up the 16 MiB kept for workflow candidates: the spec and handler after
    them are not kept, so not checked, and verify says so rather than guessing."""
    padding = {f"pad{n:02}.py": b"#" * (1 << 20) for n in range(16)}
    bad_spec = SPEC.replace("[second]", "[ghost]")
    path = war(tmp_path / "big.war", {**padding, "spec.yaml": bad_spec, "wf_handler.py": HANDLER}, last=False)
    found = [(c, p) for c, p, _ in codes(path)]
    assert ("workflow-unchecked", "spec.yaml") in found and ("workflow-unchecked", "wf_handler.py") in found
    assert "invalid-workflow" not in [c for c, _ in found]
    small = war(tmp_path / "small.war", {**dict(list(padding.items())[:4]), "spec.yaml": bad_spec,
                                         "wf_handler.py": HANDLER})
    assert ("invalid-workflow", "spec.yaml") in [(c, p) for c, p, _ in codes(small, stdin=True)]


def test_a_spec_and_handler_by_url_are_checked_and_archived(inputs: Path, tmp_path: Path) -> None:
    from tests.support.servers import clean_env, have, range_server

    if not have("fsspec", "aiohttp"):
        pytest.skip("remote inputs need fsspec and aiohttp")
    with range_server(inputs) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        args = ["create", "-q", "--workflow-name", "wf", "--spec-file", f"{base}/spec.yaml", "--handler",
                f"{base}/wf_handler.py", "-o", str(tmp_path / "wf.war")]
        done = run_markit(*args, env=clean_env())
        assert done.returncode == 0, done.stderr
        assert read_zip(tmp_path / "wf.war")["spec.yaml"] == SPEC.encode()
        (inputs / "spec.yaml").write_text(SPEC.replace("[second]", "[ghost]"))
        done = run_markit(*args, "-f", env=clean_env())
    assert done.returncode == 1 and b"spec.yaml line 9: dag node 'ghost'" in done.stderr
