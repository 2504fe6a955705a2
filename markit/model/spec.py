"""A workflow's spec (a YAML DAG of models and functions) checked against its handler, every issue with its line.

TorchServe's frontend reads the spec's ``models:`` (global ``min-workers``... and, per model, a
mapping with a ``url``) and ``dag:`` (node -> list of the nodes it feeds), where a node that is not
a model runs the handler's function of that name.

Pure: :func:`check_spec` takes the spec's and the handler's bytes and returns every
:class:`SpecIssue`, each naming its line. The YAML is *composed* (a tree of nodes with line
marks) with PyYAML's safe loader and never constructed, so no tag can make a Python object;
the handler is parsed with :mod:`ast`, never imported. PyYAML is imported only here, when a
workflow is involved (the ``markit[workflow]`` extra).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markit.errors import MarkitError
from markit.model.workflow import SPEC_MAX

__all__ = ["GLOBAL_KEYS", "MissingExtra", "SpecIssue", "check_spec", "handler_functions", "url_warning"]

# The spec's settings for every model (TorchServe's WorkFlow reads each as an int); any other key is a model.
GLOBAL_KEYS = frozenset({"min-workers", "max-workers", "batch-size", "max-batch-delay", "retry-attempts",
                         "timeout-ms"})
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


class MissingExtra(MarkitError):
    """A workflow needs PyYAML, which is the optional ``markit[workflow]`` extra."""


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One thing wrong with a workflow spec (or its handler)."""

    line: int | None
    """1-based line in the file it concerns, or None when it concerns the whole file."""
    message: str
    """What was expected and what was found, starting with the file name and line."""
    warning: bool = False
    """True for what TorchServe may still load (a model url markit cannot judge, a part not checked)."""
    unchecked: bool = False
    """True (with *warning*) when a part could not be checked (a handler over :data:`SPEC_MAX`)."""


def url_warning(url: str) -> str | None:
    """Why a model *url* may not be found, or None: TorchServe takes an absolute URL or a file of its model store."""
    if _URL_RE.match(url):
        return None
    if url.endswith(".mar") and "/" not in url and "\\" not in url and not url.startswith("."):
        return None
    return f"url {url!r} is neither an absolute URL nor a plain .mar name (a file of TorchServe's model store)"


def handler_functions(source: bytes, name: str) -> set[str] | SpecIssue:
    """The functions defined at the top level of the handler module *source*, or why it cannot be parsed."""
    import ast  # only for a workflow: the read side imports this module for its names

    try:
        tree = ast.parse(source, filename=name)
    except SyntaxError as error:
        return SpecIssue(error.lineno, f"{name} line {error.lineno}: not valid Python ({error.msg})")
    except (ValueError, RecursionError, MemoryError) as error:
        return SpecIssue(None, f"{name}: cannot be parsed as Python ({error or 'nested too deeply'})")
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _compose(data: bytes, name: str) -> Any:
    """The spec's YAML node tree (None for an empty document), or the :class:`SpecIssue` that stops it."""
    try:
        import yaml
    except ImportError:
        raise MissingExtra("reading a workflow spec needs PyYAML: pip install 'markit[workflow]'") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(data.decode("utf-8"), Loader=loader)
    except UnicodeDecodeError as error:
        return SpecIssue(None, f"{name}: not UTF-8 ({error.reason} at byte {error.start})")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = None if mark is None else mark.line + 1
        where = f" line {line}" if line else ""
        what = getattr(error, "problem", None) or str(error)
        return SpecIssue(line, f"{name}{where}: not valid YAML ({what})")


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: Any) -> list[tuple[Any, Any]] | None:
    return list(node.value) if type(node).__name__ == "MappingNode" else None


def _text(node: Any) -> str | None:
    """A scalar's text if it is a string (what TorchServe's casts to String accept), else None."""
    return node.value if type(node).__name__ == "ScalarNode" and node.tag == _STR else None


