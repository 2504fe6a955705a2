"""Fixtures for the end-to-end tests: one TorchServe server for the whole session."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.torchserve import TorchServe
from tests.support.venvs import ensure_venv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts a real TorchServe (needs java; slow)")


@pytest.fixture(scope="session")
def torchserve_bin() -> Path:
    """The ``bin`` folder of the TorchServe venv (torchserve, torch-model-archiver, python)."""
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("java is not on PATH: CI must run the end-to-end tests")
        pytest.skip("java is not on PATH")
    return ensure_venv("torchserve")


@pytest.fixture(scope="session")
def torchserve_server(torchserve_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorchServe]:
    """A running TorchServe on 127.0.0.1; copy archives into ``.model_store`` and register them."""
    with TorchServe(torchserve_bin, tmp_path_factory.mktemp("torchserve")) as server:
        yield server
