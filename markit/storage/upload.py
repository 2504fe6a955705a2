"""Where a remote archive goes: an object store's multipart upload, completed only when the archive is.

An :class:`UploadSink` is a stream (it cannot be sought), so writers use the layout they use for
``-o -``, the one TorchServe loads. Its bytes go out in parts (:func:`part_size`) through the
S3 API (:class:`S3Parts`: ``CreateMultipartUpload``/``UploadPart``, one ``PutObject`` when the archive
fits in one part) or the backend's buffered file (gcsfs: a resumable upload). :meth:`UploadSink.commit`
completes the upload, and only then does the object appear; :meth:`UploadSink.abort` (an error, Ctrl-C, SIGTERM)
aborts it, so no partial object is ever visible and an existing one stays as it was. Without
``-f`` an existing object is refused before any byte is read, and S3 is asked to complete only
``If-None-Match: *`` (GCS: ``ifGenerationMatch=0``), so one created meanwhile is not replaced either.
"""

from __future__ import annotations

import io
from typing import Any

from markit.errors import OutputError
from markit.storage.remote import filesystem, is_url, remote_error, scheme_of
from markit.storage.sinks import Buffer, Sink

__all__ = ["MAX_PARTS", "MIN_PART", "S3Parts", "UploadSink", "check_remote_destination", "part_size"]

MAX_PARTS = 10_000  # S3's limit on parts per multipart upload (GCS's resumable upload has none)
MIN_PART = 8 << 20  # 8 MiB, as the AWS CLI (S3's minimum is 5 MiB): peak RSS 126 MiB for 1 GiB to moto; 140 at 16
MAX_PART = 5 << 30  # S3's largest part: 5 GiB, so 10,000 of them reach S3's 5 TiB object limit
_MIB = 1 << 20
_NO_BUCKET = "no such bucket"
OVERHEAD = 1.01  # planned input bytes to archive bytes, with room: headers, deflate stored-block framing


