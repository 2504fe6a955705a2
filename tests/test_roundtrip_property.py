"""For any tree markit creates: ``verify`` finds no error and ``unpack`` gives back the included files byte for byte."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hostile import run_main

PART = st.text(alphabet="abcXYZ019_-. ü", min_size=1, max_size=6).filter(lambda p: p not in (".", "..")
                                                                         and p.strip() == p)
NAME = st.lists(PART, min_size=1, max_size=3).map("/".join)
TREE = st.dictionaries(NAME, st.binary(max_size=3000), min_size=0, max_size=6).filter(
    lambda t: not any(other.startswith(name + "/") for name in t for other in t))
FORMATS = [("default", "auto"), ("default", "deflate"), ("default", "store"), ("zip-store", None), ("tgz", None),
           ("no-archive", None)]


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    (root / "handler.py").parent.mkdir(parents=True, exist_ok=True)
    (root / "handler.py").write_bytes(b"def handle(data, context):\n    return data\n")
    for name, data in tree.items():
        path = root / name
        if path.name == "handler.py" and path.parent == root:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREE, fmt=st.sampled_from(FORMATS))
def test_create_verify_unpack_round_trip(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tree: dict[str, bytes], fmt: tuple[str, str | None]) -> None:
    archive_format, compression = fmt
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        model = base / "model"
        write_tree(model, tree)
        flags = ["--model-name", "m", "--model-path", str(model), "--handler", "handler:handle", "--export-path",
                 str(base), "--archive-format", archive_format, "-q"]
        flags += ["--compression", compression] if compression else []
        status, out, err = run_main(monkeypatch, capsys, "create", *flags, "--dry-run", "--json")
        assert status == 0, err
        included = {e["name"]: Path(e["source"]).read_bytes() for e in json.loads(out)["entries"]}
        assert run_main(monkeypatch, capsys, "create", *flags)[0] == 0
        archive = base / {"tgz": "m.tar.gz", "no-archive": "m"}.get(archive_format, "m.mar")
        status, out, err = run_main(monkeypatch, capsys, "verify", str(archive), "--json", "--strict")
        assert status == 0 and json.loads(out)["problems"] == [], err
        status, _, err = run_main(monkeypatch, capsys, "unpack", str(archive), "-d", str(base / "out"))
        assert status == 0, err
        got = read_tree(base / "out")
        assert {k: v for k, v in got.items() if not k.startswith("MAR-INF/")} == included
        assert sorted(os.listdir(base)) == sorted(["model", "out", archive.name])
