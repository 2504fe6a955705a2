"""``markit diff``: the pure comparison (literals, no disk), then the command on archives markit and the real
torch-model-archiver made: exit codes, lines, JSON, stdin, and archives it must refuse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import markit
from markit.cli.diff import render
from markit.formats.base import Member
from markit.model.problems import problem
from markit.read.diff import Contents, Diff, Entry, Uncomparable, compare, contents_of, manifest_fields
from markit.read.facts import ArchiveFacts
from markit.read.verify import Reading
from tests.conftest import EXAMPLE
from tests.support.hostile import run_main
from tests.support.venvs import ensure_venv

REAL = Path(__file__).parent / "fixtures" / "real"
A, B, C = "a" * 64, "b" * 64, "c" * 64
MANIFEST = {"createdOn": "01/01/2024 00:00:00", "runtime": "python", "archiverVersion": "markit 0.1.0",
            "model": {"modelName": "m", "handler": "handler:handle", "modelVersion": "1.0"}}
M = "MAR-INF/MANIFEST.json"
R = "MAR-INF/RECORD"


def contents(label: str, entries: dict[str, Entry], manifest: dict[str, Any] | None = None) -> Contents:
    return Contents(label, entries, manifest)


# --- the comparison, pure ---------------------------------------------------------------------------------------


def test_same_entries_in_another_order_and_another_creation_time_are_the_same() -> None:
    old = contents("a.mar", {"x.bin": Entry(3, A), "h.py": Entry(2, B), M: Entry(9, C)}, MANIFEST)
    later = {**MANIFEST, "createdOn": "02/02/2025 10:00:00"}
    new = contents("b.tar.gz", {M: Entry(12, A), "h.py": Entry(2, B), "x.bin": Entry(3, A)}, later)
    found = compare(old, new)
    assert found.same()
    assert found.to_json() == {"old": "a.mar", "new": "b.tar.gz", "same": True, "added": [], "removed": [],
                               "changed": [], "manifest": {}}


def test_added_removed_changed_sorted_with_sizes_and_digests() -> None:
    old = contents("a", {"z.txt": Entry(1, A), "b.bin": Entry(5, A), "keep": Entry(1, C), "gone": Entry(7, B)})
    new = contents("b", {"keep": Entry(1, C), "b.bin": Entry(6, B), "z.txt": Entry(1, B), "new2": Entry(2, A),
                         "new1": Entry(4, C)})
    found = compare(old, new)
    assert not found.same()
    assert list(found.added) == ["new1", "new2"] and found.added["new1"] == Entry(4, C)
    assert list(found.removed) == ["gone"]
    assert found.to_json()["changed"] == [
        {"name": "b.bin", "old": {"size": 5, "sha256": A}, "new": {"size": 6, "sha256": B}},
        {"name": "z.txt", "old": {"size": 1, "sha256": A}, "new": {"size": 1, "sha256": B}},
    ]


def test_the_same_bytes_under_another_name_are_a_removal_and_an_addition() -> None:
    found = compare(contents("a", {"old/w.bin": Entry(3, A)}), contents("b", {"w.bin": Entry(3, A)}))
    assert (list(found.added), list(found.removed), found.changed) == (["w.bin"], ["old/w.bin"], ())


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({"model": {"modelVersion": "1.0"}}, {"model": {"modelVersion": "1.1"}}, {"model.modelVersion": ("1.0", "1.1")}),
    ({"runtime": "python"}, {}, {"runtime": ("python", None)}),
    ({}, {"model": {"serializedFile": "w.pt"}}, {"model.serializedFile": (None, "w.pt")}),
    ({"n": 1}, {"n": 1.0}, {"n": (1, 1.0)}),  # another JSON value, if an equal Python one
    ({"n": True}, {"n": 1}, {"n": (True, 1)}),
    ({"list": [1, 2]}, {"list": [2, 1]}, {"list": ([1, 2], [2, 1])}),
    ({"createdOn": "a"}, {"createdOn": "b"}, {}),  # a timestamp, not contents
    ({"model": {}}, {"model": {"handler": "h"}}, {"model": ({}, None), "model.handler": (None, "h")}),
])
def test_manifest_fields(before: dict[str, Any], after: dict[str, Any], expected: dict[str, Any]) -> None:
    found = compare(contents("a", {M: Entry(1, A)}, before), contents("b", {M: Entry(2, B)}, after))
    assert dict(found.manifest) == expected
    assert found.changed == ()  # the manifest is compared by field, not by its bytes
    assert found.same() == (not expected)


_names = st.sampled_from(["a", "b/c", "d.bin", M, R, "w.safetensors"])
_entries = st.dictionaries(_names, st.builds(Entry, st.integers(0, 3), st.sampled_from([A, B])), max_size=6)
_manifests = st.none() | st.dictionaries(st.sampled_from(["runtime", "createdOn", "x"]), st.integers(0, 2) | st.none())


@given(_entries, _entries, _manifests, _manifests)
def test_comparing_the_other_way_swaps_every_part(one: dict[str, Entry], two: dict[str, Entry],
                                                  m1: dict[str, Any] | None, m2: dict[str, Any] | None) -> None:
    old, new = Contents("a", one, m1 if M in one else None), Contents("b", two, m2 if M in two else None)
    forth, back = compare(old, new), compare(new, old)
    assert (forth.added, forth.removed) == (back.removed, back.added)
    assert [(c.name, c.old, c.new) for c in forth.changed] == [(c.name, c.new, c.old) for c in back.changed]
    assert {k: v[::-1] for k, v in forth.manifest.items()} == dict(back.manifest)
    assert compare(old, old).same() and forth.same() == back.same()
    shuffled = Contents("c", dict(reversed(list(one.items()))), old.manifest)
    assert compare(old, shuffled).same()


def test_manifest_fields_are_flattened_without_recursion() -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = {"k": deep}
    flat = manifest_fields({"createdOn": "x", "top": "t", "deep": deep})
    assert flat == {"deep." + "k." * 5000 + "leaf": 1, "top": "t"}


def test_a_manifest_that_is_not_json_is_compared_by_its_bytes() -> None:
    old = contents("a", {M: Entry(5, A)}, None)  # present, but it did not parse as an object
    new = contents("b", {M: Entry(9, B)}, MANIFEST)
    found = compare(old, new)
    assert [c.name for c in found.changed] == [M] and found.manifest == {}


def test_a_manifest_on_one_side_only_is_an_entry_and_its_fields() -> None:
    found = compare(contents("a", {}), contents("b", {M: Entry(9, B)}, {"runtime": "python"}))
    assert list(found.added) == [M] and dict(found.manifest) == {"runtime": (None, "python")}


def test_the_record_counts_by_presence_only() -> None:
    with_record = contents("a", {"x": Entry(1, A), R: Entry(80, A)})
    assert compare(with_record, contents("b", {"x": Entry(1, A), R: Entry(81, B)})).same()  # rows in another order
    found = compare(with_record, contents("b", {"x": Entry(1, A)}))
    assert list(found.removed) == [R] and not found.same()


def test_links_and_special_entries_by_kind_and_target() -> None:
    old = contents("a", {"l": Entry(0, None, "symlink", "x"), "f": Entry(0, None, "special", "FIFO")})
    new = contents("b", {"l": Entry(0, None, "symlink", "y"), "f": Entry(0, None, "special", "FIFO")})
    (change,) = compare(old, new).changed
    assert change.to_json() == {"name": "l", "old": {"size": 0, "sha256": None, "type": "symlink", "link": "x"},
                                "new": {"size": 0, "sha256": None, "type": "symlink", "link": "y"}}


def test_tensors_added_removed_and_reshaped_in_a_changed_safetensors_entry() -> None:
    w = "model.safetensors"
    old = Contents("a", {w: Entry(100, A)}, tensors={w: {"fc.weight": ("F32", (10, 4)), "fc.bias": ("F32", (10,)),
                                                         "old.scale": ("F16", ())}})
    new = Contents("b", {w: Entry(120, B)}, tensors={w: {"fc.weight": ("F32", (10, 5)), "fc.bias": ("BF16", (10,)),
                                                         "head.weight": ("F32", (2, 10))}})
    (change,) = compare(old, new).changed
    assert change.to_json()["tensors"] == {
        "added": ["head.weight"], "removed": ["old.scale"],
        "reshaped": [{"name": "fc.bias", "old": {"dtype": "F32", "shape": [10]},
                      "new": {"dtype": "BF16", "shape": [10]}},
                     {"name": "fc.weight", "old": {"dtype": "F32", "shape": [10, 4]},
                      "new": {"dtype": "F32", "shape": [10, 5]}}]}
    assert list(render(compare(old, new)))[2:7] == [
        "~ model.safetensors  100 -> 120 bytes (+20)",
        "    + tensor head.weight  F32 [2, 10]",
        "    - tensor old.scale  F16 []",
        "    ~ tensor fc.bias  F32 [10] -> BF16 [10]",
        "    ~ tensor fc.weight  F32 [10, 4] -> F32 [10, 5]",
    ]


def test_same_tensors_with_other_values_and_entries_without_two_headers() -> None:
    w, t = "w.safetensors", {"x": ("F32", (2,))}
    (change,) = compare(Contents("a", {w: Entry(8, A)}, tensors={w: t}),
                        Contents("b", {w: Entry(8, B)}, tensors={w: dict(t)})).changed
    assert change.to_json()["tensors"] == {"added": [], "removed": [], "reshaped": []}
    lines = list(render(compare(Contents("a", {w: Entry(8, A)}, tensors={w: t}),
                                Contents("b", {w: Entry(8, B)}, tensors={w: t}))))
    assert lines[3] == "    same tensors (names, dtypes, shapes); values differ"
    # a header that lied (or another format) on one side: the entry's bytes only
    (change,) = compare(Contents("a", {w: Entry(8, A)}, tensors={w: t}), Contents("b", {w: Entry(8, B)})).changed
    assert change.tensors is None and "tensors" not in change.to_json()


WM, WR = "WAR-INF/MANIFEST.json", "WAR-INF/RECORD"
WORKFLOW = {"createdOn": "01/01/2020 00:00:00", "archiverVersion": "0.2.15",
            "workflow": {"workflowName": "wf", "specFile": "spec.yaml", "handler": "wf_handler.py"}}


def test_workflow_archives_by_their_war_inf_manifest_and_record() -> None:
    old = Contents("a.war", {WM: Entry(9, A), WR: Entry(50, A), "spec.yaml": Entry(4, B)}, WORKFLOW, "workflow")
    later = {**WORKFLOW, "createdOn": "02/02/2021 00:00:00"}
    new = Contents("b.war", {WM: Entry(9, B), WR: Entry(51, B), "spec.yaml": Entry(4, B)}, later, "workflow")
    assert compare(old, new).same()
    renamed = {**WORKFLOW, "workflow": {**WORKFLOW["workflow"], "workflowName": "wf2"}}  # type: ignore[dict-item]
    found = compare(old, Contents("c.war", {WM: Entry(9, C), "spec.yaml": Entry(4, C)}, renamed, "workflow"))
    assert list(found.removed) == [WR] and [c.name for c in found.changed] == ["spec.yaml"]
    assert dict(found.manifest) == {"workflow.workflowName": ("wf", "wf2")}


def test_a_war_inf_record_in_a_model_archive_is_an_ordinary_file() -> None:
    """Only the record the reading checked counts by presence alone; another is compared by its bytes."""
    old = Contents("a", {WR: Entry(5, A), R: Entry(5, A)}, None, "model")
    new = Contents("b", {WR: Entry(5, B), R: Entry(6, B)}, None, "model")
    assert [c.name for c in compare(old, new).changed] == [WR]
    model = Contents("m.mar", {M: Entry(9, A), R: Entry(5, A)}, MANIFEST, "model")
    workflow = Contents("w.war", {WM: Entry(9, B), WR: Entry(5, B)}, WORKFLOW, "workflow")
    found = compare(model, workflow)
    assert (list(found.added), list(found.removed), found.changed) == ([WR], [R], ())
    assert found.manifest["model.modelName"] == ("m", None)
    assert found.manifest["workflow.workflowName"] == (None, "wf")


def test_names_and_values_cannot_drive_the_terminal() -> None:
    evil = "w\x1b[2J\u2028.bin"
    found = compare(Contents("a\x07", {}, {"runtime": "python"}),
                    Contents("b", {evil: Entry(1, A)}, {"runtime": "\x1b[31mred"}))
    lines = list(render(found))
    assert not any("\x1b" in line or "\x07" in line or "\u2028" in line for line in lines)
    assert lines[0] == "--- 'a\\x07'" and lines[2] == "+ 'w\\x1b[2J\\u2028.bin'  1 byte"
    assert lines[3] == '~ manifest runtime: "python" -> "\\u001b[31mred"'
    assert "\x1b" not in json.dumps(found.to_json(), ensure_ascii=True)


def reading(members: list[Member], digests: dict[str, str], problems: tuple[Any, ...] = (),
            manifest: dict[str, Any] | None = None) -> Reading:
    sizes = {m.name: m.size or 0 for m in members if m.name in digests}
    facts = ArchiveFacts(label="x.mar", format="zip", root=None, members=members, digests=digests, sizes=sizes)
    return Reading(facts, manifest, problems, True, tuple(members))


def test_contents_of_a_reading_leaves_folders_out() -> None:
    members = [Member("d/", "dir"), Member("d/w.bin", "file", 3), Member(M, "file", 9), Member("l", "symlink", 0,
                                                                                               detail="d/w.bin")]
    found = contents_of(reading(members, {"d/w.bin": A, M: B}, manifest=MANIFEST))
    assert found.entries == {"d/w.bin": Entry(3, A), M: Entry(9, B), "l": Entry(0, None, "symlink", "d/w.bin")}
    assert found.manifest == MANIFEST and found.label == "x.mar"


def test_a_reading_without_a_manifest_entry_has_no_manifest() -> None:
    assert contents_of(reading([Member("w", "file", 1)], {"w": A}, manifest={"x": 1})).manifest is None


@pytest.mark.parametrize("code", ["corrupt", "crc-mismatch", "digest-mismatch", "record-mismatch", "duplicate-entry",
                                  "bomb", "not-an-archive"])
def test_a_reading_verify_finds_corrupt_is_refused_in_one_line(code: str) -> None:
    found = (problem(code, "w", "what is wrong"), problem("missing-manifest", None, "no manifest"),
             problem("crc-mismatch", "v", "another"))
    with pytest.raises(Uncomparable) as raised:
        contents_of(reading([Member("w", "file", 1)], {"w": A}, found))
    assert isinstance(raised.value, markit.ArchiveError)
    assert str(raised.value) == f"x.mar: {code}: what is wrong (and 1 more problem: markit verify lists them)"
    assert [p.code for p in raised.value.problems] == [code, "crc-mismatch"]


@pytest.mark.parametrize("code", ["missing-manifest", "invalid-manifest", "unsafe-path", "link-entry", "no-record",
                                  "torchserve-incompatible", "excluded-file"])
def test_problems_of_what_an_archive_says_do_not_stop_a_diff(code: str) -> None:
    found = contents_of(reading([Member("w", "file", 1)], {"w": A}, (problem(code, "w", "m"),)))
    assert found.entries == {"w": Entry(1, A)}


def test_a_file_the_reading_did_not_hash_is_an_error_not_a_crash() -> None:
    with pytest.raises(markit.ArchiveError, match="could not be read through"):
        contents_of(reading([Member("w", "file", 1)], {}))


# --- the command, on real archives ------------------------------------------------------------------------------


def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fmt: str, source: Path = EXAMPLE,
         epoch: str = "1700000000", **options: Any) -> str:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    suffix = {"default": ".mar", "zip-store": ".mar", "tgz": ".tar.gz", "no-archive": ""}[fmt]
    out = tmp_path / f"{name}{suffix}"
    markit.create(model_name="m", handler="handler:handle", model_path=str(source), archive_format=fmt,
                  output=str(out), **options)
    return str(out)


@pytest.fixture
def changed_model(tmp_path: Path) -> Path:
    """The example with one file changed, one added and one removed."""
    model = tmp_path / "changed"
    shutil.copytree(EXAMPLE, model)
    (model / "handler.py").write_bytes((EXAMPLE / "handler.py").read_bytes() + b"# v2\n")
    (model / "extra" / "notes.txt").parent.mkdir()
    (model / "extra" / "notes.txt").write_bytes(b"new\n")
    (model / "signature.json").unlink()
    return model


@pytest.mark.parametrize(("fmt_a", "fmt_b"), [("default", "tgz"), ("zip-store", "no-archive"), ("tgz", "tgz")])
def test_the_same_model_made_at_other_times_in_other_formats_is_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt_a: str,
        fmt_b: str) -> None:
    a = made(tmp_path, monkeypatch, "a", fmt_a, epoch="1700000000")
    b = made(tmp_path, monkeypatch, "b", fmt_b, epoch="1800000000")  # other entry times, other createdOn
    status, out, err = run_main(monkeypatch, capsys, "diff", a, b)
    assert (status, out, err) == (0, f"same contents: {a} and {b}\n", "")


def test_what_changed_as_lines_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], changed_model: Path) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    b = made(tmp_path, monkeypatch, "b", "tgz", source=changed_model, version="2.0")
    status, out, err = run_main(monkeypatch, capsys, "diff", a, b)
    handler = (EXAMPLE / "handler.py").stat().st_size
    signature = (EXAMPLE / "signature.json").stat().st_size
    assert (status, err) == (1, "")
    assert out.splitlines() == [
        f"--- {a}", f"+++ {b}",
        "+ extra/notes.txt  4 bytes",
        f"- signature.json   {signature:,} bytes",
        f"~ handler.py       {handler:,} -> {handler + 5:,} bytes (+5)",
        '~ manifest model.modelVersion: (none) -> "2.0"',
        "1 added, 1 removed, 1 changed, 1 manifest field",
    ]
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, b, "--json")
    shown = json.loads(out)
    assert status == 1 and shown == markit.diff(a, b).to_json()
    (change,) = shown["changed"]
    assert change["name"] == "handler.py" and change["new"]["size"] == handler + 5
    assert change["old"]["sha256"] == markit.inspect(a).digests["handler.py"]
    assert change["new"]["sha256"] == markit.inspect(b).digests["handler.py"]
    assert (shown["added"], shown["removed"]) == (["extra/notes.txt"], ["signature.json"])
    assert shown["manifest"] == {"model.modelVersion": [None, "2.0"]}


def test_one_archive_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                changed_model: Path) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    b = made(tmp_path, monkeypatch, "b", "tgz", source=changed_model)
    expected = markit.diff(a, b).to_json()
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, "-", "--json", stdin=Path(b).read_bytes())
    assert status == 1 and json.loads(out) == {**expected, "new": "-"}
    status, out, _ = run_main(monkeypatch, capsys, "diff", "-", a, stdin=Path(a).read_bytes())
    assert (status, out) == (0, f"same contents: - and {a}\n")


def test_an_archive_by_url_is_fetched_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], changed_model: Path) -> None:
    from tests.support.servers import LOCAL_ONLY, have, range_server

    if not have("fsspec", "aiohttp"):
        pytest.fail("the dev extra's fsspec[http] is needed")
    for key, value in LOCAL_ONLY.items():
        monkeypatch.setenv(key, value)
    a = made(tmp_path, monkeypatch, "a", "default")
    b = made(tmp_path, monkeypatch, "b", "tgz", source=changed_model)
    expected = markit.diff(a, b).to_json()
    with range_server(tmp_path) as server:
        url = f"{server.base}/b.tar.gz"
        status, out, err = run_main(monkeypatch, capsys, "diff", a, url, "--json")
        assert (status, json.loads(out)) == (1, {**expected, "new": url}), err
        assert server.bytes_sent == Path(b).stat().st_size  # every byte once


def flip_stored_byte(archive: str, name: str) -> None:
    """Change one byte of stored entry *name*'s data in place (its CRC-32 then disagrees)."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(name)
    with open(archive, "r+b") as f:
        f.seek(info.header_offset + 26)
        skip = int.from_bytes(f.read(2), "little") + int.from_bytes(f.read(2), "little")
        f.seek(info.header_offset + 30 + skip)
        first = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([first[0] ^ 1]))


