"""Model names, handler values and the manifest's layout."""

from __future__ import annotations

import json

import pytest

from markit.errors import InputError
from markit.model.manifest import build_manifest, check_model_name, created_on, manifest_bytes, parse_handler


@pytest.mark.parametrize("name", ["squeezenet", "squeezenet_v1.1", "a", "0model", "Bert-base.v2"])
def test_valid_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "_x", "a b", "a/b", "ü", "name\n", "a:b"])
def test_invalid_model_names(name: str) -> None:
    with pytest.raises(InputError, match="model name"):
        check_model_name(name)


@pytest.mark.parametrize(
    ("text", "module", "function", "path", "builtin", "manifest"),
    [
        ("handler.py", "handler", None, "handler.py", False, "handler.py"),
        ("src/handler.py", "handler", None, "src/handler.py", False, "handler.py"),
        ("src/handler:fn", "handler", "fn", "src/handler.py", False, "handler:fn"),
        ("handler:handle", "handler", "handle", None, False, "handler:handle"),
        ("lstm-service:handle", "lstm-service", "handle", None, False, "lstm-service:handle"),
        ("image_classifier", "image_classifier", None, None, True, "image_classifier"),
        ("vllm_handler", "vllm_handler", None, None, True, "vllm_handler"),
        ("my_handler", "my_handler", None, None, False, "my_handler"),
    ],
)
def test_parse_handler(text: str, module: str, function: str | None, path: str | None, builtin: bool,
                       manifest: str) -> None:
    spec = parse_handler(text)
    assert (spec.module, spec.function, spec.path, spec.builtin) == (module, function, path, builtin)
    assert spec.manifest_value == manifest
    assert spec.module_file == (None if builtin else f"{module}.py")


@pytest.mark.parametrize("text", ["", ":handle", "handler:", "handler:1x", "a b.py"])
def test_bad_handlers(text: str) -> None:
    with pytest.raises(InputError, match="handler"):
        parse_handler(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--handler is empty: give module[:function], a .py file or a built-in handler name"),
        (":handle", "handler ':handle' has no module before ':'"),
    ],
)
def test_handler_messages_fit_the_value(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_handler(text)
    assert str(caught.value) == message


def test_manifest_layout_matches_torch_model_archiver() -> None:
    manifest = build_manifest(
        model_name="m", handler=parse_handler("handler.py"), runtime="python", created="01/02/2026 03:04:05",
        archiver_version="x", serialized_file="w.pt", model_file="model.py", version="1.0",
        requirements_file="requirements.txt", config_file="c.yaml",
    )
    assert list(manifest) == ["createdOn", "runtime", "model", "archiverVersion"]
    assert list(manifest["model"]) == [
        "modelName", "serializedFile", "handler", "modelFile", "modelVersion", "requirementsFile", "configFile",
    ]
    data = manifest_bytes(manifest)
    assert json.loads(data) == manifest
    assert data.startswith(b'{\n  "createdOn"') and not data.endswith(b"\n")


def test_unset_fields_are_left_out() -> None:
    manifest = build_manifest(model_name="m", handler=parse_handler("image_classifier"), runtime="python",
                              created="c", archiver_version="v")
    assert manifest["model"] == {"modelName": "m", "handler": "image_classifier"}


def test_created_on_uses_utc_for_an_epoch() -> None:
    assert created_on(0, utc=True) == "01/01/1970 00:00:00"
    assert created_on(1700000000, utc=True) == "14/11/2023 22:13:20"
