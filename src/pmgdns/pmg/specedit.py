"""Bring the spec in line with what the gateway holds, changing only the lines that must change.

`apply_state(spec_text, state, base_dir)` is pure: it decides the changes (spec-v1 §6.4) and returns
the new text, one human line per change, and the warnings. Nothing here touches the network or
writes a file.

How the text is edited. The spec is parsed with ruamel.yaml's round-trip composer, which keeps the
exact position (line, column, character offset) of every key and value. Each change is then made
as a splice of the original text at those positions: a value replaced, a line inserted after an
entry, the lines of an entry removed. Every byte outside the spliced lines is the original byte:
comments (also those inside `dkim:` and `domains:`), blank lines, key order, quoting, flow
mappings such as `example.com: {}`, block scalars, indentation and line ends stay as they are.
A full ruamel.yaml dump would re-emit every line: it attaches a comment to the node before it, so
a domain appended to `domains:` would land below the comments and blank lines that precede the
next section, and anything ruamel normalises (indentation of lists, spacing) would change too.
After the splice the new text is parsed again and compared with the intended data; if the two
differ, nothing is returned for writing (SpecEditError), so a spec is never written half-right.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..core.errors import FileProblem, SpecEditError, SpecError
from ..core.files import read_text
from ..spec import dkim_keys as dkimlib
from .yamltext import (
    SpecText,
    flow_text,
    guess_step,
    indent_of,
    is_null,
    literal_block,
    mapping_pairs,
    parse,
    safe_loader,
    scalar_text,
)

KEY_SOURCES = ("public_key", "record", "key_file")


@dataclass(frozen=True)
class GatewayState:
    """What PMG's API said: relay domains, DKIM domains and the DKIM selector/key.

    `relay_domains` and `dkim_domains` are as PMG lists them (ASCII; an entry starting with `.`
    stands for every subdomain). An empty `dkim_domains` means PMG signs for the relay domains.
    `selector` is None when PMG signs with no selector, or when it could not be read; then, and
    when `record` is None although there is a selector, `dkim_unreadable` says why.
    """

    relay_domains: tuple[str, ...]
    dkim_domains: tuple[str, ...] = ()
    selector: str | None = None
    keysize: int | None = None
    record: str | None = None
    dkim_unreadable: str | None = None
    where: str = "PMG"

    @property
    def signing_domains(self) -> tuple[str, ...]:
        """The domains PMG signs mail for."""
        return self.dkim_domains or self.relay_domains


@dataclass(frozen=True)
class EditResult:
    """The edited text, what changed and why, and what pmg pull could not or would not change.

    `differs` is true when the spec and the gateway disagree, whether or not an edit fixes it
    (changes, or drift that only a person should resolve). `complete` is false when part of
    the gateway's state could not be read, so the comparison is partial.
    """

    new_text: str
    changes: tuple[str, ...]
    warnings: tuple[str, ...]
    differs: bool
    complete: bool = True


# ---------------------------------------------------------------------------------------------
# names and keys


def normalise_domain(name: object) -> str:
    """Lower-case A-label form without a trailing dot, for comparing spec keys with PMG's list."""
    text = str(name).strip().rstrip(".")
    if text.isascii():
        return text.lower()
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError:
        return text.lower()


def normalise_record(record: str) -> str:
    """PMG's record text as it is written to the spec: tabs become spaces, lines are trimmed,
    continuation lines are indented by two spaces. The key is untouched (checked by the caller)."""
    lines = [line.replace("\t", " ").strip() for line in record.strip().splitlines()]
    lines = [line for line in lines if line]
    return "\n".join([lines[0], *("  " + line for line in lines[1:])]) + "\n"


