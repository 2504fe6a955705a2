"""Archives to and from S3: moto's S3 server on 127.0.0.1, reached only through ``AWS_ENDPOINT_URL``.

``create -o s3://`` streams a multipart upload that completes only when the archive is whole;
an interrupted run leaves no object (and no upload) behind, and an object already there as it was.
"""

from __future__ import annotations

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
from tests.support.servers import S3Server, clean_env, model_tree, s3_server

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")
MIB = 1 << 20
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket for one test, emptied and removed after it."""
    name = "t-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    client = s3.client()
    client.create_bucket(Bucket=name)
    yield name
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for obj in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


def markit_run(s3: S3Server, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "markit", *args], capture_output=True, timeout=300, check=False,
                          env={**clean_env(), **s3.env(), **EPOCH}, **kw)


def create_args(output: str, model: Path = EXAMPLE, *more: str) -> list[str]:
    return ["create", "--model-name", "sq", "--model-path", str(model), "--handler", "handler:handle", "-o", output,
            *more]


def objects(s3: S3Server, bucket: str) -> dict[str, bytes]:
    client = s3.client()
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.parametrize(("name", "fmt"), [("sq.mar", "default"), ("sq.tar.gz", "tgz")])
def test_create_to_s3_is_the_stream_archive_byte_for_byte(s3: S3Server, bucket: str, name: str, fmt: str) -> None:
    url = f"s3://{bucket}/models/{name}"
    done = markit_run(s3, *create_args(url, EXAMPLE, "--json"))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["archive"] == url and shown["format"] == fmt
    piped = markit_run(s3, *create_args("-", EXAMPLE, "--archive-format", fmt))
    assert objects(s3, bucket) == {f"models/{name}": piped.stdout}
    assert shown["output_bytes"] == len(piped.stdout)


def test_export_path_in_a_bucket(s3: S3Server, bucket: str) -> None:
    done = markit_run(s3, "create", "--model-name", "sq", "--model-path", str(EXAMPLE), "--handler", "handler:handle",
                      "--export-path", f"s3://{bucket}/store", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["archive"] == f"s3://{bucket}/store/sq.mar"
    assert list(objects(s3, bucket)) == ["store/sq.mar"]


def test_remote_archive_reads_as_the_local_one(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/sq.mar"
    assert markit_run(s3, *create_args(url)).returncode == 0
    local = tmp_path / "sq.mar"
    local.write_bytes(objects(s3, bucket)["sq.mar"])
    for command in ("inspect", "verify"):
        remote, here = markit_run(s3, command, url, "--json"), markit_run(s3, command, str(local), "--json")
        assert remote.returncode == here.returncode == 0, remote.stderr
        a, b = json.loads(remote.stdout), json.loads(here.stdout)
        assert a.pop("archive", url) == url
        b.pop("archive", None)
        assert a == b
    done = markit_run(s3, "unpack", url, "-d", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "squeezenet_like.bin").read_bytes() == (EXAMPLE / "squeezenet_like.bin").read_bytes()


def test_an_existing_object_needs_f(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/sq.mar"
    s3.client().put_object(Bucket=bucket, Key="sq.mar", Body=b"old")
    done = markit_run(s3, *create_args(url))
    assert done.returncode == 1
    assert done.stderr.decode().strip() == f"markit: {url}: the archive already exists (use -f to overwrite it)"
    assert objects(s3, bucket) == {"sq.mar": b"old"}
    assert markit_run(s3, *create_args(url, EXAMPLE, "-f")).returncode == 0
    assert objects(s3, bucket)["sq.mar"][:4] == b"PK\x03\x04"


@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_upload_leaves_nothing(s3: S3Server, bucket: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, existing: bool) -> None:
    """Ctrl-C (SIGTERM takes the same path) after several parts went up: the upload is aborted."""
    for key, value in {**s3.env(), **EPOCH}.items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(48 * MIB))
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    if existing:
        s3.client().put_object(Bucket=bucket, Key="big.mar", Body=b"old")
    client, seen = s3.client(), []

    def interrupt(done: int, total: int) -> None:
        if done >= 40 * MIB:
            seen.extend(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        markit.create(model_name="big", handler="handler:handle", model_path=str(model),
                      output=f"s3://{bucket}/big.mar", force=existing, progress=interrupt)
    assert [u["Key"] for u in seen] == ["big.mar"]  # an upload was under way...
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # ...and was aborted
    assert objects(s3, bucket) == ({"big.mar": b"old"} if existing else {})


def test_errors_are_one_line(s3: S3Server, bucket: str) -> None:
    cases = [
        (create_args("s3://no-such-bucket-here/sq.mar"), "no such bucket"),
        (["inspect", f"s3://{bucket}/missing.mar"], "no such object"),
        (["verify", f"s3://{bucket}/missing.mar"], "no such object"),
        (create_args(f"s3://{bucket}/folder", EXAMPLE, "--archive-format", "no-archive"), "writes a local folder"),
        (create_args(f"s3://{bucket}/models/"), "names a folder; name the object"),
    ]
    for args, message in cases:
        done = markit_run(s3, *args)
        err = done.stderr.decode()
        assert done.returncode in (1, 2) and message in err and err.count("\n") == 1, (args, err)


def test_presigned_http_url_of_an_object_inspects_and_unpacks(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    assert markit_run(s3, *create_args(f"s3://{bucket}/sq.mar")).returncode == 0
    url = s3.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "sq.mar"}, ExpiresIn=600)
    assert url.startswith("http://127.0.0.1:") and "?" in url
    done = markit_run(s3, "inspect", url, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["manifest"]["model"]["modelName"] == "sq"
    done = markit_run(s3, "unpack", url, cwd=tmp_path)  # the default folder: the name without the query
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sq" / "handler.py").read_bytes() == (EXAMPLE / "handler.py").read_bytes()


def test_create_from_an_s3_folder_is_the_local_archive_byte_for_byte(s3: S3Server, bucket: str,
                                                                      tmp_path: Path) -> None:
    model = tmp_path / "model"
    files = model_tree(model)
    client = s3.client()
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=f"ckpt/{name}", Body=data)
    client.put_object(Bucket=bucket, Key="ckpt/config/", Body=b"")  # a folder marker, as consoles make
    for fmt, handler in (("default", "handler:handle"), ("tgz", "handler.py")):  # handler.py: found in the folder
        remote, local = tmp_path / f"remote-{fmt}", tmp_path / f"local-{fmt}"
        for source, out in ((f"s3://{bucket}/ckpt/", remote), (str(model), local)):
            done = markit_run(s3, "create", "--model-name", "m", "--model-path", source, "--handler", handler,
                              "--archive-format", fmt, "-o", str(out))
            assert done.returncode == 0, done.stderr
        assert remote.read_bytes() == local.read_bytes()
    dry = markit_run(s3, "create", "--model-name", "m", "--model-path", f"s3://{bucket}/ckpt", "--handler",
                     "handler:handle", "--dry-run", "--json")
    excluded = {e["name"] for e in json.loads(dry.stdout)["excluded"]}
    assert excluded == {".git", "__pycache__"}


def test_remote_files_and_globs(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    for name in ("model.pt", "a.json", "b.json", "c.txt"):
        client.put_object(Bucket=bucket, Key=f"in/{name}", Body=name.encode() * 100)
    handler = tmp_path / "handler.py"
    handler.write_text("def handle(data, context):\n    return data\n")
    url = f"s3://{bucket}/out/m.mar"
    done = markit_run(s3, "create", "--model-name", "m", "--serialized-file", f"s3://{bucket}/in/model.pt",
                      "--extra-files", f"s3://{bucket}/in/*.json", "--handler", str(handler), "-o", url)
    assert done.returncode == 0, done.stderr
    shown = json.loads(markit_run(s3, "inspect", url, "--json").stdout)
    names = {e["name"] for e in shown["entries"]}
    assert names == {"MAR-INF/MANIFEST.json", "MAR-INF/RECORD", "model.pt", "a.json", "b.json", "handler.py"}
    assert shown["manifest"]["model"]["serializedFile"] == "model.pt"
    assert markit_run(s3, "verify", url).returncode == 0


def test_missing_remote_inputs_are_one_line(s3: S3Server, bucket: str) -> None:
    for args, message in [
        (["--model-path", f"s3://{bucket}/nothing/"], "no such object or folder"),
        (["--serialized-file", f"s3://{bucket}/none.pt"], "no such object or folder"),
        (["--model-path", str(EXAMPLE), "--extra-files", f"s3://{bucket}/none/*.json"], "matches no file"),
    ]:
        done = markit_run(s3, "create", "--model-name", "m", "--handler", "handler:handle", *args, "-o", "x.mar")
        err = done.stderr.decode()
        assert done.returncode == 1 and message in err and err.count("\n") == 1, err


def test_an_object_created_during_the_upload_is_not_replaced(s3: S3Server, bucket: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -f, the upload completes only if the name is still free (If-None-Match: *)."""
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(24 * MIB))
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    client = s3.client()

    def meanwhile(done: int, total: int) -> None:
        if done >= 20 * MIB and not objects(s3, bucket):
            client.put_object(Bucket=bucket, Key="race.mar", Body=b"theirs")

    with pytest.raises(markit.OutputError, match="already exists"):
        markit.create(model_name="race", handler="handler:handle", model_path=str(model),
                      output=f"s3://{bucket}/race.mar", progress=meanwhile)
    assert objects(s3, bucket) == {"race.mar": b"theirs"}
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_sigterm_during_an_upload_aborts_it(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    """The command line, stopped as `timeout` or a CI runner stops it: exit 143, no object, no upload left."""
    import signal
    import time

    model = tmp_path / "model"
    model.mkdir()
    with open(model / "weights.bin", "wb") as f:
        f.writelines(os.urandom(MIB) for _ in range(256))
    (model / "handler.py").write_text("def handle(data, context):\n    return data\n")
    client = s3.client()
    process = subprocess.Popen([sys.executable, "-m", "markit", *create_args(f"s3://{bucket}/big.mar", model)],
                               env={**clean_env(), **s3.env()}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not client.list_multipart_uploads(Bucket=bucket).get("Uploads") and process.poll() is None:
        assert time.monotonic() < deadline, "no multipart upload started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert b"terminated (SIGTERM); nothing was kept" in err
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert objects(s3, bucket) == {}


def test_an_archive_written_into_its_own_remote_folder_is_left_out(s3: S3Server, bucket: str) -> None:
    client = s3.client()
    client.put_object(Bucket=bucket, Key="ckpt/handler.py", Body=b"def handle(data, context):\n    return data\n")
    client.put_object(Bucket=bucket, Key="ckpt/m.mar", Body=b"an older archive")
    done = markit_run(s3, "create", "--model-name", "m", "--model-path", f"s3://{bucket}/ckpt/", "--handler",
                      "handler:handle", "-o", f"s3://{bucket}/ckpt/m.mar", "-f", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["excluded"] == 1
    names = {e["name"] for e in json.loads(markit_run(s3, "inspect", f"s3://{bucket}/ckpt/m.mar", "--json").stdout)
             ["entries"]}
    assert names == {"MAR-INF/MANIFEST.json", "handler.py", "MAR-INF/RECORD"}


def test_an_object_replaced_while_it_is_archived_is_one_error(s3: S3Server, bucket: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in 8 MiB range requests pinned to the first one's ETag (If-Match): S3 refuses the rest (412)."""
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    client = s3.client()
    client.put_object(Bucket=bucket, Key="ckpt/handler.py", Body=b"def handle(data, context):\n    return data\n")
    weights = os.urandom(30 * MIB)
    client.put_object(Bucket=bucket, Key="ckpt/weights.bin", Body=weights)

    replaced = []

    def replace(done: int, total: int) -> None:
        if done >= 9 * MIB and not replaced:  # blocks 2 and 3 of 8 MiB are asked for; 4 will be, of the new one
            client.put_object(Bucket=bucket, Key="ckpt/weights.bin", Body=weights[::-1])
            replaced.append(done)

    out = tmp_path / "m.mar"
    with pytest.raises(markit.InputError, match=r"weights\.bin: changed while being read"):
        markit.create(model_name="m", handler="handler:handle", model_path=f"s3://{bucket}/ckpt/", output=str(out),
                      progress=replace)
    assert not out.exists()