def test_an_archive_verify_finds_corrupt_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    b = made(tmp_path, monkeypatch, "b", "zip-store")
    flip_stored_byte(b, "squeezenet_like.bin")
    status, out, err = run_main(monkeypatch, capsys, "diff", a, b)
    assert status == 2 and out == ""
    assert err.startswith(f"markit: {b}: crc-mismatch: entry 'squeezenet_like.bin'") and err.count("\n") == 1


def test_a_folder_whose_file_disagrees_with_its_record_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = made(tmp_path, monkeypatch, "a", "no-archive")
    b = made(tmp_path, monkeypatch, "b", "no-archive")
    (Path(b) / "handler.py").write_bytes(b"changed after the record was written\n")
    status, out, err = run_main(monkeypatch, capsys, "diff", a, b)
    assert (status, out) == (2, "") and f"{b}: digest-mismatch: entry 'handler.py'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("argv", "says"), [
    (["diff", "A", "-", "-"], "unexpected extra argument"), (["diff", "-", "-"], "- (stdin) can be given once"),
    (["diff", "only-one"], "Missing argument 'NEW'"), (["diff", "a", "b", "--nope"], "No such option: --nope"),
    (["diff", "a", "b", "--max-size", "lots"], "--max-size lots: expected a number"),
])
def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                             argv: list[str], says: str) -> None:
    status, out, err = run_main(monkeypatch, capsys, *argv)
    assert status == 2 and out == "" and "Traceback" not in err
    assert says.lower() in err.lower(), err