def _key_from_source(kind: str, value: Any, base_dir: Path) -> dkimlib.DkimKey:
    if not isinstance(value, str) or not value.strip():
        raise dkimlib.DkimKeyError("the value is empty or not text")
    if kind == "public_key":
        return dkimlib.from_spki_base64(value)
    if kind == "record":
        return dkimlib.from_record_text(value)
    path = Path(value.strip())
    if not path.is_absolute():
        path = base_dir / path
    try:
        text = read_text(str(path), 64 * 1024, "the key file")
    except FileNotFoundError:
        raise dkimlib.DkimKeyError(f"the file `{value}` does not exist (paths resolve from the "
                                   "current directory: run pmgdns from the repository root)"
                                   ) from None
    except FileProblem as exc:
        raise dkimlib.DkimKeyError(str(exc)) from None
    try:
        return dkimlib.from_file_text(text)
    except dkimlib.DkimKeyError:  # never quote a file that may be anything
        raise dkimlib.DkimKeyError(f"the file `{value}` holds no usable DKIM public key"
                                   ) from None


def _source_of(block: dict[str, Any]) -> tuple[str, Any] | None:
    found = [(k, block[k]) for k in KEY_SOURCES if block.get(k) is not None]
    return found[0] if found else None


def _describe(source: tuple[str, Any] | None) -> str:
    if source is None:
        return "no key"
    kind, value = source
    if kind == "key_file":
        return f"key_file {value}"
    return f"the {kind}"


@dataclass
class _DkimPlan:
    selector: str | None = None
    source: tuple[str, str] | None = None      # (kind, value) to write as the current key
    source_from_next: bool = False             # copy dkim.next's key source text as it is
    remove_next: bool = False
    retire: list[str] = field(default_factory=list)
    unretire: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.selector or self.source or self.source_from_next or self.remove_next
                    or self.retire or self.unretire)


@dataclass
class _Findings:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    drift: bool = False
    complete: bool = True


def _covered(name: str, exact: set[str], wild: set[str]) -> bool:
    return name in exact or any(name.endswith("." + w) for w in wild)


def _split_pmg_list(names: tuple[str, ...]) -> tuple[list[str], set[str]]:
    exact: list[str] = []
    wild: set[str] = set()
    for raw in names:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("."):
            wild.add(normalise_domain(text[1:]))
        elif normalise_domain(text) not in exact:
            exact.append(normalise_domain(text))
    return exact, wild


def _decide_domains(data: dict[str, Any], state: GatewayState, f: _Findings) -> list[str]:
    block = data.get("domains")
    spec: dict[str, tuple[str, bool]] = {}
    if isinstance(block, dict):
        for key, conf in block.items():
            absent = isinstance(conf, dict) and conf.get("absent") is True
            spec.setdefault(normalise_domain(key), (str(key), absent))
    relay, relay_wild = _split_pmg_list(state.relay_domains)
    relay_set = set(relay)
    where = state.where

    to_add = [name for name in relay if name not in spec]
    for name in to_add:
        f.changes.append(f"domains: added {name} ({{}}): {where} relays it and the spec did not "
                         "list it")
    for norm, (key, absent) in spec.items():
        if absent and _covered(norm, relay_set, relay_wild):
            f.drift = True
            f.warnings.append(
                f"domains.{key} is `absent: true`, but {where} still relays {norm}: pmg pull "
                "leaves it absent (apply removes its records). Remove it from PMG's relay "
                "domains, or drop `absent: true` if it should receive mail again.")
        elif not absent and not _covered(norm, relay_set, relay_wild):
            f.drift = True
            f.warnings.append(
                f"domains.{key}: {where} does not relay {norm}. pmg pull deletes nothing: mark "
                "it `absent: true` to remove its records, or add it to PMG's relay domains.")
    for w in sorted(relay_wild):
        if not any(n.endswith("." + w) for n in spec):
            f.warnings.append(
                f"{where} relays every subdomain of {w} (`.{w}`); pmgdns adds no domain for a "
                "wildcard: list each subdomain that receives mail under domains:.")

    dkim_exact, dkim_wild = _split_pmg_list(state.dkim_domains)
    for name in dkim_exact:
        if not _covered(name, relay_set, relay_wild):
            f.warnings.append(
                f"{where} signs mail from {name} (a DKIM domain) but does not relay it, so pmgdns "
                f"does not add it (that would point its MX at the gateway): publish the DKIM "
                f"record at {state.selector or 'SELECTOR'}._domainkey.{name} yourself, or add "
                f"{name} to PMG's relay domains and pull again.")
    if dkim_exact or dkim_wild:
        signed = set(dkim_exact)
        for norm, (key, absent) in spec.items():
            if not absent and not _covered(norm, signed, dkim_wild) and \
                    _covered(norm, relay_set, relay_wild):
                f.warnings.append(
                    f"domains.{key}: {where} does not DKIM-sign mail from {norm} (it is not "
                    "among its DKIM domains): the key pmgdns publishes there goes unused, and "
                    "DMARC passes for it only through SPF alignment.")
    return to_add


