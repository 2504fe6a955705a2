"""http(s):// objects read with the standard library: ``HEAD`` for the size, ``GET`` with ``Range`` for bytes.

The two calls :mod:`markit.storage.ranged` makes of an fsspec filesystem (``info``, ``cat_file``), on
one kept-alive connection per host. fsspec's own HTTP filesystem does the same on aiohttp, whose import
(with asyncio) takes ~0.36 s here against ~0.05 s for :mod:`http.client`: measured, that made
``inspect`` of a remote .mar 3.3x a local one, where the target is 3x (docs/design.md, "Remote
archives"). A server that ignores ``Range`` is refused before its body is read. Redirects (up to 5)
are followed; certificates are verified (the default SSL context).
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from typing import Any

__all__ = ["HTTPStore", "PreconditionFailed"]

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
TIMEOUT = 60.0  # seconds without a byte before a request fails
_COPY = 1 << 20  # bytes read from a response per call


class PreconditionFailed(OSError):
    """412: the object is no longer the version ``If-Match`` named (:mod:`markit.storage.pinned` says so)."""


class HTTPStore:
    """An fsspec-shaped view of http(s) URLs: :meth:`info` and :meth:`cat_file` (paths are the URLs), and
    :meth:`cat_range`, a range with its ``ETag`` (:mod:`markit.storage.pinned`)."""

    protocol = ("http", "https")

    def __init__(self) -> None:
        self._local = threading.local()  # a connection per thread (the one-pass reader fetches ahead on another)

    def _connection(self, parts: urllib.parse.SplitResult) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        if key not in pool:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            pool[key] = kind(parts.netloc, timeout=TIMEOUT)
        return pool[key]

    def _request(self, method: str, url: str, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, str]:
        """The response to *method* on *url*, redirects followed; the URL that answered."""
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            conn = self._connection(parts)
            try:
                conn.request(method, target, headers=headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()  # a kept-alive connection the server closed: once more on a new one
                conn.request(method, target, headers=headers)
                response = conn.getresponse()
            if response.status in REDIRECTS and response.getheader("Location"):
                response.read()
                url = urllib.parse.urljoin(url, response.getheader("Location", ""))
                continue
            return response, url
        raise OSError(f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _strip_protocol(url: str) -> str:
        return url  # fsspec's name: the path a filesystem takes for a URL (here, the URL itself)

    def info(self, url: str) -> dict[str, Any]:
        """``{"type": "file", "size": N}`` from a ``HEAD``; FileNotFoundError for 404/410."""
        response, _ = self._request("HEAD", url, {})
        response.read()
        _check(response, url)
        length = response.getheader("Content-Length")
        return {"name": url, "type": "file", "size": int(length) if length and length.isdigit() else None}

    def cat_file(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of *url* (the whole body without a range), in one ``GET``."""
        if start is not None and end is not None:
            return self.cat_range(url, start, end, None)[0]
        response, _ = self._request("GET", url, {})
        _check(response, url)
        return _body(response)

    def cat_range(self, url: str, start: int, end: int, if_match: str | None) -> tuple[bytes, str | None]:
        """Bytes ``[start, end)`` of *url* and the response's ``ETag``; only if it is still *if_match*, if given
        (:class:`PreconditionFailed` when the server answers 412)."""
        headers = {"Range": f"bytes={start}-{end - 1}", **({"If-Match": if_match} if if_match else {})}
        response, _ = self._request("GET", url, headers)
        if response.status == 200:
            response.close()
            raise OSError("the server ignores Range requests (it answered 200 with the whole object)")
        if response.status == 412 and if_match:
            response.read()
            raise PreconditionFailed(f"it was ETag {if_match}; If-Match failed")
        _check(response, url)
        return _body(response), response.getheader("ETag")


def _body(response: http.client.HTTPResponse) -> bytes:
    out = bytearray()
    while chunk := response.read(_COPY):
        out += chunk
    return bytes(out)


def _check(response: http.client.HTTPResponse, url: str) -> None:
    if response.status in (404, 410):
        response.read()
        raise FileNotFoundError(url)
    if response.status in (401, 403):
        response.read()
        raise PermissionError(f"HTTP {response.status} {response.reason}")
    if response.status >= 300:
        response.read()
        raise OSError(f"HTTP {response.status} {response.reason}")
