"""Remote places: which strings are URLs, the backend for each, and what its errors mean.

A URL is ``scheme://...``; markit reads and writes ``s3://`` (s3fs) and ``gs://`` (gcsfs) through
fsspec, each from an optional extra, and reads ``http(s)://`` with the standard library
(:mod:`markit.storage.http`: no extra, and no aiohttp to import). Nothing of fsspec is imported
until a URL is used, so local paths start as fast as before: :func:`is_url` is a string test.
Credentials, region and endpoint come from each backend's own configuration (for S3: the ``AWS_*``
environment variables and files, ``AWS_ENDPOINT_URL`` for MinIO and the like), never from markit's
options.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

from markit.errors import ArchiveError, MarkitError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["EXTRAS", "MissingExtra", "RemoteError", "filesystem", "is_url", "remote_error", "scheme_of"]

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

EXTRAS: dict[str, tuple[str, str]] = {
    # scheme: (the module its fsspec backend needs, markit's extra that installs it)
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
}
_HTTP = ("http", "https")  # read with the standard library: markit.storage.http


_LOGGERS = ("fsspec", "s3fs", "gcsfs", "aiobotocore", "botocore", "google", "aiohttp")


class MissingExtra(MarkitError, ImportError):
    """A URL whose backend is not installed: the message names the extra to install (exit 1)."""


class RemoteError(ArchiveError):
    """A remote store refused or failed a request (missing object, no access, network)."""


def scheme_of(path: str) -> str | None:
    """The URL scheme of *path* (``s3``, ``https``...), or None for a local path."""
    match = _URL.match(path)
    return match.group(1).lower() if match else None


def is_url(path: str) -> bool:
    """Whether *path* names a remote object (``scheme://...``) rather than a local path."""
    return _URL.match(path) is not None


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for *url* and the path it takes; :class:`MissingExtra` if its backend is absent.

    A new instance each time (``skip_instance_cache``): fsspec would otherwise keep the first
    one made in a process, with the endpoint and credentials of that moment.
    """
    scheme = scheme_of(url)
    if scheme in _HTTP:
        from markit.storage.http import HTTPStore

        return HTTPStore(), url  # the two calls the readers make, fsspec-shaped
    if scheme not in EXTRAS:
        known = ", ".join(f"{s}://" for s in ("s3", "gs", "http", "https"))
        raise RemoteError(f"{url}: markit reads and writes local paths and {known} URLs, not {scheme}://")
    module, extra = EXTRAS[scheme]
    try:
        import fsspec.core

        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{url}: {scheme}:// needs markit's {extra} extra: pip install 'markit[{extra}]'") from None
    import logging

    for name in _LOGGERS:  # their retries log tracebacks at WARNING: markit says one line instead
        logging.getLogger(name).addHandler(logging.NullHandler())
    try:
        fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    except Exception as error:  # noqa: BLE001 - a backend's own configuration error, as one line
        raise remote_error(url, error) from None
    return fs, path


def remote_error(url: str, error: BaseException, doing: str = "cannot read it",
                 missing: str = "no such object") -> RemoteError:
    """*error*, raised by a backend for *url*, as one line that says what happened (*missing*: when not found)."""
    if isinstance(error, MarkitError):
        return RemoteError(str(error))
    if isinstance(error, FileNotFoundError):
        return RemoteError(f"{url}: {missing}")
    if isinstance(error, PermissionError):
        return RemoteError(f"{url}: access denied ({_first_line(error)})")
    return RemoteError(f"{url}: {doing} ({type(error).__name__}: {_first_line(error)})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def info(fs: AbstractFileSystem, path: str, url: str) -> dict[str, Any]:
    """What the store says about *path* (size, type), or a :class:`RemoteError`."""
    try:
        found: dict[str, Any] = fs.info(path)
    except Exception as error:  # noqa: BLE001 - backends raise their own types
        raise remote_error(url, error) from None
    return found
