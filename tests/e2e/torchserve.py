"""Run a real TorchServe 0.12.0 on loopback for end-to-end tests.

:class:`TorchServe` is a context manager: entering it writes ``config.properties`` with five
free 127.0.0.1 ports, starts ``torchserve --start`` with its own ``TMPDIR``/``TEMP``, log folder
and working folder (all under *root*), and waits until the management API answers. Leaving it
runs ``torchserve --stop --foreground`` and, should anything survive, kills the process group
the server was started in, so no java or worker process outlives a test.

The HTTP calls use :mod:`urllib` only. See ``/work/shared/TORCHSERVE.md`` for the observed
behaviour this module relies on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast, final

__all__ = ["Ports", "TorchServe", "TorchServeError", "free_ports"]

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
HTTP_TIMEOUT = 120.0
READY_LINE = "Model server started."
_REGISTERED = re.compile(r'Model "(?P<name>.+)" Version: (?P<version>\S+) registered')


class TorchServeError(RuntimeError):
    """TorchServe failed to start or answered an API call with an error."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Ports:
    """The five ports TorchServe opens; all of them bind to 127.0.0.1."""

    inference: int
    management: int
    metrics: int
    grpc_inference: int
    grpc_management: int


def free_ports(count: int) -> list[int]:
    """*count* distinct ports free on 127.0.0.1 right now (held open together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _config_properties(ports: Ports, allowed_urls: str = "file://.*") -> str:
    props = {
        "inference_address": f"http://127.0.0.1:{ports.inference}",
        "management_address": f"http://127.0.0.1:{ports.management}",
        "metrics_address": f"http://127.0.0.1:{ports.metrics}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_management_address": "127.0.0.1",
        "grpc_inference_port": str(ports.grpc_inference),
        "grpc_management_port": str(ports.grpc_management),
        "default_workers_per_model": "1",
        "install_py_dep_per_model": "false",
        "disable_system_metrics": "true",
        "number_of_gpu": "0",
        # Archives are named by file name in the model store; no downloads from anywhere.
        "allowed_urls": allowed_urls,
        "enable_envvars_config": "false",
        "number_of_netty_threads": "2",
        "netty_client_threads": "2",
        "default_response_timeout": "60",
        "vmargs": "-Xmx512m -XX:+UseSerialGC",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


@final
@dataclass
class TorchServe:
    """A TorchServe server living under *root*, driven by the venv whose ``bin`` is *bin_dir*.

    Layout under *root*: ``model-store/`` (copy archives here and register them by file
    name), ``work/`` (the server's working folder), ``tmp/`` (its ``TMPDIR``/``TEMP``: pid file
    and unpacked models), ``logs/`` (``ts_log.log``, ``model_log.log``, ...), ``server.log``
    (its stdout and stderr) and ``config.properties``.
    """

    bin_dir: Path
    root: Path
    startup_timeout: float = STARTUP_TIMEOUT
    ports: Ports = field(default_factory=lambda: Ports(*free_ports(5)))
    allowed_urls: str = "file://.*"
    """TorchServe's ``allowed_urls`` (comma-separated regular expressions): the model store only, unless a
    test serves archives by URL (on 127.0.0.1)."""
    _pgid: int | None = field(default=None, init=False, repr=False)

    # -- layout ---------------------------------------------------------------------------

    @property
    def model_store(self) -> Path:
        """The folder given as ``--model-store``; archives copied here register by file name."""
        return self.root / "model-store"

    @property
    def log_dir(self) -> Path:
        """``LOG_LOCATION`` and ``METRICS_LOCATION``: ts_log.log, model_log.log, ..."""
        return self.root / "logs"

    @property
    def server_log(self) -> Path:
        """The server's stdout and stderr."""
        return self.root / "server.log"

    @property
    def config_file(self) -> Path:
        return self.root / "config.properties"

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.inference}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}"

    def _env(self) -> dict[str, str]:
        tmp = str(self.root / "tmp")
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "TS_CONFIG_FILE", "JAVA_TOOL_OPTIONS"}}
        env.update(
            TMPDIR=tmp,
            TEMP=tmp,
            LOG_LOCATION=str(self.log_dir),
            METRICS_LOCATION=str(self.log_dir),
            PATH=f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
            VIRTUAL_ENV=str(self.bin_dir.parent),
        )
        return env

    def _run_cli(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "torchserve"), *args],
            cwd=self.root / "work",
            env=self._env(),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Write the config, start the server and wait until it answers (or raise)."""
        for folder in (self.model_store, self.root / "work", self.root / "tmp", self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(_config_properties(self.ports, self.allowed_urls))
        with open(self.server_log, "ab") as out:
            # A new session: java and its Python workers share this process group, so the
            # kill fallback in stop() reaches all of them and nothing else.
            cli = subprocess.Popen(
                [
                    str(self.bin_dir / "torchserve"),
                    "--start",
                    "--ncs",
                    "--ts-config",
                    str(self.config_file),
                    "--model-store",
                    str(self.model_store),
                    "--workflow-store",  # workflows (.war) are registered from the same folder
                    str(self.model_store),
                    "--disable-token-auth",
                    "--enable-model-api",
                ],
                cwd=self.root / "work",
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pgid = cli.pid
        try:
            cli.wait(timeout=60)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise TorchServeError(f"TorchServe exited during start-up\n{self.log_tail()}")
            if READY_LINE in self._read(self.server_log):
                try:
                    self.list_models()
                    return
                except (TorchServeError, OSError):
                    pass
            time.sleep(0.2)
        raise TorchServeError(f"TorchServe not ready after {self.startup_timeout:.0f} s\n{self.log_tail()}")

    def stop(self) -> None:
        """``torchserve --stop --foreground``, then kill whatever is left of the server's group."""
        if self._pgid is None:
            return
        try:
            self._run_cli("--stop", "--foreground", timeout=STOP_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self.is_running():
                break
            try:
                os.killpg(self._pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while self.is_running() and time.monotonic() < deadline:
                time.sleep(0.1)
        self._pgid = None

    @property
    def process_group(self) -> int | None:
        """The process group of the CLI, java and its workers while the server runs."""
        return self._pgid

    def is_running(self) -> bool:
        """Whether any process of the server's group still runs (zombies don't count)."""
        if self._pgid is None:
            return False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state, fields[2] the process group id.
            if int(fields[2]) == self._pgid and fields[0] != "Z":
                return True
        return False

    def __enter__(self) -> TorchServe:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- logs -----------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        """The last *lines* of server.log, ts_log.log and model_log.log, for error messages."""
        parts = []
        for path in (self.server_log, self.log_dir / "ts_log.log", self.log_dir / "model_log.log"):
            text = self._read(path).splitlines()[-lines:]
            if text:
                parts.append(f"--- {path.name} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no logs)"

    # -- API ------------------------------------------------------------------------------

    def _call(self, method: str, url: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/octet-stream")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", "replace")
            raise TorchServeError(f"{method} {url} -> HTTP {err.code}: {text}", err.code, text) from None
        except urllib.error.URLError as err:
            raise TorchServeError(f"{method} {url} failed: {err.reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def list_models(self) -> list[dict[str, Any]]:
        """``GET /models``: the registered models (name and url)."""
        return cast("list[dict[str, Any]]", self._call("GET", f"{self.management_url}/models")["models"])

    def register(self, url: str | Path) -> str:
        """Register an archive in the model store by file (or folder) name; return its model name.

        TorchServe looks a file up by its base name in the model store (``..`` is refused);
        only a folder may be given by any absolute path.

        Uses ``initial_workers=1&synchronous=true`` so the worker has loaded the handler when
        this returns. Raises :class:`TorchServeError` (with ``status`` 409 for a name and
        version already registered, 500 for "Failed to save model" and similar).
        """
        query = urllib.parse.urlencode({"url": str(url), "initial_workers": "1", "synchronous": "true"})
        answer = self._call("POST", f"{self.management_url}/models?{query}")
        status = answer.get("status", "") if isinstance(answer, dict) else str(answer)
        match = _REGISTERED.search(status)
        if match is None:
            raise TorchServeError(f"unexpected register answer: {answer!r}")
        return match.group("name")

    def describe(self, name: str, version: str | None = None) -> list[dict[str, Any]]:
        """``GET /models/NAME[/VERSION]``."""
        path = urllib.parse.quote(name) + (f"/{urllib.parse.quote(version)}" if version else "")
        return cast("list[dict[str, Any]]", self._call("GET", f"{self.management_url}/models/{path}"))

    def predict(self, name: str, body: bytes, version: str | None = None) -> Any:
        """``POST /predictions/NAME[/VERSION]`` with *body*; the answer, parsed if it is JSON."""
        path = urllib.parse.quote(name) + (f"/{urllib.parse.quote(version)}" if version else "")
        return self._call("POST", f"{self.inference_url}/predictions/{path}", body)

    def unregister(self, name: str, version: str | None = None) -> None:
        """``DELETE /models/NAME[/VERSION]`` and wait until the model is gone from the list."""
        path = urllib.parse.quote(name) + (f"/{urllib.parse.quote(version)}" if version else "")
        self._call("DELETE", f"{self.management_url}/models/{path}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if version is not None or all(m["modelName"] != name for m in self.list_models()):
                return
            time.sleep(0.1)
        raise TorchServeError(f"model {name} still listed 30 s after DELETE")
