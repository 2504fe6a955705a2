"""The model manifest (``MAR-INF/MANIFEST.json``): its fields, its checks, its bytes.

Field names and layout follow torch-model-archiver 0.12.0, which is what the
TorchServe frontend reads; fields that were not given are left out, as it does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from markit.errors import InputError

__all__ = [
    "BUILTIN_HANDLERS",
    "MANIFEST_NAME",
    "MODEL_NAME_RE",
    "RUNTIMES",
    "HandlerSpec",
    "build_manifest",
    "check_model_name",
    "created_on",
    "manifest_bytes",
    "parse_handler",
]

MANIFEST_NAME = "MAR-INF/MANIFEST.json"
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")
RUNTIMES = ("python", "python2", "python3", "LSP")
# Handlers TorchServe ships in ts.torch_handler: they need no module file in the archive.
BUILTIN_HANDLERS = frozenset(
    {
        "base_handler",
        "text_classifier",
        "image_classifier",
        "object_detector",
        "image_segmenter",
        "dali_image_classifier",
        "vllm_handler",
        "trt_llm_handler",
    }
)
CREATED_ON_FORMAT = "%d/%m/%Y %H:%M:%S"  # torch-model-archiver's datetime.now().strftime format
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# importlib takes any name; MMS examples use dashes (lstm-service:handle)
_MODULE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*$")


def check_model_name(name: str) -> str:
    """*name*, if it is a valid model name; else :class:`InputError` saying why."""
    if not MODEL_NAME_RE.fullmatch(name):
        raise InputError(
            f"model name {name!r} is not valid: it must start with a letter or digit and hold only"
            " letters, digits, '_', '-' and '.'"
        )
    return name


@dataclass(frozen=True)
class HandlerSpec:
    """What ``--handler`` names, taken apart."""

    text: str
    """The value as given, e.g. ``handler.py:handle``."""
    module: str
    """The module to import: ``handler`` for ``path/to/handler.py``; a built-in's name."""
    function: str | None
    """The entry function after ``:``, or None."""
    path: str | None
    """The handler file, when the value names one (ends ``.py`` or has a ``/``);
    ``path/to/handler:fn`` names ``path/to/handler.py``, as in torch-model-archiver."""
    builtin: bool
    """True for a TorchServe built-in handler, which needs no file in the archive."""

    @property
    def module_file(self) -> str | None:
        """The archive name the module must have at the root, or None for a built-in."""
        return None if self.builtin else f"{self.module}.py"

    @property
    def manifest_value(self) -> str:
        """``model.handler`` in the manifest: the base name, with ``:function`` if given."""
        base = self.text.partition(":")[0].rsplit("/", 1)[-1]
        return f"{base}:{self.function}" if self.function else base


def parse_handler(text: str) -> HandlerSpec:
    """Take ``module[:function]`` or ``path/to/file.py[:function]`` apart."""
    if not text:
        raise InputError("--handler is empty: give module[:function], a .py file or a built-in handler name")
    head, sep, function = text.partition(":")
    if not head:
        raise InputError(f"handler {text!r} has no module before ':'")
    if sep and not _IDENTIFIER.match(function):
        raise InputError(f"handler {text!r}: {function!r} is not a Python function name")
    is_path = head.endswith(".py") or "/" in head
    base = head.rsplit("/", 1)[-1]
    module = base.removesuffix(".py")
    if not _MODULE.match(module):
        raise InputError(f"handler {text!r}: {module!r} is not an importable module name")
    return HandlerSpec(
        text=text,
        module=module,
        function=function or None,
        path=(head if head.endswith(".py") else head + ".py") if is_path else None,
        builtin=not is_path and module in BUILTIN_HANDLERS,
    )


def created_on(when: float, *, utc: bool) -> str:
    """``createdOn`` for *when*: in UTC for ``SOURCE_DATE_EPOCH``, else in local time."""
    return time.strftime(CREATED_ON_FORMAT, time.gmtime(when) if utc else time.localtime(when))


def build_manifest(
    *,
    model_name: str,
    handler: HandlerSpec,
    runtime: str,
    created: str,
    archiver_version: str,
    serialized_file: str | None = None,
    model_file: str | None = None,
    version: str | None = None,
    requirements_file: str | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """The manifest as a dict, keys in torch-model-archiver's order, unset ones left out."""
    model: dict[str, Any] = {"modelName": model_name}
    if serialized_file:
        model["serializedFile"] = serialized_file
    model["handler"] = handler.manifest_value
    if model_file:
        model["modelFile"] = model_file
    if version:
        model["modelVersion"] = version
    if requirements_file:
        model["requirementsFile"] = requirements_file
    if config_file:
        model["configFile"] = config_file
    return {
        "createdOn": created,
        "runtime": runtime,
        "model": model,
        "archiverVersion": archiver_version,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as written: JSON with a 2-space indent, as torch-model-archiver writes it."""
    return json.dumps(manifest, indent=2).encode("utf-8")
