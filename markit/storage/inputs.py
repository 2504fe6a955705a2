"""Input files wherever they are: a local path through the engine's readers, a URL through range requests.

``create`` reads every input file once, through :func:`read_whole` (small files, whole, with
their digest) or :func:`pump` (larger ones, chunk by chunk, into a consumer). A local path goes to
:mod:`markit.engine.datapass` unchanged; a URL's object is read in one request (small) or in one
pass of :class:`~markit.storage.ranged.StreamFile` blocks, and must have the size the listing
gave (:func:`list_remote`, the one listing of a remote folder), as a local file must.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markit.engine import datapass
from markit.engine.buffers import CHUNK, BufferRing
from markit.engine.codec import crc32
from markit.engine.datapass import Consumer, DataStream, Digest
from markit.errors import InputError
from markit.storage.remote import RemoteError, filesystem, is_url, remote_error

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["RemoteFile", "exists", "glob_urls", "list_remote", "pump", "read_whole"]

_FS: dict[tuple[str, ...], tuple[AbstractFileSystem, str]] = {}  # one filesystem per store and configuration


def _env_key() -> tuple[str, ...]:
    return tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("AWS_", "GOOGLE_", "STORAGE_"))))


def _fs(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem for *url* (made once per scheme, bucket and configuration in a run) and its path."""
    scheme, _, rest = url.partition("://")
    key = (scheme.lower(), rest.partition("/")[0], *_env_key())
    if key not in _FS:
        _FS[key] = filesystem(url)
    fs = _FS[key][0]
    return fs, fs._strip_protocol(url)


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One object found by :func:`list_remote`."""

    name: str
    """Its key relative to the folder listed ('/'-separated); a single object's base name."""
    url: str
    """Where to read it."""
    size: int
    """Bytes, as listed."""
    mtime: float
    """Last modified, seconds since the epoch (0 when the store does not say)."""


def _mtime(found: dict[str, Any]) -> float:
    from datetime import datetime

    for key in ("LastModified", "mtime", "updated", "last_modified"):
        value = found.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def list_remote(flag: str, url: str) -> tuple[bool, list[RemoteFile]]:
    """Whether *url* is a folder, and its objects (one listing, sorted by name); a single object's own record.

    Keys ending in ``/`` (folder markers) are left out. :class:`InputError` if nothing is there.
    """
    fs, path = _fs(url)
    try:
        found = fs.info(path)
        if found.get("type") != "directory":
            return False, [RemoteFile(url.rstrip("/").rsplit("/", 1)[-1], url, int(found["size"]), _mtime(found))]
        if url.lower().startswith(("http://", "https://")):
            raise InputError(f"{flag} {url}: an http(s):// folder cannot be listed; give an s3:// or gs:// folder,"
                             " or the files one by one")
        listing = fs.find(path, detail=True, withdirs=False)
    except FileNotFoundError:
        raise InputError(f"{flag} {url}: no such object or folder") from None
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise InputError(str(remote_error(url, error, "cannot list it"))) from None
    base = url.rstrip("/")
    prefix = path.rstrip("/") + "/"
    files = [RemoteFile(key[len(prefix):], f"{base}/{key[len(prefix):]}", int(info["size"]), _mtime(info))
             for key, info in listing.items() if key.startswith(prefix) and not key.endswith("/")]
    return True, sorted(files, key=lambda f: f.name)


def glob_urls(flag: str, pattern: str) -> list[str]:
    """The objects and folders a remote glob matches, as URLs, sorted; :class:`InputError` if the store fails."""
    if pattern.lower().startswith(("http://", "https://")):
        raise InputError(f"{flag} {pattern}: http(s):// cannot be listed, so it cannot be globbed; name the files")
    fs, path = _fs(pattern)
    try:
        return sorted(fs.unstrip_protocol(found) for found in fs.glob(path))
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise InputError(f"{flag} {remote_error(pattern, error, 'cannot list it')}") from None


def exists(path: str) -> bool:
    """Whether *path* (a local path, or a URL: asked of its store) names something."""
    if not is_url(path):
        return os.path.exists(path)
    fs, where = _fs(path)
    try:
        return bool(fs.exists(where)) if hasattr(fs, "exists") else fs.info(where) is not None
    except FileNotFoundError:
        return False
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise InputError(str(remote_error(path, error, "cannot check it"))) from None


def _fetch_error(url: str, error: BaseException) -> InputError:
    return InputError(str(remote_error(url, error)))


def read_whole(path: str, size: int, buffer: memoryview) -> tuple[memoryview, Digest]:
    """:func:`markit.engine.datapass.read_whole` for a local path; a URL's object in one request."""
    if not is_url(path):
        return datapass.read_whole(path, size, buffer)
    fs, where = _fs(path)
    try:  # one byte more than listed: a file that grew shows (an empty object takes no range)
        data = fs.cat_file(where, start=0, end=size + 1) if size else fs.cat_file(where)
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise _fetch_error(path, error) from None
    if len(data) != size:
        raise InputError(f"{path}: changed while it was archived (listed at {size} bytes, read {len(data)})")
    buffer[:size] = data
    view = buffer[:size]
    return view, Digest(hashlib.sha256(view).hexdigest(), crc32(view), size)


def pump(path: str, size: int, consume: Consumer, progress: Callable[[int], None] | None = None,
         ring: BufferRing | None = None) -> Digest:
    """:func:`markit.engine.datapass.pump` for a local path; a URL's object read once, in blocks, one ahead."""
    if not is_url(path):
        return datapass.pump(path, size, consume, progress, ring)
    from markit.storage.ranged import Fetched, StreamFile

    fs, where = _fs(path)
    ring = ring or BufferRing()
    source = StreamFile(fs, where, path, size, Fetched())
    stream = DataStream(size=size, consume=consume)
    try:
        while chunk := ring.fill(source.readinto, CHUNK):
            stream.write(chunk)
            if progress is not None:
                progress(len(chunk))
        digest = stream.finish()
    except RemoteError as error:  # the store failed or the object changed: an input problem
        stream.abandon()
        raise InputError(str(error)) from None
    except BaseException:
        stream.abandon()
        raise
    finally:
        source.close()
    return digest
