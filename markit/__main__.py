"""``python -m markit``: the same as the ``markit`` console script."""

from __future__ import annotations

from markit.cli import main

if __name__ == "__main__":
    main()