def _decide_dkim(data: dict[str, Any], state: GatewayState, base_dir: Path, file: str,
                 f: _Findings) -> _DkimPlan:
    plan = _DkimPlan()
    where = state.where
    block = data.get("dkim")
    if state.selector is None:
        if state.dkim_unreadable:
            f.complete = False
            f.warnings.append("The DKIM selector and key were not compared: "
                              f"{state.dkim_unreadable}")
        else:
            f.warnings.append(f"{where} has no DKIM selector configured, so it signs no mail; the "
                              "spec's dkim: block is left as it is.")
        return plan
    if not isinstance(block, dict):
        raise SpecError(file, "dkim", "is missing or not a mapping; add `dkim:` with the "
                                      "selector and key PMG signs with, then pull again")
    pmg_sel = state.selector.strip().lower()
    current = str(block.get("selector") or "").strip().lower()
    nxt = block.get("next") if isinstance(block.get("next"), dict) else None
    next_sel = str(nxt.get("selector") or "").strip().lower() if nxt else ""
    retired_raw = block.get("retired_selectors")
    retired = [str(s).strip().lower() for s in retired_raw] if isinstance(retired_raw, list) else []

    pmg_key: dkimlib.DkimKey | None = None
    record_text: str | None = None
    if state.record is not None:
        try:
            pmg_key = dkimlib.from_record_text(state.record)
            record_text = normalise_record(state.record)
            if dkimlib.from_record_text(record_text).p != pmg_key.p:
                raise dkimlib.DkimKeyError("the record changes meaning when written to the spec")
        except dkimlib.DkimKeyError as exc:
            raise SpecEditError(f"{where} answered a DKIM record pmgdns cannot read ({exc}); "
                                "nothing was changed") from None
        if pmg_key.selector_in_record and pmg_key.selector_in_record != pmg_sel:
            f.warnings.append(f"The DKIM record {where} shows names selector "
                              f"{pmg_key.selector_in_record}, but it signs with {pmg_sel}.")
        problem = dkimlib.strength_problem(pmg_key)
        if problem:
            f.warnings.append(f"The DKIM key {where} signs with: {problem[1]}")
    no_record = state.dkim_unreadable or f"{where} did not show the key of selector {pmg_sel}"

    def spec_key(kind: str, value: Any, path: str) -> dkimlib.DkimKey:
        try:
            return _key_from_source(kind, value, base_dir)
        except dkimlib.DkimKeyError as exc:
            raise SpecError(file, path, f"{exc}; pmg pull compares it with the key PMG signs "
                                        "with") from None

    def retire_current() -> None:
        if current and current != pmg_sel and current not in retired:
            plan.retire.append(current)
            f.changes.append(f"dkim.retired_selectors: added {current}: {where} no longer signs "
                             f"with it, and apply removes its TXT records from every domain")

    def set_record(reason: str) -> None:
        assert record_text is not None
        plan.source = ("record", record_text)
        old = _source_of(block)
        f.changes.append(f"dkim.record: PMG's record for {pmg_sel} replaces {_describe(old)}: "
                         f"{reason}")
        if old and old[0] == "key_file":
            f.warnings.append(f"{old[1]} is no longer named by the spec (it holds a key {where} "
                              "does not sign with); pmg pull leaves the file on disk: delete it "
                              "or keep it for reference.")

    if pmg_sel == current:
        if pmg_key is None:
            f.complete = False
            f.warnings.append(f"{where} signs with {pmg_sel}, the spec's selector, but the key "
                              f"was not compared: {no_record}")
            return plan
        old = _source_of(block)
        if old is None:
            set_record("the spec had no key for it")
            return plan
        if spec_key(old[0], old[1], f"dkim.{old[0]}").p != pmg_key.p:
            set_record("PMG signs with a different key than the spec held")
            f.warnings.append(f"{where} signs with a different key for {pmg_sel} than the spec "
                              "held: mail it signs fails DKIM until `pmgdns apply` publishes the "
                              "new key.")
        return plan

    if nxt is not None and pmg_sel == next_sel:
        plan.selector = pmg_sel
        plan.remove_next = True
        next_source = _source_of(nxt)
        if pmg_key is not None and (next_source is None or spec_key(
                next_source[0], next_source[1], f"dkim.next.{next_source[0]}").p != pmg_key.p):
            f.changes.append(f"dkim.selector: {current or '(none)'} -> {pmg_sel}: {where} signs "
                             "with the selector staged in dkim.next")
            set_record("PMG signs with a different key than dkim.next held")
            f.warnings.append(f"{where} signs with {pmg_sel} but not with the key dkim.next "
                              "published: mail it signs fails DKIM until `pmgdns apply` "
                              "publishes the new key.")
        else:
            plan.source_from_next = next_source is not None
            f.changes.append(f"dkim.selector: {current or '(none)'} -> {pmg_sel}, and "
                             f"dkim.next's key ({_describe(next_source)}) becomes the current "
                             f"key: {where} signs with {pmg_sel} now")
            if pmg_key is None:
                f.complete = False
                f.warnings.append(f"{where} signs with {pmg_sel} (dkim.next), but its key was not "
                                  f"compared with dkim.next's: {no_record}")
        retire_current()
        if pmg_sel in retired:
            plan.unretire.append(pmg_sel)
        f.changes.append(f"dkim.next: removed: {pmg_sel} is the current key now")
        return plan

    # a selector the spec does not use: set it as current, from PMG's record
    f.drift = True
    if record_text is None:
        f.complete = False
        f.warnings.append(f"{where} signs with selector {pmg_sel}, which the spec does not use, "
                          f"and its key cannot be read, so the spec is left as it is: "
                          f"{no_record}. Mail signed with {pmg_sel} fails DKIM until its record "
                          "is published.")
        return plan
    plan.selector = pmg_sel
    was_retired = pmg_sel in retired
    f.changes.append(f"dkim.selector: {current or '(none)'} -> {pmg_sel}: {where} signs with "
                     + ("it again although the spec had retired it" if was_retired
                        else "a selector the spec did not know"))
    set_record("it is the key PMG signs with")
    if was_retired:
        plan.unretire.append(pmg_sel)
        f.changes.append(f"dkim.retired_selectors: removed {pmg_sel}: it is the current selector "
                         "again")
    retire_current()
    f.warnings.append(f"{where} signs with selector {pmg_sel}, which the spec "
                      + ("had retired" if was_retired else "did not know")
                      + f": mail signed with it fails DKIM until `pmgdns apply` publishes "
                      f"{pmg_sel}._domainkey in every domain.")
    return plan


