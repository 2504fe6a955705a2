"""The pickle opcodes :class:`~markit.weights.pickles.PickleScan` follows: each one's argument and stack effect.

Protocols 0 to 5, as ``pickletools.opcodes`` lists them (68 opcodes), grouped by what they do
to the unpickler's stack; and the decoders of their arguments, which fail where the C
unpickler fails (:class:`Bad`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ARGS",
    "CALLS",
    "LINE_MAX",
    "NOOPS",
    "POP",
    "POP_MARK",
    "POP_MARK_PUSH",
    "PUSH",
    "REPLACE",
    "STRINGS",
    "Bad",
    "Finding",
    "Global",
    "Value",
    "index",
    "line_pair",
    "text",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """One import (or call of something computed) a pickle would make."""

    name: str
    """``module.qualname`` as the unpickler would resolve it, or what is called (``REDUCE of ...``)."""
    offset: int
    """The opcode's byte offset in the stream."""
    unsafe: bool
    """Outside what ``torch.load(weights_only=True)`` allows."""
    call: bool = False
    """Not an import: an opcode that calls or imports something the file does not name (*name* says what)."""


class Global:
    """A global on the model stack (what GLOBAL, STACK_GLOBAL and INST push)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Computed:
    """What a call leaves on the model stack (``REDUCE``, ``NEWOBJ``, ``OBJ``, ``INST``): an object the scan
    does not follow, which might be callable. A persistent id's object (a storage, for ``torch.load``; an
    error, for ``pickle.load``) and an out-of-band buffer are taken as never callable."""

    __slots__ = ()


COMPUTED = Computed()
Value = str | Global | Computed | None  # None: a literal (number, bytes, container): never callable


LINE_MAX = 8 << 20  # 8 MiB: a protocol-0 argument line (a GLOBAL's module, a UNICODE string) held to be parsed


class Bad(Exception):
    """The unpickler would stop here (the scan stops with it)."""


# Argument of each opcode: ("n", k) k fixed bytes; ("count", k) a k-byte little-endian length then that many bytes;
# ("line", 1 or 2) newline-terminated lines. Opcodes not listed take no argument.
ARGS: dict[int, tuple[str, int]] = {
    **{ord(c): ("line", 1) for c in "IFLSVPpg"},  # INT FLOAT LONG STRING UNICODE PERSID PUT GET
    **{ord(c): ("line", 2) for c in "ci"},  # GLOBAL INST
    ord("J"): ("n", 4), ord("K"): ("n", 1), ord("M"): ("n", 2), ord("G"): ("n", 8),  # BININT BININT1 BININT2 BINFLOAT
    ord("h"): ("n", 1), ord("j"): ("n", 4), ord("q"): ("n", 1), ord("r"): ("n", 4),  # BINGET LONG_BINGET BINPUT LONG_
    0x80: ("n", 1), 0x82: ("n", 1), 0x83: ("n", 2), 0x84: ("n", 4), 0x95: ("n", 8),  # PROTO EXT1 EXT2 EXT4 FRAME
    0x8A: ("count", 1), 0x8B: ("count", 4),  # LONG1 LONG4
    ord("T"): ("count", 4), ord("U"): ("count", 1), ord("B"): ("count", 4), ord("C"): ("count", 1),  # strings, bytes
    ord("X"): ("count", 4), 0x8C: ("count", 1), 0x8D: ("count", 8), 0x8E: ("count", 8), 0x96: ("count", 8),
}
STRINGS = {ord(c) for c in "SVTUX"} | {0x8C, 0x8D}  # push a str (STRING family decoded, as encoding="ASCII" does)
PUSH = {ord(c) for c in "IFLPNGJKM)]}"} | {0x88, 0x89, 0x8A, 0x8B, 0x8F, 0x97} | {ord("C"), ord("B"), 0x8E, 0x96}
POP_MARK_PUSH = {ord(c) for c in "tld"} | {0x91}  # TUPLE LIST DICT FROZENSET
POP_MARK = {ord(c) for c in "eu1"} | {0x90}  # APPENDS SETITEMS POP_MARK ADDITEMS
REPLACE = {0x85: 1, 0x86: 2, 0x87: 3, ord("Q"): 1}  # TUPLE1-3 and BINPERSID: pop n, push one
POP = {ord("a"): 1, ord("s"): 2, ord("b"): 1}  # APPEND SETITEM BUILD (each then needs an object below)
CALLS = {ord("R"): ("REDUCE", 2), 0x81: ("NEWOBJ", 2), 0x92: ("NEWOBJ_EX", 3)}  # pop n, the first is the callable
NOOPS = {0x95, 0x98}  # FRAME READONLY_BUFFER (the FRAME length is read, frames are not needed to follow opcodes)


def text(op: int, arg: bytes) -> str:
    """The str a string opcode pushes."""
    try:
        if op in (ord("S"), ord("V")):  # protocol-0 STRING is a quoted literal, UNICODE raw-unicode-escaped
            line = arg.rstrip(b"\n")
            return line[1:-1].decode("latin-1") if op == ord("S") else line.decode("raw_unicode_escape")
        return arg.decode("utf-8", "surrogatepass") if op in (ord("X"), 0x8C, 0x8D) else arg.decode("latin-1")
    except UnicodeDecodeError:
        raise Bad("a string that is not UTF-8") from None


def line_pair(arg: bytes | None) -> tuple[str, str]:
    """GLOBAL's and INST's module and name, from their two lines."""
    assert arg is not None
    module, name, _ = arg.split(b"\n")
    try:
        return module.decode("utf-8"), name.decode("utf-8")
    except UnicodeDecodeError:
        raise Bad("a GLOBAL whose name is not UTF-8") from None


_TEXT_KEYS = (ord("p"), ord("g"))  # PUT and GET: the key as a line of text


def index(arg: bytes | None, op: int) -> int:
    """A memo key: a text line (PUT, GET) or little-endian bytes."""
    assert arg is not None
    if op in _TEXT_KEYS:
        try:
            return int(arg)
        except ValueError:
            raise Bad("a memo index that is not a number") from None
    return int.from_bytes(arg, "little")
