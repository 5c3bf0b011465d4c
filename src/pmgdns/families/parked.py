"""Parked domains (RFC 7505, M3AAWG's practice, spec-v1 §6.2): `parked: true` says a domain sends
and receives no mail. Instead of the domain rows of §2 it publishes the null MX `0 .`,
`v=spf1 -all`, `_dmarc` with `p=reject` (keeping the domain's `rua`/`ruf`, M3AAWG), and
`*._domainkey.D TXT "v=DKIM1; p="` (no key is valid), and no DKIM key, MTA-STS or TLS-RPT; the
wildcard SPF stays as `wildcard_spf` says.

pmgdns owns the null MX whole and, in a parked domain's zone, the `v=DKIM1` values at
`*._domainkey.D`. When the domain is no longer parked the revocation stays (harmless: a wildcard
never covers a selector that exists); remove it by hand if you like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, RecordSpec, Site
from .base import DKIM, DMARC, SPF, WHOLE, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe
from .dmarc import Dmarc, dmarc_checks

if TYPE_CHECKING:
    from ..spec.values import Checker

NULL_MX = "0 ."
NULL_SPF = "v=spf1 -all"
REVOKED = "v=DKIM1; p="


def _flag(c: Checker, value: Any, path: Path, inherited: Any = None) -> bool:
    return c.boolean(value, path)


def parked_dmarc(domain: Domain) -> Dmarc:
    """`p=reject` with strict alignment, keeping the report addresses (`rua`/`ruf`) the domain
    has, from `defaults.dmarc` unless it overrides them: M3AAWG's advice, so that abuse of the
    parked name is still reported."""
    have = domain.options.get("dmarc")
    rua, ruf = (have.rua, have.ruf) if isinstance(have, Dmarc) else ((), ())
    return Dmarc(p="reject", rua=rua, ruf=ruf, aspf="s", adkim="s")


def dmarc_value(domain: Domain) -> str:
    return parked_dmarc(domain).txt_value


class ParkedFamily(Family):
    name = "parked"
    domain_keys = (Key("parked", False, _flag),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if not domain.parked:
            return
        z, ttl = domain.zone, domain.ttl
        yield RecordSpec(z, "", "MX", ttl, (NULL_MX,))
        yield RecordSpec(z, "", "TXT", ttl, (NULL_SPF,))
        yield RecordSpec(z, "_dmarc", "TXT", ttl, (dmarc_value(domain),))
        yield RecordSpec(z, "*._domainkey", "TXT", ttl, (REVOKED,))

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"zones": [d.zone for d in site.domains.values() if d.parked]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        out = ctx.claim_desired({("", "MX"): WHOLE, ("", "TXT"): txt(SPF),
                                 ("_dmarc", "TXT"): txt(DMARC)})
        if ctx.zone in options.get("zones", ()):
            out[("*._domainkey", "TXT")] = txt(DKIM)
        return out

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:

        if not domain.parked:
            return []
        d = domain
        out: list[Check] = []

        def one(check: str, name: str, have: list[str], want: str) -> None:
            ok = have == [want]
            observed = " | ".join(have) or "nothing"
            out.append(Check(d.name, self.name, check, OK if ok else FAIL,
                             f"{name} has {observed}" + ("" if ok else f", a parked domain has "
                                                                        f"{want} only"),
                             "" if ok else APPLY, observed=observed, expected=want))

        mx = [f"{r.preference} {r.exchange}" for r in probe.rrset(d.zone, "MX")]
        one("null MX", d.zone, sorted(mx), NULL_MX)
        one("SPF", d.zone, [v for v in probe.txt(d.zone) if SPF.matches(v)], NULL_SPF)
        one("no DKIM", f"*._domainkey.{d.zone}",
            [v for v in probe.txt(f"*._domainkey.{d.zone}") if DKIM.matches(v)], REVOKED)
        out.extend(dmarc_checks(probe, d, self.name, parked_dmarc(d)))
        return out


FAMILY = ParkedFamily()
