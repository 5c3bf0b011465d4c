"""`pmgdns verify`: check what the DNS answers against the spec, reverse DNS included.

Every record family checks its own records (`Family.domain_checks`, `Family.node_checks`); this
module runs them, the domains concurrently, and formats the report. Each check is OK, WARN or
FAIL with a one-line fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import dns.exception
import dns.resolver

from .checks import FAIL, OK, WARN, Check, Probe, VerifyOptions, make_resolver
from .errors import VerifyError
from .families import FAMILIES
from .model import Domain, Gateway, Site
from .output import md_code
from .visible import visible

Options = VerifyOptions

__all__ = ["Check", "Options", "Report", "make_resolver", "report_json", "report_markdown",
           "report_text", "verify"]


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def summary(self) -> dict[str, int]:
        out = {OK: 0, WARN: 0, FAIL: 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def to_json(self) -> dict[str, object]:
        return {"version": 1, "checks": [c.to_json() for c in self.checks],
                "summary": self.summary(), "notes": self.notes}


def _domain_checks(probe: Probe, domain: Domain) -> list[Check]:
    if domain.absent:
        return []
    out: list[Check] = []
    for family in FAMILIES:
        out.extend(family.domain_checks(probe, domain))
    return out


def _node_checks(probe: Probe, node: Gateway) -> list[Check]:
    out: list[Check] = []
    for family in FAMILIES:
        out.extend(family.node_checks(probe, node))
    return out


def verify(site: Site, domains: Iterable[str], resolver: dns.resolver.Resolver,
           workers: int = 16, progress: Callable[[int, int], None] | None = None,
           options: VerifyOptions | None = None) -> Report:
    """Run every family's checks: the nodes', then the domains' (concurrently)."""
    from checkdmarc.utils import DNS_CACHE

    # checkdmarc caches answers by name only, not by name server: a verify run asks afresh
    DNS_CACHE.clear()
    probe = Probe(site, resolver, options or VerifyOptions())
    chosen = [site.domains[d] for d in domains]
    report = Report()
    for node in site.gateways:
        if site.node_zone(node) is None:
            report.notes.append(f"{node.hostname} lies in none of the spec's domains: pmgdns "
                                "does not publish its A/AAAA and SPF; they were checked all the "
                                "same")
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            nodes = [pool.submit(_node_checks, probe, n) for n in site.gateways]
            futures = [pool.submit(_domain_checks, probe, d) for d in chosen]
            for f in nodes:
                report.checks.extend(f.result())
            for i, f in enumerate(futures, 1):
                report.checks.extend(f.result())
                if progress:
                    progress(i, len(futures))
    except dns.exception.Timeout:
        raise VerifyError("DNS queries timed out: check --nameserver and that it answers for "
                          "the spec's domains") from None
    return report


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
    lines.append(f"Verify: {s[OK]} ok, {s[WARN]} warnings, {s[FAIL]} failed.")
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    s = report.summary()
    lines = ["<!-- pmgdns-verify -->", "### pmgdns verify", "",
             f"**{s[OK]} ok, {s[WARN]} warnings, {s[FAIL]} failed.**", "",
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
