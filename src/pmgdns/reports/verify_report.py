"""The verify report as text (a terminal), markdown (a pull request) and JSON (its schema:
`pmgdns/schemas/verify.schema.json`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..core.text import plural, visible
from ..families.checking import FAIL, OK, WARN
from ..verify.run import Report
from .plan_report import md_code


def report_text(report: Report, style: Callable[[str, str], str]) -> str:
    colour = {OK: "green", WARN: "yellow", FAIL: "red"}
    lines: list[str] = []
    subject = None
    for c in report.checks:
        if c.subject != subject:
            subject = c.subject
            lines.append(style(visible(subject), "bold"))
        fix = f" -> {visible(c.fix)}" if c.fix and c.status != OK else ""
        lines.append(f"  {style(f'{c.status:<4}', colour[c.status])}  {c.check}: "
                     f"{visible(c.message)}{fix}")
    for n in report.notes:
        lines.append(f"Note: {visible(n)}")
    s = report.summary()
    lines.append(f"Verify: {s[OK]} ok, {plural(s[WARN], 'warning')}, {s[FAIL]} failed.")
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    s = report.summary()
    lines = ["<!-- pmgdns-verify -->", "### pmgdns verify", "",
             f"**{s[OK]} ok, {plural(s[WARN], 'warning')}, {s[FAIL]} failed.**", "",
             "| Status | Subject | Check | Finding | Fix |", "|---|---|---|---|---|"]
    for c in report.checks:
        cells = [c.status, md_code(c.subject), c.check, md_code(c.message) if c.message else "",
                 visible(c.fix).replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    for n in report.notes:
        lines += ["", f"> **Note:** {n}"]
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"
