"""The progress bar: drawn only when enabled, throttled, cleared at the end."""

from __future__ import annotations

import io

import pytest

from markit.cli.progress import Progress, human_bytes


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


def test_draws_bytes_rate_and_eta_then_clears() -> None:
    out = io.StringIO()
    bar = Progress(4 << 20, "model", enabled=True, stream=out)
    bar.advance(1 << 20)
    first = out.getvalue()
    assert first.startswith("\rmodel [") and "25%" in first and "1.0 MiB/4.0 MiB" in first and "ETA" in first
    bar.advance(1 << 20)  # within 0.1 s of the last draw: not redrawn
    assert out.getvalue() == first
    bar.close()
    assert out.getvalue().endswith("\r\033[K")


def test_disabled_draws_nothing() -> None:
    out = io.StringIO()
    bar = Progress(10, "m", enabled=False, stream=out)
    bar.advance(10)
    bar.close()
    assert out.getvalue() == ""