# ---------------------------------------------------------------------------------------------
# writing


def _expected(data: dict[str, Any], to_add: list[str], plan: _DkimPlan) -> dict[str, Any]:
    out = copy.deepcopy(data)
    if to_add:
        if not isinstance(out.get("domains"), dict):
            out["domains"] = {}
        for name in to_add:
            out["domains"][name] = {}
    if not plan.empty:
        block = out["dkim"]
        nxt = block.get("next")
        if plan.selector:
            block["selector"] = plan.selector
        if plan.source_from_next:
            src = _source_of(nxt)
            assert src is not None
            for k in KEY_SOURCES:
                block.pop(k, None)
            block[src[0]] = src[1]
        elif plan.source:
            for k in KEY_SOURCES:
                block.pop(k, None)
            block[plan.source[0]] = plan.source[1]
        if plan.remove_next:
            block.pop("next", None)
        if plan.retire or plan.unretire:
            retired = block.get("retired_selectors")
            items = list(retired) if isinstance(retired, list) else []
            items = [s for s in items if str(s).strip().lower() not in plan.unretire]
            items += plan.retire
            block["retired_selectors"] = items
    return out


def _edit_domains(doc: SpecText, root: MappingNode, to_add: list[str], step: int) -> None:
    pairs = mapping_pairs(root)
    if "domains" not in pairs:
        doc.insert_lines_after(doc.line_count - 1, ["domains:\n"]
                               + [f"{' ' * step}{scalar_text(n)}: {{}}\n" for n in to_add])
        return
    key, value = pairs["domains"]
    if isinstance(value, MappingNode) and value.flow_style:
        close = value.end_mark.index - 1
        if doc.text[close] != "}":
            raise SpecEditError("the flow mapping under domains: does not end where expected")
        before = doc.text[value.start_mark.index + 1:close].rstrip()
        sep = "" if not value.value else (" " if before.endswith(",") else ", ")
        doc.replace(close, close, sep + ", ".join(f"{scalar_text(n)}: {{}}" for n in to_add))
        return
    if isinstance(value, MappingNode):
        indent = indent_of(value, key, step)
        k, v = value.value[-1]
        _, last = doc.pair_lines(k, v, deeper_comments=True)
        doc.insert_lines_after(last, [f"{' ' * indent}{scalar_text(n)}: {{}}\n" for n in to_add])
        return
    if is_null(value):
        indent = int(key.start_mark.column) + step
        if value.value:  # `~` or `null` written out
            doc.replace(value.start_mark.index, value.end_mark.index, "")
        doc.insert_lines_after(key.start_mark.line,
                               [f"{' ' * indent}{scalar_text(n)}: {{}}\n" for n in to_add])
        return
    raise SpecEditError("domains: is not a mapping of domain names")


