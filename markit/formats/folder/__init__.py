"""The ``no-archive`` format: a plain folder, read as an archive and written atomically."""
