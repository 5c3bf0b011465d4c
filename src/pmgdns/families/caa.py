"""CAA at a gateway node (RFC 8659, spec-v1 §6.2): `node CAA 0 issue "<ca>"`, one per CA of the
node's `caa:` list, in the zone that contains the node — which certificate authorities may issue
the node's certificate (the PMG prerequisites name Let's Encrypt: `caa: [letsencrypt.org]`).

Owned whole when the node has `caa:` (also when the node's zone is absent); `caa: []` removes
the CAA set pmgdns published at the node (an explicit deletion); without `caa:` pmgdns leaves
the node's CAA alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, Gateway, RecordSpec, Site, in_zone, relative
from .base import WHOLE, Claim, Family, Key, Path, Slot, ZoneContext
from .checking import APPLY, FAIL, OK, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker


def _parse(c: Checker, value: Any, path: Path, inherited: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value if isinstance(value, list) else [value]
    out: list[str] = []
    for i, raw in enumerate(names):
        name = c.hostname(raw, (*path, str(i)), "certificate authority domain")
        if name not in out:
            out.append(name)
    return tuple(out)


def values(cas: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f'0 issue "{ca}"' for ca in cas)


class CaaFamily(Family):
    name = "caa"
    node_keys = (Key("caa", None, _parse),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        for node in site.gateways:
            cas: tuple[str, ...] | None = node.options.get("caa")
            if cas and site.node_zone(node) == domain.name:
                yield RecordSpec(domain.zone, relative(node.hostname, domain.zone), "CAA",
                                 domain.ttl, values(cas))

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"nodes": [n.fqdn for n in site.gateways if n.options.get("caa") is not None]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return {(relative(node, ctx.zone), "CAA"): WHOLE for node in options.get("nodes", [])
                if in_zone(node, ctx.zone) and node != ctx.zone}

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:

        cas: tuple[str, ...] | None = node.options.get("caa")
        if not cas:
            return []
        have = sorted(f'{r.flags} {r.tag.decode()} "{r.value.decode()}"'
                      for r in probe.rrset(node.fqdn, "CAA"))
        want = sorted(values(cas))
        ok = have == want
        observed = " | ".join(have) or "nothing"
        return [Check(node.fqdn, self.name, "CAA", OK if ok else FAIL,
                      f"{node.fqdn} CAA {observed}" + ("" if ok else
                                                       f"; the spec says {' | '.join(want)}"),
                      "" if ok else APPLY, observed=observed, expected=" | ".join(want))]


FAMILY = CaaFamily()
