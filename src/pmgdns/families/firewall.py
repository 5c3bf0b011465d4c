"""The firewall of the PMG prerequisites (spec-v1 §6.3): the optional top-level `firewall:`
block, checked into a `Firewall`. It publishes no records; `pmgdns firewall` renders it as rules
(`pmgdns.firewall.rules`)."""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any

from .base import Family

if TYPE_CHECKING:
    from ..spec.model import Site
    from ..spec.values import Checker

Path = tuple[str, ...]
Network = IPv4Network | IPv6Network

KEYS = ("mail_servers", "admin_sources", "dns_servers", "ssh_sources")
OPTIONAL = ("ssh_sources",)

# What an empty (or missing) list would mean, and the fix.
_EMPTY = {
    "mail_servers": (
        "26/tcp, the port where PMG takes outgoing mail from your internal mail servers, would be "
        "open to nobody; list the addresses of the mail servers that relay through the gateway, "
        "e.g. [10.0.0.5]"
    ),
    "admin_sources": (
        "8006/tcp, the web UI, would be open to nobody and you would lock yourself out; list the "
        "addresses or networks you administer from, e.g. [192.0.2.0/24]"
    ),
    "dns_servers": (
        "outbound DNS would go nowhere and the gateway could resolve no names (mail delivery, "
        "DNSBL and SpamAssassin need DNS); list the resolvers the gateway uses, "
        "e.g. [1.1.1.1, 8.8.8.8]"
    ),
    "ssh_sources": (
        "SSH (22/tcp) would be open to nobody, which is what leaving the key out already means "
        "(and `pmgdns validate` then warns once); list the addresses or networks you "
        "administer from, e.g. [192.0.2.0/24], or remove the key"
    ),
}

# What each source list opens, and what the prerequisites ask for (for the warnings).
_OPENS = {
    "mail_servers": ("26/tcp, the port PMG treats as outgoing mail from your own servers,",
                     "26/tcp from your mail servers only: list their addresses"),
    "admin_sources": ("the web UI (8006/tcp)",
                      "restricted sources only: list the networks you administer from"),
    "ssh_sources": ("SSH (22/tcp)",
                    "restricted sources only: list the networks you administer from"),
}

# Warn when a source list holds a public network wider than this (see `_check_wide`).
_WIDE_PREFIX = {4: 8, 6: 32}


@dataclass(frozen=True)
class ClusterNode:
    """A gateway node as the firewall sees it: its name and its addresses (/32, /128)."""

    hostname: str
    addresses: tuple[Network, ...]


@dataclass(frozen=True)
class Firewall:
    """The checked `firewall:` block. Each tuple of the spec is without duplicates or overlaps,
    and non-empty except `ssh_sources`, which is () when the spec leaves it out."""

    mail_servers: tuple[Network, ...]  # may reach 26/tcp
    admin_sources: tuple[Network, ...]  # may reach 8006/tcp
    dns_servers: tuple[Network, ...]  # resolvers: host addresses only (/32 or /128)
    ssh_sources: tuple[Network, ...] = ()  # may reach 22/tcp (the admins' SSH)
    nodes: tuple[ClusterNode, ...] = ()  # the gateway nodes (filled in from the spec's gateways)

    @property
    def cluster(self) -> tuple[Network, ...]:
        """The addresses of a cluster's nodes, which reach each other on 22/tcp (PMG syncs its
        database through an SSH tunnel) and 8006/tcp (the API); () with a single node."""
        if len(self.nodes) < 2:
            return ()
        return tuple(a for node in self.nodes for a in node.addresses)


# --------------------------------------------------------------------------------------------
# Checking the spec block


