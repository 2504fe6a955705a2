"""The pickle scan against real torch 2.13: files ``torch.save`` and ``torch.jit.save`` write, and
``torch.load(weights_only=True)`` as the judge: what it refuses is ``unsafe-pickle``, what it loads is not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import markit
from markit.weights.allowlist import ALLOWED
from tests.support.venvs import ensure_venv

pytestmark = pytest.mark.realtools

MAKE = r'''
import collections, json, os, pickle, sys, torch
out = sys.argv[1]
net = torch.nn.Sequential(*[torch.nn.Linear(16, 16) for _ in range(50)], torch.nn.ReLU())
class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))
torch.save(net.state_dict(), f"{out}/state.pt")
torch.save(net.state_dict(), f"{out}/legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "opt": {"lr": 0.1}, "w": torch.ones(3, dtype=torch.bfloat16)}, f"{out}/ckpt.ckpt")
torch.save(net, f"{out}/whole.pt")
torch.save({"w": torch.ones(2), "x": Evil()}, f"{out}/evil.pt")
torch.jit.save(torch.jit.script(net), f"{out}/scripted.pt")
verdict = {}
for name in sorted(os.listdir(out)):
    try:
        torch.load(f"{out}/{name}", weights_only=True)
        verdict[name] = "loads"
    except Exception as error:
        verdict[name] = "refused: " + str(error).splitlines()[0]
print(json.dumps({"verdict": verdict,
                  "allowed": sorted(torch._weights_only_unpickler._get_allowed_globals())}))
'''


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("torch-files")
    python = ensure_venv("torchserve") / "python"
    done = subprocess.run([str(python), "-c", MAKE, str(folder)], capture_output=True, text=True, timeout=300,
                          check=True)
    return folder, json.loads(done.stdout.splitlines()[-1])


def test_the_allow_list_is_torchs(made: tuple[Path, dict[str, object]]) -> None:
    assert sorted(ALLOWED) == made[1]["allowed"]


@pytest.fixture(scope="module")
def archive(made: tuple[Path, dict[str, object]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = made
    (folder / "handler.py").write_text("def handle(data, context):\n    return data\n")
    out = tmp_path_factory.mktemp("archive") / "m.mar"
    markit.create(model_name="m", handler="handler:handle", model_path=str(folder), output=str(out), force=True)
    (folder / "handler.py").unlink()
    return out


def test_unsafe_exactly_where_weights_only_refuses(made: tuple[Path, dict[str, object]], archive: Path) -> None:
    verdict = made[1]["verdict"]
    assert isinstance(verdict, dict)
    unsafe = {p.path for p in markit.verify(str(archive)).problems if p.code == "unsafe-pickle"}
    # torch.jit.save's archive is refused as TorchScript, not for its globals: torch.jit.load reads it, whose C++
    # unpickler imports no Python
    assert "TorchScript" in verdict["scripted.pt"]
    refused = {name for name, said in verdict.items() if said != "loads" and name != "scripted.pt"}
    assert unsafe == refused == {"whole.pt", "evil.pt"}


def test_the_messages_name_the_file_and_the_global(archive: Path) -> None:
    messages = {p.message for p in markit.verify(str(archive)).problems if p.code == "unsafe-pickle"}
    assert any("'evil.pt'" in m and "posix.system" in m and "evil/data.pkl" in m for m in messages)
    assert any("'whole.pt'" in m and "torch.nn.modules.linear.Linear" in m for m in messages)


def test_inspect_lists_formats_and_imports(archive: Path) -> None:
    weights = markit.inspect(str(archive)).weights
    assert {name: facts.format for name, facts in weights.items()} == {
        "state.pt": "torch-zip", "legacy.pth": "pickle", "ckpt.ckpt": "torch-zip", "whole.pt": "torch-zip",
        "evil.pt": "torch-zip", "scripted.pt": "torchscript"}
    assert set(weights["state.pt"].imports) == {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                "torch.FloatStorage"}
    assert "torch.BFloat16Storage" in weights["ckpt.ckpt"].imports
    assert weights["evil.pt"].refused == ("posix.system",)
