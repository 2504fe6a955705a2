"""Deflate a chunk at a time; stored blocks; all read back by the stdlib's zlib."""

from __future__ import annotations

import os
import random
import zlib

import pytest

from markit.engine.codec import FINAL_STORED_BLOCK, Deflater, stored_blocks, stored_size


def deflate(chunks: list[bytes]) -> bytes:
    d = Deflater()
    out = [bytes(p) for c in chunks for p in d.compress(memoryview(c))]
    return b"".join(out) + d.finish()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 3 << 20])
def test_stored_blocks_decode(size: int) -> None:
    data = os.urandom(size)
    raw = b"".join(bytes(p) for p in stored_blocks(memoryview(data), final=True))
    assert zlib.decompress(raw, -15) == data
    assert len(raw) == stored_size(size) + len(FINAL_STORED_BLOCK)


def test_random_bytes_grow_by_stored_block_headers_only() -> None:
    data = os.urandom(4 << 20)
    chunks = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
    raw = deflate(chunks)
    assert zlib.decompress(raw, -15) == data
    per_mib = stored_size(1 << 20) - (1 << 20)  # 17 block headers: 85 bytes; zlib 9 adds ~320
    assert len(raw) - len(data) <= 4 * per_mib + 8


def test_mixed_chunks_keep_back_references_valid() -> None:
    rnd = random.Random(3)
    text = b"".join(b"line %d of a config file\n" % rnd.randrange(50) for _ in range(40000))
    noise = os.urandom(1 << 20)
    chunks = [text[: 1 << 20], noise, text[: 1 << 20], noise[:1000], text]  # later chunks repeat earlier ones
    raw = deflate(chunks)
    assert zlib.decompress(raw, -15) == b"".join(chunks)
    assert len(raw) < len(b"".join(chunks)) * 0.6