class _Spec:
    """What the spec says, as far as it could be read, and what is wrong with it (a plain class: a dataclass
    costs ~1 ms at import, and the read side imports this module for its names)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.issues: list[SpecIssue] = []
        self.models: dict[str, int] = {}
        """Model name -> its line."""
        self.edges: dict[str, tuple[int, list[str]]] = {}
        """DAG node -> (its line, the nodes it feeds), in the spec's order."""

    def add(self, node: Any, message: str, *, warning: bool = False) -> None:
        line = None if node is None else _line(node)
        where = f" line {line}" if line else ""
        self.issues.append(SpecIssue(line, f"{self.name}{where}: {message}", warning))


def _section(spec: _Spec, top: list[tuple[Any, Any]], key: str, root: Any) -> list[tuple[Any, Any]] | None:
    """The mapping under the top-level *key* (the last one, as YAML loaders keep), or None after an issue."""
    found = [(k, v) for k, v in top if _text(k) == key]
    if not found:
        spec.add(root, f"no '{key}:' section (TorchServe needs 'models:' and 'dag:')")
        return None
    _, value = found[-1]
    entries = _mapping(value)
    if entries is None:
        spec.add(value, f"'{key}:' is not a mapping")
    return entries


def _read_models(spec: _Spec, entries: list[tuple[Any, Any]]) -> None:
    for key, value in entries:
        name = _text(key)
        if name is None:
            spec.add(key, f"models: the key {key.value!r} is not a string")
        elif name in GLOBAL_KEYS:
            if type(value).__name__ != "ScalarNode" or value.tag != _INT:
                spec.add(value, f"models: '{name}' is not a whole number")
        else:
            spec.models[name] = _line(key)
            _read_model(spec, name, key, value)


def _read_model(spec: _Spec, name: str, key: Any, value: Any) -> None:
    options = _mapping(value)
    if options is None:
        spec.add(value, f"model '{name}': expected a mapping with a 'url'")
        return
    url = None
    for option, setting in options:
        label = _text(option)
        if label == "url":
            url = setting
        elif label in GLOBAL_KEYS and (type(setting).__name__ != "ScalarNode" or setting.tag != _INT):
            spec.add(setting, f"model '{name}': '{label}' is not a whole number")
    if url is None:
        spec.add(key, f"model '{name}' has no url")
    elif (text := _text(url)) is None or not text:
        spec.add(url, f"model '{name}': url is not a non-empty string")
    elif (why := url_warning(text)) is not None:
        spec.add(url, f"model '{name}': {why}", warning=True)


def _read_dag(spec: _Spec, entries: list[tuple[Any, Any]]) -> None:
    for key, value in entries:
        name = _text(key)
        if name is None:
            spec.add(key, f"dag: the node {key.value!r} is not a string")
            continue
        successors: list[str] = []
        if type(value).__name__ != "SequenceNode":
            spec.add(value, f"dag: node '{name}' maps to {_kind(value)}, expected a list of nodes ([] for none)")
        else:
            for item in value.value:
                if type(item).__name__ == "ScalarNode" and item.tag == _NULL:
                    continue  # TorchServe skips empty successors
                text = _text(item)
                if text is None:
                    spec.add(item, f"dag: node '{name}' lists {_kind(item)}, expected a node name")
                elif text.strip():
                    successors.append(text)
        spec.edges[name] = (_line(key), successors)


def _kind(node: Any) -> str:
    kind = type(node).__name__
    if kind == "ScalarNode":
        return "null" if node.tag == _NULL else f"{node.value!r}"
    return "a mapping" if kind == "MappingNode" else "a list"


def _check_nodes(spec: _Spec, functions: set[str] | None, handler_name: str) -> None:
    """Every node a model or a top-level function of the handler (not checked when *functions* is None)."""
    if functions is None:
        return
    seen: set[str] = set()
    for node, (line, successors) in spec.edges.items():
        for name in (node, *successors):
            if name in seen or name in spec.models or name in functions:
                continue
            seen.add(name)
            spec.issues.append(SpecIssue(line, f"{spec.name} line {line}: dag node '{name}' is neither a model of"
                                         f" 'models:' nor a function defined at the top level of {handler_name}"))


