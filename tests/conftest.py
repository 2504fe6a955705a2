"""Shared fixtures: the example model, and running the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "squeezenet-like"


def run_markit(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """``python -m markit ARGS`` in a subprocess, capturing stdout and stderr as bytes."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "markit", *args], cwd=cwd, env=full_env,
                          input=stdin, capture_output=True, timeout=600, check=False)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the example model (tests may touch and chmod it)."""
    import shutil

    dest = tmp_path / "squeezenet-like"
    shutil.copytree(EXAMPLE, dest)
    return dest
