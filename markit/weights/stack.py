"""How each pickle opcode changes :class:`~markit.weights.pickles.PickleScan`'s model stack and memo: ``STEPS``.

One small function per kind of opcode, each taking (scan, opcode, argument, stream offset)
and raising :class:`~markit.weights.opcodes.Bad` where the C unpickler would fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from markit.weights.opcodes import (
    CALLS,
    COMPUTED,
    NOOPS,
    POP,
    POP_MARK,
    POP_MARK_PUSH,
    PUSH,
    REPLACE,
    STRINGS,
    Bad,
    Computed,
    Finding,
    Global,
    index,
    line_pair,
    text,
)

if TYPE_CHECKING:
    from markit.weights.pickles import PickleScan

__all__ = ["STEPS", "unknown"]



def _mark(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._marks.append(scan._stack)
    scan._stack = []


def _pop_one(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    if scan._stack:
        scan._stack.pop()
    else:
        scan._pop_mark()


def _dup(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._stack.append(scan._pop(1)[0])
    scan._stack.append(scan._stack[-1])


def _put(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    if not scan._stack:
        raise Bad("a PUT with an empty stack")
    scan._memo[len(scan._memo) if op == 0x94 else index(arg, op)] = scan._stack[-1]


def _get(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    key = index(arg, op)
    if key not in scan._memo:
        raise Bad(f"a memo key that was never put ({key})")
    scan._stack.append(scan._memo[key])


def _global_op(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._stack.append(scan._global(*line_pair(arg), at))


def _stack_global(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    module, name = scan._pop(2)
    if isinstance(module, str) and isinstance(name, str):
        scan._stack.append(scan._global(module, name, at))
    elif all(isinstance(v, (str, Computed)) for v in (module, name)):  # a string made at load time, perhaps
        scan.findings.append(Finding("STACK_GLOBAL of a name computed at load time", at, True, True))
        scan._stack.append(Global("?"))
    else:  # the C unpickler takes only str: a literal number, bytes, container or global stops it
        raise Bad("STACK_GLOBAL of a value that is not a string")


def _inst(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._global(*line_pair(arg), at)
    scan._pop_mark()
    scan._stack.append(COMPUTED)


def _obj(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    items = scan._pop_mark()
    if not items:
        raise Bad("an OBJ with nothing to build")
    scan._call("OBJ", items[0], at)
    scan._stack.append(COMPUTED)


def _ext(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    code = int.from_bytes(arg or b"", "little")
    if scan._proto < 2:  # a protocol-2 opcode in what does not say it is protocol 2: no unpickler resolves it
        raise Bad(f"an extension code ({code}) outside a protocol 2+ pickle")
    scan.findings.append(Finding(f"EXT code {code} (a copyreg extension: a global not named in the file)",
                                 at, True, True))
    scan._stack.append(Global("?"))


def _proto(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    version = (arg or b"\0")[0]
    if version > 5:
        raise Bad(f"unsupported pickle protocol {version}")
    scan._proto = version


def unknown(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    raise Bad(f"byte {at:,} is not a pickle opcode ({op:#04x})")


def _string(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._stack.append(COMPUTED if arg is None else text(op, arg))  # a string too long to keep: not followed


def _push(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._stack.append(None)


def _collect(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._pop_mark()
    scan._stack.append(None)


def _pop_to_mark(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._pop_mark()


def _replace(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._pop(REPLACE[op])
    scan._stack.append(None)


def _add(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    scan._pop(POP[op])
    if not scan._stack:
        raise Bad("nothing to add to or build")


def _calls(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    what, n = CALLS[op]
    scan._call(what, scan._pop(n)[0], at)
    scan._stack.append(COMPUTED)


def _noop(scan: PickleScan, op: int, arg: bytes | None, at: int) -> None:
    if op == 0x98 and not scan._stack:  # READONLY_BUFFER: needs an object (and leaves it)
        raise Bad("READONLY_BUFFER with an empty stack")


_Step = Callable[["PickleScan", int, "bytes | None", int], None]
STEPS: dict[int, _Step] = {
    **dict.fromkeys(STRINGS, _string), **dict.fromkeys(PUSH, _push), **dict.fromkeys(POP_MARK_PUSH, _collect),
    **dict.fromkeys(POP_MARK, _pop_to_mark), **dict.fromkeys(REPLACE, _replace), **dict.fromkeys(POP, _add),
    **dict.fromkeys(CALLS, _calls), **dict.fromkeys(NOOPS, _noop),
    ord("("): _mark, ord("0"): _pop_one, ord("2"): _dup,
    ord("p"): _put, ord("q"): _put, ord("r"): _put, 0x94: _put,
    ord("g"): _get, ord("h"): _get, ord("j"): _get,
    ord("c"): _global_op, 0x93: _stack_global, ord("i"): _inst, ord("o"): _obj,
    0x82: _ext, 0x83: _ext, 0x84: _ext, 0x80: _proto,
}
