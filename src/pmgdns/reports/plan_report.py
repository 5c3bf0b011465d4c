"""Plan output for people (text, markdown) and machines (json, spec-v1 §5)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..core.text import plural, visible
from ..plan.compact import json_members
from ..plan.engine import Change, PlanResult
from ..plan.takes_away import Taken

Styler = Callable[[str, str], str]
MARKDOWN_MARKER = "<!-- pmgdns-plan -->"
SYMBOL = {"create": "+", "update": "~", "delete": "-"}
COLOUR = {"create": "green", "update": "yellow", "delete": "red"}


def plain(text: str, colour: str) -> str:
    return text


def _short(value: str, limit: int) -> str:
    value = visible(value)
    if limit <= 0 or len(value) <= limit:
        return value
    keep = limit // 2
    return f"{value[:keep]}…{value[-keep:]} ({len(value)} bytes)"


def _quote(type_: str, value: str, limit: int) -> str:
    if type_ in ("TXT", "SPF"):
        return f'"{_short(presented(value), limit)}"'
    return _short(value, limit)


def summary_line(result: PlanResult) -> str:
    s = result.summary()
    return f"Plan: {s['create']} to add, {s['update']} to change, {s['delete']} to destroy."


def _change_lines(c: Change, style: Styler, limit: int) -> list[str]:
    sym = style(SYMBOL[c.action], COLOUR[c.action])
    head = f"  {sym} {visible(c.name)} {c.type} {c.ttl}"
    if c.action == "create" and len(c.values) == 1:
        return [f"{head}  {_quote(c.type, c.values[0], limit)}"]
    if c.action == "delete" and len(c.previous) == 1:
        return [f"{head}  {_quote(c.type, c.previous[0], limit)}"]
    if c.action == "update" and c.previous_ttl not in (None, c.ttl):
        head = f"  {sym} {visible(c.name)} {c.type} {c.previous_ttl} -> {c.ttl}"
    lines = [head]
    old, new = set(c.previous), set(c.values)
    for v in c.previous:
        if v not in new:
            lines.append(f"      {style('-', 'red')} {_quote(c.type, v, limit)}")
    for v in c.values:
        if v not in old:
            lines.append(f"      {style('+', 'green')} {_quote(c.type, v, limit)}")
        else:
            lines.append(f"        {_quote(c.type, v, limit)}")
    return lines


SUMMARY_ABOVE = 10  # (zone, target) pairs; more than that print one table row each unless -v
TOTALS_ABOVE = 200  # (zone, target) pairs; more than that print one row per target unless -v


def _per_target(groups: Mapping[tuple[str, str], list[Change]]) -> dict[str, list[int]]:
    """{target: [zones, adds, changes, destroys]}, reading the changes one zone at a time."""
    rows: dict[str, list[int]] = {}
    for (_, target), changes in groups.items():
        row = rows.setdefault(target, [0, 0, 0, 0])
        row[0] += 1
        for c in changes:
            row[1 + list(SYMBOL).index(c.action)] += 1
    return rows


def _totals(groups: Mapping[tuple[str, str], list[Change]], style: Styler) -> list[str]:
    """One row per target (zones, adds, changes, destroys): a fleet's plan on one screen."""
    rows = _per_target(groups)
    twidth = max(len("target"), *(len(t) for t in rows))
    lines = [f"  {'target':<{twidth}}    zones     add    change   destroy"]
    for target, (zones, add, change, destroy) in rows.items():
        lines.append(f"  {target:<{twidth}}  {zones:>7}  {style(f'{add:>6}', 'green')}  "
                     f"{style(f'{change:>8}', 'yellow')}  {style(f'{destroy:>8}', 'red')}")
    lines.append(f"  ({len(groups)} zones and targets with changes; -v or --format json for "
                 "every record)")
    return lines


def _table(groups: Mapping[tuple[str, str], list[Change]], style: Styler) -> list[str]:
    width = max(len(z) for z, _ in groups)
    twidth = max(len(t) for _, t in groups)
    lines = [f"  {'zone':<{width}}  {'target':<{twidth}}    add  change  destroy"]
    for (zone, target), changes in groups.items():
        add, change, destroy = (sum(1 for c in changes if c.action == a) for a in SYMBOL)
        lines.append(f"  {zone:<{width}}  {target:<{twidth}}  {style(f'{add:>5}', 'green')}  "
                     f"{style(f'{change:>6}', 'yellow')}  {style(f'{destroy:>7}', 'red')}")
    lines.append("  (one row per zone and target; -v or --format json for every record)")
    return lines


