"""Weight files inside archives: ``verify`` reports unsafe pickles and lying safetensors headers from the one data
pass (zip, tar.gz, stdin), and ``inspect`` shows each weight file's format, imports and safetensors header."""

from __future__ import annotations

import io
import json
import pickle
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

import markit
from tests.conftest import run_markit
from tests.support.hostile import Unseekable, ZEntry, build_zip, sound_files, tgz_of, zip_of

EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."  # protocol 0
STATE = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)


def torch_like(data_pkl: bytes, *, method: int = zipfile.ZIP_STORED, streamed: bool = False,
               before: dict[str, bytes] | None = None) -> bytes:
    """A zip laid out as torch.save writes it: ``archive/data.pkl`` (after *before*), then tensor data."""
    out = io.BytesIO()
    target = Unseekable(out) if streamed else out
    with zipfile.ZipFile(target, "w") as z:  # type: ignore[arg-type]
        for name, data in (before or {}).items():
            z.writestr(zipfile.ZipInfo(f"archive/{name}"), data)
        info = zipfile.ZipInfo("archive/data.pkl")
        info.compress_type = method
        z.writestr(info, data_pkl)
        z.writestr(zipfile.ZipInfo("archive/data/0"), bytes(range(256)) * 64)
    return out.getvalue()


def safetensors_file() -> bytes:
    return save({"w": np.zeros((3, 4), np.float32), "b": np.arange(5, dtype=np.int64)}, metadata={"by": "test"})


def codes(path: Path) -> list[tuple[str, str | None]]:
    return [(p.code, p.path) for p in markit.verify(str(path)).problems if p.code != "no-record"]


@pytest.fixture(params=["zip", "tar.gz"])
def pack(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**files: bytes) -> Path:
        full = sound_files(**files)
        path = tmp_path / ("m.mar" if request.param == "zip" else "m.tar.gz")
        path.write_bytes(zip_of(full) if request.param == "zip" else tgz_of(full))
        return path
    return make


@pytest.mark.parametrize("name, data", [
    ("evil.pkl", EVIL),
    ("model.pt", torch_like(EVIL)),
    ("model.pt", torch_like(EVIL, method=zipfile.ZIP_DEFLATED)),
    ("model.pt", torch_like(EVIL, streamed=True)),  # data descriptors, no sizes in local headers
    ("weights", pickle.dumps([1], protocol=2) + EVIL.replace(b"(S'", b"(S'")),  # no suffix: found by its bytes
])
def test_unsafe_pickles_are_errors(pack, name: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    if name == "weights":
        data = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."
    path = pack(**{name: data})
    report = markit.verify(str(path))
    found = [p for p in report.problems if p.code == "unsafe-pickle"]
    assert found and found[0].severity == "error" and not report.ok()
    assert found[0].path == name and "os.system" in found[0].message


def test_safe_weights_pass(pack) -> None:  # type: ignore[no-untyped-def]
    path = pack(**{"model.pt": torch_like(STATE), "w.safetensors": safetensors_file(), "legacy.pth": STATE * 3,
                   "random.bin": random.Random(0).randbytes(1 << 20)})
    assert codes(path) == []


def test_a_pickle_the_walk_cannot_reach_is_read_from_the_kept_end(tmp_path: Path) -> None:
    # a stored entry of unknown length before data.pkl stops the walk; the zip's last 16 MiB are kept for its
    # central directory, and a pickle that lies within them is scanned from there
    inner = torch_like(EVIL, streamed=True, before={"data/9": b"\x00" * 5000})
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of(sound_files(**{"model.pt": inner})))
    messages = [p.message for p in markit.verify(str(path)).problems if p.code == "unsafe-pickle"]
    assert len(messages) == 1 and "imports os.system" in messages[0] and "archive/data.pkl" in messages[0]