def test_unreadable_archives_exit_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    junk = tmp_path / "junk.mar"
    junk.write_bytes(b"not an archive at all")
    truncated = tmp_path / "cut.mar"
    truncated.write_bytes(Path(a).read_bytes()[:-100])
    for other, says in ((str(tmp_path / "missing.mar"), "no such file"), (str(junk), "not a zip, tar or tar.gz"),
                        (str(truncated), "corrupt")):
        status, out, err = run_main(monkeypatch, capsys, "diff", a, other)
        assert (status, out) == (2, "") and err.count("\n") == 1 and says in err, err


def test_a_bomb_limit_applies_and_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    status, _, err = run_main(monkeypatch, capsys, "diff", a, a, "--max-size", "1K")
    assert status == 2 and "bomb" in err
    assert run_main(monkeypatch, capsys, "diff", a, a, "--max-size", "1G")[0] == 0


SPEC = "models:\n  first:\n    url: first.mar\ndag:\n  pre: [first]\n"


def test_workflow_archives_made_at_other_times_and_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "spec.yaml").write_text(SPEC)
    (src / "wf.py").write_text("def pre(data, context):\n    return data\n")

    def war(name: str, epoch: str, fmt: str = "default") -> str:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        out = tmp_path / f"{name}.war"
        markit.create(workflow_name="wf", spec_file=str(src / "spec.yaml"), handler=str(src / "wf.py"),
                      archive_format=fmt, output=str(out))
        return str(out)

    a, b = war("a", "1700000000"), war("b", "1800000000", "zip-store")
    assert run_main(monkeypatch, capsys, "diff", a, b)[:2] == (0, f"same contents: {a} and {b}\n")
    (src / "spec.yaml").write_text(SPEC + "  first: []\n")
    c = war("c", "1700000000")
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, c, "--json")
    shown = json.loads(out)
    assert status == 1 and [x["name"] for x in shown["changed"]] == ["spec.yaml"]
    assert shown["added"] == shown["removed"] == [] and shown["manifest"] == {}


