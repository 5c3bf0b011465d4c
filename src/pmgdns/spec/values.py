"""Checking spec values: every failure names the file, the key path and the line.

`Checker` is what spec.py and every record family use to read a key: it raises `SpecError`
(exit code 1) with the fix in the message, and collects warnings.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from typing import Any

import idna

from ..core.errors import FileProblem, SpecError
from ..core.files import read_bytes
from .reading import LocatedYaml, Path

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def kind_of(value: Any) -> str:
    """How a YAML value is described in messages ("a mapping", "a list", ...)."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "empty"}.get(type(value), "a value")


def suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def shown(value: Any, limit: int = 60) -> str:
    """A value from the spec as it may appear in a message: escaped (no control characters
    reach the terminal), and cut to `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Checker:
    """Reads values out of a located YAML document, failing with the key path and line."""

    def __init__(self, doc: LocatedYaml) -> None:
        self.doc = doc
        self.warnings: list[str] = []
        self.inputs: dict[str, str] = {}  # files the spec names: path -> sha256 of the content

    def read_input(self, value: Any, path: Path, limit: int, what: str) -> bytes:
        """The content of a file the spec names (a key, a certificate): a regular file of at
        most `limit` bytes. Errors name the key and the file, never its content."""


        name = self.string(value, path)
        try:
            data = read_bytes(name, limit, what)
        except FileNotFoundError:
            raise self.fail(path, f"the file `{shown(name)}` does not exist (paths resolve "
                                  "from the current directory)") from None
        except FileProblem as exc:
            raise self.fail(path, str(exc)) from None
        self.inputs[name] = hashlib.sha256(data).hexdigest()
        return data

    @property
    def file(self) -> str:
        return self.doc.file

    def fail(self, path: Path, message: str) -> SpecError:
        return SpecError(self.doc.file, ".".join(path), message, self.doc.line(path))

    def warn(self, path: Path, message: str) -> None:
        line = self.doc.line(path)
        where = self.doc.file if line is None else f"{self.doc.file}, line {line}"
        self.warnings.append(f"{where}: {'.'.join(path)}: {message}")

    def mapping(self, value: Any, path: Path, allowed: Sequence[str] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, not {kind_of(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.fail(
                        (*path, key),
                        f"unknown key{suggest(key, allowed)}; the keys allowed here are "
                        f"{', '.join(allowed)}",
                    )
        return value

    def integer(self, value: Any, path: Path, lo: int, hi: int) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise self.fail(path, f"must be a whole number from {lo} to {hi}, not "
                                  f"{shown(value)}")
        return value

    def boolean(self, value: Any, path: Path) -> bool:
        if type(value) is not bool:
            raise self.fail(path, f"must be true or false, not {shown(value)}")
        return value

    def string(self, value: Any, path: Path) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, not {kind_of(value)}")
        return value.strip()

    def string_list(self, value: Any, path: Path, example: str) -> list[str]:
        """A list of strings; a single string is a list of one."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"must be a non-empty list, e.g. {example}")
        return [self.string(v, (*path, str(i))) for i, v in enumerate(value)]

    def a_label(self, label: str, path: Path) -> None:
        """An `xn--` label must decode to a valid name (IDNA 2008)."""
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                raise self.fail(path, f"`{shown(label)}` is not a valid IDNA label (an `xn--` "
                                      "label must decode to a valid name); write the name in "
                                      "Unicode or fix the A-label") from None

    def hostname(self, value: Any, path: Path, what: str = "hostname") -> str:
        text = self.string(value, path).rstrip(".")
        try:
            ascii_name = idna.encode(text, uts46=True).decode("ascii") if not text.isascii() \
                else text.lower()
        except idna.IDNAError as exc:
            raise self.fail(path, f"`{shown(text)}` is not a valid internationalised {what}: "
                                  f"{exc}") from None
        labels = ascii_name.split(".")
        if len(labels) < 2:
            raise self.fail(path, f"`{shown(text)}` is not a fully qualified {what}; write it "
                                  "with its domain, e.g. mx1.example.com")
        if len(ascii_name) > 253:
            raise self.fail(path, f"`{shown(text)}` is longer than 253 characters")
        for label in labels:
            if not _LABEL.match(label):
                raise self.fail(
                    path,
                    f"`{shown(text)}` has the invalid label `{shown(label)}`; labels are 1-63 "
                    "letters, digits or hyphens, not starting or ending with a hyphen",
                )
            self.a_label(label, path)
        if labels[-1].isdigit():
            raise self.fail(path, f"`{shown(text)}` is not a {what} (its last label is "
                                  "numeric)")
        return ascii_name
