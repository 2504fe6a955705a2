"""The public API: docs/api.md's examples run as written, and each result's JSON is what the command prints."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import markit
from tests.conftest import run_markit

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "squeezenet-like"


def test_the_documented_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.DOTALL)
    assert len(blocks) >= 8
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "squeezenet-like")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)  # noqa: S102 - our own docs
        except Exception as error:
            raise AssertionError(f"docs/api.md block {number} fails: {error!r}\n{block}") from error
    assert (tmp_path / "unpacked" / "handler.py").read_bytes() == (EXAMPLE / "handler.py").read_bytes()


def test_every_public_name_is_there() -> None:
    for name in markit.__all__:
        assert getattr(markit, name) is not None
    with pytest.raises(AttributeError):
        markit.no_such_thing  # noqa: B018


def _json_of(*args: str, cwd: Path) -> object:
    done = run_markit(*args, cwd=cwd, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_results_are_what_the_json_options_print(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.chdir(tmp_path)
    options = {"model_name": "m", "handler": "handler:handle", "model_path": str(EXAMPLE)}
    planned = markit.create(**options, output="m.mar", dry_run=True).to_json()
    assert planned == _json_of("create", "--model-name", "m", "--handler", "handler:handle", "--model-path",
                               str(EXAMPLE), "-o", "m.mar", "--dry-run", "--json", cwd=tmp_path)
    made = markit.create(**options, output="m.mar")
    assert made.written and made.to_json()["files"] == len(made.plan.entries) + 2
    assert markit.inspect("m.mar").to_json() == _json_of("inspect", "m.mar", "--json", cwd=tmp_path)
    assert markit.verify("m.mar").to_json() == _json_of("verify", "m.mar", "--json", cwd=tmp_path)
    (tmp_path / "cut.mar").write_bytes((tmp_path / "m.mar").read_bytes()[:-40])
    assert markit.verify("cut.mar").to_json() == _json_of("verify", "cut.mar", "--json", cwd=tmp_path)


def test_errors_are_markit_errors(tmp_path: Path) -> None:
    with pytest.raises(markit.UsageError) as usage:
        markit.create(model_name="m", handler="h", model_path=str(EXAMPLE), output="a.mar", export_path=".")
    assert usage.value.exit_code == 2
    with pytest.raises(markit.OutputError):
        markit.create(model_name="m", handler="handler:handle", model_path=str(EXAMPLE),
                      output=str(tmp_path / "no" / "such" / "m.mar"))
    (tmp_path / "x.mar").write_bytes(b"not an archive at all")
    with pytest.raises(markit.ArchiveError):
        markit.inspect(str(tmp_path / "x.mar"))