def test_a_pickle_out_of_reach_is_not_passed(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(Unseekable(inner), "w") as z:  # type: ignore[arg-type]
        z.writestr(zipfile.ZipInfo("archive/data/9"), b"\x00" * 5000)  # stored, its end unknown: the walk stops
        z.writestr(zipfile.ZipInfo("archive/data.pkl"), EVIL)
        z.writestr(zipfile.ZipInfo("archive/data/0"), random.Random(2).randbytes(17 << 20))  # past the kept end
    path = tmp_path / "m.mar"
    path.write_bytes(build_zip([ZEntry(n, d, method=0) for n, d in
                                sound_files(**{"model.pt": inner.getvalue()}).items()]))
    messages = [p.message for p in markit.verify(str(path)).problems if p.code == "unsafe-pickle"]
    assert len(messages) == 1 and "could not scan" in messages[0] and "archive/data.pkl" in messages[0]


def test_torchscript_pickles_may_name_their_classes(tmp_path: Path) -> None:
    ts = pickle.dumps(1, protocol=2).replace(b"K\x01", b"c__torch__.Model\nX\n)\x81")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", ts)
        z.writestr("archive/constants.pkl", pickle.dumps((), protocol=2))
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of(sound_files(**{"model.pt": out.getvalue()})))
    assert codes(path) == []
    assert markit.inspect(str(path)).weights["model.pt"].format == "torchscript"


@pytest.mark.parametrize("lie, said", [
    (struct.pack("<Q", 10**6) + b"{}", "past the file's end"),
    (lambda d: d[:-4], "of the data, which holds"),  # the data cut short
])
def test_lying_safetensors_are_invalid_weights(pack, lie, said: str) -> None:  # type: ignore[no-untyped-def]
    data = lie(safetensors_file()) if callable(lie) else lie
    path = pack(**{"w.safetensors": data})
    found = [p for p in markit.verify(str(path)).problems if p.code == "invalid-weights"]
    assert len(found) == 1 and said in found[0].message and found[0].path == "w.safetensors"


def test_verify_from_stdin(tmp_path: Path) -> None:
    data = zip_of(sound_files(**{"evil.pkl": EVIL}))
    done = run_markit("verify", "-", "--json", stdin=data)
    assert done.returncode == 1
    assert [p["code"] for p in json.loads(done.stdout)["problems"] if p["code"] != "no-record"] == ["unsafe-pickle"]


def test_inspect_json_shows_weights(pack) -> None:  # type: ignore[no-untyped-def]
    path = pack(**{"w.safetensors": safetensors_file(), "model.pt": torch_like(STATE), "evil.pkl": EVIL})
    done = run_markit("inspect", str(path), "--json")
    assert done.returncode == 0, done.stderr
    entries = {e["name"]: e for e in json.loads(done.stdout)["entries"]}
    assert entries["w.safetensors"]["safetensors"] == {"tensors": 2, "parameters": 17, "dtypes": {"F32": 1, "I64": 1},
                                                       "metadata": {"by": "test"}}
    assert entries["model.pt"]["weights"]["format"] == "torch-zip"
    assert entries["model.pt"]["weights"]["imports"] == []  # a dict of floats imports nothing
    assert entries["evil.pkl"]["weights"] == {"format": "pickle", "imports": ["os.system"], "refused": ["os.system"],
                                              "note": None}
    assert "safetensors" not in entries["handler.py"] and "weights" not in entries["handler.py"]


def test_inspect_table_shows_weights(pack) -> None:  # type: ignore[no-untyped-def]
    path = pack(**{"w.safetensors": safetensors_file(), "evil.pkl": EVIL, "empty.pkl": pickle.dumps({}, protocol=2)})
    out = run_markit("inspect", str(path)).stdout.decode()
    weights = out[out.index("\nweights\n"):].splitlines()[2:]
    assert weights == ["  w.safetensors  safetensors", "    2 tensors, 17 parameters (F32 x1, I64 x1)",
                       "    metadata {\"by\": \"test\"}",
                       "  evil.pkl  pickle", "    imports os.system",
                       "    refused by torch.load(weights_only=True): os.system",
                       "  empty.pkl  pickle", "    imports nothing"]  # in archive order


