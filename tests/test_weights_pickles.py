"""The pickle scan (markit.weights.pickles): the globals a pickle imports, against the C unpickler's own
``find_class`` calls, and the known ways to hide an import, each caught, in chunks of any size."""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import random
import subprocess

import pytest

from markit.weights.allowlist import ALLOWED, allowed
from markit.weights.pickles import LINE_MAX, PickleScan


def scan(data: bytes, step: int = 0, **kw: bool) -> PickleScan:
    found = PickleScan(**kw)
    step = step or len(data) or 1
    for i in range(0, len(data), step):
        found.feed(data[i : i + step])
    found.close()
    return found


class Dummy(dict):  # type: ignore[type-arg]
    """What the oracle hands back for every global: takes any arguments, items, appends and state."""

    def __new__(cls, *args: object, **kwargs: object) -> Dummy:  # noqa: PYI034 - returns exactly a Dummy
        return dict.__new__(cls)

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class Recorder(pickle.Unpickler):
    """The oracle: the real C unpickler, recording each global it would import and handing back a harmless one."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.names: list[str] = []

    def find_class(self, module: str, name: str) -> object:
        self.names.append(f"{module}.{name}")
        return Dummy

    def persistent_load(self, pid: object) -> object:
        return None


def imported(data: bytes) -> list[str]:
    recorder = Recorder(data)
    recorder.load()
    return list(dict.fromkeys(recorder.names))


class System:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


class Popen:
    def __reduce__(self) -> tuple[object, ...]:
        return (subprocess.Popen, (["true"],))


OBJECTS = {
    "state dict": collections.OrderedDict(weight=[0.5, 1.5], bias=b"\0" * 100_000, name="layer"),
    "nested": {"a": [1, 2, {3, 4}], "b": (frozenset({5}), bytearray(b"xy"), complex(1, 2)), "c": None},
    "os.system": [System()],
    "subprocess": {"p": Popen()},
}


@pytest.mark.parametrize("proto", range(3, 6))
@pytest.mark.parametrize("what", OBJECTS)
@pytest.mark.parametrize("step", [1, 5, 4096, 0])
def test_imports_match_the_unpicklers_find_class(what: str, proto: int, step: int) -> None:
    data = pickle.dumps(OBJECTS[what], protocol=proto)
    found = scan(data, step)
    assert found.imports == imported(data)
    assert found.pickles == 1 and found.error is None
    assert {f.name for f in found.unsafe} == {n for n in imported(data) if not allowed(n)}


@pytest.mark.parametrize("proto", range(6))
def test_os_system_is_unsafe_in_every_protocol(proto: int) -> None:
    found = scan(pickle.dumps([System()], protocol=proto), step=3)
    assert [f.name for f in found.unsafe] == [f"{os.system.__module__}.system"]


HAND_MADE = {
    # protocol 0 GLOBAL + REDUCE, as in every pickle exploit write-up
    "protocol 0": (b"cos\nsystem\n(S'echo pwned'\ntR.", ["os.system"]),
    # Python 2 names are mapped (fix_imports) before the import: __builtin__ is builtins
    "python 2 name": (b"\x80\x02c__builtin__\neval\nX\x03\x00\x00\x001+1\x85R.", ["builtins.eval"]),
    "__import__": (b"cbuiltins\n__import__\n(S'os'\ntR.", ["builtins.__import__"]),
    # STACK_GLOBAL whose strings come from the memo, put long before and popped from the stack
    "memo STACK_GLOBAL": (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x9400h\x00h\x01\x93\x8c\x02id\x85R.", ["os.system"]),
    "memo STACK_GLOBAL, long keys": ((b"\x80\x04X\x0a\x00\x00\x00subprocessr\x07\x00\x00\x00X\x05\x00\x00\x00"
                                      b"Popenr\x08\x00\x00\x0000j\x07\x00\x00\x00j\x08\x00\x00\x00\x93)R."),
                                     ["subprocess.Popen"]),
    "INST": (b"(S'echo pwned'\nios\nsystem\n.", ["os.system"]),
    "OBJ": (b"(cos\nsystem\nS'echo pwned'\no.", ["os.system"]),
    "NEWOBJ": (b"\x80\x02csubprocess\nPopen\n]\x85\x81.", ["subprocess.Popen"]),
    "allowed": (b"\x80\x02ccollections\nOrderedDict\n)R.", []),
}


@pytest.mark.parametrize("case", HAND_MADE)
@pytest.mark.parametrize("step", [1, 2, 0])
def test_hand_made_exploits(case: str, step: int) -> None:
    data, unsafe = HAND_MADE[case]
    found = scan(data, step)
    assert [f.name for f in found.unsafe] == unsafe
    if case != "python 2 name":  # a find_class override sees the names before the mapping
        assert found.imports == imported(data)  # the scan resolves names as the unpickler does


@pytest.mark.parametrize("data, what", [
    # calls what a call returned (here fetched back from the memo)
    (b"\x80\x02ccollections\nOrderedDict\n)Rq\x00h\x00)R.", "REDUCE of a value computed at load time"),
    (b"\x80\x04\x8c\x02osccollections\nOrderedDict\n)R\x93.", "STACK_GLOBAL of a name computed at load time"),
    (b"\x80\x02\x82\x01)R.", "EXT code 1 (a copyreg extension: a global not named in the file)"),
    (b"(ccollections\nOrderedDict\n)Ro.", "OBJ of a value computed at load time"),
])
def test_calls_of_unnamed_values_are_unsafe(data: bytes, what: str) -> None:
    found = scan(data, 1)
    assert [(f.name, f.call) for f in found.unsafe] == [(what, True)]  # the only unsafe thing: the call


def test_payloads_are_skipped_not_held() -> None:
    data = pickle.dumps({"w": b"\0" * (8 << 20), "s": "x"}, protocol=4)
    found = PickleScan()
    for i in range(0, len(data), 1 << 20):
        found.feed(data[i : i + (1 << 20)])
        assert len(found._buf) < 2 << 20  # never the whole payload
    found.close()
    assert found.pickles == 1 and found.imports == []


def test_legacy_torch_layout_reads_consecutive_pickles_then_stops_at_data() -> None:
    pickles = b"".join(pickle.dumps(x, protocol=2) for x in (1, 1001, {"a": 1}, [System()], ["0"]))
    found = scan(pickles + bytes(range(256)) * 100, 7, many=True)
    assert found.pickles == 5 and [f.name for f in found.unsafe] == [f"{os.system.__module__}.system"]
    assert found.end == len(pickles)


def test_a_single_pickle_stops_at_its_stop() -> None:
    data = pickle.dumps(1, protocol=2) + pickle.dumps([System()], protocol=2)
    assert scan(data).unsafe == [] and scan(data, many=True).unsafe != []


@pytest.mark.parametrize("seed", range(50))
def test_random_bytes_are_not_pickles(seed: int) -> None:
    found = scan(random.Random(seed).randbytes(1 << 16), 4096, many=True)
    assert found.findings == [] and found.pickles == 0 and not found.unscanned


def test_a_cut_pickle_still_reports_what_it_imported() -> None:
    data = pickle.dumps([System(), 1], protocol=2)[:-3]
    found = scan(data)
    assert found.unsafe and "cut short" in (found.error or "")


def test_a_line_too_long_to_follow_is_unscanned_not_passed() -> None:
    found = scan(b"c" + b"a" * (LINE_MAX + 10), 1 << 20)
    assert found.unscanned and "not scanned" in (found.error or "")


@pytest.mark.parametrize("data", [b"\x80\x02}q\x00h\x00)R.", b"(]o.", b"\x80\x02K\x01)\x81.", b"\x80\x04\x8c\x02osN\x93."])
def test_calling_a_literal_stops_like_the_unpickler(data: bytes) -> None:
    # a dict, a list, an int cannot be called: the unpickler raises there, and so nothing after runs
    with pytest.raises((TypeError, pickle.UnpicklingError)):
        pickle.loads(data)
    found = scan(data)
    assert found.findings == [] and found.error is not None


def test_stack_errors_stop_like_the_unpickler() -> None:
    found = scan(b"\x80\x02R" + b"cos\nsystem\n.", 1)  # REDUCE on an empty stack: the unpickler stops there
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(b"\x80\x02R")
    assert found.findings == [] and found.error is not None


def test_the_allow_list_is_torchs_shape() -> None:
    assert "torch._utils._rebuild_tensor_v2" in ALLOWED and "collections.OrderedDict" in ALLOWED
    assert not allowed("builtins.eval") and not allowed("torch.load")
    assert allowed("__torch__.Model", torchscript=True) and not allowed("__torch__.Model")


@pytest.mark.parametrize("step", [1, 3, 0])
def test_offsets_are_the_opcodes_positions(step: int) -> None:
    data = pickle.dumps([System(), {"x": Popen()}, "y" * 100], protocol=2)
    where = [pos for op, _, pos in pickletools.genops(data) if op.name == "GLOBAL"]
    assert [f.offset for f in scan(data, step).findings] == where


def test_a_string_too_long_to_keep_is_not_trusted_as_a_name() -> None:
    huge = b"\x8d" + (LINE_MAX + 1).to_bytes(8, "little") + b"o" * (LINE_MAX + 1)
    found = scan(b"\x80\x04" + huge + b"\x8c\x06system\x93.", 1 << 20)
    assert [f.name for f in found.unsafe] == ["STACK_GLOBAL of a name computed at load time"]