def parse_firewall(
    value: object,
    path: Path,
    fail: Callable[[Path, str], Exception],
    warn: Callable[[Path, str], None],
) -> Firewall:
    """Check the `firewall:` mapping found at `path`; raise `fail(...)` on the first error."""
    if not isinstance(value, dict):
        required = ", ".join(k for k in KEYS if k not in OPTIONAL)
        raise fail(path, f"must be a mapping with the keys {required} (and optionally "
                         f"{', '.join(OPTIONAL)}), not {_kind(value)}")
    for key in value:
        if key not in KEYS:
            name = key if isinstance(key, str) else str(key)
            close = difflib.get_close_matches(name, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(
                (*path, _path_part(key)),
                f"unknown key {key!r}{hint}; the keys allowed here are {', '.join(KEYS)}",
            )
    lists: dict[str, tuple[Network, ...]] = {}
    for key in KEYS:
        if key not in value:
            if key in OPTIONAL:
                continue
            raise fail((*path, key), f"is missing: {_EMPTY[key]}")
        lists[key] = _network_list(value[key], (*path, key), key, fail, warn)
    return Firewall(
        mail_servers=lists["mail_servers"],
        admin_sources=lists["admin_sources"],
        dns_servers=lists["dns_servers"],
        ssh_sources=lists.get("ssh_sources", ()),
    )


def _network_list(
    value: object,
    path: Path,
    key: str,
    fail: Callable[[Path, str], Exception],
    warn: Callable[[Path, str], None],
) -> tuple[Network, ...]:
    if not isinstance(value, list):
        raise fail(
            path,
            f"must be a list of IP addresses or CIDR networks, not {_kind(value)}"
            + (f" {value!r}" if isinstance(value, str | int | float) else "")
            + "; write it as [a, b] or one `- a` line per entry",
        )
    if not value:
        raise fail(path, f"must not be empty: {_EMPTY[key]}")
    seen: list[Network] = []
    index: dict[tuple[int, int, int], int] = {}  # (version, first address, prefix) -> entry
    starts: dict[int, list[tuple[int, int]]] = {4: [], 6: []}  # (first address, entry), sorted
    for i, item in enumerate(value):
        item_path = (*path, str(i))
        net = _network(item, item_path, key, fail)
        j, relation = _overlap(net, seen, index, starts[net.version])
        if j is not None:
            earlier = seen[j]
            if relation == "repeats":
                raise fail(item_path, f"{item!r} repeats entry {j} ({earlier}); remove one of them")
            if relation == "inside":
                raise fail(item_path, f"{item!r} lies inside entry {j} ({earlier}), which "
                                      "already covers it; remove it")
            raise fail(item_path, f"{item!r} contains entry {j} ({earlier}); remove entry "
                                  f"{j}, which it already covers")
        seen.append(net)
        index[(net.version, int(net.network_address), net.prefixlen)] = i
        bisect.insort(starts[net.version], (int(net.network_address), i))
        if key in _OPENS:
            _check_wide(net, item, item_path, key, warn)
        if key == "dns_servers" and net.network_address.is_loopback:
            warn(item_path, f"{item!r} is the gateway itself: loopback traffic is always allowed, "
                            "so this entry allows nothing; a resolver on the gateway that "
                            "recurses needs 53/tcp+udp to every name server, which this firewall "
                            "blocks; list the upstream resolvers it forwards to instead")
    return tuple(seen)


def _overlap(net: Network, seen: list[Network], index: Mapping[tuple[int, int, int], int],
             starts: list[tuple[int, int]]) -> tuple[int | None, str]:
    """The first earlier entry `net` repeats, lies inside or contains, and which of the three,
    in time linear in the prefix length and in the entries it contains, not in the list's
    length (a list of thousands of networks is checked at once)."""
    found: list[tuple[int, str]] = []
    first, last = int(net.network_address), int(net.broadcast_address)
    bits = net.max_prefixlen
    same = index.get((net.version, first, net.prefixlen))
    if same is not None:
        found.append((same, "repeats"))
    for prefix in range(net.prefixlen):  # the networks that contain it
        start = first >> (bits - prefix) << (bits - prefix)
        j = index.get((net.version, start, prefix))
        if j is not None:
            found.append((j, "inside"))
    at = bisect.bisect_left(starts, (first, -1))
    while at < len(starts) and starts[at][0] <= last:  # CIDR networks nest or lie apart
        j = starts[at][1]
        if seen[j].prefixlen > net.prefixlen:
            found.append((j, "contains"))
        at += 1
    if not found:
        return None, ""
    return min(found)


def _network(value: object, path: Path, key: str,
             fail: Callable[[Path, str], Exception]) -> Network:
    example = "e.g. 10.0.0.5, 192.0.2.0/24, 2001:db8::5 or 2001:db8::/64"
    if key == "dns_servers":
        example = "e.g. 1.1.1.1 or 2606:4700:4700::1111"
    if not isinstance(value, str):
        shown = f" {value!r}" if isinstance(value, int | float) else ""
        raise fail(path, f"must be an IP address or CIDR network written as text, not "
                         f"{_kind(value)}{shown}; {example}")
    text = value.strip()
    if not text:
        raise fail(path, f"is empty; write an IP address or CIDR network, {example}")
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(path, f"{value!r} is not an IP address or CIDR network; {example}") from None
    if isinstance(loose, IPv6Network) and loose.network_address.scope_id is not None:
        plain = str(loose.network_address).split("%", 1)[0]
        raise fail(path, f"{value!r} has a zone index (the part after %), which a firewall "
                         f"cannot match; write {plain}")
    host = ipaddress.ip_interface(text).ip
    if host != loose.network_address:  # host bits set: 10.0.0.5/24 is a host or a network
        if key == "dns_servers":
            raise fail(path, f"{value!r} has host bits set; dns_servers lists resolvers: write "
                             f"the resolver's address, {host}")
        raise fail(path, f"{value!r} has host bits set: write {loose} for the whole network or "
                         f"{host} for the single host")
    net = loose
    if isinstance(net, IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            raise fail(path, f"{value!r} is an IPv4-mapped IPv6 address, which never appears on "
                             f"the wire; write the IPv4 address {mapped} instead")
    if net.prefixlen == net.max_prefixlen and net.network_address.is_unspecified:
        raise fail(path, f"{value!r} is the unspecified address, not a host; {example}")
    if key == "dns_servers" and net.prefixlen != net.max_prefixlen:
        raise fail(path, f"{value!r} is a network of {net.num_addresses} addresses; dns_servers "
                         f"lists resolvers: write each resolver's own address, {example}")
    return net


def _check_wide(net: Network, item: object, path: Path, key: str,
                warn: Callable[[Path, str], None]) -> None:
    """Warn when a source list opens its port to the world or to a huge public range.

    /0 is the whole internet. A public network wider than /8 (IPv4) or /32 (IPv6, a whole LIR
    allocation) belongs to many organisations, so it cannot be "restricted sources"; wide private
    ranges (10.0.0.0/8, fc00::/7) are ordinary internal networks and pass silently.
    """
    family = f"IPv{net.version}"
    opens, ask = _OPENS[key]
    if net.prefixlen == 0:
        warn(path, f"{item!r} opens {opens} to the whole {family} internet; the prerequisites "
                   f"ask for {ask}")
    elif net.prefixlen < _WIDE_PREFIX[net.version] and not net.is_private:
        warn(path, f"{item!r} opens {opens} to {net.num_addresses} public {family} addresses; "
                   f"the prerequisites ask for {ask}")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), "a value")