KIND_LABEL = {"spf-sender": "SPF sender", "dmarc-report": "DMARC reports",
              "dmarc-policy": "DMARC policy", "mail-flow": "mail flow"}
REFUSED = "apply refuses until the spec keeps it or drops it"


def _taken_head(t: Taken) -> str:
    return (f"{KIND_LABEL.get(t.kind, t.kind)} {visible(t.value)} at {visible(t.name)} {t.type} "
            f"({', '.join(visible(x) for x in t.targets)})")


def takes_away_text(taken: Sequence[Taken], style: Styler = plain) -> list[str]:
    """The "Takes away" section (spec-v1 §7.1), before the changes."""
    if not taken:
        return []
    lines = [style(f"Takes away ({len(taken)}): what this plan removes that mail may rely on",
                   "bold")]
    for t in taken:
        mark = style("!", "red") if t.refused else style("-", "yellow")
        lines.append(f"  {mark} {_taken_head(t)}"
                     + (f": {style(REFUSED, 'red')}" if t.refused else ""))
        lines.append(f"      {visible(t.fix)}")
    lines.append("")
    return lines


def plan_text(result: PlanResult, manual: Sequence[dict[str, str]], notes: Sequence[str],
              style: Styler = plain, verbose: bool = False) -> str:
    limit = 0 if verbose else 96
    lines: list[str] = takes_away_text(result.takes_away, style)
    if not result.has_changes:
        lines.append("No changes. The DNS matches the spec.")
    groups = result.by_zone_target()
    if len(groups) > TOTALS_ABOVE and not verbose:
        lines.extend(_totals(groups, style))
        lines.append("")
        groups = {}
    elif len(groups) > SUMMARY_ABOVE and not verbose:
        lines.extend(_table(groups, style))
        lines.append("")
        groups = {}
    for (zone, target), changes in groups.items():
        lines.append(style(f"{zone} at {target}:", "bold"))
        for c in changes:
            lines.extend(_change_lines(c, style, limit))
        lines.append("")
    for n in notes:
        lines.append(f"Note: {visible(n)}")
    if result.unsafe:
        if lines and lines[-1]:
            lines.append("")
        for u in result.unsafe:
            lines.append(style(f"Warning: {visible(u)} (apply needs --force)", "yellow"))
    ptr = [m for m in manual if m.get("kind") == "ptr"]
    if ptr:
        if lines and lines[-1]:
            lines.append("")
        lines.append("Manual step (only the hoster can do this; `pmgdns ptr-ticket` writes the "
                     "request):")
        for m in ptr:
            lines.append(f"  PTR {m['address']} -> {m['name']}")
    customers = _customer_zones(manual)
    if len(customers) > SUMMARY_ABOVE and not verbose:
        if lines and lines[-1]:
            lines.append("")
        lines.append(f"{len(customers)} customer zones ({plural(len(manual) - len(ptr), 'record')})"
                     " are applied nowhere: their DNS hosts set them; `pmgdns customer-ticket` "
                     "writes the requests (-v lists them here)")
        customers = {}
    for zone, entries in customers.items():
        if lines and lines[-1]:
            lines.append("")
        lines.append(f"Customer zone {visible(zone)} (applied nowhere; its DNS host sets these; "
                     f"`pmgdns customer-ticket {visible(zone[:-1])}` writes the request):")
        for m in entries:
            lines.append(f"  {visible(m['name'])} {m['ttl']} {m['type']} "
                         f"{_shown_value(m['type'], m['value'])}")
    if result.has_changes:
        lines.append("")
        lines.append(style(summary_line(result), "bold"))
    return "\n".join(lines).strip("\n") + "\n"


def _md_cell(text: str) -> str:
    return visible(text).replace("|", "\\|").replace("\n", " ")


