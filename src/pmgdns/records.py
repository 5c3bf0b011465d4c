"""Step 2 of the data path: expand a checked `Site` into the records of spec-v1 §2.

Pure functions: no files, no network. Values are as DNS answers them: TXT unescaped and unsplit,
MX as `10 mx1.example.com.`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Domain, Site, zone_of

SPF_KIND = "v=spf1"
DMARC_KIND = "v=DMARC1"
DKIM_KIND = "v=DKIM1"
NULL_SPF = "v=spf1 -all"
HELO_SPF = "v=spf1 a -all"
REPORT_AUTH = "v=DMARC1"


@dataclass(frozen=True, order=True)
class RecordSpec:
    """One (name, type) set pmgdns publishes in `zone`. `name` is relative ('' for the apex)."""

    zone: str  # with trailing dot
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.zone}" if self.name else self.zone


def txt_kind(value: str) -> str | None:
    """The pmgdns kind of a TXT value (`v=spf1`, `v=DMARC1`, `v=DKIM1`), or None if foreign.

    Matching follows the RFCs: the version tag, case-insensitive, then a separator or the end.
    """
    head = value.lstrip().lower()
    if head == "v=spf1" or head.startswith("v=spf1 "):
        return SPF_KIND
    for kind in (DMARC_KIND, DKIM_KIND):
        k = kind.lower()
        if head == k or head.startswith(k + ";") or head.startswith(k + " ;"):
            return kind
    return None


def relative(fqdn: str, zone: str) -> str:
    """`mx1.example.com` relative to `example.com.` is `mx1`; the apex is ''."""
    name = fqdn.rstrip(".")
    base = zone.rstrip(".")
    if name == base:
        return ""
    return name[: -len(base) - 1]


def domain_records(site: Site, domain: Domain,
                   reports: list[RecordSpec] | None = None) -> list[RecordSpec]:
    """The records pmgdns publishes in `domain`'s own zone (empty when the domain is absent).
    `reports` are its `_report._dmarc` records when the caller has them already."""
    if domain.absent:
        return []
    z, ttl = domain.zone, domain.ttl
    g = site.gateway
    out = [
        RecordSpec(z, "", "MX", ttl, (f"{domain.mx_priority} {g.fqdn}",)),
        RecordSpec(z, "", "TXT", ttl, (domain.spf,)),
        RecordSpec(z, "_dmarc", "TXT", ttl, (domain.dmarc.txt_value,)),
        RecordSpec(z, f"{site.dkim.selector}._domainkey", "TXT", ttl, (site.dkim.key.txt_value,)),
    ]
    if domain.wildcard_spf:
        out.append(RecordSpec(z, "*", "TXT", ttl, (NULL_SPF,)))
    if site.gateway_zone() == domain.name:
        host = relative(g.hostname, z)
        out.append(RecordSpec(z, host, "A", ttl, (g.ipv4,)))
        if g.ipv6:
            out.append(RecordSpec(z, host, "AAAA", ttl, (g.ipv6,)))
        out.append(RecordSpec(z, host, "TXT", ttl, (HELO_SPF,)))
    out.extend(report_records(site, domain) if reports is None else reports)
    return sorted(out)


def _all_report_records(site: Site) -> dict[str, list[RecordSpec]]:
    """`D._report._dmarc.R TXT "v=DMARC1"` for every domain D reporting to an address in another
    domain R the spec manages (RFC 9990 external destination authorisation), by zone."""
    out: dict[str, dict[str, RecordSpec]] = {}
    for d in site.domains.values():
        if d.absent:
            continue
        for rd in d.dmarc.report_domains():
            if rd == d.name or rd.endswith("." + d.name):
                continue
            zone = zone_of(rd, site.domains)
            if zone is None or site.domains[zone].absent:
                continue
            z = site.domains[zone]
            name = relative(f"{d.name}._report._dmarc.{rd}", z.zone)
            out.setdefault(z.zone, {})[name] = RecordSpec(z.zone, name, "TXT", z.ttl,
                                                          (REPORT_AUTH,))
    return {zone: list(recs.values()) for zone, recs in out.items()}


def report_records(site: Site, zone_domain: Domain) -> list[RecordSpec]:
    """The `_report._dmarc` authorisations pmgdns publishes in `zone_domain`."""
    return _all_report_records(site).get(zone_domain.zone, [])


def site_records(site: Site) -> dict[str, list[RecordSpec]]:
    """Every zone of the spec (with trailing dot) and the records pmgdns publishes in it."""
    reports = _all_report_records(site)
    return {d.zone: domain_records(site, d, reports.get(d.zone, []))
            for d in site.domains.values()}


def gateway_note(site: Site) -> str | None:
    """Why the gateway's own records are not published, when they are not."""
    zone = site.gateway_zone()
    g = site.gateway.hostname
    if zone is None:
        return (f"{g} lies in none of the spec's domains, so its A/AAAA and its SPF "
                f"`{HELO_SPF}` are not published by pmgdns: publish them where that zone is "
                "hosted")
    if site.domains[zone].absent:
        return (f"{g} lies in {zone}, which is absent, so its A/AAAA and SPF are removed "
                "there: the gateway will not resolve")
    return None