def part_size(planned: int) -> int:
    """The part size for an archive of about *planned* bytes of input: :data:`MIN_PART`, or larger (whole
    MiB) so that the archive fits in :data:`MAX_PARTS` parts: a 5 TiB checkpoint gets 530 MiB parts (9,992)."""
    need = -(-int(planned * OVERHEAD + _MIB) // MAX_PARTS)
    return min(MAX_PART, max(MIN_PART, -(-need // _MIB) * _MIB))


def check_remote_destination(url: str, *, force: bool) -> None:
    """Refuse *url* before any input is read: not a store markit writes to, or (without *force*) taken."""
    if not is_url(url):
        return
    if scheme_of(url) in ("http", "https"):
        raise OutputError(f"{url}: markit cannot write to http(s):// URLs; write to s3:// or gs:// (and share a"
                          " presigned URL), or to a local path")
    if url.endswith("/"):
        raise OutputError(f"{url}: names a folder; name the object (...{url.rsplit('/', 2)[-2]}/NAME.mar), or give"
                          f" --export-path {url.rstrip('/')}")
    fs, path = filesystem(url)
    try:
        exists = fs.exists(path)
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise OutputError(str(remote_error(url, error, "cannot check it"))) from None
    if exists and not force:
        raise OutputError(f"{url}: the archive already exists (use -f to overwrite it)")


class S3Parts:
    """An S3 multipart upload, one part at a time: the part is filled, then sent while the archive waits.

    s3fs's own buffered file holds ~4 parts (+64 MiB for 16 MiB parts, measured); this holds the part and,
    while it goes out, one copy of it (:meth:`_send`). Sending the previous part while
    the next fills was tried: no faster on this 2-vCPU machine (the S3 server wants the CPU markit would
    overlap with: 4.8-7.4 s against 4.1-5.6 s for 256 MiB) and 137 MiB of RSS, over the 128 MiB target.
    The file-like calls :class:`UploadSink` makes: ``write``, ``close`` (complete), ``discard`` (abort)."""

    def __init__(self, fs: Any, path: str, part: int, *, exclusive: bool) -> None:
        self.fs, self.part = fs, part
        self.bucket, self.key, _ = fs.split_path(path)
        self.match = {"IfNoneMatch": "*"} if exclusive else {}  # completes only if the name is still free
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []
        self.upload_id: str | None = None
        self.closed = False

    def write(self, data: Buffer) -> None:
        room = self.part - len(self.buffer)
        self.buffer += memoryview(data)[:room]
        if len(data) >= room:
            self._send()
            if len(data) > room:
                self.write(memoryview(data)[room:])

    def _call(self, method: str, **kw: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.fs.call_s3(method, Bucket=self.bucket, Key=self.key, **kw)
        return answer

    def _send(self) -> None:
        if self.upload_id is None:
            self.upload_id = self._call("create_multipart_upload")["UploadId"]
        number = len(self.parts) + 1
        # One copy, into a BytesIO, which botocore and aiohttp send as it is: given bytes, botocore wraps them
        # in a BytesIO that aiohttp copies again (getbuffer); given a bytearray, aiohttp copies it when slicing
        body, self.buffer = io.BytesIO(self.buffer), bytearray()
        answer = self._call("upload_part", UploadId=self.upload_id, PartNumber=number, Body=body)
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def close(self) -> None:
        """Complete the upload (or, if it all fits one part, put the object in one request)."""
        if self.upload_id is None:
            self._call("put_object", Body=io.BytesIO(self.buffer), **self.match)
        else:
            if self.buffer:
                self._send()
            self._call("complete_multipart_upload", UploadId=self.upload_id, MultipartUpload={"Parts": self.parts},
                       **self.match)
        self.closed = True

    def discard(self) -> None:
        """Abort the upload: S3 deletes its parts."""
        self.buffer = bytearray()
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            self._call("abort_multipart_upload", UploadId=upload_id)


M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def _unmap_large_buffers() -> None:
    """Have glibc serve allocations of 1 MiB and more with ``mmap``, so that a part's buffers go back to the
    system when freed. Left to itself, glibc raises that threshold after the first large free and serves
    the next parts from its heaps (one per thread: markit's, and the HTTP client's loop), where they
    fragment: measured on 1 GiB to moto with 8 MiB parts, peak RSS 136 MiB, and 124 MiB with this."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


class UploadSink(Sink):
    """An object written by a multipart upload that completes on :meth:`commit` and is aborted otherwise."""

    seekable = False

    def __init__(self, url: str, *, force: bool, planned: int) -> None:
        check_remote_destination(url, force=force)
        super().__init__(-1)
        self.name = self.url = url
        self.part = part_size(planned)
        fs, path = filesystem(url)
        _unmap_large_buffers()
        try:
            if scheme_of(url) == "s3":
                self._file: Any = S3Parts(fs, path, self.part, exclusive=not force)
            else:  # gcsfs: a resumable upload, committed on close, cancelled by discard; "xb": ifGenerationMatch=0
                self._file = fs.open(path, "wb" if force else "xb", block_size=self.part)
        except Exception as error:  # noqa: BLE001 - backends raise their own types
            raise OutputError(str(remote_error(url, error, "cannot write it", _NO_BUCKET))) from None

    def _write_out(self, *buffers: Buffer) -> None:
        try:
            for b in buffers:
                if len(b):
                    self._file.write(b)
        except Exception as error:  # noqa: BLE001 - backends raise their own types
            raise OutputError(str(remote_error(self.url, error, "cannot write it", _NO_BUCKET))) from None
        finally:
            self._gathered = bytearray()

    def commit(self) -> None:
        """Complete the upload: the object appears, whole, or not at all."""
        try:
            self.flush()
            self._file.close()
        except FileExistsError:
            self.abort()
            raise OutputError(f"{self.url}: the archive already exists (use -f to overwrite it)") from None
        except OutputError:
            self.abort()
            raise
        except Exception as error:  # noqa: BLE001 - backends raise their own types
            self.abort()
            raise OutputError(str(remote_error(self.url, error, "cannot complete it", _NO_BUCKET))) from None

    def abort(self) -> None:
        """Abort the upload: its parts are deleted, and no object is created or replaced."""
        super().abort()
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.discard()  # S3Parts: AbortMultipartUpload; gcsfs: cancels the resumable upload
        except Exception:  # noqa: BLE001, S110 - the upload expires on its own; the error being raised matters more
            pass
        finally:
            file.closed = True  # nothing may complete it later (fsspec closes files when they are collected)