def with_weights(tmp_path: Path, name: str, tensors: dict[str, Any] | bytes) -> Path:
    """The example model plus ``model.safetensors`` holding *tensors* (numpy arrays), or those bytes."""
    from safetensors.numpy import save

    model = tmp_path / name
    shutil.copytree(EXAMPLE, model)
    (model / "model.safetensors").write_bytes(tensors if isinstance(tensors, bytes) else save(tensors))
    return model


def test_tensors_of_a_changed_safetensors_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    old = with_weights(tmp_path, "old", {"fc.weight": np.zeros((4, 3), np.float32), "fc.bias": np.zeros(4, np.float32),
                                         "emb": np.zeros((8, 2), np.float16)})
    new = with_weights(tmp_path, "new", {"fc.weight": np.zeros((5, 3), np.float32), "fc.bias": np.ones(4, np.float32),
                                         "head": np.zeros((2, 5), np.float32)})
    a = made(tmp_path, monkeypatch, "a", "default", source=old)
    b = made(tmp_path, monkeypatch, "b", "tgz", source=new)
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, "-", "--json", stdin=Path(b).read_bytes())
    (change,) = json.loads(out)["changed"]
    assert status == 1 and change["name"] == "model.safetensors"
    assert change["tensors"] == {"added": ["head"], "removed": ["emb"], "reshaped": [
        {"name": "fc.weight", "old": {"dtype": "F32", "shape": [4, 3]}, "new": {"dtype": "F32", "shape": [5, 3]}}]}
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, b)
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("~ model.safetensors"))
    assert lines[at + 1:at + 4] == ["    + tensor head  F32 [2, 5]", "    - tensor emb  F16 [8, 2]",
                                    "    ~ tensor fc.weight  F32 [4, 3] -> F32 [5, 3]"]


