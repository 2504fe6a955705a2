"""The limits past which an archive being read is a ``bomb``, and the caps on what is kept in memory."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MANIFEST_MAX", "RATIO_FROM", "RECORD_MAX", "Limits"]

MANIFEST_MAX = 1 << 20  # 1 MiB: a manifest is under 1 KiB; more is not a manifest
RECORD_MAX = 32 << 20  # 32 MiB: a row is ~150 bytes, so ~220,000 files, over the --max-entries default
RATIO_FROM = 1 << 20  # ratios are judged only for entries (and streams) that declare or produce more than 1 MiB


@dataclass(frozen=True)
class Limits:
    """The limits past which an archive is a ``bomb``; ``verify``/``unpack`` flags change them."""

    max_size: int = 1 << 40
    """Total declared bytes, once uncompressed: 1 TiB, twice the largest checkpoints served today."""
    max_ratio: float = 100.0
    """Uncompressed / compressed bytes of one entry over :data:`RATIO_FROM` (zip) or of the whole stream
    (tar.gz). Real weights barely compress (a float32 checkpoint deflates ~1.08:1; text and sparse
    tensors reach 5-20:1), while deflate reaches 1032:1 on zeros: at 1100 a 4 MB entry could declare
    4 GiB of zeros and be written out in full. 100 stops that at 400 MB; raise it (``--max-ratio``) for
    an archive of highly compressible files."""
    max_entries: int = 100_000
    """Entries: a model archive holds tens to thousands; 100,000 leaves room for a checkpoint split
    in many shards or a vendored dataset. Reading costs up to ~1 KB of memory per entry, so memory
    stays under 64 MiB up to ~25,000 entries and grows past it (~100 MiB at the limit)."""
