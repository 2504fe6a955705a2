"""What a pickle would import, read without unpickling: an incremental opcode scanner over chunks.

:class:`PickleScan` takes a pickle stream's bytes in chunks of any size (the data pass's) and
follows every opcode of protocols 0 to 5 the way ``pickle``'s C unpickler does, with a model
of its stack and memo that keeps only what matters for imports: the strings that
``STACK_GLOBAL`` may take its module and name from (pushed directly or fetched from the
memo) and the globals themselves, so that ``REDUCE``, ``NEWOBJ``, ``OBJ`` and ``INST`` can be
told apart when they call a named global or something computed at load time. Payloads
(``BINBYTES8`` of a tensor, frames) are skipped without being held.

Where the C unpickler would stop with an error (an unknown opcode, a stack underflow, a
missing memo key, a cut stream), the scan stops too: nothing after that point would run.
Where only the scan would stop (a protocol-0 line over :data:`LINE_MAX`), the pickle is
reported as not scanned, never passed. With *many*, consecutive pickles are followed, as
``torch.load`` reads a legacy (pre-1.6) file: five pickles, then raw storage bytes.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Generator

from markit.weights.allowlist import allowed
from markit.weights.opcodes import ARGS, LINE_MAX, STRINGS, Bad, Computed, Finding, Global, Value
from markit.weights.stack import STEPS, unknown

__all__ = ["LINE_MAX", "Finding", "PickleScan"]

_SKIP_FROM = 1 << 16  # payloads of 64 KiB or more are skipped as they pass rather than gathered




class PickleScan:
    """Feed a pickle stream's bytes in order (:meth:`feed`), then :meth:`close`; read what it found.

    *torchscript*: the pickle is loaded by TorchScript's C++ unpickler, which also resolves
    ``__torch__.*`` and ``torch.jit._pickle.*``. *many*: go on after a STOP while what follows parses.
    """

    def __init__(self, *, torchscript: bool = False, many: bool = False) -> None:
        self.torchscript = torchscript
        self.many = many
        self.findings: list[Finding] = []
        """Every global imported and every call of something not a named global, in stream order."""
        self.pickles = 0
        """Pickles read to their STOP."""
        self.error: str | None = None
        """Why the scan stopped before the stream's end (an unpickler error, or a limit of the scan)."""
        self.unscanned = False
        """The scan stopped where the unpickler would go on: what follows was not checked."""
        self.end = 0
        """Offset just past the last STOP read."""
        self._buf = bytearray()
        self._pos = 0
        self._dropped = 0  # stream bytes before _buf[0]
        self._skip = 0
        self._need = 1
        self._ops = 0  # opcodes read in the current pickle
        self._run: Generator[int, None, None] | None = self._pickles()
        self._need = next(self._run)

    @property
    def done(self) -> bool:
        """Nothing more will be looked at (a single pickle read to its STOP, or the scan stopped)."""
        return self._run is None

    @property
    def unsafe(self) -> list[Finding]:
        """The findings outside the allow-list."""
        return [f for f in self.findings if f.unsafe]

    @property
    def imports(self) -> list[str]:
        """Each global named, once, in order of first appearance."""
        return list(dict.fromkeys(f.name for f in self.findings if not f.call))

    def feed(self, chunk: bytes | memoryview) -> None:
        """The stream's next bytes."""
        if self._run is None:
            return
        view = memoryview(chunk)
        if self._skip:
            n = min(self._skip, len(view))
            self._skip -= n
            self._dropped += n
            view = view[n:]
            if self._skip:
                return
        self._buf += view
        while self._run is not None and not self._skip and len(self._buf) - self._pos >= self._need:
            try:
                self._need = self._run.send(None)
            except StopIteration:
                self._run = None

    def give_up(self, why: str) -> None:
        """Stop here, the rest of the stream not scanned (*why*: a limit of whoever feeds it)."""
        if self._run is not None:
            self._run.close()
            self._run = None
        self.unscanned, self.error = True, why

    def close(self) -> None:
        """The stream has ended."""
        if self._run is not None:
            self._run.close()
            self._run = None
            if self._ops:
                self.error = f"the pickle is cut short at byte {self._dropped + len(self._buf):,}, before its STOP"

    def _offset(self, pos: int) -> int:
        return self._dropped + pos

    def _pickles(self) -> Generator[int, None, None]:
        while True:
            try:
                yield from self._one()
            except Bad as bad:
                if self._ops or self.unscanned:  # a later pickle failing at its first byte: the data after them
                    self.error = str(bad)
                return
            self.pickles += 1
            self.end = self._offset(self._pos)
            if not self.many:
                return

    def _one(self) -> Generator[int, None, None]:
        """One pickle, opcode by opcode, to its STOP. Arguments already held are sliced here (the common case);
        :meth:`_argument` waits for the rest."""
        self._ops, self._proto = 0, 0
        self._stack: list[Value] = []
        self._marks: list[list[Value]] = []
        self._memo: dict[int, Value] = {}
        buf, args, steps, strings = self._buf, ARGS, STEPS, STRINGS
        pos = self._pos  # kept in a local between opcodes; self._pos is set before anything that reads it
        while True:
            at = pos
            if at >= len(buf):
                self._pos = pos
                yield from self._wait(1)
                at = pos = self._pos
            op = buf[at]
            where = self._dropped + at  # its offset in the stream (the buffer may be compacted while reading)
            spec = args.get(op)
            arg: bytes | None = None
            if spec is None:
                pos = at + 1
            elif spec[0] == "n" and at + 1 + spec[1] <= len(buf):
                pos = at + 1 + spec[1]
                arg = bytes(buf[at + 1 : pos])
            elif spec[0] == "count" and op in strings and at + 1 + spec[1] <= len(buf) and (
                    at + 1 + spec[1] + (n := int.from_bytes(buf[at + 1 : at + 1 + spec[1]], "little"))
                    <= len(buf) and n <= LINE_MAX and op != 0x54):  # BINSTRING's length is signed: the slow way
                pos = at + 1 + spec[1] + n
                arg = bytes(buf[pos - n : pos])
            else:
                self._pos = at + 1
                arg = yield from self._argument(op, spec, where)
                pos = self._pos
            self._ops = 1
            if op == 0x2E:  # STOP
                self._pos = pos
                self._pop(1)
                return
            steps.get(op, unknown)(self, op, arg, where)

    def _argument(self, op: int, spec: tuple[str, int], at: int) -> Generator[int, None, bytes | None]:
        """*op*'s argument, read as the bytes arrive."""
        kind, n = spec
        if kind == "count":
            return (yield from self._counted(op, n))
        if kind == "line":
            return (yield from self._lines(n, at))
        if len(self._buf) - self._pos < n:
            yield from self._wait(n)
        arg = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return arg

    def _wait(self, n: int) -> Generator[int, None, None]:
        """Until *n* bytes from the current position are held (compacting the buffer first)."""
        if self._pos:
            del self._buf[: self._pos]
            self._dropped += self._pos
            self._pos = 0
        while len(self._buf) < n:
            yield n

    def _counted(self, op: int, width: int) -> Generator[int, None, bytes | None]:
        """A length-prefixed argument: its bytes for strings, None (skipped as it passes) for payloads."""
        if len(self._buf) - self._pos < width:
            yield from self._wait(width)
        n = int.from_bytes(self._buf[self._pos : self._pos + width], "little", signed=op in (ord("T"), 0x8B))
        if n < 0:
            raise Bad(f"a negative length at byte {self._offset(self._pos - 1):,}")
        self._pos += width
        if n >= _SKIP_FROM if op not in STRINGS else n > LINE_MAX:  # a string this long names no module
            held = len(self._buf) - self._pos
            if n <= held:
                self._pos += n
            else:
                self._skip = n - held
                self._pos = len(self._buf)
                yield 0
            return None
        if len(self._buf) - self._pos < n:
            yield from self._wait(n)
        arg = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return arg

    def _lines(self, count: int, at: int) -> Generator[int, None, bytes]:
        """*count* newline-terminated lines, joined with their newlines."""
        rel = 0  # bytes from the current position known to hold the lines read so far
        for _ in range(count):
            while (nl := self._buf.find(b"\n", self._pos + rel)) < 0:
                rel = len(self._buf) - self._pos
                if rel > LINE_MAX:
                    self._unscannable(f"a line of over {LINE_MAX:,} bytes after byte {at:,}")
                yield from self._wait(rel + 1)
            rel = nl + 1 - self._pos
        start = self._pos
        self._pos += rel
        return bytes(self._buf[start : self._pos])

    def _unscannable(self, what: str) -> None:
        self.unscanned = True
        raise Bad(f"{what}: too long for markit to follow; the rest is not scanned")

    # The stack model.

    def _pop(self, n: int) -> list[Value]:
        if len(self._stack) < n:
            raise Bad("the unpickler's stack runs out")
        taken = self._stack[len(self._stack) - n :]
        del self._stack[len(self._stack) - n :]
        return taken

    def _pop_mark(self) -> list[Value]:
        if not self._marks:
            raise Bad("no MARK to pop to")
        items, self._stack = self._stack, self._marks.pop()
        return items

    def _call(self, what: str, callable_: Value, at: int) -> None:
        if isinstance(callable_, Computed):
            self.findings.append(Finding(f"{what} of a value computed at load time", at, True, True))
        elif not isinstance(callable_, Global):
            raise Bad(f"{what} of a literal, which cannot be called")

    def _global(self, module: str, name: str, at: int) -> Global:
        if self._proto < 3:  # as pickle's fix_imports maps Python 2 names
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        self.findings.append(Finding(full, at, not allowed(full, torchscript=self.torchscript)))
        return Global(full)