def _source_lines_from_next(doc: SpecText, next_node: MappingNode, indent: int, step: int,
                            nxt: dict[str, Any]) -> list[str]:
    src = _source_of(nxt)
    assert src is not None
    kind, value = src
    k, v = mapping_pairs(next_node)[kind]
    pad = " " * indent
    if not next_node.flow_style:
        first, last = doc.pair_lines(k, v)
        delta = int(k.start_mark.column) - indent
        out: list[str] = []
        for ln in range(first, last + 1):
            line = doc.line(ln)
            if not line.endswith("\n"):
                line += "\n"
            if line[:delta].strip() == "":
                out.append(line[delta:] if line.strip() else "\n")
            else:
                out.append(pad + line.lstrip(" "))
        return out
    if kind == "record":
        return literal_block(kind, str(value), indent, step)
    raw = flow_text(doc, v)
    return [f"{pad}{kind}: {raw if chr(10) not in raw else scalar_text(str(value))}\n"]


def _edit_dkim(doc: SpecText, root: MappingNode, data: dict[str, Any], plan: _DkimPlan,
               step: int) -> None:
    pairs = mapping_pairs(root)
    if "dkim" not in pairs or not isinstance(pairs["dkim"][1], MappingNode):
        raise SpecEditError("dkim: is not a mapping")
    dkey, dnode = pairs["dkim"]
    assert isinstance(dnode, MappingNode)
    block = data["dkim"]
    dp = mapping_pairs(dnode)
    nxt = block.get("next") if isinstance(block.get("next"), dict) else None
    retired_now = block.get("retired_selectors")
    retired_items = list(retired_now) if isinstance(retired_now, list) else []
    new_retired = [s for s in retired_items if str(s).strip().lower() not in plan.unretire]
    new_retired += plan.retire
    retired_changes = bool(plan.retire or plan.unretire)

    if dnode.flow_style:
        _edit_dkim_flow(doc, dnode, dp, block, plan, new_retired, retired_changes)
        return

    indent = indent_of(dnode, dkey, step)
    pad = " " * indent
    if plan.selector:
        if "selector" in dp and isinstance(dp["selector"][1], ScalarNode) and \
                dp["selector"][1].style in (None, "'", '"') and dp["selector"][1].value:
            v = dp["selector"][1]
            doc.replace(v.start_mark.index, v.end_mark.index, scalar_text(plan.selector, v.style))
        elif "selector" in dp:
            first, last = doc.pair_lines(*dp["selector"])
            doc.replace_lines(first, last, [f"{pad}selector: {scalar_text(plan.selector)}\n"])
        else:
            first_key = dnode.value[0][0]
            doc.insert_lines_after(first_key.start_mark.line - 1,
                                   [f"{pad}selector: {scalar_text(plan.selector)}\n"])

    if plan.source_from_next or plan.source:
        if plan.source_from_next:
            assert nxt is not None and isinstance(dp["next"][1], MappingNode)
            lines = _source_lines_from_next(doc, dp["next"][1], indent, step, nxt)
        else:
            assert plan.source is not None
            kind, value = plan.source
            lines = literal_block(kind, value, indent, step)
        old = [dp[k] for k in KEY_SOURCES if k in dp]
        if old:
            first, last = doc.pair_lines(*old[0])
            doc.replace_lines(first, last, lines)
            for extra in old[1:]:
                first, last = doc.pair_lines(*extra)
                doc.replace_lines(first, last, [])
        else:
            anchor = dp.get("selector") or dnode.value[-1]
            _, last = doc.pair_lines(*anchor)
            doc.insert_lines_after(last, lines)

    if plan.remove_next and "next" in dp:
        first, last = doc.pair_lines(*dp["next"], deeper_comments=True)
        doc.replace_lines(first, last, [])

    if retired_changes:
        if "retired_selectors" not in dp:
            k, v = dnode.value[-1]
            _, last = doc.pair_lines(k, v, deeper_comments=True)
            items = ", ".join(scalar_text(s) for s in new_retired)
            doc.insert_lines_after(last, [f"{pad}retired_selectors: [{items}]\n"])
        else:
            _edit_retired(doc, dp["retired_selectors"], indent, new_retired, plan)


