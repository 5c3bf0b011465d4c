"""Editing YAML text in place: the spec parsed with ruamel.yaml's round-trip composer, which keeps
the exact position (line, column, character offset) of every key and value, and changes made as
splices of the original text at those positions (`SpecText`), so every byte outside the spliced
lines stays the original byte. `pmgdns.pmg.specedit` decides what to change."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.errors import SpecEditError, SpecError


@dataclass
class Edit:
    start: int
    end: int
    text: str
    seq: int


SAFE_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/+=]*")


def safe_loader() -> YAML:
    return YAML(typ="safe", pure=True)


def scalar_text(value: str, style: str | None = None) -> str:
    """A YAML scalar for `value`: plain when that reads back as the same string, else quoted
    (in the given quote style when there was one)."""
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    plain_ok = False
    if style is None and SAFE_PLAIN.fullmatch(value):
        try:
            plain_ok = safe_loader().load(value) == value
        except YAMLError:
            plain_ok = False
    if plain_ok:
        return value
    if "\n" in value:
        return json.dumps(value, ensure_ascii=False)
    return "'" + value.replace("'", "''") + "'"


class SpecText:
    """The original text plus a list of non-overlapping splices, applied at the end."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)
        self.edits: list[Edit] = []

    # positions ------------------------------------------------------------------------------
    @property
    def line_count(self) -> int:
        n = len(self.starts)
        return n - 1 if self.text.endswith("\n") else n

    def line_start(self, line: int) -> int:
        return self.starts[line] if line < len(self.starts) else len(self.text)

    def line(self, line: int) -> str:
        return self.text[self.line_start(line):self.line_start(line + 1)]

    def last_line(self, node: Node) -> int:
        """The last line that holds part of `node` (comments after it excluded)."""
        if isinstance(node, MappingNode) and not node.flow_style and node.value:
            key, value = node.value[-1]
            return max(int(key.end_mark.line), self.last_line(value))
        if isinstance(node, SequenceNode) and not node.flow_style and node.value:
            return self.last_line(node.value[-1])
        if isinstance(node, ScalarNode) and node.style in ("|", ">"):
            end = int(node.end_mark.line) - (1 if node.end_mark.column == 0 else 0)
            while end > node.start_mark.line and not self.line(end).strip():
                end -= 1
            return end
        if is_empty(node):
            return -1  # an empty value: it has no line of its own (its key's line counts)
        end = int(node.end_mark.line)
        if node.end_mark.column == 0 and end > node.start_mark.line:
            end -= 1
        return end

    def pair_lines(self, key: Node, value: Node, *,
                   deeper_comments: bool = False) -> tuple[int, int]:
        """First and last line of a block-mapping entry. With `deeper_comments`, comment lines
        right after it that are indented deeper than its key count as part of it."""
        first = key.start_mark.line
        if self.text[self.line_start(first):key.start_mark.index].strip():
            raise SpecEditError("an entry to be edited does not start its own line")
        last = max(first, self.last_line(value))
        if deeper_comments:
            col = key.start_mark.column
            while last + 1 < self.line_count:
                nxt = self.line(last + 1)
                stripped = nxt.lstrip(" ")
                if stripped.startswith("#") and len(nxt) - len(stripped) > col:
                    last += 1
                else:
                    break
        return first, last

    # edits ----------------------------------------------------------------------------------
    def replace(self, start: int, end: int, text: str) -> None:
        self.edits.append(Edit(start, end, text, len(self.edits)))

    def insert_lines_after(self, line: int, lines: list[str]) -> None:
        pos = self.line_start(line + 1)
        text = "".join(lines)
        if pos == len(self.text) and self.text and not self.text.endswith("\n"):
            text = "\n" + text.rstrip("\n")
        self.replace(pos, pos, text)

    def replace_lines(self, first: int, last: int, lines: list[str]) -> None:
        start, end = self.line_start(first), self.line_start(last + 1)
        text = "".join(lines)
        if end == len(self.text) and not self.text.endswith("\n"):
            text = text.rstrip("\n")
        self.replace(start, end, text)

    def result(self) -> str:
        ordered = sorted(self.edits, key=lambda e: (e.start, e.end, e.seq))
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a.end > b.start:
                raise SpecEditError("two edits of the spec overlap")
        out = self.text
        for e in reversed(ordered):
            out = out[:e.start] + e.text + out[e.end:]
        return out


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and str(getattr(node.tag, "value", node.tag)).endswith(
        ":null")


def is_empty(node: Node) -> bool:
    return is_null(node) and node.value == ""


def mapping_pairs(node: MappingNode) -> dict[str, tuple[Node, Node]]:
    out: dict[str, tuple[Node, Node]] = {}
    for k, v in node.value:
        if isinstance(k, ScalarNode):
            out.setdefault(str(k.value), (k, v))
    return out


def indent_of(node: MappingNode, parent_key: Node, step: int = 2) -> int:
    if node.value:
        return int(node.value[0][0].start_mark.column)
    return int(parent_key.start_mark.column) + step


def flow_text(doc: SpecText, node: Node) -> str:
    return doc.text[node.start_mark.index:node.end_mark.index]


def literal_block(key: str, value: str, indent: int, step: int) -> list[str]:
    """`key: |` and the value's lines; a value a block scalar cannot hold exactly is quoted."""
    pad = " " * indent
    body = value[:-1] if value.endswith("\n") else value
    lines = body.split("\n")
    if not body or body.endswith("\n") or lines[0][:1] in (" ", "") or any(
            line[:1] == "\t" or line.rstrip(" ") != line for line in lines):
        return [f"{pad}{key}: {json.dumps(value, ensure_ascii=False)}\n"]
    indicator = "|" if value.endswith("\n") else "|-"
    return [f"{pad}{key}: {indicator}\n"] + [f"{pad}{' ' * step}{line}\n" if line else "\n"
                                             for line in lines]


# ---------------------------------------------------------------------------------------------
# deciding


def guess_step(root: MappingNode) -> int:
    for _, v in root.value:
        if isinstance(v, MappingNode) and not v.flow_style and v.value:
            col = int(v.value[0][0].start_mark.column)
            if col > 0:
                return col
    return 2


def parse(spec_text: str, file: str = "spec") -> tuple[dict[str, Any], MappingNode]:
    """The spec as plain data and as ruamel.yaml's node tree (with positions)."""
    if "\r" in spec_text.replace("\r\n", "\n") or (
            "\r\n" in spec_text and spec_text.count("\n") != spec_text.count("\r\n")):
        raise SpecError(file, "", "mixes line ends (\\r, \\n, \\r\\n); pmg pull edits only "
                                  "files with one kind, \\n or \\r\\n, throughout")
    text = spec_text.replace("\r\n", "\n").lstrip("\ufeff")
    try:
        root = YAML(typ="rt").compose(text)
        data = safe_loader().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "is not valid YAML"
        raise SpecError(file, "", f"cannot be read as YAML: {problem}", line) from None
    if not isinstance(root, MappingNode) or root.flow_style or not isinstance(data, dict):
        raise SpecError(file, "", "is not a YAML mapping in block style (version:, gateway:, "
                                  "dkim:, domains: …), so pmg pull cannot edit it")
    return data, root