def test_a_safetensors_header_that_lies_is_compared_by_its_bytes_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    good = with_weights(tmp_path, "good", {"w": np.zeros(4, np.float32)})
    raw = b'{"w": {"dtype": "F32", "shape": [9], "data_offsets": [0, 16]}}'
    lying = with_weights(tmp_path, "lying", len(raw).to_bytes(8, "little") + raw + bytes(16))
    a = made(tmp_path, monkeypatch, "a", "default", source=good)
    b = made(tmp_path, monkeypatch, "b", "default", source=lying)
    assert "invalid-weights" in [p.code for p in markit.verify(b).problems]
    status, out, _ = run_main(monkeypatch, capsys, "diff", a, b, "--json")
    (change,) = json.loads(out)["changed"]
    assert status == 1 and change["name"] == "model.safetensors" and "tensors" not in change


def test_the_readme_example_prints_what_the_readme_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], changed_model: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    command = "$ markit diff squeezenet-1.0.mar squeezenet-2.0.tar.gz\n"
    shown = readme[readme.index(command) + len(command):].split("\n$ ")[0]
    monkeypatch.chdir(tmp_path)
    made(tmp_path, monkeypatch, "squeezenet-1.0", "default", version="1.0")
    made(tmp_path, monkeypatch, "squeezenet-2.0", "tgz", source=changed_model, version="2.0")
    status, out, _ = run_main(monkeypatch, capsys, "diff", "squeezenet-1.0.mar", "squeezenet-2.0.tar.gz")
    assert (status, out) == (1, shown + "\n")