def _edit_retired(doc: SpecText, pair: tuple[Node, Node], indent: int, new_retired: list[Any],
                  plan: _DkimPlan) -> None:
    key, value = pair
    if isinstance(value, SequenceNode) and value.flow_style:
        keep = [flow_text(doc, item) for item in value.value
                if str(item.value).strip().lower() not in plan.unretire]
        keep += [scalar_text(s) for s in plan.retire]
        doc.replace(value.start_mark.index, value.end_mark.index, "[" + ", ".join(keep) + "]")
        return
    if isinstance(value, SequenceNode) and value.value and new_retired:
        dash = " " * int(value.start_mark.column)
        for item in value.value:
            if str(item.value).strip().lower() in plan.unretire:
                line = item.start_mark.line
                if doc.line(line).strip().startswith("-"):
                    doc.replace_lines(line, doc.last_line(item), [])
                else:
                    raise SpecEditError("an item of retired_selectors does not start its line")
        last = doc.last_line(value.value[-1])
        if plan.retire:
            doc.insert_lines_after(last, [f"{dash}- {scalar_text(s)}\n" for s in plan.retire])
        return
    # null, or something else: rewrite the entry
    first, last = doc.pair_lines(key, value)
    items = ", ".join(scalar_text(str(s)) for s in new_retired)
    doc.replace_lines(first, last, [f"{' ' * indent}retired_selectors: [{items}]\n"])


