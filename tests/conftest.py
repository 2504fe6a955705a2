"""Shared fixtures: the example model, and running the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.servers import RangeServer

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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RangeServer]:
    """An HTTP server on 127.0.0.1 that honours Range and counts what it sends, serving ``tmp_path/www``."""
    from tests.support.servers import range_server

    root = tmp_path / "www"
    root.mkdir()
    with range_server(root) as server:
        yield server
