"""The verify report as text (a terminal), markdown (a pull request) and JSON (its schema:
`pmgdns/schemas/verify.schema.json`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby

from ..core.text import plural, visible
from ..families.checking import FAIL, OK, WARN, Check
from ..plan.compact import json_members
from ..verify.run import Report
from .plan_report import md_code

FLEET = 10  # subjects (domains, nodes); above this, text and markdown show what needs attention
SHOWN = 50  # subjects with a warning or failure shown in full above FLEET


@dataclass
class _Shown:
    """What a report shows: every check, or at a fleet's size the checks of the first `SHOWN`
    subjects with a warning or failure, the rest counted."""

    subjects: list[tuple[str, list[Check]]] = field(default_factory=list)
    passed: int = 0  # subjects whose every check is OK, not shown
    more: int = 0  # subjects with problems beyond SHOWN
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)  # (check, status) of those

    def tail(self) -> list[str]:
        out = []
        more = "more " if self.subjects else ""
        if self.more:
            counts = ", ".join(f"{check} {status.lower()} {n}"
                               for (check, status), n in sorted(self.tally.items()))
            more_bad = plural(self.more, "more domain or node", "more domains or nodes")
            out.append(f"... and {more_bad} with warnings or failures ({counts}).")
        if self.passed:
            out.append(f"{plural(self.passed, more + 'domain or node', more + 'domains or nodes')}"
                       f" passed every check.")
        if out:
            out.append("-v prints every check; --format json writes every check.")
        return out


def _shown(report: Report, every: bool) -> _Shown:
    groups = [(s, list(cs)) for s, cs in groupby(report.checks, key=lambda c: c.subject)]
    out = _Shown()
    if every or len(groups) <= FLEET:
        out.subjects = groups
        return out
    for subject, checks in groups:
        bad = [c for c in checks if c.status != OK]
        if not bad:
            out.passed += 1
        elif len(out.subjects) < SHOWN:
            out.subjects.append((subject, bad))
        else:
            out.more += 1
            out.tally.update((c.check, c.status) for c in bad)
    return out


def report_text(report: Report, style: Callable[[str, str], str], verbose: bool = False) -> str:
    """Every check of up to `FLEET` subjects (or with `verbose`); above that, the warnings and
    failures of the first `SHOWN` subjects that have any, and counts of the rest."""
    colour = {OK: "green", WARN: "yellow", FAIL: "red"}
    lines: list[str] = []
    shown = _shown(report, verbose)
    for subject, checks in shown.subjects:
        lines.append(style(visible(subject), "bold"))
        for c in checks:
            fix = f" -> {visible(c.fix)}" if c.fix and c.status != OK else ""
            lines.append(f"  {style(f'{c.status:<4}', colour[c.status])}  {c.check}: "
                         f"{visible(c.message)}{fix}")
    lines.extend(visible(t) for t in shown.tail())
    for n in report.notes:
        lines.append(f"Note: {visible(n)}")
    s = report.summary()
    lines.append(f"Verify: {s[OK]} ok, {plural(s[WARN], 'warning')}, {s[FAIL]} failed.")
    return "\n".join(lines) + "\n"


def report_markdown(report: Report, verbose: bool = False) -> str:
    """As `report_text`, as a table for a pull request."""
    s = report.summary()
    lines = ["<!-- pmgdns-verify -->", "### pmgdns verify", "",
             f"**{s[OK]} ok, {plural(s[WARN], 'warning')}, {s[FAIL]} failed.**", "",
             "| Status | Subject | Check | Finding | Fix |", "|---|---|---|---|---|"]
    shown = _shown(report, verbose)
    for _, checks in shown.subjects:
        for c in checks:
            cells = [c.status, md_code(c.subject), c.check,
                     md_code(c.message) if c.message else "",
                     visible(c.fix).replace("|", "\\|")]
            lines.append("| " + " | ".join(cells) + " |")
    tail = shown.tail()
    if tail:
        lines += ["", " ".join(tail).replace("-v prints", "`pmgdns verify -v` prints")
                  .replace("--format json", "`--format json`")]
    for n in report.notes:
        lines += ["", f"> **Note:** {n}"]
    return "\n".join(lines) + "\n"


def report_json_pieces(report: Report) -> Iterator[str]:
    """The JSON report (`json.dumps(..., indent=2)`'s text) one check at a time: a fleet's
    report is never all in memory as JSON."""
    doc: dict[str, object] = {"version": 1, "checks": (c.to_json() for c in report.checks)}
    doc.update(report.to_json(checks=False))
    yield "{"
    yield from json_members(doc, streamed="checks")
    yield "\n}\n"
