"""The gateway nodes' own records (spec-v1 §2, §6.1): A, AAAA and the SPF of the HELO name
`v=spf1 a -all` at each node, in the zone that contains it; the PTR request for the hoster.

Keys: `gateway:` (one node) or `gateways:` (a PMG cluster: every node that receives mail from
the internet), `retired_gateways:` (names whose records pmgdns removes), and a domain's
`gateways: [hostnames]` (the nodes that serve its MX). A and AAAA at a node are owned whole,
its TXT shares the `v=spf1` value; `absent: true` on the node's zone removes them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, Gateway, RecordSpec, Site, in_zone, relative, zone_of
from ..spec.values import shown
from .base import SPF, WHOLE, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, WARN, Check, Probe
from .spf import spf_checks

if TYPE_CHECKING:
    from ..spec.values import Checker

HELO_SPF = "v=spf1 a -all"
DOC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOC_V6 = [ipaddress.ip_network(n) for n in ("2001:db8::/32", "3fff::/20")]
NODE_KEYS = ("hostname", "ipv4", "ipv6", "mx_priority")


@dataclass(frozen=True)
class Gateways:
    """`site.sections["gateway"]`: the nodes, and retired node names (no trailing dot)."""

    nodes: tuple[Gateway, ...]
    retired: tuple[str, ...] = ()


def check_ip(c: Checker, value: Any, path: Path, version: int,
             who: str = "a gateway") -> str:
    """A public IPv4/IPv6 address (of a gateway, unless `who` says whose); documentation
    addresses are a warning."""
    text = c.string(value, path) if not isinstance(value, int) else str(value)
    if "%" in text:
        raise c.fail(path, f"`{shown(text)}` carries a zone id (after `%`), which has no "
                           "meaning in DNS; give the address alone")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise c.fail(path, f"`{shown(text)}` is not a valid IPv{version} address") from None
    if addr.version != version:
        raise c.fail(path, f"`{text}` is an IPv{addr.version} address; this key takes "
                           f"IPv{version}")
    docs = DOC_V4 if version == 4 else DOC_V6
    if any(addr in net for net in docs):
        c.warn(path, f"{addr} is a documentation address: fine for an example, but the world "
                     f"cannot reach {who} there")
        return str(addr)
    if not addr.is_global or addr.is_multicast or addr.is_reserved:
        kind = ("loopback" if addr.is_loopback else "link-local" if addr.is_link_local
                else "multicast" if addr.is_multicast else "unspecified" if addr.is_unspecified
                else "private or reserved")
        raise c.fail(path, f"{addr} is a {kind} address; give the public IPv{version} address "
                           f"of {who}, the one the internet connects to")
    return str(addr)


def _node(c: Checker, value: Any, path: Path, families: Sequence[Family]) -> Gateway:
    extra = {k.name: k for f in families for k in f.node_keys}
    g = c.mapping(value, path, NODE_KEYS + tuple(extra))
    for required in ("hostname", "ipv4"):
        if required not in g:
            raise c.fail((*path, required), "is missing")
    hostname = c.hostname(g["hostname"], (*path, "hostname"))
    ipv4 = check_ip(c, g["ipv4"], (*path, "ipv4"), 4)
    ipv6 = check_ip(c, g["ipv6"], (*path, "ipv6"), 6) if g.get("ipv6") is not None else None
    prio = (c.integer(g["mx_priority"], (*path, "mx_priority"), 0, 65535)
            if g.get("mx_priority") is not None else None)
    options: dict[str, Any] = {}
    for name, key in extra.items():
        value = key.parse(c, g[name], (*path, name), key.default) if name in g else key.default
        options[name] = key.finish(c, (*path, name), value) if key.finish else value
    return Gateway(hostname, ipv4, ipv6, prio, options=options)


def _nodes(c: Checker, top: Mapping[str, Any], families: Sequence[Family]) -> tuple[Gateway, ...]:
    if "gateway" in top and "gateways" in top:
        raise c.fail(("gateways",), "and `gateway:` are both given; keep one: `gateway:` for a "
                                    "single node, `gateways:` (a list) for a cluster")
    if "gateways" not in top:
        if "gateway" not in top:
            raise c.fail(("gateway",), "is missing; every spec needs version, gateway (or "
                                       "gateways), dkim and domains")
        return (_node(c, top["gateway"], ("gateway",), families),)
    raw = top["gateways"]
    if not isinstance(raw, list) or not raw:
        raise c.fail(("gateways",), "must be a non-empty list of nodes, e.g. "
                                    "[{hostname: mx1.example.com, ipv4: 198.51.100.25}]")
    nodes = tuple(_node(c, n, ("gateways", str(i)), families) for i, n in enumerate(raw))
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for what, value in (("hostname", node.hostname), ("address", node.ipv4),
                            ("address", node.ipv6)):
            if value is None:
                continue
            if value in seen:
                key = "hostname" if what == "hostname" else ("ipv4" if value == node.ipv4
                                                             else "ipv6")
                raise c.fail(("gateways", str(i), key),
                             f"{shown(value)} is also the {what} of gateways.{seen[value]}; "
                             "every node needs a hostname and addresses of its own")
            seen[value] = i
    return nodes


def _retired(c: Checker, value: Any, nodes: tuple[Gateway, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    path: Path = ("retired_gateways",)
    if not isinstance(value, list):
        raise c.fail(path, "must be a list of host names, e.g. [mx0.example.com]")
    out: list[str] = []
    for i, raw in enumerate(value):
        name = c.hostname(raw, (*path, str(i)))
        if any(n.hostname == name for n in nodes):
            raise c.fail((*path, str(i)), f"{name} is still a gateway node; remove it from "
                                           "`gateways:` to retire it, or from here to keep it")
        if name not in out:
            out.append(name)
    return tuple(out)


def _subset(c: Checker, value: Any, path: Path, inherited: Any = None) -> tuple[str, ...]:
    if value is None:
        return ()
    names = value if isinstance(value, list) else [value]
    if not names:
        raise c.fail(path, "must list at least one gateway node, e.g. [mx1.example.com]")
    out: list[str] = []
    for i, raw in enumerate(names):
        name = c.hostname(raw, (*path, str(i)))
        if name not in out:
            out.append(name)
    return tuple(out)


def node_slots(node: str, zone: str) -> dict[Slot, Claim]:
    """The slots of a node's own records, when the node lies in `zone` below its apex."""
    if not in_zone(node, zone) or node == zone:
        return {}
    host = relative(node, zone)
    return {(host, "A"): WHOLE, (host, "AAAA"): WHOLE, (host, "TXT"): txt(SPF)}