def _path_part(key: object) -> str:
    """A key as a path element: itself when plain printable text, else its repr."""
    if isinstance(key, str) and key.isprintable():
        return key
    return repr(key)



class FirewallFamily(Family):
    name = "firewall"
    top_keys = ("firewall",)

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Firewall | None:
        if top.get("firewall") is None:
            return None
        return parse_firewall(top["firewall"], ("firewall",), c.fail, c.warn)

    def check_site(self, c: Checker, site: Site) -> None:
        """Give the firewall the gateway nodes (a cluster's nodes reach each other), and warn
        once when SSH stays closed."""
        fw = site.sections.get(self.name)
        if not isinstance(fw, Firewall) or "gateway" not in site.sections:
            return
        nodes = tuple(
            ClusterNode(g.hostname, tuple(ipaddress.ip_network(a) for a in g.addresses))
            for g in site.gateways
        )
        site.sections[self.name] = dataclasses.replace(fw, nodes=nodes)
        if not fw.ssh_sources:
            others = " but the cluster's own nodes" if len(nodes) > 1 else ""
            c.warn(("firewall",), f"has no ssh_sources, so once `pmgdns firewall`'s rules are "
                                  f"loaded, new SSH sessions (22/tcp) from anywhere{others} are "
                                  "dropped and you cannot log in over SSH; list the networks "
                                  "you administer from in firewall.ssh_sources, e.g. "
                                  "[192.0.2.0/24], or keep a console at hand")


FAMILY = FirewallFamily()