def _edit_dkim_flow(doc: SpecText, dnode: MappingNode, dp: dict[str, tuple[Node, Node]],
                    block: dict[str, Any], plan: _DkimPlan, new_retired: list[Any],
                    retired_changes: bool) -> None:
    """A `dkim: {…}` flow mapping is rewritten as one flow mapping (its own lines change)."""
    parts: list[str] = []
    new_source: str | None = None
    if plan.source_from_next:
        nxt = block["next"]
        src = _source_of(nxt)
        assert src is not None
        nk, nv = mapping_pairs(dp["next"][1])[src[0]]  # type: ignore[arg-type]
        raw = flow_text(doc, nv)
        new_source = f"{src[0]}: {raw if chr(10) not in raw else scalar_text(str(src[1]))}"
    elif plan.source:
        new_source = f"{plan.source[0]}: {json.dumps(plan.source[1], ensure_ascii=False)}"
    source_done = False
    for k, v in dnode.value:
        name = str(k.value)
        if name == "selector" and plan.selector:
            parts.append(f"{flow_text(doc, k)}: {scalar_text(plan.selector)}")
        elif name in KEY_SOURCES and new_source is not None:
            if not source_done:
                parts.append(new_source)
                source_done = True
        elif name == "next" and plan.remove_next:
            continue
        elif name == "retired_selectors" and retired_changes:
            parts.append(f"{flow_text(doc, k)}: ["
                         + ", ".join(scalar_text(str(s)) for s in new_retired) + "]")
        else:
            parts.append(f"{flow_text(doc, k)}: {flow_text(doc, v)}")
    if new_source is not None and not source_done:
        parts.append(new_source)
    if retired_changes and "retired_selectors" not in dp:
        parts.append("retired_selectors: [" + ", ".join(scalar_text(str(s)) for s in new_retired)
                     + "]")
    doc.replace(dnode.start_mark.index, dnode.end_mark.index, "{" + ", ".join(parts) + "}")


def _splice(text: str, root: MappingNode, data: dict[str, Any], to_add: list[str],
            plan: _DkimPlan, file: str, changes: list[str]) -> str:
    """The text with the changes spliced in, checked by reading it back."""
    problem = ""
    new_text = text
    try:
        step = guess_step(root)
        doc = SpecText(text)
        if not plan.empty:
            _edit_dkim(doc, root, data, plan, step)
        if to_add:  # after dkim's: a `domains:` appended at the end goes below dkim's lines
            _edit_domains(doc, root, to_add, step)
        new_text = doc.result()
    except SpecEditError as exc:
        problem = str(exc)
    if not problem:
        try:
            got = safe_loader().load(new_text)
        except YAMLError:
            got = None
        if got != _expected(data, to_add, plan):
            problem = "the edited text did not read back as intended"
    if problem:
        raise SpecEditError(
            f"{file}: pmg pull could not edit the spec in place without touching other lines "
            f"({problem}), so nothing was written. Make these changes by hand: "
            + "; ".join(changes))
    return new_text


def apply_state(spec_text: str, state: GatewayState, base_dir: str | Path, *,
                file: str = "spec") -> EditResult:
    """Compare the spec with the gateway's state (spec-v1 §6.4) and edit the text to match.

    Relative key_file paths resolve from `base_dir` (the current directory, spec-v1 §4).
    Raises SpecError when the spec cannot be read or its current key cannot be compared, and
    SpecEditError when the edit cannot be made without touching other lines.
    """
    data, root = parse(spec_text, file)
    crlf = "\r\n" in spec_text
    bom = spec_text.startswith("\ufeff")
    text = spec_text.replace("\r\n", "\n").lstrip("\ufeff")
    findings = _Findings()
    to_add = _decide_domains(data, state, findings)
    plan = _decide_dkim(data, state, Path(base_dir), file, findings)

    new_text = text
    if to_add or not plan.empty:
        new_text = _splice(text, root, data, to_add, plan, file, findings.changes)
    if crlf:
        new_text = new_text.replace("\n", "\r\n")
    if bom:
        new_text = "\ufeff" + new_text
    return EditResult(
        new_text=new_text if (to_add or not plan.empty) else spec_text,
        changes=tuple(findings.changes),
        warnings=tuple(findings.warnings),
        differs=bool(findings.changes) or findings.drift,
        complete=findings.complete,
    )