def _check_graph(spec: _Spec) -> None:
    """No cycle, and one start node (TorchServe refuses anything else: "DAG should have only one start node")."""
    feeds: dict[str, list[str]] = {}
    for node, (_, successors) in spec.edges.items():
        feeds.setdefault(node, [])
        for name in successors:
            feeds[node].append(name)
            feeds.setdefault(name, [])
    fed_by: dict[str, list[str]] = {name: [] for name in feeds}
    for node, successors in feeds.items():
        for name in successors:
            fed_by[name].append(node)
    starts = [name for name in feeds if not fed_by[name]]
    left = _after_kahn(feeds, fed_by)
    if left:
        cycle = _a_cycle(left, fed_by)
        line = spec.edges[cycle[0]][0] if cycle[0] in spec.edges else None
        spec.issues.append(SpecIssue(line, f"{spec.name}{f' line {line}' if line else ''}: the dag has a cycle: "
                                     + " -> ".join(repr(n) for n in cycle)))
    if feeds and len(starts) != 1:
        listed = ", ".join(repr(n) for n in starts) or "none"
        spec.issues.append(SpecIssue(None, f"{spec.name}: the dag has {len(starts)} start nodes (nodes no other"
                                     f" node lists: {listed}); TorchServe needs exactly one"))


def _after_kahn(feeds: Mapping[str, list[str]], fed_by: Mapping[str, list[str]]) -> set[str]:
    """The nodes a topological sort cannot reach: those on a cycle or after one."""
    waiting = {name: len(set(preds)) for name, preds in fed_by.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    while ready:
        name = ready.pop()
        for successor in set(feeds[name]):
            waiting[successor] -= 1
            if waiting[successor] == 0:
                ready.append(successor)
    return {name for name, count in waiting.items() if count > 0}


def _a_cycle(left: Iterable[str], fed_by: Mapping[str, list[str]]) -> list[str]:
    """One cycle among *left*: walking back from any of them through predecessors also left must repeat."""
    remaining = set(left)
    node = min(remaining)
    path: list[str] = []
    index: dict[str, int] = {}
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = min(p for p in fed_by[node] if p in remaining)
    loop = path[index[node]:]
    loop.reverse()  # walked against the edges: turn it round, starting at its first node by name
    first = loop.index(min(loop))
    loop = loop[first:] + loop[:first]
    return [*loop, loop[0]]


def check_spec(spec: bytes, spec_name: str, handler: bytes | None, handler_name: str) -> list[SpecIssue]:
    """Every issue of the workflow *spec* (its file's bytes) with its *handler* module's bytes (None: absent).

    The YAML parses to a mapping with ``models:`` and ``dag:``; each model has a url (a warning when it
    is neither an absolute URL nor a plain ``.mar`` name); each DAG node is a model or a function at the
    top level of the handler; the DAG has no cycle and one start node.
    """
    if len(spec) > SPEC_MAX:
        return [SpecIssue(None, f"{spec_name}: over {SPEC_MAX:,} bytes, not a workflow spec")]
    root = _compose(spec, spec_name)
    if isinstance(root, SpecIssue):
        return [root]
    found = _Spec(spec_name)
    top = None if root is None else _mapping(root)
    if top is None:
        found.add(root, "expected a mapping with 'models:' and 'dag:'" if root is not None else
                  "empty; expected a mapping with 'models:' and 'dag:'")
        return found.issues
    models = _section(found, top, "models", root)
    if models is not None:
        _read_models(found, models)
    dag = _section(found, top, "dag", root)
    if dag is not None:
        _read_dag(found, dag)
    functions = _functions(found, handler, handler_name)
    if models is not None and dag is not None:
        _check_nodes(found, functions, handler_name)
        _check_graph(found)
    return found.issues


def _functions(spec: _Spec, handler: bytes | None, handler_name: str) -> set[str] | None:
    """The handler's top-level functions; an issue and None if it cannot be read."""
    if handler is None:
        return None  # absent: reported as a missing file, not node by node
    if len(handler) > SPEC_MAX:
        spec.issues.append(SpecIssue(None, f"{handler_name}: over {SPEC_MAX:,} bytes, so the DAG's function nodes"
                                     " are not checked", warning=True, unchecked=True))
        return None
    functions = handler_functions(handler, handler_name)
    if isinstance(functions, SpecIssue):
        spec.issues.append(functions)
        return None
    return functions
