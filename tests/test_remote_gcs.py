"""Archives to and from GCS: gcp-storage-emulator's JSON API server on 127.0.0.1, reached only through
``STORAGE_EMULATOR_HOST`` (tests/support/servers.py), what tests/test_remote_s3.py checks for S3.

``create -o gs://`` streams a resumable upload that completes only when the archive is whole; an
interrupted or failed run leaves no object behind, and an object already there as it was.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import markit
from tests.conftest import EXAMPLE
from tests.support.servers import GCSServer, clean_env, gcs_server, model_tree

pytest.importorskip("gcsfs")
pytest.importorskip("gcp_storage_emulator")
MIB = 1 << 20
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


@pytest.fixture(scope="module")
def gcs() -> Iterator[GCSServer]:
    with gcs_server() as server:
        yield server


@pytest.fixture
def bucket(gcs: GCSServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket for one test, emptied and removed after it."""
    name = "t-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    gcs.make_bucket(name)
    yield name
    gcs.drop_bucket(name)


@pytest.fixture
def in_process(gcs: GCSServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """markit called in this process reaches the emulator as the command line does (gcsfs's plain filesystem and
    anonymous access: the variables that choose them are read when gcsfs and fsspec are imported, which may
    have happened already)."""
    import fsspec.config
    import gcsfs.core

    registry = sys.modules["fsspec.registry"]._registry  # (fsspec.registry is also a mapping, in the package)

    for key, value in gcs.env().items():
        monkeypatch.setenv(key, value)
    for scheme in ("gs", "gcs"):
        monkeypatch.setitem(registry, scheme, gcsfs.core.GCSFileSystem)
    monkeypatch.setitem(fsspec.config.conf, "gs", {"token": "anon"})  # FSSPEC_GS_TOKEN, read when fsspec is imported


def markit_run(gcs: GCSServer, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "markit", *args], capture_output=True, timeout=300, check=False,
                          env={**clean_env(), **gcs.env(), **EPOCH}, **kw)


def create_args(output: str, model: Path = EXAMPLE, *more: str) -> list[str]:
    return ["create", "--model-name", "sq", "--model-path", str(model), "--handler", "handler:handle", "-o", output,
            *more]


@pytest.mark.parametrize(("name", "fmt"), [("sq.mar", "default"), ("sq.tar.gz", "tgz")])
def test_create_to_gcs_is_the_stream_archive_byte_for_byte(gcs: GCSServer, bucket: str, name: str, fmt: str) -> None:
    url = f"gs://{bucket}/models/{name}"
    done = markit_run(gcs, *create_args(url, EXAMPLE, "--json"))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["archive"] == url and shown["format"] == fmt
    piped = markit_run(gcs, *create_args("-", EXAMPLE, "--archive-format", fmt))
    assert gcs.objects(bucket) == {f"models/{name}": piped.stdout}
    assert shown["output_bytes"] == len(piped.stdout)


