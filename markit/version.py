"""markit's version: one place, read by the package, the manifest's ``archiverVersion`` and ``--version``."""

from __future__ import annotations

__all__ = ["VERSION"]

VERSION = "0.1.0"
