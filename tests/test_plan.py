"""The planner, fed literal snapshots: no disk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markit.errors import ConflictError, InputError, UsageError
from markit.model.names import excluded_name
from markit.write.plan import Request, archive_filename, format_for_output, make_plan
from markit.write.snapshot import Input, Skipped, SourceFile

NOW = 1_800_000_000.0


def folder(given: str, *names: str, flag: str = "--model-path", skipped: tuple[Skipped, ...] = ()) -> Input:
    files = tuple(SourceFile(n, f"/src/{given}/{n}", len(n), 0o644, 1_000_000.0) for n in names)
    return Input(flag, given, True, files, skipped)


def file(flag: str, path: str, size: int = 5, mode: int = 0o644) -> Input:
    return Input(flag, path, False, (SourceFile(path.rsplit("/", 1)[-1], f"/abs/{path}", size, mode, 5.0),))


def request(**kw: object) -> Request:
    base: dict[str, object] = {"model_name": "m", "handler": "handler:handle", "archiver_version": "t", "now": NOW}
    return Request(**{**base, **kw})  # type: ignore[arg-type]


def names(plan: object) -> list[str]:
    return [e.name for e in plan.entries]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (".hidden", "hidden"),
        ("sub/.hidden", "hidden"),
        (".DS_Store", "Mac system file .DS_Store"),
        ("a/.DS_Store", "Mac system file .DS_Store"),
        ("x.pyc", "Python byte code (*.pyc)"),
        ("MANIFEST.json", "MANIFEST.json (the archive's own manifest is generated)"),
        ("deep/MANIFEST.json", "MANIFEST.json (the archive's own manifest is generated)"),
        ("MAR-INF/MANIFEST.json", "MAR-INF/ is reserved: markit writes the archive's own"),
        ("MAR-INF/other", "MAR-INF/ is reserved: markit writes the archive's own"),
        ("MAR-INF", "MAR-INF/ is reserved: markit writes the archive's own"),
        ("MAR-INF/.hidden", "MAR-INF/ is reserved: markit writes the archive's own"),
        ("a/.git/x.pyc", "hidden"),
        ("__pycache__/m.py", "Python byte-code cache __pycache__"),
    ],
)
def test_exclusion_rules(name: str, reason: str) -> None:
    plan = make_plan(request(), [folder("model", "handler.py", name)])
    assert names(plan) == ["handler.py"]
    assert [(x.name, x.reason) for x in plan.exclusions] == [(name, reason)]


def test_skipped_folders_become_exclusions() -> None:
    skipped = (Skipped("__pycache__", "/src/model/__pycache__", "folder: Python byte-code cache __pycache__"),)
    plan = make_plan(request(), [folder("model", "handler.py", skipped=skipped)])
    assert [(x.name, x.reason) for x in plan.exclusions] == [("__pycache__", "folder: Python byte-code cache __pycache__")]


def test_exclude_globs() -> None:
    plan = make_plan(request(excludes=("*.log", "cache")), [folder("model", "handler.py", "a.log", "cache/x.bin", "w.bin")])
    assert names(plan) == ["handler.py", "w.bin"]
    assert {x.name: x.reason for x in plan.exclusions} == {"a.log": "--exclude *.log", "cache/x.bin": "--exclude cache"}


def test_the_output_itself_is_excluded() -> None:
    plan = make_plan(request(output_path="/src/model/m.mar"), [folder("model", "handler.py", "m.mar")])
    assert names(plan) == ["handler.py"]
    assert plan.exclusions[0].reason == "the output archive itself"


def test_files_inside_a_no_archive_output_are_excluded() -> None:
    plan = make_plan(request(output_path="/src/model/m", archive_format="no-archive"),
                     [folder("model", "handler.py", "m/handler.py", "m2/x")])
    assert names(plan) == ["handler.py", "m2/x"]


def test_named_files_go_to_the_root_and_into_the_manifest() -> None:
    inputs = [
        folder("model", "handler.py", "sub/data.txt"),
        file("--serialized-file", "ckpt/weights.pt"),
        file("--model-file", "src/model.py"),
        file("--requirements-file", "requirements.txt"),
        file("--config-file", "conf/model-config.yaml"),
    ]
    plan = make_plan(request(version="2.0"), inputs)
    assert names(plan) == ["handler.py", "model-config.yaml", "model.py", "requirements.txt", "sub/data.txt", "weights.pt"]
    assert plan.manifest["model"] == {
        "modelName": "m", "serializedFile": "weights.pt", "handler": "handler:handle", "modelFile": "model.py",
        "modelVersion": "2.0", "requirementsFile": "requirements.txt", "configFile": "model-config.yaml",
    }


def test_named_files_are_included_even_when_hidden() -> None:
    plan = make_plan(request(handler="image_classifier"), [file("--serialized-file", ".weights.pt")])
    assert names(plan) == [".weights.pt"]


def test_two_inputs_on_one_name_are_an_error_naming_both() -> None:
    with pytest.raises(ConflictError) as caught:
        make_plan(request(), [folder("model", "handler.py", "weights.pt"), file("--serialized-file", "other/weights.pt")])
    assert "/src/model/weights.pt" in str(caught.value) and "/abs/other/weights.pt" in str(caught.value)


def test_the_same_file_twice_is_included_once() -> None:
    model = folder("model", "handler.py", "weights.pt")
    same = Input("--serialized-file", "model/weights.pt", False, (model.files[1],))
    plan = make_plan(request(), [model, same])
    assert names(plan) == ["handler.py", "weights.pt"]
    assert plan.exclusions[0].reason.startswith("the same file is already included")
    assert plan.manifest["model"]["serializedFile"] == "weights.pt"


@pytest.mark.parametrize(
    ("handler", "files", "message"),
    [
        ("handler:handle", ("other.py",), "handler.py is not at the archive root;"),
        ("handler:handle", ("src/handler.py",), "found src/handler.py, but"),
    ],
)
def test_handler_module_must_be_at_the_root(handler: str, files: tuple[str, ...], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_plan(request(handler=handler), [folder("model", *files)])


def test_builtin_handlers_need_no_file() -> None:
    assert make_plan(request(handler="image_classifier"), [folder("model", "w.bin")]).manifest["model"]["handler"] == "image_classifier"


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"model_name": "-bad"}, InputError),
        ({"runtime": "java"}, UsageError),
        ({"archive_format": "rar"}, UsageError),
        ({"compression": "zstd"}, UsageError),
        ({"compression": "deflate", "archive_format": "tgz"}, UsageError),
    ],
)
def test_bad_requests(kw: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        make_plan(request(**kw), [folder("model", "handler.py")])


def test_methods_follow_the_format() -> None:
    inputs = [folder("model", "handler.py", "w.bin")]
    assert [e.method for e in make_plan(request(), inputs).entries] == ["deflate", "store"]
    assert [e.method for e in make_plan(request(archive_format="zip-store"), inputs).entries] == ["store", "store"]
    assert [e.method for e in make_plan(request(archive_format="tgz"), inputs).entries] == ["gzip", "gzip"]
    assert [e.method for e in make_plan(request(compression="deflate"), inputs).entries] == ["deflate", "deflate"]


def test_modes_are_normalised() -> None:
    inputs = [Input("--model-path", "m", True, (
        SourceFile("handler.py", "/m/handler.py", 1, 0o600, 0.0), SourceFile("run.sh", "/m/run.sh", 1, 0o700, 0.0)))]
    assert [e.mode for e in make_plan(request(), inputs).entries] == [0o644, 0o755]


def test_epoch_sets_every_time() -> None:
    plan = make_plan(request(epoch=1_600_000_000.0), [folder("model", "handler.py", "w.bin")])
    assert {e.mtime for e in plan.entries} == {1_600_000_000.0}
    assert plan.generated_mtime == 1_600_000_000.0
    assert plan.manifest["createdOn"] == "13/09/2020 12:26:40"


def test_without_epoch_files_keep_their_mtime() -> None:
    plan = make_plan(request(), [folder("model", "handler.py")])
    assert plan.entries[0].mtime == 1_000_000.0 and plan.generated_mtime == NOW


@pytest.mark.parametrize(
    ("output", "given", "expected"),
    [("-", None, "default"), ("x.mar", None, "default"), ("x.tar.gz", None, "tgz"), ("x.tgz", None, "tgz"),
     ("x.mar", "zip-store", "zip-store"), ("x.tar.gz", "tgz", "tgz"), ("out", "no-archive", "no-archive")],
)
def test_format_for_output(output: str, given: str | None, expected: str) -> None:
    assert format_for_output(output, given) == expected


@pytest.mark.parametrize(("output", "given"), [("x.tar.gz", "default"), ("x.mar", "tgz"), ("-", "no-archive")])
def test_names_torchserve_would_misread_are_refused(output: str, given: str) -> None:
    with pytest.raises(UsageError):
        format_for_output(output, given)


def test_archive_filenames() -> None:
    assert [archive_filename("m", f) for f in ("default", "zip-store", "tgz", "no-archive")] == ["m.mar", "m.mar", "m.tar.gz", "m"]


# Properties: random snapshots of several inputs.
_part = st.sampled_from(["a", "b", ".h", "__pycache__", "MANIFEST.json", "x.pyc", "MAR-INF", "w.bin", "handler.py", "c.json"])
_name = st.lists(_part, min_size=1, max_size=3).map("/".join)


@st.composite
def _inputs(draw: st.DrawFn) -> list[Input]:
    result = []
    for i in range(draw(st.integers(1, 3))):
        entries = draw(st.lists(_name, max_size=12, unique=True))
        root = draw(st.sampled_from(["m", "m", "n"]))  # two inputs may share files
        files = tuple(SourceFile(n, f"/{root}/{n}", 1, 0o644, 0.0) for n in entries)
        result.append(Input("--extra-files", f"{root}{i}", True, files))
    return result


@settings(max_examples=300, deadline=None)
@given(_inputs())
def test_every_file_is_an_entry_or_an_exclusion_and_names_are_unique(inputs: list[Input]) -> None:
    try:
        plan = make_plan(request(handler="image_classifier"), inputs)
    except ConflictError:
        return  # two different files on one name: refused as a whole
    planned = [(e.source, e.name) for e in plan.entries] + [(x.source, x.name) for x in plan.exclusions]
    scanned = [(f.path, f.name) for i in inputs for f in i.files]
    assert sorted(planned) == sorted(scanned)
    assert all(x.reason for x in plan.exclusions)
    assert len(names(plan)) == len(set(names(plan)))
    assert names(plan) == sorted(names(plan))


def _reference_reason(name: str) -> str | None:
    """The rule per component, as first written: the reserved folder, then each component in order."""
    parts = name.split("/")
    if parts[0] == "MAR-INF":
        return "MAR-INF/ is reserved: markit writes the archive's own"
    return next((reason for part in parts if (reason := excluded_name(part)) is not None), None)


@settings(max_examples=300, deadline=None)
@given(_inputs())
def test_each_file_gets_the_first_reason_of_its_components(inputs: list[Input]) -> None:
    """What a folder says is worked out once per folder: the reasons are still the first of the name's components."""
    try:
        plan = make_plan(request(handler="image_classifier"), inputs)
    except ConflictError:
        return
    assert all(_reference_reason(e.name) is None for e in plan.entries)
    for x in plan.exclusions:
        assert x.reason.startswith("the same file") or x.reason == _reference_reason(x.name), x


def test_names_that_are_not_utf8_are_refused_unless_left_out() -> None:
    bad = b"caf\xe9.txt".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    with pytest.raises(InputError, match=r"^model/caf\\xe9\.txt: the file name is not valid UTF-8.*--exclude$"):
        make_plan(request(), [folder("model", "handler.py", bad)])
    plan = make_plan(request(excludes=("caf*",)), [folder("model", "handler.py", bad, "." + bad)])
    assert names(plan) == ["handler.py"] and {x.reason for x in plan.exclusions} == {"--exclude caf*", "hidden"}


@pytest.mark.parametrize(
    ("kw", "method", "keep_smaller"),
    [
        ({}, "deflate", True),
        ({"archive_format": "zip-store"}, "store", False),
        ({"compression": "store"}, "store", False),
        ({"compression": "deflate"}, "deflate", False),
        ({"archive_format": "tgz"}, "deflate", False),
    ],
)
def test_generated_files_are_written_as_the_others(kw: dict[str, str], method: str, keep_smaller: bool) -> None:
    plan = make_plan(request(**kw), [folder("model", "handler.py")])
    assert (plan.generated_method, plan.keep_smaller) == (method, keep_smaller)
