"""Range requests pinned to one version of an object: a change between two requests is an error, not mixed bytes.

A reader of several range requests (:mod:`markit.storage.ranged`) records the version the first response
names and asks every later request for that version only: ``If-Match: <ETag>`` over HTTP and S3
(the server answers 412 if the object changed), ``generation=`` on GCS (the old generation is gone: 404).
The version each response carries is compared too, for a server that ignores the condition: the
``ETag`` (HTTP, S3), GCS's ``x-goog-generation`` or, from a server that sends no generation, the
whole object's hashes (``x-goog-hash``). A store that names no version is read unpinned.
"""

from __future__ import annotations

from typing import Any

from markit.storage.http import HTTPStore, PreconditionFailed
from markit.storage.remote import RemoteError

__all__ = ["Changed", "fetch"]


class Changed(RemoteError):
    """The object is not the version the first range request read (:func:`fetch` was given *version*)."""


def fetch(fs: Any, path: str, start: int, end: int, version: str | None) -> tuple[bytes, str | None]:
    """Bytes ``[start, end)`` of *path* and the version the response names; :class:`Changed` if *version*
    is given and the object is no longer that version. Other failures are the backend's own exceptions."""
    protocol = getattr(fs, "protocol", "")
    protocol = protocol if isinstance(protocol, str) else protocol[0]
    if isinstance(fs, HTTPStore):
        try:
            data, tag = fs.cat_range(path, start, end, _strong(version))
        except PreconditionFailed as error:
            raise Changed(str(error)) from None
    elif protocol in ("s3", "s3a"):
        data, tag = _s3(fs, path, start, end, version)
    elif protocol in ("gs", "gcs"):
        data, tag = _gcs(fs, path, start, end, version)
    else:
        return bytes(fs.cat_file(path, start=start, end=end)), None
    if version is not None and tag is not None and tag != version:
        raise Changed(f"it was {version}, now {tag}")
    return data, tag


def _strong(tag: str | None) -> str | None:
    """*tag* if a strong ETag (``If-Match`` compares strongly: a weak one would never match)."""
    return tag if tag is not None and not tag.startswith("W/") else None


def _s3(fs: Any, path: str, start: int, end: int, etag: str | None) -> tuple[bytes, str | None]:
    from fsspec.asyn import sync

    bucket, key, version_id = fs.split_path(path)
    extra = {"IfMatch": etag} if etag else {}
    if version_id:
        extra["VersionId"] = version_id

    async def get() -> tuple[bytes, str | None]:
        answer = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **extra)
        try:
            return bytes(await answer["Body"].read()), answer.get("ETag")
        finally:
            answer["Body"].close()

    try:
        data, tag = sync(fs.loop, get)
    except OSError as error:  # s3fs's translation of botocore's ClientError, which is its cause
        code = getattr(error.__cause__, "response", {}).get("Error", {}).get("Code")
        if etag and (code in ("PreconditionFailed", "412") or "pre-conditions" in str(error)):
            raise Changed(f"it was ETag {etag}; If-Match failed") from None
        raise
    return data, tag


def _gcs(fs: Any, path: str, start: int, end: int, version: str | None) -> tuple[bytes, str | None]:
    generation = version[len("generation "):] if version and version.startswith("generation ") else None
    try:
        headers, data = fs.call("GET", fs.url(path, generation=generation), headers={"Range": f"bytes={start}-{end - 1}"})
    except FileNotFoundError:
        if generation:
            raise Changed(f"generation {generation} is gone") from None
        raise
    if headers.get("x-goog-generation"):
        return bytes(data), f"generation {headers['x-goog-generation']}"
    hashes = headers.get("x-goog-hash")
    return bytes(data), f"hashes {hashes}" if hashes else None
