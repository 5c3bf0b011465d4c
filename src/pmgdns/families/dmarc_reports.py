"""DMARC report authorisation (RFC 9990): when a domain D sends its rua/ruf reports to an
address in another domain R that this spec also manages, pmgdns publishes
`D._report._dmarc.R TXT "v=DMARC1"` in R's zone; for a domain R the spec does not manage, the
spec gets a warning naming the record to publish there.

pmgdns owns the `v=DMARC1` values at those names. They go when D is absent, and every one
pmgdns published in R's zone goes when R is absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core.libraries import quiet_import
from ..spec.model import Domain, RecordSpec, Site, relative, zone_of
from .base import DMARC, Claim, Family, Slot, ZoneContext, report_name, txt
from .checking import FAIL, OK, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

REPORT_AUTH = "v=DMARC1"


def _external(d: Domain) -> list[str]:
    """The report domains of `d` outside `d` itself (a parked domain keeps its rua/ruf)."""
    return [rd for rd in d.dmarc.report_domains()
            if rd != d.name and not rd.endswith("." + d.name)]


def _destinations(site: Site) -> Iterator[tuple[Domain, str, Domain | None]]:
    """(domain, report domain, the spec domain that holds it — None when the spec does not
    manage it) for each external report destination of each present domain."""
    for d in site.domains.values():
        if d.absent:
            continue
        for rd in _external(d):
            zone = zone_of(rd, site.domains)
            held = site.domains[zone] if zone is not None else None
            yield d, rd, held if held is not None and not held.absent else None


def all_records(site: Site) -> dict[str, list[RecordSpec]]:
    """Every authorisation pmgdns publishes, by zone (computed once per site)."""
    cached: dict[str, list[RecordSpec]] | None = site.memo.get("dmarc_reports")
    if cached is not None:
        return cached
    out: dict[str, dict[str, RecordSpec]] = {}
    for d, rd, z in _destinations(site):
        if z is not None:
            name = relative(f"{d.name}._report._dmarc.{rd}", z.zone)
            out.setdefault(z.zone, {})[name] = RecordSpec(z.zone, name, "TXT", z.ttl,
                                                          (REPORT_AUTH,))
    result = {zone: list(recs.values()) for zone, recs in out.items()}
    site.memo["dmarc_reports"] = result
    return result


def absent_reports(site: Site) -> dict[str, list[str]]:
    """For each absent zone, the spec's domains whose DMARC reports go there: pmgdns published
    their `_report._dmarc` authorisations in it and removes them with the zone's other records."""
    out: dict[str, list[str]] = {}
    for d in site.domains.values():
        for rd in d.dmarc.report_domains():
            zone = zone_of(rd, site.domains)
            if zone and zone != d.name and site.domains[zone].absent:
                names = out.setdefault(site.domains[zone].zone, [])
                if d.name not in names:
                    names.append(d.name)
    return out


class DmarcReportsFamily(Family):
    name = "dmarc_reports"

    def check_site(self, c: Checker, site: Site) -> None:
        for d, rd, z in _destinations(site):
            if z is None:
                c.warn((*d.path, "dmarc"),
                       f"reports go to {rd}, which this spec does not manage: publish "
                       f"`{d.name}._report._dmarc.{rd}. TXT \"v=DMARC1\"` there (RFC 9990), "
                       "or receivers will not send the reports")

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        return all_records(site).get(domain.zone, [])

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"absent": [d.name for d in site.domains.values() if d.absent],
                "absent_reports": absent_reports(site)}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        out: dict[Slot, Claim] = {s: txt(DMARC) for s in ctx.desired
                                  if s[1] == "TXT" and report_name(s[0])}
        # to remove: those of absent domains anywhere, and all that pmgdns published in a zone
        # that is now absent
        zone = ctx.zone.rstrip(".")
        reporters = {z for z in options.get("absent", []) if z != zone}
        reporters.update(options.get("absent_reports", {}).get(ctx.zone, []))
        if reporters:
            for name in ctx.names:
                reporter, marker, rest = name.partition("._report._dmarc")
                if marker and reporter in reporters and (not rest or rest.startswith(".")):
                    out[(name, "TXT")] = txt(DMARC)
        return out

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:


        # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
        with quiet_import("checkdmarc"):
            from checkdmarc.dmarc import (
                UnverifiedDMARCURIDestination,
                verify_dmarc_report_destination,
            )
        out = []
        for rd in _external(domain):
            record = f"{domain.name}._report._dmarc.{rd}."
            try:
                verify_dmarc_report_destination(domain.name, rd, resolver=probe.resolver,
                                                timeout=probe.resolver.lifetime)
            except UnverifiedDMARCURIDestination:
                out.append(Check(domain.name, self.name, "DMARC reports", FAIL,
                                 f"{rd} does not authorise reports for {domain.name}",
                                 f"publish {record} TXT \"v=DMARC1\"", observed="nothing",
                                 expected=f"{record} TXT \"v=DMARC1\""))
            else:
                out.append(Check(domain.name, self.name, "DMARC reports", OK,
                                 f"{rd} authorises reports for {domain.name}",
                                 observed=REPORT_AUTH, expected=REPORT_AUTH))
        return out


FAMILY = DmarcReportsFamily()
