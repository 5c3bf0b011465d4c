"""The firewall of the PMG prerequisites (spec-v1 §6.3) as rules an admin can load.

The spec's `firewall:` block, checked into a `Firewall` by its family (`pmgdns.families.firewall`),
becomes an nftables script (`nft -f`), a Proxmox VE firewall file for the gateway's VM
(`/etc/pve/firewall/<VMID>.fw`) or a Markdown change request for whoever runs the network firewall.

Every format comes from the same rule tables below (`_PORT_RULES`, `_ICMP_RULES`), so the three
agree. Rules the prerequisites state are marked "prerequisites"; rules the page leaves implicit but
a host with policy drop needs (loopback, replies, ICMP errors for path MTU, IPv6 neighbour
discovery, MLD, ping) are marked "implicit" and say why. A cluster's nodes reach each other on
22/tcp and 8006/tcp ("cluster", only with two nodes or more), and `ssh_sources` reach 22/tcp
("admin"); a rule whose address list is absent is left out. One file serves every node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from ..families.firewall import Firewall, Network

# --------------------------------------------------------------------------------------------
# The rules (one table for all formats)

Direction = Literal["in", "out"]


@dataclass(frozen=True)
class _PortRule:
    direction: Direction
    proto: Literal["tcp", "udp"]
    port: int
    peers: str | None  # a list of `_lists` (source when in, destination when out); None: any
    comment: str  # <= 128 characters (nft's limit), ASCII, no quotes or '#'
    markdown_why: str


@dataclass(frozen=True)
class _IcmpRule:
    direction: Direction
    version: Literal[4, 6]
    types: tuple[str, ...]  # nft names; for PVE too when `pve` is set
    comment: str
    hoplimit: int | None = None  # nft only: ND wants 255 (on-link), MLD 1
    link_local_source: bool = False  # nft only: MLD queries come from fe80::/10
    limit: str | None = None  # nft only: rate limit
    pve: bool = True  # False: PVE covers it with an option or cannot express it

    @property
    def ping(self) -> bool:
        return self.types == ("echo-request",)


_PORT_RULES: tuple[_PortRule, ...] = (
    _PortRule("in", "tcp", 25, None,
              "prerequisites inbound: 25/tcp from ANY - SMTP, mail from the internet",
              "SMTP: mail from the internet to the gateway"),
    _PortRule("in", "tcp", 26, "mail_servers",
              "prerequisites inbound: 26/tcp from the mail servers - outgoing mail to relay",
              "PMG's internal SMTP port: outgoing mail from the internal mail servers"),
    _PortRule("in", "tcp", 8006, "admin_sources",
              "prerequisites inbound: 8006/tcp from restricted sources - PMG web UI and API",
              "PMG web interface and API (restricted sources only)"),
    _PortRule("in", "tcp", 22, "ssh_sources",
              "admin inbound: 22/tcp from the ssh_sources - SSH for the administrators",
              "SSH for the administrators (the spec's ssh_sources)"),
    _PortRule("in", "tcp", 22, "cluster_nodes",
              "cluster inbound: 22/tcp from the nodes - PMG syncs its database through SSH",
              "PMG cluster: the nodes synchronise their database through an SSH tunnel"),
    _PortRule("in", "tcp", 8006, "cluster_nodes",
              "cluster inbound: 8006/tcp from the nodes - API: joining a node, cluster status",
              "PMG cluster: the API between the nodes (joining a node, cluster status)"),
    _PortRule("out", "udp", 53, "dns_servers",
              "prerequisites outbound: DNS 53/udp to the DNS servers",
              "DNS lookups: mail routing, DNSBL, SPF/DKIM/DMARC checks"),
    _PortRule("out", "tcp", 53, "dns_servers",
              "prerequisites outbound: DNS 53/tcp to the DNS servers - large answers, DNSSEC",
              "DNS over TCP: answers too large for UDP (DNSSEC, long TXT records)"),
    _PortRule("out", "udp", 123, None,
              "prerequisites outbound: NTP 123/udp - time for TLS, DKIM and logs",
              "NTP: correct time (TLS certificates, DKIM signatures, logs)"),
    _PortRule("out", "tcp", 80, None,
              "prerequisites outbound: 80/tcp - installation, APT, SpamAssassin updates, ACME",
              "HTTP: installation, APT mirrors, SpamAssassin rule updates, Let's Encrypt"),
    _PortRule("out", "tcp", 443, None,
              "prerequisites outbound: 443/tcp - APT, Proxmox, ClamAV, SpamAssassin, ACME",
              "HTTPS: APT, Proxmox repositories, ClamAV signatures, SpamAssassin, Let's Encrypt"),
    _PortRule("out", "udp", 443, None,
              "prerequisites outbound: 443/udp - HTTP/3 (QUIC) to the same update servers",
              "HTTP/3 (QUIC) to the same servers as 443/tcp"),
    _PortRule("out", "tcp", 25, None,
              "prerequisites outbound: SMTP 25/tcp to the internet - delivering mail",
              "SMTP: delivering mail to the internet and to the internal mail servers"),
    _PortRule("out", "tcp", 2703, None,
              "prerequisites outbound: Razor 2703/tcp - Cloudmark Razor spam checks",
              "Cloudmark Razor spam checks (discovery.razor.cloudmark.com)"),
    _PortRule("out", "tcp", 22, "cluster_nodes",
              "cluster outbound: 22/tcp to the nodes - PMG syncs its database through SSH",
              "PMG cluster: the nodes synchronise their database through an SSH tunnel"),
    _PortRule("out", "tcp", 8006, "cluster_nodes",
              "cluster outbound: 8006/tcp to the nodes - API: joining a node, cluster status",
              "PMG cluster: the API between the nodes (joining a node, cluster status)"),
)

_ICMP4_ERRORS = ("destination-unreachable", "time-exceeded", "parameter-problem")
_ICMP6_ERRORS = ("destination-unreachable", "packet-too-big", "time-exceeded",
                 "parameter-problem")

_ICMP_RULES: tuple[_IcmpRule, ...] = (
    _IcmpRule("in", 4, _ICMP4_ERRORS,
              "implicit: ICMP errors - path MTU discovery (fragmentation-needed), also when "
              "conntrack lost the flow"),
    _IcmpRule("in", 6, _ICMP6_ERRORS,
              "implicit: ICMPv6 errors - path MTU discovery (packet-too-big, routers never "
              "fragment), RFC 4890"),
    _IcmpRule("in", 6, ("nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert"),
              "implicit: IPv6 neighbour discovery and router advertisements (SLAAC, default "
              "route); hop limit 255 = on-link",
              hoplimit=255, pve=False),
    _IcmpRule("in", 6, ("mld-listener-query",),
              "implicit: MLD queries from the router, answered so snooping switches keep "
              "delivering ND to this host",
              hoplimit=1, link_local_source=True, pve=False),
    _IcmpRule("in", 4, ("echo-request",),
              "implicit (optional): ping for monitoring and diagnostics",
              limit="10/second"),
    _IcmpRule("in", 6, ("echo-request",),
              "implicit (optional): ping for monitoring and diagnostics",
              limit="10/second"),
    _IcmpRule("out", 6, ("nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-solicit"),
              "implicit: IPv6 neighbour discovery - without it IPv6 reaches no one; hop limit 255",
              hoplimit=255, pve=False),
    _IcmpRule("out", 6, ("mld-listener-report", "mld2-listener-report", "mld-listener-done"),
              "implicit: MLD reports - join the solicited-node groups so ND reaches this host",
              hoplimit=1, pve=False),
    _IcmpRule("out", 4, ("echo-request",),
              "implicit (optional): ping from the gateway to test reachability"),
    _IcmpRule("out", 6, ("echo-request",),
              "implicit (optional): ping from the gateway to test reachability"),
)

_LOOPBACK_COMMENT = "implicit: loopback - PMG's own services talk over lo (postfix, filter, clamd)"
_ESTABLISHED_COMMENT = "implicit: replies to allowed connections and their related ICMP errors"
_INVALID_COMMENT = "implicit: packets conntrack cannot place (out of window, bogus) are dropped"


def _families(nets: Iterable[Network]) -> tuple[list[IPv4Network], list[IPv6Network]]:
    """Split by family and collapse (a hand-built Firewall may hold overlaps; nft refuses them)."""
    v4 = [n for n in nets if isinstance(n, IPv4Network)]
    v6 = [n for n in nets if isinstance(n, IPv6Network)]
    return list(ipaddress.collapse_addresses(v4)), list(ipaddress.collapse_addresses(v6))


def _lists(fw: Firewall) -> dict[str, tuple[Network, ...]]:
    """The address lists by name: the spec's three, `ssh_sources` when given, `cluster_nodes`
    with two nodes or more."""
    lists = {"mail_servers": fw.mail_servers, "admin_sources": fw.admin_sources,
             "dns_servers": fw.dns_servers}
    if fw.ssh_sources:
        lists["ssh_sources"] = fw.ssh_sources
    if fw.cluster:
        lists["cluster_nodes"] = fw.cluster
    return lists


def _port_rules(fw: Firewall, direction: Direction) -> list[_PortRule]:
    """The port rules of one direction, without those whose address list is absent."""
    lists = _lists(fw)
    return [r for r in _PORT_RULES
            if r.direction == direction and (r.peers is None or r.peers in lists)]


def _set_comment(key: str) -> str:
    return "the gateway nodes (spec gateways)" if key == "cluster_nodes" else f"spec firewall.{key}"


def _node_names(fw: Firewall) -> str:
    return ", ".join(_shown(n.hostname) for n in fw.nodes)


def _ssh_note(fw: Firewall, prefix: str) -> list[str]:
    """Comment lines on SSH and the cluster, for the header of a file."""
    if fw.ssh_sources:
        others = " and between the cluster's nodes" if fw.cluster else ""
        text = (f"SSH (22/tcp) is accepted from the spec's firewall.ssh_sources{others}; from "
                "anywhere else it is dropped.")
    else:
        others = " but the cluster's nodes" if fw.cluster else ""
        text = (f"SSH (22/tcp) from anywhere{others} is dropped: open sessions survive, new ones "
                "do not. To keep SSH, list the networks you administer from in the spec's "
                "firewall.ssh_sources.")
    if fw.cluster:
        text += (f" The cluster's nodes ({_node_names(fw)}) reach each other on 22/tcp (PMG "
                 "syncs its database through an SSH tunnel) and 8006/tcp (the API); use this "
                 "same file on every node.")
    return _wrap(text, prefix)


def _wrap(text: str, prefix: str, width: int = 96) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(prefix) + len(line) + 1 + len(word) > width:
            lines.append(prefix + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, prefix + line]


def _shown(text: str) -> str:
    """A caller's string for a comment line: itself when printable, else escaped (repr)."""
    return text if text.isprintable() else repr(text)