def test_inspect_reads_only_a_safetensors_header(tmp_path: Path) -> None:
    big = np.zeros((4096, 1024), np.float32)  # 16 MiB of data after a small header
    data = save({"w": big})
    path = tmp_path / "m.mar"
    path.write_bytes(build_zip([ZEntry(n, d, method=0) for n, d in sound_files(**{"w.safetensors": data}).items()]))
    read: list[int] = []
    from markit.read import weightscan

    original = weightscan.WeightSink.write

    def counting(self, chunk) -> None:  # type: ignore[no-untyped-def]
        read.append(len(chunk))
        original(self, chunk)

    weightscan.WeightSink.write = counting  # type: ignore[method-assign]
    try:
        info = markit.inspect(str(path))
    finally:
        weightscan.WeightSink.write = original  # type: ignore[method-assign]
    assert info.weights["w.safetensors"].safetensors is not None
    assert sum(read) <= 2 << 20  # a chunk or two: the header, never the 16 MiB


def test_unpack_refuses_an_unsafe_pickle(tmp_path: Path) -> None:
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of(sound_files(**{"model.pt": torch_like(EVIL)})))
    done = run_markit("unpack", str(path), "-d", str(tmp_path / "out"))
    assert done.returncode == 1 and b"unsafe-pickle" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_is_scanned_too(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, data in sound_files(**{"evil.pkl": EVIL, "w.safetensors": safetensors_file()}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert codes(folder) == [("unsafe-pickle", "evil.pkl")]
    assert markit.inspect(str(folder)).weights["w.safetensors"].safetensors is not None


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("names", [("archive/data.pkl", "archive/data.pkl"), ("archive/DATA.PKL", "archive/x.bin")])
def test_a_second_name_or_another_case_hides_nothing(tmp_path: Path, names: tuple[str, str]) -> None:
    # two entries named data.pkl (torch's reader may take either), or DATA.PKL (its name lookup ignores case)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(names[0], EVIL)
        z.writestr(names[1], STATE)
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of(sound_files(**{"model.pt": out.getvalue()})))
    assert ("unsafe-pickle", "model.pt") in codes(path)


def test_an_outer_zip_of_unknown_sizes_from_stdin(tmp_path: Path) -> None:
    # the outer entry's size is known only at its end (a streamed zip read from a pipe): the inner zip's tail is
    # kept as it passes, past 32 MiB of tensor data, and its central directory still finds data.pkl
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", EVIL)
        z.writestr("archive/data/0", random.Random(1).randbytes(40 << 20))
    outer = io.BytesIO()
    with zipfile.ZipFile(Unseekable(outer), "w", zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        for name, data in sound_files(**{"model.pt": inner.getvalue()}).items():
            z.writestr(name, data, compresslevel=1)
    done = run_markit("verify", "-", "--json", stdin=outer.getvalue())
    found = [p for p in json.loads(done.stdout)["problems"] if p["code"] == "unsafe-pickle"]
    assert len(found) == 1 and "os.system" in found[0]["message"]


def test_a_deflate_bomb_in_data_pkl_is_not_followed(tmp_path: Path) -> None:
    bomb = b"\x80\x02" + b"N0" * (64 << 20) + b"N."  # 128 MiB of opcodes, deflated ~1000 times
    path = tmp_path / "m.mar"
    path.write_bytes(zip_of(sound_files(**{"model.pt": torch_like(bomb, method=zipfile.ZIP_DEFLATED)})))
    messages = [p.message for p in markit.verify(str(path)).problems if p.code == "unsafe-pickle"]
    assert len(messages) == 1 and "inflates over 100 times" in messages[0]
