"""The synthetic checkpoints the comparison archives.

The one-big-file cases: one weights file and a few small text files, with two kinds of weights:
``random`` (incompressible bytes, deflate saves nothing) and ``float32`` (float32 values drawn from
N(0, 0.02), what trained weights look like to deflate: zlib reaches ~0.928 of the size, isal ~0.926,
as the issue measured).

The other cases (issue 13): ``many-files``, 20,000 files of 4 KiB of random bytes in 40 folders plus a
handler; ``sharded``, 16 shards of 1/16 of the size (128 MiB at 2 GiB) plus a handler and a config;
``scaling``, trees of 10 to 100,000 files of 4 KiB (one case each, ``scale-N``).
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

__all__ = ["BIG", "CASES", "Checkpoint", "family", "make_checkpoint", "make_sharded", "make_tree", "safetensors_header",
           "sample_ratio", "scale_case", "scale_count"]

BIG = ("random", "float32")
"""The one-big-file cases (family ``big``)."""
CASES = (*BIG, "many-files", "sharded", "scaling")
"""What ``--cases`` takes; ``scaling`` stands for one ``scale-N`` case per file count."""
WRITE_CHUNK = 16 << 20  # 16 MiB: few system calls, small enough to keep the generator's memory low
FLOAT_TILE = 16 << 20  # 16 MiB of gaussian floats drawn once (~1.5 s), then reused with changes per tile
WEIGHT_STD = 0.02  # the standard deviation of typical initialised / trained layer weights
SAMPLE = 8 << 20  # 8 MiB: the sample whose zlib ratio is printed, far beyond deflate's 32 KiB window
SMALL_FILE = 4 << 10  # the many-files and scaling cases' files: 4 KiB each
PER_FOLDER = 500  # files per folder in those trees: 20,000 files in 40 folders
SHARDS = 16
MAX_READ_ENTRIES = 100_000  # markit verify/unpack's default --max-entries (a bomb limit)


def family(case: str) -> str:
    """``big`` (random, float32), ``many``, ``sharded`` or ``scale`` (scale-N)."""
    if case in BIG:
        return "big"
    if case == "many-files":
        return "many"
    if case == "sharded":
        return "sharded"
    if case.startswith("scale-"):
        return "scale"
    raise ValueError(f"unknown case {case!r}")


def scale_case(count: int) -> str:
    return f"scale-{count}"


def scale_count(case: str) -> int:
    return int(case.removeprefix("scale-"))


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder on disk and the flags that archive it."""

    kind: str
    """The case: ``random``, ``float32``, ``many-files``, ``sharded`` or ``scale-N``."""
    folder: Path
    """The folder holding every file."""
    handler: Path
    flags: tuple[str, ...]
    """``markit create``'s flags (torch-model-archiver takes the same for the big cases)."""
    total_bytes: int
    file_count: int
    files: tuple[Path, ...] = ()
    """Every file, when there are few (the big and sharded cases); empty for the trees (walk ``folder``)."""
    weights: Path | None = None
    """The big file, ``model.bin`` (big cases only)."""
    description: str = ""
    """One line for the report."""

    def archiver_flags(self) -> list[str]:
        return list(self.flags)

    def reader_flags(self) -> list[str]:
        """verify/unpack flags: ``--max-entries`` raised when the archive holds more than the default allows."""
        entries = self.file_count + 2  # + MAR-INF/MANIFEST.json and MAR-INF/RECORD
        return ["--max-entries", str(2 * entries)] if entries > MAX_READ_ENTRIES else []


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
    small = _small_files(folder)
    handler, requirements, *extras = small
    flags = ("--model-name", "bench", "--version", "1.0", "--serialized-file", str(weights),
             "--handler", str(handler), "--extra-files", ",".join(str(e) for e in extras),
             "-r", str(requirements))
    files = (weights, *small)
    total = sum(f.stat().st_size for f in files)
    return Checkpoint(kind, folder, handler, flags, total, len(files), files, weights,
                      f"one `model.bin` of {size / (1 << 30):g} GiB plus a handler and four small text files"
                      " (~0.5 MiB)")


TREE_HANDLER = '''"""A TorchServe handler (MMS style, handler:handle) for the benchmark trees."""


def handle(data, context):
    return data
'''


def _tree_flags(folder: Path) -> tuple[str, ...]:
    return ("--model-name", "bench", "--version", "1.0", "--model-path", str(folder), "--handler", "handler:handle")


def make_tree(root: Path, case: str, count: int, *, per_folder: int = PER_FOLDER, seed: int = 3) -> Checkpoint:
    """*count* files of 4 KiB of random bytes (seeded), *per_folder* to a folder, plus ``handler.py``.

    The files end in ``.dat``: markit's ``auto`` tries deflate on them, as ``zip -r`` does, and
    stores them when it does not shrink them (random bytes), as ``zip -r`` does too.
    """
    folder = root / f"ckpt-{case}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(count):
        sub = folder / f"d{i // per_folder:03d}"
        if i % per_folder == 0:
            sub.mkdir(exist_ok=True)
        with open(sub / f"f{i:06d}.dat", "wb") as f:
            f.write(rng.randbytes(SMALL_FILE))
    handler = folder / "handler.py"
    handler.write_text(TREE_HANDLER)
    folders = -(-count // per_folder)
    total = count * SMALL_FILE + handler.stat().st_size
    return Checkpoint(case, folder, handler, _tree_flags(folder), total, count + 1,
                      description=f"{count:,} files of 4 KiB of random bytes in {folders:,} folder(s) plus"
                                  " `handler.py`, archived with `--model-path`")


def make_sharded(root: Path, size: int, *, shards: int = SHARDS) -> Checkpoint:
    """*shards* files of *size* / *shards* random bytes (``model-0000i-of-000nn.safetensors``), a handler, a config."""
    folder = root / "ckpt-sharded"
    folder.mkdir(parents=True, exist_ok=True)
    each = size // shards
    files = []
    for i in range(shards):
        path = folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as out:
            header = safetensors_header(each)  # a real header: verify checks it (invalid-weights otherwise)
            out.write(header)
            out.writelines(_random_chunks(each - len(header)))
        files.append(path)
    handler = folder / "handler.py"
    handler.write_text(TREE_HANDLER)
    config = folder / "config.json"
    config.write_text(json.dumps({"hidden_size": 4096, "num_layers": 32, "shards": shards}, indent=2) + "\n")
    every = (*files, handler, config)
    total = sum(f.stat().st_size for f in every)
    return Checkpoint("sharded", folder, handler, _tree_flags(folder), total, len(every), every,
                      description=f"{shards} shards of {each / (1 << 20):g} MiB of random bytes"
                                  " (`model-000NN-of-00016.safetensors`) plus `handler.py` and `config.json`,"
                                  " archived with `--model-path`")


def safetensors_header(size: int, length: int = 128) -> bytes:
    """The 8-byte length and *length*-byte JSON header (space-padded, as the safetensors library pads) of a
    *size*-byte safetensors file holding one U8 tensor: the random bytes after it."""
    data = size - 8 - length
    raw = json.dumps({"weights": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}}).encode()
    return length.to_bytes(8, "little") + raw.ljust(length)


def sample_ratio(path: Path, level: int = 6) -> float:
    """zlib's compressed size over the original for *SAMPLE* bytes from the middle of *path*."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size // 2 - SAMPLE // 2))
        data = f.read(SAMPLE)
    return len(zlib.compress(data, level)) / max(1, len(data))