class GatewayFamily(Family):
    name = "gateway"
    top_keys = ("gateway", "gateways", "retired_gateways")
    domain_keys = (Key("gateways", (), _subset),)
    # every family's node keys (`node_keys`): set by the registry, `pmgdns.families`
    families: Sequence[Family] = ()

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Gateways:
        nodes = _nodes(c, top, self.families)
        return Gateways(nodes, _retired(c, top.get("retired_gateways"), nodes))

    def check_site(self, c: Checker, site: Site) -> None:
        known = {g.hostname for g in site.gateways}
        for domain in site.domains.values():
            for node in site.gateways:
                if domain.name == node.hostname:
                    raise c.fail(domain.path, "is the gateway's own hostname; give the gateway "
                                              f"a host name inside the domain, e.g. "
                                              f"mx1.{domain.name}")
            subset: tuple[str, ...] = domain.options.get("gateways", ())
            for i, name in enumerate(subset):
                if name not in known:
                    raise c.fail((*domain.path, "gateways", str(i)),
                                 f"{name} is not a gateway node; name one of "
                                 f"{', '.join(sorted(known))}")

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        z, ttl = domain.zone, domain.ttl
        for node in site.gateways:
            if site.node_zone(node) != domain.name:
                continue
            host = relative(node.hostname, z)
            yield RecordSpec(z, host, "A", ttl, (node.ipv4,))
            if node.ipv6:
                yield RecordSpec(z, host, "AAAA", ttl, (node.ipv6,))
            yield RecordSpec(z, host, "TXT", ttl, (HELO_SPF,))

    def notes(self, site: Site) -> list[str]:
        out = []
        for node in site.gateways:
            note = node_note(site, node)
            if note:
                out.append(note)
        return out

    def manual(self, site: Site) -> list[dict[str, str]]:
        return [{"kind": "ptr", "address": str(ipaddress.ip_address(a)), "name": node.fqdn}
                for node in site.gateways for a in node.addresses]

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"nodes": [n.fqdn for n in site.gateways],
                "retired": [f"{r}." for r in site.retired_gateways]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        out: dict[Slot, Claim] = {}
        for node in options.get("nodes", []):
            out.update(ctx.claim_desired(node_slots(node, ctx.zone)))
        for node in options.get("retired", []):
            out.update(node_slots(node, ctx.zone))
        return out

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:

        g = node.fqdn
        out: list[Check] = []
        cname = probe.cname(g)
        if cname:
            return [Check(g, self.name, "gateway", FAIL,
                          f"{g} is a CNAME to {cname}; MX targets must not be CNAMEs "
                          "(RFC 2181 §10.3)", "replace the CNAME by A/AAAA records",
                          observed=f"CNAME {cname}")]
        managed = probe.site.node_zone(node) is not None
        fix = APPLY if managed else "publish it where the gateway's zone is hosted"
        for rtype, want in (("A", node.ipv4), ("AAAA", node.ipv6)):
            have = {r.address for r in probe.rrset(g, rtype)}
            got = ", ".join(sorted(have)) or "nothing"
            if want is None:
                if have:
                    out.append(Check(g, self.name, rtype, WARN,
                                     f"{g} has {rtype} {got} but the spec gives no IPv6 address",
                                     "add the node's ipv6 to the spec, or remove the record",
                                     observed=got))
                continue
            if have == {want}:
                out.append(Check(g, self.name, rtype, OK, f"{g} {rtype} {want}",
                                 observed=want, expected=want))
            else:
                out.append(Check(g, self.name, rtype, FAIL,
                                 f"{g} {rtype} is {got}, the spec says {want}"
                                 + probe.in_its_place(g), fix,
                                 observed=got, expected=want))
        out += spf_checks(probe, g, self.name, g, HELO_SPF if managed else None,
                          "gateway SPF", [node])
        for address in node.addresses:
            out.append(ptr_check(probe, node, address))
        return out