def test_a_large_archive_goes_up_in_chunks_byte_for_byte(gcs: GCSServer, bucket: str, tmp_path: Path) -> None:
    """More than one 8 MiB chunk of the resumable upload, and a weight file read back in 8 MiB range requests."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(20 * MIB + 7))
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    url = f"gs://{bucket}/big.mar"
    assert markit_run(gcs, *create_args(url, model)).returncode == 0
    piped = markit_run(gcs, *create_args("-", model))
    assert gcs.objects(bucket) == {"big.mar": piped.stdout}
    done = markit_run(gcs, "unpack", url, "-d", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "weights.bin").read_bytes() == (model / "weights.bin").read_bytes()


def test_remote_archive_reads_as_the_local_one(gcs: GCSServer, bucket: str, tmp_path: Path) -> None:
    url = f"gs://{bucket}/sq.mar"
    assert markit_run(gcs, *create_args(url)).returncode == 0
    local = tmp_path / "sq.mar"
    local.write_bytes(gcs.objects(bucket)["sq.mar"])
    for command in ("inspect", "verify"):
        remote, here = markit_run(gcs, command, url, "--json"), markit_run(gcs, command, str(local), "--json")
        assert remote.returncode == here.returncode == 0, remote.stderr
        a, b = json.loads(remote.stdout), json.loads(here.stdout)
        assert a.pop("archive", url) == url
        b.pop("archive", None)
        assert a == b
    done = markit_run(gcs, "unpack", url, "-d", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "squeezenet_like.bin").read_bytes() == (EXAMPLE / "squeezenet_like.bin").read_bytes()


def test_an_existing_object_needs_f(gcs: GCSServer, bucket: str) -> None:
    url = f"gs://{bucket}/sq.mar"
    gcs.put(bucket, "sq.mar", b"old")
    done = markit_run(gcs, *create_args(url))
    assert done.returncode == 1
    assert done.stderr.decode().strip() == f"markit: {url}: the archive already exists (use -f to overwrite it)"
    assert gcs.objects(bucket) == {"sq.mar": b"old"}
    assert markit_run(gcs, *create_args(url, EXAMPLE, "-f")).returncode == 0
    assert gcs.objects(bucket)["sq.mar"][:4] == b"PK\x03\x04"


def _model(root: Path, size: int) -> Path:
    root.mkdir()
    (root / "weights.bin").write_bytes(os.urandom(size))
    (root / "handler.py").write_text("def handle(data, context):\n    return data\n")
    return root


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.usefixtures("in_process")
def test_an_interrupted_upload_leaves_nothing(gcs: GCSServer, bucket: str, tmp_path: Path, existing: bool) -> None:
    """Ctrl-C (SIGTERM takes the same path) after chunks went up: the resumable upload is cancelled, and
    nothing completes it later (fsspec closes, and so would complete, a file that is collected)."""
    model = _model(tmp_path / "model", 40 * MIB)
    if existing:
        gcs.put(bucket, "big.mar", b"old")

    def interrupt(done: int, total: int) -> None:
        if done >= 30 * MIB:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        markit.create(model_name="big", handler="handler:handle", model_path=str(model),
                      output=f"gs://{bucket}/big.mar", force=existing, progress=interrupt)
    gc.collect()
    assert gcs.objects(bucket) == ({"big.mar": b"old"} if existing else {})


@pytest.mark.usefixtures("in_process")
def test_a_failed_input_leaves_the_existing_object(gcs: GCSServer, bucket: str, tmp_path: Path) -> None:
    """An input that changes while it is archived fails the run after chunks went up: the old object stays."""
    model = _model(tmp_path / "model", 24 * MIB)
    gcs.put(bucket, "m.mar", b"old")

    def grow(done: int, total: int) -> None:
        if done >= 20 * MIB:
            with open(model / "weights.bin", "ab") as f:
                f.write(b"more")

    with pytest.raises(markit.MarkitError):
        markit.create(model_name="m", handler="handler:handle", model_path=str(model), output=f"gs://{bucket}/m.mar",
                      force=True, progress=grow)
    gc.collect()
    assert gcs.objects(bucket) == {"m.mar": b"old"}


def test_errors_are_one_line(gcs: GCSServer, bucket: str) -> None:
    cases = [
        (create_args("gs://no-such-bucket-here/sq.mar"), "no such bucket"),
        (["inspect", f"gs://{bucket}/missing.mar"], "no such object"),
        (["verify", f"gs://{bucket}/missing.mar"], "no such object"),
        (create_args(f"gs://{bucket}/models/"), "names a folder; name the object"),
    ]
    for args, message in cases:
        done = markit_run(gcs, *args)
        err = done.stderr.decode()
        assert done.returncode in (1, 2) and message in err and err.count("\n") == 1, (args, err)


def test_create_from_a_gcs_folder_is_the_local_archive_byte_for_byte(gcs: GCSServer, bucket: str,
                                                                      tmp_path: Path) -> None:
    model = tmp_path / "model"
    files = model_tree(model)
    for name, data in files.items():
        gcs.put(bucket, f"ckpt/{name}", data)
    for fmt, handler in (("default", "handler:handle"), ("tgz", "handler.py")):
        remote, local = tmp_path / f"remote-{fmt}", tmp_path / f"local-{fmt}"
        for source, out in ((f"gs://{bucket}/ckpt/", remote), (str(model), local)):
            done = markit_run(gcs, "create", "--model-name", "m", "--model-path", source, "--handler", handler,
                              "--archive-format", fmt, "-o", str(out))
            assert done.returncode == 0, done.stderr
        assert remote.read_bytes() == local.read_bytes()
    dry = markit_run(gcs, "create", "--model-name", "m", "--model-path", f"gs://{bucket}/ckpt", "--handler",
                     "handler:handle", "--dry-run", "--json")
    excluded = {e["name"] for e in json.loads(dry.stdout)["excluded"]}
    assert excluded == {".git", "__pycache__"}


def test_remote_files_and_globs(gcs: GCSServer, bucket: str, tmp_path: Path) -> None:
    for name in ("model.pt", "a.json", "b.json", "c.txt"):
        gcs.put(bucket, f"in/{name}", name.encode() * 100)
    handler = tmp_path / "handler.py"
    handler.write_text("def handle(data, context):\n    return data\n")
    url = f"gs://{bucket}/out/m.mar"
    done = markit_run(gcs, "create", "--model-name", "m", "--serialized-file", f"gs://{bucket}/in/model.pt",
                      "--extra-files", f"gs://{bucket}/in/*.json", "--handler", str(handler), "-o", url)
    assert done.returncode == 0, done.stderr
    shown = json.loads(markit_run(gcs, "inspect", url, "--json").stdout)
    assert {e["name"] for e in shown["entries"]} == {"MAR-INF/MANIFEST.json", "MAR-INF/RECORD", "model.pt", "a.json",
                                                     "b.json", "handler.py"}
    assert markit_run(gcs, "verify", url).returncode == 0


@pytest.mark.usefixtures("in_process")
def test_an_object_replaced_while_it_is_archived_is_one_error(gcs: GCSServer, bucket: str, tmp_path: Path) -> None:
    """Read in 8 MiB range requests that must name the first one's generation (the emulator sends none: the
    whole object's hashes, ``x-goog-hash``, then tell); against GCS, later requests ask for that generation."""
    gcs.put(bucket, "ckpt/handler.py", b"def handle(data, context):\n    return data\n")
    weights = os.urandom(30 * MIB)
    gcs.put(bucket, "ckpt/weights.bin", weights)
    replaced = []

    def replace(done: int, total: int) -> None:
        if done >= 9 * MIB and not replaced:  # blocks 2 and 3 of 8 MiB are asked for; 4 will be, of the new one
            gcs.put(bucket, "ckpt/weights.bin", weights[::-1])
            replaced.append(done)

    out = tmp_path / "m.mar"
    with pytest.raises(markit.InputError, match=r"weights\.bin: changed while being read"):
        markit.create(model_name="m", handler="handler:handle", model_path=f"gs://{bucket}/ckpt/", output=str(out),
                      progress=replace)
    assert replaced and not out.exists()
