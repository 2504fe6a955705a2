"""markit's workflow archives in the real TorchServe 0.12.0: two models and a workflow, all archived by
markit, registered through ``POST /workflows?url=NAME.war``, answering ``/wfpredict/NAME`` with what the
DAG computes: ``pre`` (a function of the workflow handler) -> ``first`` -> ``second`` (two models).

The models need no weights: ``first`` appends ``|first`` to its input and ``second`` reverses it, so an
answer shows every node ran, once, in the DAG's order. One case writes the .war to a file, one to stdout
through a pipe.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.torchserve import TorchServe, TorchServeError
from tests.support.java import read_with_zipinputstream

pytestmark = pytest.mark.e2e

MARKIT = [sys.executable, "-m", "markit", "create", "-q"]

MODEL_HANDLER = '''
def handle(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        body = row.get("body") or row.get("data") or b""
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else str(body)
        out.append({OP})
    return out
'''
OPS = {"first": 'text + "|first"', "second": "text[::-1]"}

SPEC = """\
models:
  min-workers: 1
  max-workers: 1
  batch-size: 1
  first:
    url: {first}
  second:
    url: {second}
dag:
  pre: [first]
  first: [second]
"""

WORKFLOW_HANDLER = '''
def pre(data, context):
    if data is None:  # TorchServe calls each function once with None when its worker starts
        return None
    out = []
    for row in data:
        body = row.get("body") or row.get("data") or b""
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else str(body)
        out.append(text.strip() + "|pre")
    return out
'''


def expected(body: str) -> str:
    """What the DAG computes for *body*: pre, then first, then second."""
    return (body.strip() + "|pre" + "|first")[::-1]


def _models(store: Path, source: Path, tag: str) -> dict[str, str]:
    """Archive the two models with markit into the model store; their .mar names by node."""
    names = {}
    for node, op in OPS.items():
        folder = source / node
        folder.mkdir(parents=True)
        (folder / "handler.py").write_text(MODEL_HANDLER.replace("{OP}", op))
        names[node] = f"{tag}-{node}.mar"
        subprocess.run([*MARKIT, "--model-name", f"{tag}-{node}", "--model-path", str(folder), "--handler",
                        "handler:handle", "-o", str(store / names[node])], check=True, timeout=120)
    return names


def _call(server: TorchServe, method: str, url: str, body: bytes | None = None) -> object:
    return server._call(method, url, body)


def _register(server: TorchServe, war: str) -> None:
    query = urllib.parse.urlencode({"url": war})
    answer = _call(server, "POST", f"{server.management_url}/workflows?{query}")
    assert "registered" in str(answer).lower(), answer


def _unregister(server: TorchServe, name: str) -> None:
    try:
        _call(server, "DELETE", f"{server.management_url}/workflows/{name}")
    except TorchServeError:
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(m["modelName"].startswith(f"{name}__") for m in server.list_models()):
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["file", "stdout"])
def test_markit_workflow_registers_and_predicts(torchserve_server: TorchServe, tmp_path: Path, how: str) -> None:
    store = torchserve_server.model_store
    tag = f"wf{how}"
    models = _models(store, tmp_path, tag)
    (tmp_path / "spec.yaml").write_text(SPEC.format(**models))
    (tmp_path / "wf_handler.py").write_text(WORKFLOW_HANDLER)
    war = store / f"{tag}.war"
    flags = ["--workflow-name", tag, "--spec-file", str(tmp_path / "spec.yaml"), "--handler",
             str(tmp_path / "wf_handler.py")]
    if how == "file":
        subprocess.run([*MARKIT, *flags, "--export-path", str(store)], check=True, timeout=120)
    else:
        command = " ".join([*MARKIT, *flags, "-o", "-"]) + f" | cat > {war}"
        subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, timeout=120)
    names = {entry.name for entry in read_with_zipinputstream(war)}
    assert names == {"WAR-INF/MANIFEST.json", "WAR-INF/RECORD", "spec.yaml", "wf_handler.py"}
    _register(torchserve_server, war.name)
    try:
        for body in ("hello", "workflow in torchserve"):
            answer = _call(torchserve_server, "POST", f"{torchserve_server.inference_url}/wfpredict/{tag}",
                           body.encode())
            assert answer == expected(body), (body, answer)
        registered = {m["modelName"] for m in torchserve_server.list_models()}
        assert {f"{tag}__first", f"{tag}__second"} <= registered  # the DAG's models, named WORKFLOW__NODE
        listed = _call(torchserve_server, "GET", f"{torchserve_server.management_url}/workflows")
        assert tag in str(listed), listed
    finally:
        _unregister(torchserve_server, tag)