# --- against what the real archivers wrote ----------------------------------------------------------------------


@pytest.mark.parametrize("other", ["tma-zip-store.mar", "tma-tgz.tar.gz", "tma-no-archive"])
def test_torch_model_archiver_formats_hold_the_same_contents(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str], other: str) -> None:
    status, out, _ = run_main(monkeypatch, capsys, "diff", str(REAL / "tma-default.mar"), str(REAL / other))
    assert status == 0 and out.startswith("same contents")


def test_mms_against_torch_model_archiver_fixtures(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_main(monkeypatch, capsys, "diff", str(REAL / "tma-default.mar"),
                              str(REAL / "mms-default.mar"), "--json")
    shown = json.loads(out)
    tma = json.loads((REAL / "tma-default.MANIFEST.json").read_bytes())
    mms = json.loads((REAL / "mms-default.MANIFEST.json").read_bytes())
    assert status == 1
    # torch-model-archiver copies a folder's contents to the root; MMS keeps the folder
    assert (shown["added"], shown["removed"], shown["changed"]) == (
        ["config/labels_extra.txt"], ["labels_extra.txt"], [])
    assert shown["manifest"]["model.handler"] == [tma["model"]["handler"], mms["model"]["handler"]]
    assert shown["manifest"]["modelServerVersion"] == [None, "1.0"] and "createdOn" not in shown["manifest"]


@pytest.mark.realtools
def test_markit_against_the_real_torch_model_archiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Archives of the same inputs differ only by markit's record and the archiver's version; and a change
    torch-model-archiver archived is found."""
    e = EXAMPLE
    args = ["--model-name", "cmp", "-v", "3.1", "--serialized-file", str(e / "squeezenet_like.bin"),
            "--handler", str(e / "handler.py"), "--extra-files", str(e / "index_to_name.json"),
            "-r", str(e / "requirements.txt")]
    tma = ensure_venv("tma") / "torch-model-archiver"
    for folder in ("tma", "tma2", "markit"):
        (tmp_path / folder).mkdir()
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([str(tma), *args, "--export-path", str(tmp_path / "tma")], check=True, capture_output=True, env=env)
    changed = [*args[:3], "3.2", *args[4:]]
    subprocess.run([str(tma), *changed, "--archive-format", "tgz", "--export-path", str(tmp_path / "tma2")],
                   check=True, capture_output=True, env=env)
    assert run_main(monkeypatch, capsys, "create", *args, "--export-path", str(tmp_path / "markit"))[0] == 0
    theirs, ours = str(tmp_path / "tma" / "cmp.mar"), str(tmp_path / "markit" / "cmp.mar")
    status, out, _ = run_main(monkeypatch, capsys, "diff", theirs, ours, "--json")
    shown = json.loads(out)
    assert status == 1, out
    assert (shown["added"], shown["removed"], shown["changed"]) == ([R], [], [])
    assert shown["manifest"] == {"archiverVersion": ["0.12.0", f"markit {markit.__version__}"]}
    status, out, _ = run_main(monkeypatch, capsys, "diff", theirs, str(tmp_path / "tma2" / "cmp.tar.gz"), "--json")
    assert status == 1 and json.loads(out)["manifest"] == {"model.modelVersion": ["3.1", "3.2"]}
    assert json.loads(out)["added"] == json.loads(out)["removed"] == json.loads(out)["changed"] == []


def test_progress_counts_both_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    b = made(tmp_path, monkeypatch, "b", "zip-store")
    c = made(tmp_path, monkeypatch, "c", "tgz")
    declared = sum(m.size or 0 for m in markit.inspect(a).entries if m.kind == "file")
    seen: list[tuple[int, int]] = []
    assert markit.diff(a, b, progress=lambda done, total: seen.append((done, total))).same()
    assert seen[0][1] == declared and seen[-1] == (2 * declared, 2 * declared)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    seen.clear()
    markit.diff(a, c, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2 * declared, 0)  # a tar has no index: its total is unknown


@pytest.mark.realtools
def test_markit_against_the_real_torch_workflow_archiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "spec.yaml").write_text(SPEC)
    (src / "wf.py").write_text("def pre(data, context):\n    return data\n")
    (src / "labels.json").write_text('{"0": "a"}')
    args = ["--workflow-name", "cmp", "--spec-file", str(src / "spec.yaml"), "--handler", str(src / "wf.py"),
            "--extra-files", str(src / "labels.json")]
    for folder in ("twa", "markit"):
        (tmp_path / folder).mkdir()
    subprocess.run([str(ensure_venv("twa") / "torch-workflow-archiver"), *args, "--export-path", str(tmp_path / "twa")],
                   check=True, capture_output=True, timeout=120, env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert run_main(monkeypatch, capsys, "create", "-q", *args, "--export-path", str(tmp_path / "markit"))[0] == 0
    theirs, ours = str(tmp_path / "twa" / "cmp.war"), str(tmp_path / "markit" / "cmp.war")
    status, out, _ = run_main(monkeypatch, capsys, "diff", theirs, ours, "--json")
    shown = json.loads(out)
    assert status == 1, out
    assert (shown["added"], shown["removed"], shown["changed"]) == ([WR], [], [])
    with zipfile.ZipFile(theirs) as z:
        version = json.loads(z.read(WM))["archiverVersion"]
    assert shown["manifest"] == {"archiverVersion": [version, f"markit {markit.__version__}"]}


def test_the_api_returns_a_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = made(tmp_path, monkeypatch, "a", "default")
    found = markit.diff(a, a)
    assert isinstance(found, Diff) and isinstance(found, markit.Diff) and found.same()
    with pytest.raises(markit.UsageError):
        markit.diff("-", "-")
