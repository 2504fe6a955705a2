"""The workflow model (markit.model.workflow, markit.model.spec): the spec's checks, each naming its line, fed literals."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from markit.errors import InputError
from markit.model.spec import MissingExtra, check_spec, handler_functions, url_warning
from markit.model.workflow import build_workflow_manifest, check_workflow_name

GOOD = b"""\
models:
  min-workers: 1
  max-workers: 2
  batch-size: 4
  max-batch-delay: 50
  retry-attempts: 1
  timeout-ms: 5000
  first:
    url: first.mar
    batch-size: 2
  second:
    url: https://example.com/second.mar
dag:
  pre: [first]
  first: [second, post]
  second: [post]
"""
HANDLER = b"def pre(data, context):\n    return data\n\n\nasync def post(data, context):\n    return data\n"


def errors(spec: bytes, handler: bytes | None = HANDLER) -> list[tuple[int | None, str]]:
    return [(i.line, i.message) for i in check_spec(spec, "wf.yaml", handler, "h.py") if not i.warning]


def test_a_good_spec_has_no_issue() -> None:
    assert check_spec(GOOD, "wf.yaml", HANDLER, "h.py") == []


@pytest.mark.parametrize(
    ("spec", "line", "words"),
    [
        (b"models:\n  m:\n    url: m.mar\ndag:\n  m: [\n", 6, "not valid YAML"),
        (b"models: {m: {url: m.mar}}\n", 1, "no 'dag:' section"),
        (b"dag:\n  pre: []\n", 1, "no 'models:' section"),
        (b"models: [a]\ndag: {pre: []}\n", 1, "'models:' is not a mapping"),
        (b"models:\n  m1:\n    url: m1.mar\n  m2:\n    batch-size: 1\ndag:\n  pre: [m1]\n  m1: [m2]\n", 4,
         "model 'm2' has no url"),
        (b"models:\n  m1:\n    url: 7\ndag:\n  pre: [m1]\n", 3, "url is not a non-empty string"),
        (b"models:\n  m1: m1.mar\ndag:\n  pre: [m1]\n", 2, "expected a mapping with a 'url'"),
        (b"models:\n  batch-size: four\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n", 2,
         "'batch-size' is not a whole number"),
        (b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n  m1: [nowhere]\n", 6,
         "dag node 'nowhere' is neither a model"),
        (b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n  m1: [pre]\n", 6, "cycle: 'm1' -> 'pre' -> 'm1'"),
        (b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n  m1: [m1]\n", 6, "'m1' -> 'm1'"),
        (b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: m1\n", 5, "expected a list of nodes"),
        (b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [[m1]]\n", 5, "expected a node name"),
    ],
)
def test_each_spec_error_names_its_line(spec: bytes, line: int, words: str) -> None:
    found = errors(spec)
    assert any(at == line and words in message and f"wf.yaml line {line}:" in message for at, message in found), found


def test_a_cycle_is_shown_as_the_nodes_around_it() -> None:
    spec = b"models:\n  a:\n    url: a.mar\n  b:\n    url: b.mar\ndag:\n  pre: [a]\n  a: [b]\n  b: [a]\n"
    [(line, message)] = errors(spec)
    assert "the dag has a cycle: 'a' -> 'b' -> 'a'" in message and line == 8


def test_two_start_nodes_are_refused_as_torchserve_refuses_them() -> None:
    spec = b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n  post: [m1]\n"
    [(line, message)] = errors(spec, b"def pre(d, c): pass\ndef post(d, c): pass\n")
    assert line is None and "2 start nodes" in message and "'pre', 'post'" in message


def test_an_empty_spec_and_a_scalar_are_not_specs() -> None:
    assert "empty" in errors(b"")[0][1]
    assert "expected a mapping" in errors(b"just text\n")[0][1]


def test_a_spec_that_is_not_utf8_or_too_large_is_one_issue() -> None:
    assert "not UTF-8" in errors(b"models: \xff\n")[0][1]
    assert "over 1,048,576 bytes" in errors(b"#" * (1 << 20) + b"x")[0][1]


def test_every_issue_is_reported_at_once() -> None:
    spec = b"models:\n  m1:\n    batch-size: 1\n  m2:\n    url: m2.mar\ndag:\n  pre: [m1]\n  m1: [ghost]\n"
    lines = sorted(line for line, _ in errors(spec) if line is not None)
    assert lines == [2, 8]


@pytest.mark.parametrize(
    ("url", "warned"),
    [("first.mar", False), ("https://host/first.mar", False), ("s3://bucket/m.mar", False),
     ("file:///models/m.mar", False), ("models/first.mar", True), ("first.tar.gz", True), ("../m.mar", True),
     (".mar", True)],
)
def test_a_url_neither_absolute_nor_a_plain_mar_name_is_a_warning(url: str, warned: bool) -> None:
    assert (url_warning(url) is not None) == warned
    spec = f"models:\n  m1:\n    url: '{url}'\ndag:\n  pre: [m1]\n".encode()
    issues = check_spec(spec, "wf.yaml", b"def pre(d, c): pass\n", "h.py")
    assert [(i.line, i.warning) for i in issues] == ([(3, True)] if warned else [])


def test_yaml_tags_never_construct_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    spec = (f"models: !!python/object/apply:os.system ['touch {marker}']\n"
            f"dag: !!python/object/apply:subprocess.call [['touch', '{marker}']]\n").encode()
    found = errors(spec)
    assert not marker.exists()
    assert [line for line, _ in found] == [1, 2]  # each section is simply not a mapping


def test_the_handler_is_parsed_never_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    handler = (f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n\n"
               "def pre(data, context):\n    return data\n\nclass post:\n    pass\n\n"
               "if True:\n    def hidden(data, context):\n        return data\n").encode()
    assert handler_functions(handler, "h.py") == {"pre"}
    spec = b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n  m1: [post]\n"
    [(line, message)] = errors(spec, handler)
    assert line == 6 and "'post'" in message and "top level of h.py" in message
    assert not marker.exists()


def test_a_handler_that_is_not_python_is_named_with_its_line() -> None:
    spec = b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n"
    [(line, message)] = errors(spec, b"def pre(data, context):\n    return (\n")
    assert line == 2 and message.startswith("h.py line 2: not valid Python")


def test_without_a_handler_only_the_models_are_checked() -> None:
    assert errors(b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n", None) == []


def test_the_manifest_is_torch_workflow_archivers() -> None:
    manifest = build_workflow_manifest(workflow_name="wf", spec_file="dir/spec.yaml", handler="a/b/h.py",
                                       created="01/01/2020 00:00:00", archiver_version="markit 0")
    assert list(manifest) == ["createdOn", "workflow", "archiverVersion"]
    assert manifest["workflow"] == {"workflowName": "wf", "specFile": "spec.yaml", "handler": "h.py"}


@pytest.mark.parametrize("name", ["wf", "W-1.2_x"])
def test_workflow_names_follow_the_model_name_rule(name: str) -> None:
    assert check_workflow_name(name) == name


@pytest.mark.parametrize("name", ["", "-wf", "w f", "wf/x"])
def test_bad_workflow_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="workflow name"):
        check_workflow_name(name)


def test_without_pyyaml_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(MissingExtra, match=r"markit\[workflow\]"):
        check_spec(GOOD, "wf.yaml", HANDLER, "h.py")


def test_a_handler_over_the_cap_leaves_the_function_nodes_unchecked_with_a_warning() -> None:
    spec = b"models:\n  m1:\n    url: m1.mar\ndag:\n  pre: [m1]\n"
    [issue] = check_spec(spec, "wf.yaml", b"#" * (1 << 20) + b"\n", "h.py")
    assert issue.warning and issue.unchecked and "function nodes are not checked" in issue.message
