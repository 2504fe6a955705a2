"""The inclusion and compression rules, as tables."""

from __future__ import annotations

import pytest

from markit.model.names import excluded_name
from markit.write.rules import AUTO_DEFLATE_MAX, choose_method, excluded_by_glob


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (".git", "hidden"),
        (".env", "hidden"),
        (".DS_Store", "Mac system file .DS_Store"),
        ("__MACOSX", "Mac system folder __MACOSX"),
        ("__pycache__", "Python byte-code cache __pycache__"),
        ("model.pyc", "Python byte code (*.pyc)"),
        ("MANIFEST.json", "MANIFEST.json (the archive's own manifest is generated)"),
        ("handler.py", None),
        ("manifest.json", None),
        ("weights.bin", None),
        ("pyc", None),
    ],
)
def test_excluded_name(part: str, expected: str | None) -> None:
    assert excluded_name(part) == expected


@pytest.mark.parametrize(
    ("name", "globs", "matched"),
    [
        ("logs/run.log", ("*.log",), True),
        ("run.log", ("*.log",), True),
        ("tmp/a/b.bin", ("tmp",), True),
        ("tmp/a/b.bin", ("tmp/",), True),
        ("weights/x.bin", ("weights/*.bin",), True),
        ("weights/sub/x.bin", ("weights/sub",), True),
        ("a/weights/x.bin", ("weights/*.bin",), False),
        ("handler.py", ("*.log", "tmp"), False),
        ("handler.py", (), False),
    ],
)
def test_excluded_by_glob(name: str, globs: tuple[str, ...], matched: bool) -> None:
    reason = excluded_by_glob(name, globs)
    assert (reason is not None) == matched
    if matched:
        assert reason is not None and reason.startswith("--exclude ")


@pytest.mark.parametrize(
    ("name", "size", "compression", "method"),
    [
        ("handler.py", 10 << 30, "auto", "deflate"),
        ("config/x.yaml", 100, "auto", "deflate"),
        ("model.safetensors", 10, "auto", "store"),
        ("pytorch_model.BIN", 10 << 30, "auto", "store"),
        ("tokenizer", AUTO_DEFLATE_MAX, "auto", "deflate"),
        ("tokenizer", AUTO_DEFLATE_MAX + 1, "auto", "store"),
        ("model.safetensors", 10, "deflate", "deflate"),
        ("handler.py", 10, "store", "store"),
    ],
)
def test_choose_method(name: str, size: int, compression: str, method: str) -> None:
    chosen, why = choose_method(name, size, compression)
    assert chosen == method
    assert why