def _address(net: Network) -> str:
    """A host network as its bare address, anything else in CIDR notation."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


# --------------------------------------------------------------------------------------------
# nftables


def render_nftables(fw: Firewall, gateway: str) -> str:
    """One `table inet pmgdns`; loading the file again replaces that table and nothing else."""
    host = _shown(gateway)
    out = [
        "#!/usr/sbin/nft -f",
        f"# pmgdns: the firewall of the Proxmox Mail Gateway prerequisites for {host}",
        "# (the site spec's firewall: block, spec v1 section 6.3). Generated: change the spec,",
        "# not this file.",
        "#",
        "# Check:  nft -c -f pmgdns.nft",
        "# Load:   nft -f pmgdns.nft     (replaces the table inet pmgdns; other tables stay)",
        "# Remove: nft delete table inet pmgdns",
        "#",
        "# Policy is drop in both directions.",
        *_ssh_note(fw, "# "),
        "# DHCP is not allowed (the gateway needs a static public address); IPv6 SLAAC works.",
        "# ARP is not IP and is not filtered by an inet table.",
        "",
        "table inet pmgdns",
        "delete table inet pmgdns",
        "",
        "table inet pmgdns {",
        '\tcomment "pmgdns: PMG prerequisites (spec v1 section 6.3)"',
    ]
    for key, nets in _lists(fw).items():
        v4, v6 = _families(nets)
        for suffix, kind, members in (("v4", "ipv4_addr", v4), ("v6", "ipv6_addr", v6)):
            out += [
                "",
                f"\tset {key}_{suffix} {{",
                f"\t\ttype {kind}",
                "\t\tflags interval",
                f'\t\tcomment "{_set_comment(key)}, IPv{suffix[1]}"',
            ]
            if members:
                out.append(f"\t\telements = {{ {', '.join(_address(m) for m in members)} }}")
            out.append("\t}")
    chains: tuple[tuple[Direction, str, str, str], ...] = (("in", "input", "input", "iif"),
                                                           ("out", "output", "output", "oif"))
    for direction, chain, hook, lo in chains:
        out += [
            "",
            f"\tchain {chain} {{",
            f"\t\ttype filter hook {hook} priority filter; policy drop;",
            "",
            f'\t\t{lo} "lo" accept comment "{_LOOPBACK_COMMENT}"',
            f'\t\tct state established,related accept comment "{_ESTABLISHED_COMMENT}"',
        ]
        # ICMP errors, ND and MLD before the invalid drop: an error about a flow conntrack
        # forgot counts as invalid, and path MTU discovery must work then too.
        for icmp in _ICMP_RULES:
            if icmp.direction == direction and not icmp.ping:
                out.append(f"\t\t{_nft_icmp(icmp)}")
        out.append(f'\t\tct state invalid drop comment "{_INVALID_COMMENT}"')
        for icmp in _ICMP_RULES:
            if icmp.direction == direction and icmp.ping:
                out.append(f"\t\t{_nft_icmp(icmp)}")
        for rule in _port_rules(fw, direction):
            match = f"{rule.proto} dport {rule.port} accept comment \"{rule.comment}\""
            if rule.peers is None:
                out.append(f"\t\t{match}")
            else:
                field = "saddr" if direction == "in" else "daddr"
                out.append(f"\t\tip {field} @{rule.peers}_v4 {match}")
                out.append(f"\t\tip6 {field} @{rule.peers}_v6 {match}")
        out.append("\t}")
    out += [
        "",
        "\t# The gateway routes nothing: should forwarding ever be switched on, drop it.",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t}",
        "}",
    ]
    return "\n".join(out) + "\n"


def _nft_icmp(rule: _IcmpRule) -> str:
    parts = []
    if rule.link_local_source:
        parts.append("ip6 saddr fe80::/10")
    if rule.hoplimit is not None:
        parts.append(f"ip6 hoplimit {rule.hoplimit}")
    proto = "icmp" if rule.version == 4 else "icmpv6"
    types = rule.types[0] if len(rule.types) == 1 else "{ " + ", ".join(rule.types) + " }"
    parts.append(f"{proto} type {types}")
    if rule.limit is not None:
        parts.append(f"limit rate {rule.limit}")
    parts.append(f'accept comment "{rule.comment}"')
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Proxmox VE


def render_pve(fw: Firewall, gateway: str) -> str:
    """A Proxmox VE firewall file for the gateway's VM: /etc/pve/firewall/<VMID>.fw."""
    host = _shown(gateway)
    out = [
        f"# Proxmox VE firewall for the Proxmox Mail Gateway VM {host}, from pmgdns",
        "# (the PMG prerequisites, spec v1 section 6.3). Generated: change the spec, not this",
        "# file.",
        "#",
        "# Save as /etc/pve/firewall/<VMID>.fw on any node of the cluster (<VMID>: the gateway",
        "# VM's id; the cluster file system copies it everywhere). It acts only when the",
        "# datacenter firewall is on (Datacenter > Firewall > Options, or enable: 1 in",
        "# /etc/pve/firewall/cluster.fw) and the VM's network device has firewall=1.",
        "# Check with: pve-firewall compile  (rules with errors are reported and skipped).",
        "#",
        "# Proxmox VE itself accepts replies to allowed connections (conntrack) and, with",
        "# ndp: 1, IPv6 neighbour discovery; loopback never leaves the VM. Needs Proxmox VE 7",
        "# or later (-icmp-type).",
        *_ssh_note(fw, "# "),
        "",
        "[OPTIONS]",
        "",
        "enable: 1",
        "policy_in: DROP",
        "policy_out: DROP",
        "# IPv6 neighbour discovery and router advertisements (SLAAC) in, solicitations out",
        "ndp: 1",
        "# the gateway has a static public address; set 1 if it gets its address by DHCP",
        "dhcp: 0",
        "# the VM must not send router advertisements",
        "radv: 0",
        "# drop frames whose source MAC is not the VM's own",
        "macfilter: 1",
    ]
    for key, nets in _lists(fw).items():
        out += ["", f"[IPSET {key}] # {_set_comment(key)}", ""]
        v4, v6 = _families(nets)
        members: list[Network] = [*v4, *v6]
        for net in members:
            if net.prefixlen == 0:
                # Proxmox VE refuses a zero prefix in an ipset: the two halves are the same set.
                first, second = net.subnets(prefixlen_diff=1)
                out.append(f"{first} # {net}, first half (PVE refuses /0 in an ipset)")
                out.append(f"{second} # {net}, second half")
            else:
                out.append(_address(net))
    out += ["", "[RULES]", ""]
    for direction in ("in", "out"):
        for rule in _port_rules(fw, direction):
            peer = ""
            if rule.peers is not None:
                peer = f"-{'source' if direction == 'in' else 'dest'} +{rule.peers} "
            out.append(f"{direction.upper()} ACCEPT {peer}-p {rule.proto} -dport {rule.port} "
                       f"# {rule.comment}")
        for icmp in _ICMP_RULES:
            if icmp.direction != direction or not icmp.pve:
                continue
            proto = "icmp" if icmp.version == 4 else "icmpv6"
            for name in icmp.types:
                out.append(f"{direction.upper()} ACCEPT -p {proto} -icmp-type {name} "
                           f"# {icmp.comment}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Markdown


def render_markdown(fw: Firewall, gateway: str) -> str:
    """A change request for whoever runs the network firewall in front of the gateway."""
    host = _md(gateway)
    lists = {key: ", ".join(_address(n) for n in nets) for key, nets in _lists(fw).items()}
    if "cluster_nodes" in lists:  # each node by name, with its addresses
        lists["cluster_nodes"] = "; ".join(
            f"{_md(n.hostname)} ({', '.join(_address(a) for a in n.addresses)})"
            for n in fw.nodes)
    names = {"mail_servers": "mail servers", "admin_sources": "admin sources",
             "dns_servers": "DNS servers", "ssh_sources": "SSH sources (admins)",
             "cluster_nodes": "cluster nodes"}
    out = [
        f"## Firewall change request: Proxmox Mail Gateway {host}",
        "",
        f"Please allow the following traffic to and from the mail gateway {host} (the Proxmox "
        "Mail Gateway prerequisites), for IPv4 and IPv6 alike; everything else to and from the "
        "gateway may stay blocked. The firewall is expected to be stateful: replies to allowed "
        "connections pass. IPv6 neighbour discovery stays on the local link and needs no rule "
        "here.",
        *([] if not fw.cluster else [
            "",
            f"The gateway is a cluster of {len(fw.nodes)} nodes: every row applies to each "
            "node, and the nodes reach each other on 22/tcp (PMG synchronises its database "
            "through an SSH tunnel) and 8006/tcp (the API).",
        ]),
        "",
        "| # | Direction | Protocol/port | Source | Destination | Why |",
        "|---|---|---|---|---|---|",
    ]
    rows: list[tuple[str, str, str, str, str]] = []
    merged: dict[tuple[Direction, int, str | None], list[_PortRule]] = {}
    for rule in (*_port_rules(fw, "in"), *_port_rules(fw, "out")):  # one row per port and peers
        merged.setdefault((rule.direction, rule.port, rule.peers), []).append(rule)
    for direction in ("in", "out"):
        for (way, port, peers), group in merged.items():
            if way != direction:
                continue
            protos = ", ".join(f"{port}/{r.proto}" for r in sorted(group, key=lambda r: r.proto))
            peer = f"{names[peers]}: {lists[peers]}" if peers else "any"
            why = "; ".join(dict.fromkeys(r.markdown_why for r in group))
            if direction == "in":
                rows.append(("inbound", protos, peer, "gateway", why))
            else:
                rows.append(("outbound", protos, "gateway", peer, why))
        if direction == "in":
            rows.append(("inbound", "ICMP types 3 (incl. code 4), 11, 12; ICMPv6 types 1, 2, 3, 4",
                         "any", "gateway", "error reports and path MTU discovery: without them "
                                           "large mails stall on paths with a smaller MTU"))
            rows.append(("inbound", "ICMP echo-request (8), ICMPv6 echo-request (128)", "any",
                         "gateway", "optional: ping for monitoring and diagnostics"))
        else:
            rows.append(("outbound", "ICMP echo-request (8), ICMPv6 echo-request (128)",
                         "gateway", "any", "optional: ping from the gateway to test reachability"))
    for n, (verb, protos, source, dest, why) in enumerate(rows, 1):
        out.append(f"| {n} | {verb} | {protos} | {source} | {dest} | {why} |")
    out += [
        "",
        "Outbound HTTP(S) cannot be limited by name at an address-based firewall; the hosts "
        "behind it are deb.debian.org, security.debian.org, download.proxmox.com, "
        "enterprise.proxmox.com, database.clamav.net, the SpamAssassin update mirrors and "
        "Let's Encrypt. Razor currently answers from 208.83.137.0/24.",
    ]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    """A caller's string in Markdown: escaped when not printable, table pipes neutralised."""
    return _shown(text).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


FORMATS: dict[str, Callable[[Firewall, str], str]] = {
    "nftables": render_nftables,
    "pve": render_pve,
    "markdown": render_markdown,
}
