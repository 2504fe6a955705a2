"""Which members are weight files by their names (``inspect`` looks into these; ``verify`` also sniffs bytes)."""

from __future__ import annotations

__all__ = ["PICKLE_SUFFIXES", "SAFETENSORS_SUFFIX", "weight_name"]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".ckpt", ".pickle")
"""Names scanned as pickles (or torch zips) whatever their first bytes."""
SAFETENSORS_SUFFIX = ".safetensors"


def weight_name(name: str) -> bool:
    """Whether *name* says it is a weight file."""
    return name.endswith(PICKLE_SUFFIXES) or name.endswith(SAFETENSORS_SUFFIX)
