"""JSON read as it streams in: a document as `json.loads` reads it, in bounded memory.

The text comes a block at a time. The arrays and objects of the top-level object are read an
item at a time, each item by json's own scanner with the decoder's hooks; the items of one
array are handed over one by one as they are read (and let go). What is accepted and what is
refused, and the message saying why (its line, column and character in the whole text), are
those of `json.loads(text, ...)` with the same decoder: the parts between the scanned items are
read here as json's scanner reads them.

ijson, the streaming JSON library, was weighed and left out: its events would have to be built
back into values with the plan reader's strict hooks (duplicate keys, no NaN), and its errors
differ from `json.loads`'s, so a plan file would be refused in other words than before; here
json's own scanner reads every value and only the punctuation between values is walked.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn, Protocol, TypeVar

BLOCK = 1024 * 1024  # characters read ahead at a time
_MARGIN = 16  # an error this near the end of what is read may be the cut, not the text
_WS = re.compile(r"[ \t\n\r]*")  # json's whitespace
_TRAILING_COMMA = sys.version_info >= (3, 13)  # since 3.13 json names a trailing comma


class Collector(Protocol):
    """Takes the items of the streamed array in turn; it stands for the array in the result."""

    def add(self, item: Any) -> None: ...


C = TypeVar("C", bound=Collector)
Scanner = Callable[[str, int], tuple[Any, int]]
_scanstring: Callable[[str, int, bool], tuple[str, int]] = \
    json.decoder.scanstring  # type: ignore[attr-defined]


def _scan_once(decoder: json.JSONDecoder) -> Scanner:
    """json's scanner of one value, with `decoder`'s hooks (what `raw_decode` calls)."""
    scanner: Scanner = decoder.scan_once  # type: ignore[attr-defined]
    return scanner


class StreamError(json.JSONDecodeError):
    """A `json.JSONDecodeError` with the position in the whole text (which is not held)."""

    def __init__(self, msg: str, where: tuple[int, int, int]) -> None:
        lineno, colno, pos = where
        ValueError.__init__(self, f"{msg}: line {lineno} column {colno} (char {pos})")
        self.msg, self.doc, self.pos, self.lineno, self.colno = msg, "", pos, lineno, colno


class _Reader:
    """The text read so far from `pieces`, from the first character still needed."""

    def __init__(self, pieces: Iterator[str], block: int) -> None:
        self._pieces = pieces
        self.block = block
        self.buf = ""
        self.pos = 0  # in buf
        self.keep = -1  # when not -1, a position in buf that `more` keeps
        self.eof = False
        self._base = 0  # characters before buf
        self._lines = 0  # newlines before buf
        self._line_start = 0  # where the line goes on that buf starts in

    def more(self, want: int = 0) -> bool:
        """Read at least `want` (and `block`) more characters, up to the end of the text, and
        drop what is read; False, and nothing changed, when there is nothing more."""
        got: list[str] = []
        size = 0
        while not self.eof and size < max(want, self.block):
            piece = next(self._pieces, None)
            if piece is None:
                self.eof = True
            elif piece:
                got.append(piece)
                size += len(piece)
        if not size:
            return False
        drop = self.pos if self.keep < 0 else min(self.pos, self.keep)
        if drop:
            self._lines += self.buf.count("\n", 0, drop)
            newline = self.buf.rfind("\n", 0, drop)
            if newline >= 0:
                self._line_start = self._base + newline + 1
            self._base += drop
            self.keep -= drop if self.keep >= 0 else 0
        self.buf, self.pos = "".join([self.buf[drop:], *got]), self.pos - drop
        return True

    def where(self, pos: int) -> tuple[int, int, int]:
        """(line, column, character) of `pos` in buf, counted in the whole text as json does."""
        newline = self.buf.rfind("\n", 0, pos)
        start = self._base + newline + 1 if newline >= 0 else self._line_start
        at = self._base + pos
        return self._lines + self.buf.count("\n", 0, pos) + 1, at - start + 1, at

    def fail(self, msg: str, pos: int) -> NoReturn:
        raise StreamError(msg, self.where(pos))

    def skip(self) -> str | None:
        """Past whitespace: the next character, None at the end of the text."""
        while True:
            match = _WS.match(self.buf, self.pos)
            assert match is not None  # it matches the empty text
            self.pos = match.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def scan(self, scanner: Callable[[str, int], tuple[Any, int]], skip: int = 0) -> Any:
        """`scanner(buf, pos + skip)`, json's scan of one value (or string), read on while
        what is read may end inside it; pos after it."""
        while True:
            try:
                value, end = scanner(self.buf, self.pos + skip)
            except StopIteration as exc:
                msg, at = "Expecting value", int(exc.value)
            except json.JSONDecodeError as exc:
                msg, at = exc.msg, exc.pos
            except ValueError as exc:  # an integer too long to hold: the message counts digits
                if type(exc) is ValueError and self.more(len(self.buf)):
                    continue
                raise
            else:  # a number read up to the end may go on ("2" of "2.5" cut after "2.")
                if end < len(self.buf) - _MARGIN or not self.more():
                    self.pos = end
                    return value
                continue
            cut = msg.startswith("Unterminated string") or at >= len(self.buf) - _MARGIN
            if cut and self.more(len(self.buf) - self.pos):
                continue
            self.fail(msg, at)


def load(pieces: Iterable[str], decoder: json.JSONDecoder, member: str,
         collect: Callable[[], C], block: int | None = None) -> Any:
    """`json.loads(text)` with `decoder`'s hooks, for the text `pieces` make up, read a block
    at a time; when the top-level value is an object whose `member` is an array, that array's
    items go to a new `collect()` one at a time, and the collector stands for the array. The
    errors are json's, worded and placed as `json.loads` places them. About `block` (`BLOCK`)
    characters are held beside the item being read: the arrays and objects of the top-level
    object are read an item at a time too."""
    reader = _Reader(iter(pieces), block or BLOCK)
    reader.more()
    if reader.buf.startswith("\ufeff"):
        reader.fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0)
    scan = _scan_once(decoder)

    def value_of(name: str) -> Any:
        """A member of the top-level object."""
        char = reader.skip()
        if char == "[":
            if name == member:
                sink = collect()
                _array(reader, scan, sink.add)
                return sink
            items: list[Any] = []
            _array(reader, scan, items.append)
            return items
        if char == "{":
            return _object(reader, decoder, lambda _: reader.scan(scan))
        return reader.scan(scan)

    if reader.skip() == "{":
        value = _object(reader, decoder, value_of)
    else:
        value = reader.scan(scan)
    if reader.skip() is not None:
        reader.fail("Extra data", reader.pos)
    return value


def _object(reader: _Reader, decoder: json.JSONDecoder, value_of: Callable[[str], Any]) -> Any:
    """An object, as json's scanner reads one (`_json.c`), `value_of(name)` reading the value
    of each member; then the decoder's hook."""
    def key(text: str, at: int) -> tuple[str, int]:
        return _scanstring(text, at, decoder.strict)

    reader.pos += 1
    pairs: list[tuple[str, Any]] = []
    char = reader.skip()
    if char != "}":
        while True:
            if char != '"':
                reader.fail("Expecting property name enclosed in double quotes", reader.pos)
            name = reader.scan(key, 1)
            if reader.skip() != ":":
                reader.fail("Expecting ':' delimiter", reader.pos)
            reader.pos += 1
            reader.skip()
            pairs.append((name, value_of(name)))
            char = reader.skip()
            if char == "}":
                break
            if char != ",":
                reader.fail("Expecting ',' delimiter", reader.pos)
            reader.keep = reader.pos
            reader.pos += 1
            char = reader.skip()
            if _TRAILING_COMMA and char == "}":
                reader.fail("Illegal trailing comma before end of object", reader.keep)
            reader.keep = -1
    reader.pos += 1
    if decoder.object_pairs_hook is not None:
        return decoder.object_pairs_hook(pairs)
    obj = dict(pairs)
    return decoder.object_hook(obj) if decoder.object_hook is not None else obj


def _array(reader: _Reader, scan: Scanner, add: Callable[[Any], None]) -> None:
    """An array, as json's scanner reads one, each item to `add`."""
    reader.pos += 1
    if reader.skip() != "]":
        while True:
            add(reader.scan(scan))
            char = reader.skip()
            if char == "]":
                break
            if char != ",":
                reader.fail("Expecting ',' delimiter", reader.pos)
            reader.keep = reader.pos
            reader.pos += 1
            if reader.skip() == "]" and _TRAILING_COMMA:
                reader.fail("Illegal trailing comma before end of array", reader.keep)
            reader.keep = -1
    reader.pos += 1


def pieces_of(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of `size` characters (to read a text as if it streamed in)."""
    return (text[i:i + size] for i in range(0, len(text), size))
