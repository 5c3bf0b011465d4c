"""MX at the domain (spec-v1 §2, §6.1): one `PRIO node.` value per gateway node that serves
the domain (`mx_priority`, per node or per domain). Owned whole: a different existing value is
replaced, and the plan shows it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, RecordSpec, Site
from .base import WHOLE, Claim, Family, Key, Path, Slot, ZoneContext
from .checking import APPLY, FAIL, OK, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker


def _priority(c: Checker, value: Any, path: Path, inherited: Any = None) -> int:
    return c.integer(value, path, 0, 65535)


def mx_values(site: Site, domain: Domain) -> tuple[str, ...]:
    """The MX values of `domain`, as DNS answers them (`10 mx1.example.com.`)."""
    prio: int = domain.mx_priority
    return tuple(sorted(f"{prio if n.mx_priority is None else n.mx_priority} {n.fqdn}"
                        for n in site.nodes_for(domain)))


class MxFamily(Family):
    name = "mx"
    domain_keys = (Key("mx_priority", 10, _priority),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if not domain.options.get("parked"):
            yield RecordSpec(domain.zone, "", "MX", domain.ttl, mx_values(site, domain))

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return ctx.claim_desired({("", "MX"): WHOLE})

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:

        if domain.options.get("parked"):
            return []
        d = domain
        mx = sorted((r.preference, str(r.exchange)) for r in probe.rrset(d.zone, "MX"))
        want = sorted((int(p), h) for p, h in (v.split(" ", 1)
                                               for v in mx_values(probe.site, d)))
        got = ", ".join(f"{p} {h}" for p, h in mx) or "nothing"
        expected = ", ".join(f"{p} {h}" for p, h in want)
        if not mx:
            return [Check(d.name, self.name, "MX", FAIL, f"{d.zone} has no MX record", APPLY,
                          observed=got, expected=expected)]
        out = []
        if mx != want:
            out.append(Check(d.name, self.name, "MX", FAIL,
                             f"{d.zone} MX is {got}; the spec wants {expected} only", APPLY,
                             observed=got, expected=expected))
        for _, host in mx:
            if probe.cname(host):
                out.append(Check(d.name, self.name, "MX", FAIL,
                                 f"the MX target {host} is a CNAME",
                                 "point the MX at a name with A/AAAA records", observed=got,
                                 expected=expected))
            elif not probe.addresses(host):
                out.append(Check(d.name, self.name, "MX", FAIL,
                                 f"the MX target {host} does not resolve",
                                 "publish its A/AAAA records", observed=got, expected=expected))
        return out or [Check(d.name, self.name, "MX", OK, expected, observed=got,
                             expected=expected)]


FAMILY = MxFamily()