def md_code(text: str) -> str:
    """`text` as inline code in a Markdown table cell, whatever it holds: fenced by more
    backticks than any run of them in it (CommonMark), pipes escaped for the table, so a
    backtick or a pipe in a value cannot end the span or the cell."""
    shown = visible(text).replace("|", "\\|")
    run = max((len(m) for m in re.findall("`+", shown)), default=0)
    fence = "`" * (run + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip() else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def presented(value: str) -> str:
    """A TXT value as DNS presentation text shows it inside quotes: `\\` and `\"` escaped,
    and every acting character escaped (`visible`)."""
    return visible(value.replace("\\", "\\\\").replace('"', '\\"'))


def plan_markdown(result: PlanResult, manual: Sequence[dict[str, str]],
                  notes: Sequence[str]) -> str:
    lines = [MARKDOWN_MARKER, "### pmgdns plan", ""]
    if result.takes_away:
        lines += [f"#### Takes away ({len(result.takes_away)})", "",
                  "| | What | Where | Fix |", "|---|---|---|---|"]
        for t in result.takes_away:
            what = f"{KIND_LABEL.get(t.kind, t.kind)} {md_code(t.value)}"
            where = f"{md_code(t.name)} {t.type} at {_md_cell(', '.join(t.targets))}"
            flag = "**refused by apply**" if t.refused else "shown"
            lines.append(f"| {flag} | {what} | {where} | {_md_cell(t.fix)} |")
        lines.append("")
    if not result.has_changes:
        lines.append("**No changes.** The DNS matches the spec.")
    else:
        lines.append(f"**{summary_line(result)}**")
        groups = result.by_zone_target()
        if len(groups) > TOTALS_ABOVE:  # a fleet: one row per target, not a table per zone
            lines += ["", "| Target | Zones | Add | Change | Destroy |",
                      "|---|---:|---:|---:|---:|"]
            for target, (zones, add, change, destroy) in _per_target(groups).items():
                lines.append(f"| {md_code(target)} | {zones} | {add} | {change} | {destroy} |")
            lines += ["", f"{len(groups)} zones and targets with changes; `pmgdns plan "
                          "--format json` lists every record."]
            groups = {}
        for (zone, target), changes in groups.items():
            lines += ["", f"#### `{zone}` at `{target}`", "",
                      "| | Name | Type | TTL | Before | After |", "|---|---|---|---|---|---|"]
            for c in changes:
                before = "<br>".join(md_code(_short(v, 80)) for v in c.previous)
                after = "<br>".join(md_code(_short(v, 80)) for v in c.values)
                name = f"`{c.name}`" if c.name.isprintable() and "`" not in c.name \
                    and "|" not in c.name else md_code(c.name)
                lines.append(f"| {SYMBOL[c.action]} {c.action} | {name} | {c.type} | "
                             f"{c.ttl} | {before} | {after} |")
    for u in result.unsafe:
        lines += ["", f"> **Warning:** {_md_cell(u)} (apply needs `--force`)"]
    for n in notes:
        lines += ["", f"> **Note:** {_md_cell(n)}"]
    ptr = [m for m in manual if m.get("kind") == "ptr"]
    if ptr:
        lines += ["", "**Manual step** (the hoster sets reverse DNS; `pmgdns ptr-ticket` writes "
                      "the request):", ""]
        for m in ptr:
            lines.append(f"- PTR `{m['address']}` → `{m['name']}`")
    for zone, entries in _customer_zones(manual).items():
        lines += ["", f"**Customer zone** {md_code(zone)} (applied nowhere; its DNS host sets "
                      f"these; `pmgdns customer-ticket {_md_cell(zone[:-1])}` writes the "
                      "request):", "", "| Name | TTL | Type | Value |", "|---|---|---|---|"]
        for m in entries:
            lines.append(f"| {md_code(m['name'])} | {m['ttl']} | {m['type']} | "
                         f"{md_code(m['value'])} |")
    return "\n".join(lines) + "\n"


def _customer_zones(manual: Sequence[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The `customer` entries of a plan's manual list, by zone."""
    out: dict[str, list[dict[str, str]]] = {}
    for m in manual:
        if m.get("kind") == "customer":
            out.setdefault(m["zone"], []).append(m)
    return out


def _shown_value(rtype: str, value: str) -> str:
    """A value as a zone file writes it: TXT quoted and escaped."""
    return f'"{presented(value)}"' if rtype == "TXT" else visible(value)


def plan_json_data(result: PlanResult, manual: Sequence[dict[str, str]],
                   notes: Sequence[str], changes: bool = True) -> dict[str, Any]:
    """The JSON plan (spec-v1 §5); without `changes`, the plan's changes are left as they
    are kept, to be streamed (`plan_json_pieces`)."""
    return {
        "version": 1,
        "takes_away": [t.to_json() for t in result.takes_away],
        "changes": [c.to_json() for c in result.changes] if changes else result.changes,
        "summary": result.summary(),
        "manual": list(manual),
        "checksum": result.checksum,
        "notes": list(notes),
        "unsafe": list(result.unsafe),
    }


def plan_json(result: PlanResult, manual: Sequence[dict[str, str]],
              notes: Sequence[str]) -> str:
    return "".join(plan_json_pieces(result, manual, notes))


def plan_json_pieces(result: PlanResult, manual: Sequence[dict[str, str]],
                     notes: Sequence[str]) -> Iterator[str]:
    """`plan_json`, one change at a time (a fleet's plan is never all in memory as JSON)."""
    yield "{"
    yield from json_members(plan_json_data(result, manual, notes, changes=False))
    yield "\n}\n"