def ptr_check(probe: Probe, node: Gateway, address: str) -> Check:


    # start-up time: dnspython's resolver stack is for verify only
    import dns.reversename
    g = node.fqdn
    reverse = dns.reversename.from_address(address).to_text()
    names = [str(r.target) for r in probe.rrset(reverse, "PTR")]
    hint = "send the hoster the request from `pmgdns ptr-ticket`"
    if not names:
        return Check(g, "ptr", "PTR", FAIL, f"{address} has no PTR record ({reverse})", hint,
                     observed="nothing", expected=g)
    if [n.lower() for n in names] != [g.lower()]:
        return Check(g, "ptr", "PTR", FAIL,
                     f"the PTR of {address} is {', '.join(names)}, not {g}", hint,
                     observed=", ".join(names), expected=g)
    if address not in probe.addresses(g):
        return Check(g, "ptr", "PTR", FAIL,
                     f"{address} -> {g}, but {g} does not resolve back to {address} "
                     "(forward-confirmed reverse DNS fails)", APPLY, observed=g, expected=g)
    return Check(g, "ptr", "PTR", OK, f"{address} -> {g} -> {address} (forward-confirmed)",
                 observed=g, expected=g)


def node_note(site: Site, node: Gateway) -> str | None:
    """Why a node's own records are not published, when they are not."""
    zone = zone_of(node.hostname, site.domains)
    g = node.hostname
    if zone is None:
        return (f"{g} lies in none of the spec's domains, so its A/AAAA and its SPF "
                f"`{HELO_SPF}` are not published by pmgdns: publish them where that zone is "
                "hosted")
    if site.domains[zone].absent:
        return (f"{g} lies in {zone}, which is absent, so its A/AAAA and SPF are removed "
                "there: the gateway will not resolve")
    return None


FAMILY = GatewayFamily()
