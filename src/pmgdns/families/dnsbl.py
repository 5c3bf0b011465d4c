"""DNS blocklists (spec-v1 §7.3): `verify: {dnsbl: [ZONE, ...]}` in the spec, or `verify --dnsbl
ZONE[,ZONE...]`, looks every gateway node address up in each list: the address reversed under
the list's zone (`25.113.0.203.zen.spamhaus.org`, IPv6 by nibbles). An answer `127.0.0.x` is a
listing (FAIL, with the list's TXT reason at the same name); `127.255.255.252`-`254` is the list
refusing the query (a public or shared resolver, over quota): a WARN saying to ask through an
own resolver. Nothing is published.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import UsageError
from ..spec.model import Gateway
from ..spec.values import shown
from .base import Family
from .checking import FAIL, OK, WARN, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

REFUSED = {f"127.255.255.{n}" for n in (252, 253, 254)}
# the query for an IPv6 address puts 32 nibbles (64 characters) before the zone, and a DNS name
# holds at most 253 characters
MAX_ZONE = 253 - 64
TOO_LONG = (f"longer than {MAX_ZONE} characters: the name asked for an IPv6 address (its 32 "
            "nibbles before the zone) would exceed the 253 characters a DNS name holds; give "
            "the blocklist's own zone, e.g. zen.spamhaus.org")
_ZONE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+"
                   r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def parse_lists(text: str) -> tuple[str, ...]:
    """`--dnsbl ZONE[,ZONE...]` as zone names (lower case, no trailing dot)."""
    out: list[str] = []
    for part in text.split(","):
        zone = part.strip().rstrip(".").lower()
        if not _ZONE.match(zone) or zone.rsplit(".", 1)[-1].isdigit():
            raise UsageError(f"--dnsbl {shown(text)}: `{shown(part.strip())}` is not a DNS "
                             "blocklist zone; "
                             "give zone names separated by commas, e.g. "
                             "--dnsbl zen.spamhaus.org,bl.spamcop.net")
        if len(zone) > MAX_ZONE:
            raise UsageError(f"--dnsbl {shown(text)}: `{shown(part.strip())}` is {TOO_LONG}")
        if zone not in out:
            out.append(zone)
    return tuple(out)


def query_name(address: str, zone: str) -> str:
    """The name a blocklist answers for `address`: IPv4 by octets, IPv6 by nibbles, reversed."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        labels = str(ip).split(".")
    else:
        labels = list(ip.exploded.replace(":", ""))
    return ".".join(reversed(labels)) + f".{zone}."


class DnsblFamily(Family):
    name = "dnsbl"
    top_keys = ("verify",)

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> tuple[str, ...] | None:
        if top.get("verify") is None:
            return None
        d = c.mapping(top["verify"], ("verify",), ("dnsbl",))
        if d.get("dnsbl") is None:
            return None
        path = ("verify", "dnsbl")
        zones = c.string_list(d["dnsbl"], path, "[zen.spamhaus.org]")
        out: list[str] = []
        for i, zone in enumerate(zones):
            name = c.hostname(zone, (*path, str(i)), "blocklist zone")
            if len(name) > MAX_ZONE:
                raise c.fail((*path, str(i)), f"`{shown(name)}` is {TOO_LONG}")
            out.append(name)
        return tuple(dict.fromkeys(out))

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:
        lists = list(probe.site.sections.get(self.name) or ())
        lists += [z for z in probe.options.dnsbl if z not in lists]
        return [self._one(probe, node, address, zone)
                for address in node.addresses for zone in lists]

    def _one(self, probe: Probe, node: Gateway, address: str, zone: str) -> Check:
        name = query_name(address, zone)
        codes = sorted({r.address for r in probe.rrset(name, "A")})
        shown = ", ".join(codes)
        if not codes:
            return Check(node.fqdn, self.name, "blocklist", OK,
                         f"{address} is not listed in {zone}", observed="not listed",
                         expected="not listed")
        if set(codes) & REFUSED:
            return Check(node.fqdn, self.name, "blocklist", WARN,
                         f"{zone} refused the query for {address} ({shown}): the list does not "
                         "answer queries from public or shared resolvers (or over its quota)",
                         "ask through an own resolver (--nameserver), or with the list's own "
                         "access key", observed=shown, expected="not listed")
        listed = [c for c in codes if c.startswith("127.0.0.")]
        if not listed:
            return Check(node.fqdn, self.name, "blocklist", WARN,
                         f"{zone} answers {shown} for {address}, which is not a listing code "
                         "(127.0.0.x)", "check the list's documentation for this answer",
                         observed=shown, expected="not listed")
        reason = " | ".join(probe.txt(name)) or "no reason given"
        return Check(node.fqdn, self.name, "blocklist", FAIL,
                     f"{address} is listed in {zone} ({', '.join(listed)}): {reason}",
                     f"remove the cause (an open relay, a compromised account, a missing PTR), "
                     f"then request delisting at {zone}'s site (the reason names it)",
                     observed=shown, expected="not listed")


FAMILY = DnsblFamily()
