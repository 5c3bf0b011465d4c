"""What a sending server sees on port 25 (`verify --smtp`): STARTTLS offered, and the node's
certificate covers its name, chains to a trusted root, matches a published TLSA record, and is
not about to expire (`pmgdns.verify.smtp`). No records, no keys: checks only."""

from __future__ import annotations

from ..spec.model import Gateway
from .base import Family
from .checking import Check, Probe
from .tlsa import name_of


class SmtpFamily(Family):
    name = "smtp"

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:
        if not probe.options.smtp:
            return []
        published = [f"{r.usage} {r.selector} {r.mtype} {r.cert.hex()}"
                     for r in probe.rrset(f"{name_of(node.hostname)}.", "TLSA")]
        return probe.smtp_checks(self.name, node, published)


FAMILY = SmtpFamily()
