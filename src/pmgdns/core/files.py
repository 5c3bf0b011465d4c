"""Reading and writing the files pmgdns is pointed at, safely.

Reading: regular files only (a FIFO would block, a device never ends), of a bounded size, so a
spec, a key or a plan file cannot hang pmgdns or take its memory. Writing an output (`--out`):
atomically through a temporary file in the same directory, and only over a file pmgdns wrote
before (its marker in the first bytes) so a mistyped path cannot overwrite the spec or anything
else.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator

from .errors import FileProblem, UsageError

KiB = 1024
MiB = 1024 * KiB


def read_bytes(path: str, limit: int, what: str) -> bytes:
    """The content of the regular file `path`, at most `limit` bytes; FileProblem otherwise
    (never showing any of its content). FileNotFoundError passes through."""
    return b"".join(read_chunks(path, limit, what))


def read_chunks(path: str, limit: int, what: str) -> Iterator[bytes]:
    """The content of the regular file `path` a block at a time, at most `limit` bytes in all;
    FileProblem otherwise, as `read_bytes` (a reader holds one block, not the file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise FileProblem(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise FileProblem(f"{what} {path} cannot be read: {exc.strerror}") from None
    except ValueError:  # a NUL in the name
        raise FileProblem(f"{what} {path!r} is not a file name (it holds a NUL)") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if
                    stat.S_ISFIFO(st.st_mode) else "a device" if
                    stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
            raise FileProblem(f"{what} {path} is {kind}; give a regular file")
        if st.st_size > limit:
            raise FileProblem(f"{what} {path} is {st.st_size} bytes; pmgdns reads at most "
                              f"{limit} bytes here")
        size = 0
        while True:
            chunk = os.read(fd, 64 * KiB)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise FileProblem(f"{what} {path} is larger than {limit} bytes; pmgdns reads at "
                                  "most that here")
            yield chunk
    except OSError as exc:
        raise FileProblem(f"{what} {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    return ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")


def check_file_option(option: str, path: str, *, must_exist: bool = False) -> None:
    """Refuse, before any work, a file option naming something that is not a regular file (a
    FIFO would block, a device never ends, a directory is no file): UsageError naming the
    option and the path; with `must_exist`, also a path that does not exist."""
    shown = repr(path) if "\0" in path else path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not must_exist:
            return
        raise UsageError(f"{option} {shown}: no such file") from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a file name"
        raise UsageError(f"{option} {shown}: {why}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{option} {shown} is {_kind(st.st_mode)}; give a regular file")


def read_text(path: str, limit: int, what: str) -> str:
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileProblem(f"{what} {path} is not UTF-8 text") from None


def read_text_chunks(path: str, limit: int, what: str) -> Iterator[str]:
    """`read_text` a block at a time: the same checks and errors, the text decoded as it
    comes (a sequence cut between two blocks is joined)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in read_chunks(path, limit, what):
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileProblem(f"{what} {path} is not UTF-8 text") from None


def head_of(path: str, size: int) -> str:
    """The first `size` characters of a regular file; "" for anything else (never blocks)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return ""
    if not stat.S_ISREG(st.st_mode):
        return ""
    try:
        return _head(path, size)
    except FileProblem:
        return ""


def replace_file(path: str, text: str | Iterable[str], what: str) -> None:
    """Write `text` (or its pieces, as they come) to `path` atomically: a temporary file in the
    same directory, renamed over `path` (a symlink there is replaced, never followed), removed
    again on any failure. FileProblem names the path."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pmgdns-")
    except OSError as exc:
        raise FileProblem(f"cannot write {what} {path}: {exc.strerror} "
                          f"({exc.filename or directory})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise FileProblem(f"cannot write {what} {path}: {exc.strerror}") from None
    except BaseException:
        _unlink(tmp)
        raise


def write_output(path: str, text: str | Iterable[str], marker: str | re.Pattern[str],
                 what: str) -> None:
    """Write `text` (or its pieces) to `path` atomically. An existing `path` must be a regular
    file with `marker` (a text, or a pattern searched for) near its start or its end (one pmgdns
    wrote), else FileProblem and nothing is written."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise FileProblem(f"cannot write {what} to {path}: {exc.strerror}") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(f"{path} exists and is not a regular file; write {what} to "
                              "another path")
        ends = (_head(path, 4096), _tail(path, 4096))
        if not any(marker.search(e) if isinstance(marker, re.Pattern) else marker in e
                   for e in ends):
            raise FileProblem(f"{path} exists and is not {what} pmgdns wrote; remove it or "
                              "write to another path (pmgdns overwrites only its own files)")
    replace_file(path, text, what)


def append_text(path: str, text: str, what: str) -> None:
    """Append `text` to the regular file `path` (creating it), never blocking on a FIFO and
    never following a symlink loop; FileProblem names the path."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise FileProblem(f"cannot append {what} to {path}: {exc.strerror}") from None
    except ValueError:
        raise FileProblem(f"{what} {path!r} is not a file name") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileProblem(f"cannot append {what} to {path}: it is not a regular file")
        data = text.encode("utf-8")
        while data:
            written = os.write(fd, data)
            data = data[written:]
    except OSError as exc:
        raise FileProblem(f"cannot append {what} to {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _head(path: str, size: int) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(size).decode("utf-8", "replace")
    except OSError as exc:
        raise FileProblem(f"{path} cannot be read: {exc.strerror}") from None


def _tail(path: str, size: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - size))
            return fh.read(size).decode("utf-8", "replace")
    except OSError as exc:
        raise FileProblem(f"{path} cannot be read: {exc.strerror}") from None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
