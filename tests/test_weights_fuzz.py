"""The weight scanners on damaged input: mutated pickles and torch zips, cut anywhere, fed in random chunks.

Nothing raises; and wherever the real unpickler gets as far as importing a global, the scan has
listed it (the scan may list more: it never stops where the unpickler goes on).
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import random
import zipfile

import pytest

from markit.read.weightscan import WeightScan
from markit.weights.pickles import PickleScan
from tests.test_weights_pickles import Recorder


class System:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


SEEDS = [pickle.dumps(obj, protocol=proto) for proto in range(6) for obj in (
    {"w": [1.5, 2, "x" * 300], "b": b"\0" * 70_000, "s": {1, 2}, "t": (None, True)},
    [System(), {"k": System()}, frozenset({3})],
)]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        at = rng.randrange(len(out))
        kind = rng.random()
        if kind < 0.5:
            out[at] = rng.randrange(256)
        elif kind < 0.7:
            del out[at : at + rng.randint(1, 8)]
        elif kind < 0.9:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            del out[at:]
    return bytes(out)


def feed(target: PickleScan | WeightScan, data: bytes, rng: random.Random) -> None:
    at = 0
    while at < len(data):
        step = rng.choice([1, 2, 7, 64, 4096, 1 << 20])
        target.write(data[at : at + step]) if isinstance(target, WeightScan) else target.feed(data[at : at + step])
        at += step


def mapped(name: str) -> set[str]:
    module, _, attr = name.rpartition(".")
    names = {name}
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        names.add(".".join(_compat_pickle.NAME_MAPPING[(module, attr)]))
    elif module in _compat_pickle.IMPORT_MAPPING:
        names.add(f"{_compat_pickle.IMPORT_MAPPING[module]}.{attr}")
    return names


@pytest.mark.parametrize("seed", range(12))
def test_mutated_pickles_never_hide_an_import(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        data = mutate(rng.choice(SEEDS), rng)
        found = PickleScan()
        feed(found, data, rng)
        found.close()
        recorder = Recorder(data)
        try:
            recorder.load()
        except Exception:  # noqa: BLE001, S110 - the unpickler may fail anywhere: the imports before count
            pass
        listed = set(found.imports)
        for name in recorder.names:
            assert mapped(name) & listed or found.unscanned, (name, data)


def torch_like(rng: random.Random) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        info = zipfile.ZipInfo("archive/data.pkl")
        info.compress_type = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
        z.writestr(info, rng.choice(SEEDS))
        z.writestr("archive/data/0", rng.randbytes(3000))
        z.writestr("archive/version", b"3\n")
    return out.getvalue()


@pytest.mark.parametrize("seed", range(8))
def test_mutated_zips_never_break_the_scan(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        data = mutate(torch_like(rng), rng)
        scan = WeightScan("model.pt", len(data) if rng.random() < 0.5 else None)
        feed(scan, data, rng)
        facts = scan.finish(len(data))
        assert facts is None or "internal error" not in " ".join(p.message for p in facts.problems)


@pytest.mark.parametrize("seed", range(4))
def test_mutated_safetensors_never_break_the_scan(seed: int) -> None:
    rng = random.Random(seed)
    header = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}'
    good = len(header).to_bytes(8, "little") + header + b"\0" * 8
    for _ in range(200):
        data = mutate(good, rng)
        scan = WeightScan("w.safetensors", len(data))
        feed(scan, data, rng)
        facts = scan.finish(len(data))
        assert facts is not None and "internal error" not in " ".join(p.message for p in facts.problems)
