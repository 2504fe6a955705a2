"""The synthetic checkpoint the comparison archives: one big weights file and a few small text files.

Two kinds of weights: ``random`` (incompressible bytes, deflate saves nothing) and
``float32`` (float32 values drawn from N(0, 0.02), what trained weights look like to
deflate: zlib reaches ~0.928 of the size, isal ~0.926, as the issue measured).
"""

from __future__ import annotations

import array
import json
import os
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CASES", "Checkpoint", "make_checkpoint", "sample_ratio"]

CASES = ("random", "float32")
WRITE_CHUNK = 16 << 20  # 16 MiB: few system calls, small enough to keep the generator's memory low
FLOAT_TILE = 16 << 20  # 16 MiB of gaussian floats drawn once (~1.5 s), then reused with changes per tile
WEIGHT_STD = 0.02  # the standard deviation of typical initialised / trained layer weights
SAMPLE = 8 << 20  # 8 MiB: the sample whose zlib ratio is printed, far beyond deflate's 32 KiB window


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder on disk and the flags that archive it."""

    kind: str
    """``random`` or ``float32``."""
    folder: Path
    """The folder holding every file."""
    weights: Path
    """The big file, ``model.bin``."""
    small: tuple[Path, ...]
    """The handler and the small text files."""

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.weights, *self.small)

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def archiver_flags(self) -> list[str]:
        """torch-model-archiver's flags (markit takes the same) for this checkpoint."""
        handler, requirements, *extras = self.small
        return ["--model-name", "bench", "--version", "1.0", "--serialized-file", str(self.weights),
                "--handler", str(handler), "--extra-files", ",".join(str(e) for e in extras),
                "-r", str(requirements)]


HANDLER = '''"""A TorchServe handler for the benchmark checkpoint."""

from ts.torch_handler.base_handler import BaseHandler


class Handler(BaseHandler):
    def postprocess(self, data):
        return data.tolist()
'''


def _small_files(folder: Path) -> tuple[Path, ...]:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 12))) for _ in range(30_000)]
    texts = {
        "handler.py": HANDLER,
        "requirements.txt": "transformers==4.44.0\nsentencepiece\n",
        "config.json": json.dumps({"hidden_size": 4096, "num_layers": 32, "vocab_size": len(words),
                                   "dtype": "float32"}, indent=2) + "\n",
        "index_to_name.json": json.dumps({str(i): w for i, w in enumerate(words[:1000])}, indent=1) + "\n",
        "vocab.txt": "\n".join(words) + "\n",
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    return tuple(folder / name for name in texts)


def _float_tile(rng: random.Random) -> bytearray:
    gauss = rng.gauss
    return bytearray(array.array("f", [gauss(0.0, WEIGHT_STD) for _ in range(FLOAT_TILE // 4)]).tobytes())


def _float_chunks(size: int, seed: int) -> Iterator[memoryview]:
    """float32-like bytes: one gaussian tile, each copy rotated and its lowest mantissa bytes redrawn.

    Deflate sees 32 KiB back, so it cannot exploit a 16 MiB tile; the rotation and the fresh
    low bytes still make every tile different, as real layers are.
    """
    rng = random.Random(seed)
    base = _float_tile(rng)
    done = 0
    while done < size:
        tile = bytearray(base)
        tile[0::4] = os.urandom(len(tile) // 4)  # little-endian: byte 0 is the mantissa's lowest
        turn = 4 * rng.randrange(len(tile) // 4)
        tile = tile[turn:] + tile[:turn]
        piece = memoryview(tile)[: size - done]
        done += len(piece)
        yield piece


def _random_chunks(size: int) -> Iterator[bytes]:
    done = 0
    while done < size:
        piece = os.urandom(min(WRITE_CHUNK, size - done))
        done += len(piece)
        yield piece


def make_checkpoint(root: Path, kind: str, size: int, *, seed: int = 1) -> Checkpoint:
    """Write a checkpoint of *kind* whose weights file holds *size* bytes under *root*/ckpt-*kind*."""
    folder = root / f"ckpt-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.bin"
    chunks: Iterator[bytes | memoryview] = _random_chunks(size) if kind == "random" else _float_chunks(size, seed)
    with open(weights, "wb") as out:
        out.writelines(chunks)
    return Checkpoint(kind, folder, weights, _small_files(folder))


def sample_ratio(path: Path, level: int = 6) -> float:
    """zlib's compressed size over the original for *SAMPLE* bytes from the middle of *path*."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size // 2 - SAMPLE // 2))
        data = f.read(SAMPLE)
    return len(zlib.compress(data, level)) / max(1, len(data))
