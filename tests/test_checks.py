"""The pure checks: literal members, manifests and records in, problems out. No disk."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markit.formats.base import Member
from markit.model.limits import Limits
from markit.model.names import captured_name, normalize, unsafe_reason
from markit.model.problems import CODES
from markit.read.checks import check_archive, check_before
from markit.read.contents import check_manifest, check_record, check_torchserve
from markit.read.entries import (
    check_duplicates,
    check_entries,
    check_kinds,
    check_limits,
    check_paths,
    excluded_problems,
)
from markit.read.facts import ArchiveFacts, kept_name

F = Member
MANIFEST = {"runtime": "python", "model": {"modelName": "m", "handler": "handler:handle"}}


def codes(problems: list) -> list[str]:  # type: ignore[type-arg]
    return [p.code for p in problems]


def facts(*members: Member, manifest: object = MANIFEST, record: bytes | None = None, **kw: object) -> ArchiveFacts:
    data = manifest if isinstance(manifest, bytes) or manifest is None else json.dumps(manifest).encode()
    base = (F("MAR-INF/MANIFEST.json", "file", 10), F("handler.py", "file", 10))
    return ArchiveFacts(label="m.mar", format="zip", root=None, members=base + members,  # type: ignore[arg-type]
                        manifest=data, record=record, **kw)  # type: ignore[arg-type]


def test_the_issue_codes_are_all_there_with_their_severity() -> None:
    assert {c for c, s in CODES.items() if s == "error"} == {
        "not-an-archive", "corrupt", "crc-mismatch", "digest-mismatch", "record-mismatch", "unsafe-path", "link-entry",
        "special-entry", "duplicate-entry", "bomb", "missing-manifest", "invalid-manifest", "invalid-model-name",
        "missing-file",
        "invalid-workflow",  # issue 12
        "signature-invalid", "signature-mismatch", "unsigned-entry", "missing-signed-entry",  # issue 11: signatures
        "unsafe-pickle", "invalid-weights"}  # issue 11: weight files
    assert {c for c, s in CODES.items() if s == "warning"} == {"excluded-file", "no-record", "torchserve-incompatible",
                                                                 "model-url", "workflow-unchecked"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "empty"), ("/etc/passwd", "absolute"), ("C:/x", "drive letter"), ("c:x", "drive letter"),
     ("a/../../b", "'..'"), ("..", "'..'"), ("a\\b", "backslash"), ("a\x00b", "NUL"),
     ("x" * 256, "over 255 bytes"), ("a/" + "é" * 128, "over 255 bytes"), ("ab/" * 1365 + "abc", "over 4,096 bytes"),
     ("../" * 2000, "over 4,096 bytes")],
)
def test_unsafe_names(name: str, reason: str) -> None:
    found = unsafe_reason(name)
    assert found is not None and reason in found
    assert codes(check_paths([F(name, "file")])) == ["unsafe-path"]


@pytest.mark.parametrize("name", ["a", "a/b.txt", "MAR-INF/RECORD", "..a", "a..", "./a", "a//b", "ü/日本.bin"])
def test_safe_names(name: str) -> None:
    assert unsafe_reason(name) is None and check_paths([F(name, "file")]) == []


def test_a_file_named_only_dots_is_unsafe_a_folder_is_the_root() -> None:
    assert codes(check_paths([F("./", "file"), F("./", "dir")])) == ["unsafe-path"]


@pytest.mark.parametrize(("name", "normal"), [("./a//b/", "a/b"), ("a/./b", "a/b"), ("./", ""), ("a", "a")])
def test_normalize(name: str, normal: str) -> None:
    assert normalize(name) == normal


def test_links_and_special_entries() -> None:
    found = check_kinds([F("l", "symlink", detail="/etc/passwd"), F("h", "hardlink", detail="a"), F("p", "special",
                         detail="a FIFO"), F("a", "file"), F("d/", "dir")])
    assert codes(found) == ["link-entry", "link-entry", "special-entry"]
    assert "'/etc/passwd'" in found[0].message and "a FIFO" in found[2].message


def test_duplicates_after_normalisation_and_file_folder_clashes() -> None:
    found = check_duplicates([F("a", "file"), F("./a", "file"), F("d/", "dir"), F("d", "dir"), F("x", "file"),
                              F("x/y", "file")])
    assert codes(found) == ["duplicate-entry", "duplicate-entry"]
    assert found[0].path == "./a" and "'x'" in found[1].message


def test_limits() -> None:
    limits = Limits(max_size=100 << 20, max_ratio=50)
    ok = F("w.bin", "file", 90 << 20, 89 << 20)
    assert check_limits(facts(ok), limits) == []
    assert codes(check_limits(facts(ok, F("x", "file", 20 << 20, 20 << 20)), limits)) == ["bomb"]  # total
    assert codes(check_limits(facts(F("z", "file", 10 << 20, 1000)), limits)) == ["bomb"]  # ratio
    assert check_limits(facts(F("small", "file", 1000, 1)), limits) == []  # ratios under 1 MiB are not judged
    assert codes(check_limits(facts(F("t", "file", 10 << 20), stream_size=100), limits)) == ["bomb"]  # tar.gz


def test_default_limits_pass_a_500_gb_checkpoint_and_flag_1_kb_to_10_gb() -> None:
    big = F("model.safetensors", "file", 500 * 10**9, 500 * 10**9)
    assert check_limits(facts(big), Limits()) == []
    assert codes(check_limits(facts(F("b", "file", 10 * 10**9, 1000)), Limits())) == ["bomb"]


def test_excluded_files_are_warnings() -> None:
    found = excluded_problems([F(".DS_Store", "file"), F("__MACOSX/x", "file"), F("a/__pycache__/b.pyc", "file"),
                               F(".env", "file"), F("x.pyc", "file"), F("MAR-INF/MANIFEST.json", "file"),
                               F("ok.py", "file"), F("../up", "file")])
    assert codes(found) == ["excluded-file"] * 5 and {p.severity for p in found} == {"warning"}


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (None, "missing-manifest", "no MAR-INF/MANIFEST.json"),
        (b"{", "invalid-manifest", "not JSON"),
        (b"\xff", "invalid-manifest", "not UTF-8"),
        (b"[1]", "invalid-manifest", "expected an object"),
        (b"[" * 100_000, "invalid-manifest", "not JSON"),
        (b'{"model": 1}', "invalid-manifest", "'model'"),
        (b'{"model": {"handler": "h"}}', "invalid-manifest", "model.modelName"),
        (b'{"model": {"modelName": "m", "handler": 3}}', "invalid-manifest", "model.handler"),
        (b'{"runtime": "java", "model": {"modelName": "m", "handler": "handler:handle"}}', "invalid-manifest", "java"),
        (b'{"model": {"modelName": "m", "handler": "handler:handle", "serializedFile": 1}}', "invalid-manifest",
         "serializedFile"),
        (b'{"model": {"modelName": "-m", "handler": "handler:handle"}}', "invalid-model-name", "'-m'"),
        (b'{"model": {"modelName": "m\\n", "handler": "handler:handle"}}', "invalid-model-name", "m\\n"),
        (b" " * (1 << 20) + b"{}", "invalid-manifest", "over 1,048,576 bytes"),
    ],
)
def test_manifest_problems(data: bytes | None, code: str, words: str) -> None:
    _, found = check_manifest(data, ["handler.py"])
    assert codes(found) == [code] and words in found[0].message


@pytest.mark.parametrize(
    ("model", "names", "missing"),
    [
        ({"handler": "handler:handle"}, ["handler.py"], []),
        ({"handler": "handler.py"}, ["handler.py"], []),
        ({"handler": "image_classifier"}, [], []),
        ({"handler": "handler"}, ["sub/handler.py"], ["handler.py"]),
        ({"handler": "mod.sub:fn"}, ["mod.sub.py"], []),
        ({"handler": "h:f", "serializedFile": "w.pt", "modelFile": "model.py", "requirementsFile": "r.txt",
          "configFile": "c.yaml"}, ["h.py", "w.pt"], ["model.py", "r.txt", "c.yaml"]),
    ],
)
def test_missing_files(model: dict[str, str], names: list[str], missing: list[str]) -> None:
    manifest = json.dumps({"model": {"modelName": "m", **model}}).encode()
    _, found = check_manifest(manifest, names)
    assert [p.path for p in found if p.code == "missing-file"] == missing


def test_missing_handler_hints_at_a_deeper_one() -> None:
    manifest = json.dumps({"model": {"modelName": "m", "handler": "handler"}}).encode()
    _, found = check_manifest(manifest, ["x/handler.py"])
    assert "there is 'x/handler.py'" in found[0].message


def test_lsp_handlers_are_shared_libraries() -> None:
    manifest = {"runtime": "LSP", "model": {"modelName": "m", "handler": "h:handle"}}
    assert codes(check_manifest(json.dumps(manifest).encode(), ["h.py"])[1]) == ["missing-file"]
    assert check_manifest(json.dumps(manifest).encode(), ["h.so"])[1] == []


def _record(rows: dict[str, bytes], lie: dict[str, str] | None = None) -> bytes:
    lines = [f"{n},sha256={(lie or {}).get(n, hashlib.sha256(d).hexdigest())},{len(d)}" for n, d in rows.items()]
    return ("\n".join([*lines, "MAR-INF/RECORD,,"]) + "\n").encode()


def test_record_checks() -> None:
    data = {"MAR-INF/MANIFEST.json": b"m", "handler.py": b"h"}
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in data.items()}
    sizes = {n: len(d) for n, d in data.items()}
    record_member = F("MAR-INF/RECORD", "file")
    good = facts(record_member, record=_record(data), digests=digests, sizes=sizes)
    assert check_record(good) == []
    lying = facts(record_member, record=_record(data, {"handler.py": "ab" * 32}), digests=digests, sizes=sizes)
    assert codes(check_record(lying)) == ["digest-mismatch"]
    absent = facts(record_member, record=_record({**data, "gone.bin": b"x"}), digests=digests, sizes=sizes)
    assert codes(check_record(absent)) == ["record-mismatch"]
    unlisted = facts(record_member, F("new.bin", "file"), record=_record(data), digests=digests, sizes=sizes)
    assert [(p.code, p.path) for p in check_record(unlisted)] == [("record-mismatch", "new.bin")]
    assert codes(check_record(facts(record=b"a,b\n"))) == ["corrupt"]
    assert codes(check_record(facts(record=None))) == ["no-record"]


def test_record_size_mismatch_is_a_digest_mismatch() -> None:
    data = {"MAR-INF/MANIFEST.json": b"m", "handler.py": b"h"}
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in data.items()}
    sizes = {"handler.py": 5, "MAR-INF/MANIFEST.json": 1}
    found = check_record(facts(record=_record(data), digests=digests, sizes=sizes))
    assert codes(found) == ["digest-mismatch"] and "5 bytes" in found[0].message


@pytest.mark.parametrize(
    ("label", "fmt", "root", "handler", "expected"),
    [
        ("m.mar", "zip", None, "h:f", 0),
        ("m.tar.gz", "zip", None, "h:f", 1),
        ("m.zip", "zip", None, "h:f", 1),
        ("-", "zip", None, "h:f", 0),
        ("m.mar", "tar.gz", "m", "h:f", 1),
        ("m.tar.gz", "tar.gz", None, "h:f", 1),
        ("m.tar.gz", "tar.gz", "m", "h:f", 0),
        ("m.tar", "tar", "m", "h:f", 1),
        ("m.mar", "zip", None, "sub/h:f", 1),
        ("folder", "directory", None, "h:f", 0),
    ],
)
def test_torchserve_warnings(label: str, fmt: str, root: str | None, handler: str, expected: int) -> None:
    f = ArchiveFacts(label=label, format=fmt, root=root, members=[F("h.py", "file")])
    found = check_torchserve(f, {"model": {"modelName": "m", "handler": handler}})
    assert codes(found) == ["torchserve-incompatible"] * expected


def test_check_archive_reports_everything_at_once() -> None:
    f = facts(F("../x", "file"), F("l", "symlink"), F(".DS_Store", "file"),
              manifest={"model": {"modelName": "m", "handler": "handler:handle", "serializedFile": "w.pt"}})
    manifest, found = check_archive(f, Limits())
    assert manifest is not None and manifest["model"]["serializedFile"] == "w.pt"
    assert sorted(codes(found)) == sorted(["unsafe-path", "link-entry", "missing-file", "excluded-file", "no-record"])


def test_an_incomplete_read_reports_no_absences() -> None:
    _, found = check_archive(facts(manifest=None, complete=False), Limits())
    assert found == []


def test_excluded_files_are_found_in_one_pass_and_names_past_the_limits_skipped() -> None:
    import random

    from markit.model.names import excluded_name

    def definition(name: str) -> bool:
        return any(excluded_name(part) for part in normalize(name).split("/") if part not in ("MANIFEST.json", ".."))

    rng = random.Random(2)
    parts = ["", ".", "..", "a", ".a", "__MACOSX", "__MACOSXy", "__pycache__", "x.pyc", ".pyc", "b.pyc.x",
             "MANIFEST.json", ".DS_Store", "pyc"]
    names = ["/".join(rng.choice(parts) for _ in range(rng.randint(1, 5))) for _ in range(3000)]
    found = {p.path for p in excluded_problems([F(n, "file") for n in names])}
    assert found == {n for n in names if definition(n)}
    assert excluded_problems([F("d/" * 2100 + ".hidden", "file"), F("x" * 300 + "/.pyc", "file")]) == []


# The shortcuts the checks take on a typical archive say what the functions they stand for would say.

NAME_PARTS = ["a", "B.txt", ".", "..", "", ".hidden", "x.pyc", "__pycache__", "__MACOSX", "MAR-INF", "RECORD",
              "MANIFEST.json", "a:b", "C:", "x\\y", "n\x00ul", "é", "-rf", "~u", "a+b=c,d@e", "x" * 256]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=6), st.booleans(), st.booleans())
def test_a_plain_name_is_one_the_name_functions_find_nothing_in(parts: list[str], lead: bool, trail: bool) -> None:
    from markit.read.entries import plain_name

    name = ("/" if lead else "") + "/".join(parts) + ("/" if trail else "")
    if plain_name(name):
        assert unsafe_reason(name) is None and normalize(name) == name.removesuffix("/") != ""
    assert kept_name(name) == captured_name(name)


def _long_way(members: list[Member]) -> tuple[list[str], ...]:
    """The entries of each check's problems, worked out with the name functions alone (no shortcut)."""
    from markit.model.names import too_long
    from markit.read.entries import _excluded_part, _under_files

    paths = [m.name for m in members if unsafe_reason(m.name) is not None or (normalize(m.name) == "" and
                                                                              m.kind != "dir")]
    sized = [m for m in members if too_long(m.name) is None]
    kinds = [m.name for m in sized if m.kind in ("symlink", "hardlink", "special")]
    seen: dict[str, Member] = {}
    duplicates = []
    for m in sized:
        first = seen.setdefault(normalize(m.name), m)
        if first is not m and not (first.kind == m.kind == "dir"):
            duplicates.append(m.name)
    under = _under_files(list(seen), {key for key, m in seen.items() if m.kind != "dir"})
    duplicates += [m.name for key, m in seen.items() if key in under]
    excluded = [m.name for m in sized if _excluded_part(normalize(m.name)) is not None]
    return paths, kinds, duplicates, excluded


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=4),
                          st.sampled_from(["file", "dir", "symlink", "special"])), max_size=12))
