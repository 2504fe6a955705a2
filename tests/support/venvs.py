"""Virtualenvs for the outside tools the tests check markit against.

Each tool lives in its own virtualenv under ``$MARKIT_TEST_CACHE`` (default
``~/.cache/markit-tests``): torch-model-archiver and MMS model-archiver both
install a module named ``model_archiver``, and TorchServe pulls in torch.
A venv is built once, under a file lock, and reused by later runs.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["CACHE", "TOOLS", "ensure_venv"]

CACHE = Path(os.environ.get("MARKIT_TEST_CACHE", Path.home() / ".cache" / "markit-tests"))

# name -> pip requirements. torch==2.13.0 resolves to the machine's local CPU build;
# plain "torch" would pull GBs of CUDA wheels. pyyaml is needed by the worker, undeclared.
TOOLS: dict[str, list[str]] = {
    "tma": ["torch-model-archiver==0.12.0"],
    "mms": ["model-archiver==1.0.3"],
    "torchserve": ["torch==2.13.0", "torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml"],
    # torch-workflow-archiver: the standard library only (it never reads the spec), so nothing else
    "twa": ["torch-workflow-archiver==0.2.15"],
    # the model_signing CLI (OMS signatures); 1.1.1 imports OpenSSL (pyOpenSSL) without declaring it
    "oms": ["model-signing==1.1.1", "pyopenssl"],
}


def ensure_venv(name: str) -> Path:
    """The ``bin`` folder of tool venv *name*, built on first use."""
    root = CACHE / name
    done = root / ".markit-ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
            pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, *TOOLS[name]], check=True)
            done.write_text(" ".join(TOOLS[name]) + "\n")
    return root / "bin"
