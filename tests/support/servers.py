"""Real servers on 127.0.0.1 for the remote tests: moto's S3 server and gcp-storage-emulator's GCS JSON API
server (subprocesses), and an HTTP server that honours ``Range`` and counts what it serves.

markit reaches the S3 server only as a user would: ``AWS_ENDPOINT_URL`` and the ``AWS_*`` credential
variables (:meth:`S3Server.env`), and the GCS server only through ``STORAGE_EMULATOR_HOST``
(:meth:`GCSServer.env`); the tests make the buckets. The HTTP server's own counts
(:attr:`RangeServer.requests`, :attr:`RangeServer.bytes_sent`) are what the inspect bound is checked
against, never markit's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["LOCAL_ONLY", "MIB", "GCSServer", "RangeServer", "S3Server", "ServerProcess", "free_port", "gcs_server",
           "model_tree", "range_server", "s3_server"]

MIB = 1 << 20

LOCAL_ONLY = {
    # nothing leaves 127.0.0.1: no proxy, no EC2 metadata lookup for credentials
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server in a subprocess on 127.0.0.1: started, polled at :attr:`probe` until it answers, stopped."""

    name = "server"
    probe = "/"

    def __init__(self, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint}{self.probe}", timeout=1).close()
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class S3Server(ServerProcess):
    """moto's standalone S3 server, run as ``python -m moto.server`` on 127.0.0.1."""

    name = "moto server"
    probe = "/moto-api/"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict[str, str]:
        """What a user sets to reach this store: the endpoint and (moto's accepts any) credentials."""
        return {**LOCAL_ONLY, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # type: ignore[no-untyped-def]  # a boto3 client, for what the tests set up and look at
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    server = S3Server(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# gcp-storage-emulator, run in memory, with two things of GCS's it lacks: DELETE of a resumable upload session
# (cancel it; GCS answers 499), which gcsfs's discard sends when markit aborts; and, on a media download, the
# object's generation (GCS's x-goog-generation header, and 404 for a `generation=` that is not the object's)
_GCS_EMULATOR = """
import sys
import types
from gcp_storage_emulator import server
from gcp_storage_emulator.handlers import objects

def cancel(request, response, storage, *args, **kwargs):
    storage.delete_resumable_file_obj(request.query.get("upload_id")[0])
    response.status = types.SimpleNamespace(value=499, phrase="Client Closed Request")

def download(request, response, storage, *args, **kwargs):
    try:
        generation = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])["generation"]
    except Exception:
        generation = None  # no such object: the emulator's own answer
    wanted = request.query.get("generation")
    if generation and wanted and wanted[0] != generation:
        response.status = types.SimpleNamespace(value=404, phrase="Not Found")
        return
    objects.download(request, response, storage, *args, **kwargs)
    if generation:
        response["x-goog-generation"] = generation

def patched(handlers):
    if objects.upload_partial in handlers.values():
        return {**handlers, "DELETE": cancel}
    return {method: download if handler is objects.download else handler for method, handler in handlers.items()}

server.HANDLERS = tuple((regex, patched(handlers)) for regex, handlers in server.HANDLERS)
server.Server("127.0.0.1", int(sys.argv[1]), in_memory=True).run()
"""


class GCSServer(ServerProcess):
    """gcp-storage-emulator's GCS JSON API server on 127.0.0.1 (``python -c`` :data:`_GCS_EMULATOR`)."""

    name = "GCS emulator"

    def argv(self) -> list[str]:
        return [sys.executable, "-c", _GCS_EMULATOR, str(self.port)]

    def env(self) -> dict[str, str]:
        """What a user of an emulator sets: its address; gcsfs's plain filesystem (its default one first asks
        the gRPC storage-control API for each bucket's layout, which no emulator serves: 60 s per bucket); and
        anonymous access (fsspec's configuration for gs://), so google-auth searches for no credentials: no GCE
        metadata probe, nothing sent beyond 127.0.0.1."""
        return {**LOCAL_ONLY, "STORAGE_EMULATOR_HOST": self.endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
                "FSSPEC_GS_TOKEN": "anon"}

    def call(self, method: str, path: str, body: bytes | None = None, query: str = "") -> bytes:
        """One request of the JSON API (the tests' own client: no gcsfs, so nothing is cached between calls)."""
        url = f"{self.endpoint}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": "application/json" if method == "POST" and
                                                  "upload" not in path else "application/octet-stream"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def make_bucket(self, name: str) -> None:
        self.call("POST", "/storage/v1/b", json.dumps({"name": name}).encode(), "project=test")

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Upload one object (multipart: the emulator's media upload fails on an empty body)."""
        boundary = "markit-test-boundary"
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps({'name': key})}\r\n"
                f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + \
            f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
                                         data=body, method="POST",
                                         headers={"Content-Type": f"multipart/related; boundary={boundary}"})
        urllib.request.urlopen(request, timeout=30).close()

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object of *bucket*, by name."""
        listing = json.loads(self.call("GET", f"/storage/v1/b/{bucket}/o"))
        return {item["name"]: self.call("GET", f"/download/storage/v1/b/{bucket}/o/"
                                        + urllib.parse.quote(item["name"], safe=""), query="alt=media")
                for item in listing.get("items", [])}

    def drop_bucket(self, bucket: str) -> None:
        for name in self.objects(bucket):
            self.call("DELETE", f"/storage/v1/b/{bucket}/o/" + urllib.parse.quote(name, safe=""))
        self.call("DELETE", f"/storage/v1/b/{bucket}")


@contextlib.contextmanager
def gcs_server() -> Iterator[GCSServer]:
    server = GCSServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RangeServer(ThreadingHTTPServer):
    """Serves the files of :attr:`root` with ``Range`` (one range per request), ``ETag`` and ``If-Match``, and counts
    what it sent."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.requests = 0
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.if_match = True  # honour If-Match (412 when the file's ETag differs); False: ignore it, as some servers do
        self.etags = True  # send an ETag (the file's inode, size and mtime)
        self.started = 0  # requests received
        self.before: Callable[[int], None] | None = None  # called with each request's number, before it is served

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.requests = self.bytes_sent = 0

    def count(self, n: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += n


class _Handler(BaseHTTPRequestHandler):
    server: RangeServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        with self.server.lock:
            self.server.started += 1
            if self.server.before is not None:
                self.server.before(self.server.started)
        path = self.server.root / self.path.split("?")[0].lstrip("/")
        if not path.is_file():
            self.server.count(0)
            self.send_error(404)
            return
        stat = path.stat()
        size, etag = stat.st_size, f'"{stat.st_ino:x}-{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        if self.server.if_match and self.headers.get("If-Match") not in (None, "*", etag):
            self.server.count(0)
            self.send_error(412)
            return
        start, end = 0, size
        wanted = self.headers.get("Range")
        if wanted and (m := _RANGE.match(wanted.strip())):
            if m.group(1):
                start, end = int(m.group(1)), min(size, int(m.group(2)) + 1 if m.group(2) else size)
            else:
                start, end = max(0, size - int(m.group(2))), size
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        if self.server.etags:
            self.send_header("ETag", etag)
        self.end_headers()
        sent = 0
        if body:
            with open(path, "rb") as f:
                f.seek(start)
                while sent < end - start:
                    chunk = f.read(min(1 << 20, end - start - sent))
                    if not chunk:
                        break
                    try:
                        self.wfile.write(chunk)
                    except OSError:  # the client went away
                        break
                    sent += len(chunk)
        self.server.count(sent)


def model_tree(root: Path) -> dict[str, bytes]:
    """A model tree with nested folders, an empty file, a file over 1 MiB (streamed), and folders left out."""
    files = {
        "handler.py": b"def handle(data, context):\n    return data\n",
        "config/labels.txt": b"cat\ndog\n",
        "config/deep/empty.json": b"",
        "weights.bin": os.urandom(3 * MIB + 5),
        "tokenizer.json": b'{"a": 1}' * 40_000,
        ".git/config": b"hidden",
        "__pycache__/x.cpython-311.pyc": b"byte-code",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
    return files


@contextlib.contextmanager
def range_server(root: Path) -> Iterator[RangeServer]:
    server = RangeServer(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def clean_env() -> dict[str, str]:
    """The environment without any AWS or proxy setting from outside, plus :data:`LOCAL_ONLY`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
    return {**kept, **LOCAL_ONLY}


def have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules) and shutil.which("true") is not None