def test_check_entries_finds_what_the_name_functions_find(entries: list[tuple[list[str], str]]) -> None:
    members = [F("/".join(parts) + ("/" if kind == "dir" else ""), kind, detail="t") for parts, kind in entries]
    found = check_entries(members)
    assert tuple([p.path for p in ps] for ps in (found.paths, found.kinds, found.duplicates, found.excluded)) == (
        _long_way(members))
    assert (found.paths, found.kinds, found.duplicates, found.excluded) == (
        check_paths(members), check_kinds(members), check_duplicates(members), excluded_problems(members))


def test_checking_again_after_the_data_reuses_what_it_can_and_finds_the_same() -> None:
    files = {"handler.py": b"h", "w.bin": b"w"}
    record = _record(files)
    members = (F("MAR-INF/MANIFEST.json", "file", 10), F("MAR-INF/RECORD", "file", len(record)),
               F("handler.py", "file", 1), F("w.bin", "file", 1), F("../x", "file", 1), F(".hidden", "file", 1))
    early = ArchiveFacts(label="m.mar", format="zip", root=None, members=members,
                         manifest=json.dumps(MANIFEST).encode(), record=record)
    before = check_before(early)
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()} | {"w.bin": "0" * 64}
    late = ArchiveFacts(label="m.mar", format="zip", root=None, members=list(members), manifest=early.manifest,
                        record=bytes(record), digests=digests, sizes={n: 1 for n in files})
    assert check_archive(late, Limits(), before) == check_archive(late, Limits())
    assert "digest-mismatch" in codes(check_archive(late, Limits(), before)[1])
    other = ArchiveFacts(label="m.mar", format="zip", root=None, members=[F("y", "file", 1)], manifest=None)
    assert check_archive(other, Limits(), before) == check_archive(other, Limits())  # other members: not reused
