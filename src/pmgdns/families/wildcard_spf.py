"""The null SPF wildcard (spec-v1 §2): `*.D TXT "v=spf1 -all"` (`wildcard_spf`), so names
that do not exist deny every sender. pmgdns owns the `v=spf1` value at `*.D`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, RecordSpec, Site
from .base import SPF, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

NULL_SPF = "v=spf1 -all"


def _flag(c: Checker, value: Any, path: Path, inherited: Any = None) -> bool:
    return c.boolean(value, path)


class WildcardSpfFamily(Family):
    name = "wildcard_spf"
    domain_keys = (Key("wildcard_spf", True, _flag),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if domain.wildcard_spf:
            yield RecordSpec(domain.zone, "*", "TXT", domain.ttl, (NULL_SPF,))

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return ctx.claim_desired({("*", "TXT"): txt(SPF)})

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:

        if not domain.wildcard_spf:
            return []
        d = domain
        probe_name, answered = probe.wildcard(d.zone)
        values = [v for v in answered if SPF.matches(v)]
        if values == [NULL_SPF]:
            return [Check(d.name, self.name, "wildcard SPF", OK,
                          f"{probe_name} answers \"{NULL_SPF}\"", observed=NULL_SPF,
                          expected=NULL_SPF)]
        got = ", ".join(f'"{v}"' for v in values) or "no SPF"
        return [Check(d.name, self.name, "wildcard SPF", FAIL,
                      f"a random name ({probe_name}) answers {got}",
                      f"publish *.{d.zone} TXT \"{NULL_SPF}\" ({APPLY})", observed=got,
                      expected=NULL_SPF)]


FAMILY = WildcardSpfFamily()
