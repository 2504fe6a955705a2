"""markit: create, inspect, verify and unpack TorchServe / MMS model archives."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
