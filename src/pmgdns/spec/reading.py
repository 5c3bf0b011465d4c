"""Load YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

from typing import Any

import yaml

from ..core.errors import SpecError

Path = tuple[str, ...]


class LocatedYaml:
    """A plain Python value loaded from YAML plus the line (1-based) of each key path."""

    def __init__(self, data: Any, lines: dict[Path, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
MAX_NODES = 1_000_000  # values built from one document, aliases counted each time they expand
MAX_DEPTH = 64  # nested collections; a spec needs six or so


class _Budget:
    def __init__(self, file: str) -> None:
        self.left = MAX_NODES
        self.file = file

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise SpecError(self.file, "", f"expands to more than {MAX_NODES} values (YAML "
                                           "aliases that repeat each other?); write the spec "
                                           "out plainly", node.start_mark.line + 1)


def _construct(
    node: yaml.Node, path: Path, lines: dict[Path, int], file: str, loader: yaml.SafeLoader,
    budget: _Budget,
) -> Any:
    budget.spend(node)
    if len(path) > MAX_DEPTH:
        raise SpecError(file, "", f"nests more than {MAX_DEPTH} levels deep (a YAML alias that "
                                  "holds itself?); write the spec out plainly",
                        node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(file, ".".join(path), "YAML merge keys (<<) are not supported",
                                key_node.start_mark.line + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(file, ".".join(path), "mapping keys must be plain scalars",
                                key_node.start_mark.line + 1)
            key = str(loader.construct_object(key_node))
            sub = (*path, key)
            if key in out:
                raise SpecError(file, ".".join(sub), "duplicate key; give each key once",
                                key_node.start_mark.line + 1)
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, sub, lines, file, loader, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, str(i)), lines, file, loader, budget)
            for i, item in enumerate(node.value)
        ]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise SpecError(file, ".".join(path), f"is not a usable value ({str(exc)[:80]})",
                        node.start_mark.line + 1) from None


def _check_depth(text: str, file: str) -> None:
    """Refuse documents nested deeper than MAX_DEPTH before PyYAML's recursive composer sees
    them (its parser is not recursive)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise SpecError(file, "", f"nests more than {MAX_DEPTH} levels deep; a spec "
                                          "needs a handful",
                                mark.line + 1 if mark is not None else None)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_located(text: str, file: str) -> LocatedYaml:
    """Parse `text`; a syntax error becomes a SpecError with its line."""
    try:
        _check_depth(text, file)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        raise SpecError(file, "", f"YAML syntax error: {problem}; fix the syntax", line) from None
    except yaml.reader.ReaderError as exc:
        line = text[:max(0, exc.position)].count("\n") + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise SpecError(file, "", f"holds the control character {char!r}, which YAML does not "
                                  "allow; remove it", line) from None
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"YAML error: {exc}") from None
    except RecursionError:
        raise SpecError(file, "", "is nested too deeply to be a spec", 1) from None
    lines: dict[Path, int] = {}
    if node is None:
        return LocatedYaml(None, lines, file)
    try:
        data = _construct(node, (), lines, file, yaml.SafeLoader(""), _Budget(file))
    except RecursionError:
        raise SpecError(file, "", "is nested too deeply to be a spec", 1) from None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError(file, "", f"YAML error: {exc.problem}", line) from None
    return LocatedYaml(data, lines, file)
