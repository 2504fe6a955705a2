"""The inclusion and compression rules, as tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markit.model.names import excluded_name
from markit.write.rules import AUTO_DEFLATE_MAX, choose_method, excluded_by_glob, glob_rule, suffix


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


def _reference_glob(name: str, globs: tuple[str, ...]) -> str | None:
    """The rule as first written, one ``fnmatchcase`` at a time through pathlib (the oracle for the compiled one)."""
    import fnmatch
    from pathlib import PurePosixPath

    parts = PurePosixPath(name).parts
    for glob in globs:
        pattern = glob.rstrip("/")
        if fnmatch.fnmatchcase(name, pattern):
            return f"--exclude {glob}"
        if "/" not in pattern and any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return f"--exclude {glob}"
        if "/" in pattern and any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts))):
            return f"--exclude {glob}"
    return None


_PART = st.text(alphabet="ab.x_*?[]!-", min_size=1, max_size=4).filter(lambda p: p not in (".", ".."))
_NAME = st.lists(_PART, min_size=1, max_size=4).map("/".join)
_GLOB = st.one_of(_NAME, _NAME.map(lambda g: g + "/"), st.sampled_from(["*", "*.x", "a*", "*/b", "a/*", "[ab]*", "?", "[!a]"]))


@settings(max_examples=500, deadline=None)
@given(name=_NAME, globs=st.lists(_GLOB, max_size=4).map(tuple))
def test_compiled_globs_decide_as_one_glob_at_a_time(name: str, globs: tuple[str, ...]) -> None:
    """The regular expressions compiled once give the same answer, naming the same (first) glob, as the oracle."""
    assert glob_rule(globs)(name) == excluded_by_glob(name, globs) == _reference_glob(name, globs)


@settings(max_examples=300, deadline=None)
@given(name=_NAME)
def test_suffix_is_pathlibs(name: str) -> None:
    from pathlib import PurePosixPath

    assert suffix(name) == PurePosixPath(name).suffix
