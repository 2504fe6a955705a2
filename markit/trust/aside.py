"""A signature verified beside the data pass: in a forked child when that is safe, else on a thread.

Verifying an OMS signature takes ~2 ms; importing the library that does it takes ~120-180 ms (pydantic for
``sigstore_models``, protobuf for the in-toto statement), all of it Python holding the GIL. On a thread that
import stalls the data pass's SHA-256 worker each time it returns from hashing a chunk (measured: +8% on a
2 GiB ``verify``). A forked child imports and verifies on the other core with its own GIL and sends back the
signed names and digests as JSON through a pipe, so the data pass runs as fast as without a signature.
A fork is only safe in a process with no other thread (a thread's locks would be copied held), so a
process that already has threads (the data pass's workers, kept after a first large member), or has the
library imported already (then it costs ~2 ms), or has no ``fork`` verifies on a thread instead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from markit.errors import InputError
from markit.trust.oms import Anchor, SignatureError, Signed, read_signature

__all__ = ["Aside", "start"]

RESULT_MAX = 256 << 20  # bytes of JSON read back: ~100 bytes per signed file, far above --max-entries' 100,000


class Aside:
    """A signature being verified; :meth:`result` waits for it, :meth:`close` ends it (always call it)."""

    def __init__(self, signature: str, anchor: Anchor) -> None:
        self._pid = 0
        self._read = -1
        self._future: Future[Signed] | None = None
        self._pool: ThreadPoolExecutor | None = None
        if hasattr(os, "fork") and threading.active_count() == 1 and "model_signing" not in sys.modules:
            self._fork(signature, anchor)
        else:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="markit-signature")
            self._future = self._pool.submit(read_signature, signature, anchor)

    def _fork(self, signature: str, anchor: Anchor) -> None:
        self._read, write = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: never returns, never runs the parent's exit handlers
            try:
                os.close(self._read)
                with os.fdopen(write, "wb") as out:
                    out.write(json.dumps(_outcome(signature, anchor)).encode())
            finally:
                os._exit(0)
        os.close(write)

    def result(self) -> Signed:
        """The verified signature; :class:`SignatureError` or :class:`InputError` as :func:`read_signature`."""
        if self._future is not None:
            return self._future.result()
        with os.fdopen(self._read, "rb") as pipe:
            self._read = -1
            data = pipe.read(RESULT_MAX)
        self._reap()
        return _signed(json.loads(data) if data else {"error": "the signature check ended without an answer"})

    def close(self) -> None:
        """Stop and reap the child, or let the thread finish; close what is open."""
        if self._read >= 0:
            os.close(self._read)
            self._read = -1
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _reap(self) -> None:
        if self._pid:
            os.waitpid(self._pid, 0)
            self._pid = 0


def _outcome(signature: str, anchor: Anchor) -> dict[str, Any]:
    """What the child sends back: the signed files, or the error and its kind."""
    try:
        signed = read_signature(signature, anchor)
    except SignatureError as error:
        return {"invalid": str(error)}
    except InputError as error:
        return {"input": str(error)}
    except BaseException as error:  # noqa: BLE001 - whatever it is, the parent reports it as one line
        return {"error": f"{type(error).__name__}: {error}"}
    return {"signed": {"model_name": signed.model_name, "digests": dict(signed.digests),
                       "ignore_paths": list(signed.ignore_paths)}}


def _signed(outcome: dict[str, Any]) -> Signed:
    if "signed" in outcome:
        found = outcome["signed"]
        return Signed(found["model_name"], found["digests"], tuple(found["ignore_paths"]))
    if "invalid" in outcome:
        raise SignatureError(outcome["invalid"])
    if "input" in outcome:
        raise InputError(outcome["input"])
    raise InputError(f"the signature could not be checked: {outcome.get('error')}")


def start(signature: str, anchor: Anchor) -> Aside:
    """Start verifying *signature* against *anchor* beside whatever this thread does next."""
    return Aside(signature, anchor)
