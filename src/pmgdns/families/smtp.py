"""What a sending server sees on port 25 (`verify --smtp`): STARTTLS offered, and the node's
certificate covers its name, chains to a trusted root, matches a published TLSA record, and is
not about to expire (`pmgdns.transport`). No records, no keys: checks only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..model import Gateway
from .base import Family
from .tlsa import name_of

if TYPE_CHECKING:
    from ..checks import Check, Probe


class SmtpFamily(Family):
    name = "smtp"

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:
        from ..checks import Check
        from ..transport import connect_address, smtp_checks

        if not probe.options.smtp:
            return []
        published = [f"{r.usage} {r.selector} {r.mtype} {r.cert.hex()}"
                     for r in probe.rrset(f"{name_of(node.hostname)}.", "TLSA")]
        out: list[Check] = []
        for address in node.addresses:
            host, port = connect_address(node.hostname, 25, address, probe.options.resolve)
            for f in smtp_checks(node.hostname, host, port, ca_file=probe.options.ca_file,
                                 tlsa=published, now=datetime.now(UTC),
                                 timeout=probe.resolver.lifetime):
                out.append(Check(node.fqdn, self.name, f.check, f.status, f.message, f.fix,
                                 f.observed, f.expected))
            if (node.hostname, 25) in probe.options.resolve:
                break  # one mapped destination: the same server for every address
        return out


FAMILY = SmtpFamily()
