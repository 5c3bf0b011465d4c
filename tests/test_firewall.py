"""The firewall of the PMG prerequisites (spec-v1 §6.3): the spec block, and the three formats.

The nftables output is loaded for real (`nft -c -f`, then `nft -f` in a network namespace of its
own) and read back as JSON; the Proxmox VE file is read with a small parser that follows the
grammar of pve-firewall's config parser. The expected rules are written out here, from the
prerequisites page, not taken from the module.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import subprocess
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from pmgdns.families.firewall import ClusterNode, Firewall, parse_firewall
from pmgdns.firewall.rules import (
    FORMATS,
    render_markdown,
    render_nftables,
    render_pve,
)

from .netns import Lab

NFT = "/usr/sbin/nft"
SPEC: dict[str, Any] = {
    "mail_servers": ["10.0.0.5", "2001:db8:1::25"],
    "admin_sources": ["192.0.2.0/24", "198.51.100.7", "2001:db8:2::/48"],
    "dns_servers": ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"],
}


class Failed(ValueError):
    """What the test's `fail` returns: the key path and the message."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(path)}: {message}")
        self.path = path
        self.message = message


def fail(path: tuple[str, ...], message: str) -> Exception:
    return Failed(path, message)


def check(value: object) -> tuple[Firewall, list[tuple[tuple[str, ...], str]]]:
    warnings: list[tuple[tuple[str, ...], str]] = []
    fw = parse_firewall(value, ("firewall",), fail, lambda p, m: warnings.append((p, m)))
    return fw, warnings


def failure(value: object) -> Failed:
    with pytest.raises(Failed) as info:
        check(value)
    return info.value


def spec(**changes: Any) -> dict[str, Any]:
    out = {k: list(v) for k, v in SPEC.items()}
    out.update(changes)
    return out


def nets(*texts: str) -> set[IPv4Network | IPv6Network]:
    return {ip_network(t) for t in texts}


# ------------------------------------------------------------------------------------------
# parse_firewall


def test_parse_valid_block_bare_addresses_become_host_networks() -> None:
    fw, warnings = check(spec(admin_sources=[" 192.0.2.0/24 ", "2001:db8:2::/48"]))
    assert warnings == []
    assert fw.mail_servers == (IPv4Network("10.0.0.5/32"), IPv6Network("2001:db8:1::25/128"))
    assert fw.admin_sources == (IPv4Network("192.0.2.0/24"), IPv6Network("2001:db8:2::/48"))
    assert fw.dns_servers == (IPv4Network("1.1.1.1/32"), IPv4Network("8.8.8.8/32"),
                              IPv6Network("2606:4700:4700::1111/128"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fw.mail_servers = ()


def test_parse_ipv6_only_lists() -> None:
    fw, warnings = check({"mail_servers": ["2001:db8:10::/64"], "admin_sources": ["fd00:1::/48"],
                          "dns_servers": ["2001:4860:4860::8888"]})
    assert warnings == []
    assert fw.mail_servers == (IPv6Network("2001:db8:10::/64"),)
    assert fw.admin_sources == (IPv6Network("fd00:1::/48"),)
    assert all(isinstance(n, IPv6Network) for n in fw.dns_servers)


def test_unknown_key_suggests_and_lists_allowed() -> None:
    err = failure({**SPEC, "mail_server": ["10.0.0.6"]})
    assert err.path == ("firewall", "mail_server")
    assert "unknown key 'mail_server'" in err.message
    assert "did you mean 'mail_servers'?" in err.message
    assert "mail_servers, admin_sources, dns_servers" in err.message


def test_unknown_key_with_control_character_is_shown_escaped() -> None:
    err = failure({**SPEC, "dns\x1bservers\n": []})
    assert "\x1b" not in str(err) and "\n" not in str(err)
    assert "'dns\\x1bservers\\n'" in err.message
    assert err.path == ("firewall", "'dns\\x1bservers\\n'")


def test_bad_cidr_names_path_with_index_and_fix() -> None:
    err = failure(spec(mail_servers=["10.0.0.5", "10.0.0.300"]))
    assert err.path == ("firewall", "mail_servers", "1")
    assert "'10.0.0.300' is not an IP address or CIDR network" in err.message
    assert "e.g. 10.0.0.5, 192.0.2.0/24, 2001:db8::5 or 2001:db8::/64" in err.message


def test_host_bits_set_says_which_network_was_meant() -> None:
    err = failure(spec(admin_sources=["192.0.2.10/24"]))
    assert err.path == ("firewall", "admin_sources", "0")
    assert "'192.0.2.10/24' has host bits set" in err.message
    assert "write 192.0.2.0/24 for the whole network or 192.0.2.10 for the single host" \
        in err.message
    err6 = failure(spec(mail_servers=["10.0.0.5", "2001:db8::5/64"]))
    assert err6.path == ("firewall", "mail_servers", "1")
    assert "2001:db8::/64" in err6.message and "2001:db8::5 for the single host" in err6.message


def test_empty_mail_servers_is_an_error_with_reason_and_fix() -> None:
    err = failure(spec(mail_servers=[]))
    assert err.path == ("firewall", "mail_servers")
    assert "must not be empty" in err.message
    assert "26/tcp" in err.message and "open to nobody" in err.message
    assert "e.g. [10.0.0.5]" in err.message


def test_empty_admin_sources_and_dns_servers_are_errors() -> None:
    assert "lock yourself out" in failure(spec(admin_sources=[])).message
    assert "could resolve no names" in failure(spec(dns_servers=[])).message


def test_missing_key_is_an_error() -> None:
    err = failure({"mail_servers": ["10.0.0.5"], "admin_sources": ["192.0.2.0/24"]})
    assert err.path == ("firewall", "dns_servers")
    assert err.message.startswith("is missing")


def test_not_a_list() -> None:
    err = failure(spec(mail_servers="10.0.0.5"))
    assert err.path == ("firewall", "mail_servers")
    assert "must be a list of IP addresses or CIDR networks, not a string '10.0.0.5'" \
        in err.message
    assert "[a, b]" in err.message


def test_not_a_mapping() -> None:
    err = failure(["10.0.0.5"])
    assert err.path == ("firewall",)
    assert err.message == ("must be a mapping with the keys mail_servers, admin_sources, "
                           "dns_servers (and optionally ssh_sources), not a list")


def test_entry_that_is_not_text() -> None:
    err = failure(spec(dns_servers=["1.1.1.1", 10]))
    assert err.path == ("firewall", "dns_servers", "1")
    assert "written as text, not a number 10" in err.message
    assert "written as text, not a mapping" in failure(spec(mail_servers=[{"a": 1}])).message


def test_control_character_in_value_is_shown_escaped() -> None:
    err = failure(spec(mail_servers=["10.0.0.5\n\x1b[31m"]))
    assert err.path == ("firewall", "mail_servers", "0")
    assert "'10.0.0.5\\n\\x1b[31m'" in err.message
    assert "\n" not in err.message and "\x1b" not in err.message


def test_zero_prefix_in_admin_sources_warns_for_v4_and_v6() -> None:
    fw, warnings = check(spec(admin_sources=["0.0.0.0/0", "::/0"]))
    assert fw.admin_sources == (IPv4Network("0.0.0.0/0"), IPv6Network("::/0"))
    assert [p for p, _ in warnings] == [("firewall", "admin_sources", "0"),
                                        ("firewall", "admin_sources", "1")]
    assert "'0.0.0.0/0' opens the web UI (8006/tcp) to the whole IPv4 internet" in warnings[0][1]
    assert "'::/0' opens the web UI (8006/tcp) to the whole IPv6 internet" in warnings[1][1]
    assert all("restricted sources only" in m for _, m in warnings)


def test_zero_prefix_in_mail_servers_warns() -> None:
    _, warnings = check(spec(mail_servers=["0.0.0.0/0"]))
    assert warnings and warnings[0][0] == ("firewall", "mail_servers", "0")
    assert "26/tcp" in warnings[0][1] and "whole IPv4 internet" in warnings[0][1]


def test_wide_public_prefix_warns_but_wide_private_does_not() -> None:
    _, warnings = check(spec(admin_sources=["10.0.0.0/8", "fc00::/7", "172.16.0.0/12"]))
    assert warnings == []
    _, warnings = check(spec(admin_sources=["64.0.0.0/3", "2001::/16", "203.0.113.0/24"]))
    assert [p[-1] for p, _ in warnings] == ["0", "1"]
    assert "to 536870912 public IPv4 addresses" in warnings[0][1]


def test_duplicates_and_overlaps_are_errors() -> None:
    err = failure(spec(mail_servers=["10.0.0.5", "2001:db8::1", "10.0.0.5/32"]))
    assert err.path == ("firewall", "mail_servers", "2")
    assert "'10.0.0.5/32' repeats entry 0 (10.0.0.5/32)" in err.message
    err = failure(spec(admin_sources=["192.0.2.0/24", "192.0.2.7"]))
    assert err.path == ("firewall", "admin_sources", "1")
    assert "lies inside entry 0 (192.0.2.0/24)" in err.message
    err = failure(spec(admin_sources=["192.0.2.7", "192.0.2.0/24"]))
    assert "contains entry 0 (192.0.2.7/32); remove entry 0" in err.message


def test_dns_servers_must_be_host_addresses() -> None:
    err = failure(spec(dns_servers=["1.1.1.0/24"]))
    assert err.path == ("firewall", "dns_servers", "0")
    assert "is a network of 256 addresses" in err.message and "resolver" in err.message
    err = failure(spec(dns_servers=["1.1.1.1/24"]))
    assert "has host bits set" in err.message and "1.1.1.1" in err.message


def test_odd_addresses_are_refused() -> None:
    err = failure(spec(mail_servers=["fe80::1%eth0"]))
    assert "zone index" in err.message and "write fe80::1" in err.message
    err = failure(spec(mail_servers=["fe80::1%\x1b[2J"]))
    assert "\x1b" not in err.message and "'fe80::1%\\x1b[2J'" in err.message
    err = failure(spec(mail_servers=["::ffff:10.0.0.5"]))
    assert "IPv4-mapped" in err.message and "10.0.0.5 instead" in err.message
    assert "unspecified address" in failure(spec(dns_servers=["0.0.0.0"])).message


def test_loopback_resolver_warns() -> None:
    _, warnings = check(spec(dns_servers=["127.0.0.1", "9.9.9.9"]))
    assert warnings[0][0] == ("firewall", "dns_servers", "0")
    assert "is the gateway itself" in warnings[0][1]


# ------------------------------------------------------------------------------------------
# nftables, for real


def sample() -> Firewall:
    return check(SPEC)[0]


def write(tmp_path: Path, text: str, name: str = "pmgdns.nft") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def load_in_namespace(*files: Path) -> list[dict[str, Any]]:
    """Load the files, in order, into a fresh network namespace and list its ruleset as JSON."""
    script = " && ".join(f"{NFT} -f '{f}'" for f in files) + f" && {NFT} -j list ruleset"
    done = run("unshare", "-n", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    items: list[dict[str, Any]] = json.loads(done.stdout)["nftables"]
    return items


def of_kind(items: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item[kind] for item in items if kind in item]


def element(e: Any) -> IPv4Network | IPv6Network:
    if isinstance(e, str):
        return ip_network(e)
    return ip_network(f"{e['prefix']['addr']}/{e['prefix']['len']}")


def describe(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule's matches as {"proto.field": right}, and its verdict."""
    matches: dict[str, Any] = {}
    verdict = None
    limit = None
    for expr in rule["expr"]:
        if "match" in expr:
            left, right = expr["match"]["left"], expr["match"]["right"]
            if "payload" in left:
                key = f"{left['payload']['protocol']}.{left['payload']['field']}"
            elif "meta" in left:
                key = f"meta.{left['meta']['key']}"
            else:
                key = f"ct.{left['ct']['key']}"
            if isinstance(right, dict) and "set" in right:
                right = sorted(right["set"])
            elif isinstance(right, list):
                right = sorted(right)
            matches[key] = right
        elif "limit" in expr:
            limit = expr["limit"]
        elif "accept" in expr or "drop" in expr:
            verdict = "accept" if "accept" in expr else "drop"
    return {"chain": rule["chain"], "matches": matches, "verdict": verdict, "limit": limit,
            "comment": rule.get("comment", "")}


# What the prerequisites ask for: (chain, proto, port, address match or None for any).
EXPECTED_PORTS = {
    ("input", "tcp", 25, None),
    ("input", "tcp", 26, ("ip.saddr", "@mail_servers_v4")),
    ("input", "tcp", 26, ("ip6.saddr", "@mail_servers_v6")),
    ("input", "tcp", 8006, ("ip.saddr", "@admin_sources_v4")),
    ("input", "tcp", 8006, ("ip6.saddr", "@admin_sources_v6")),
    ("output", "udp", 53, ("ip.daddr", "@dns_servers_v4")),
    ("output", "udp", 53, ("ip6.daddr", "@dns_servers_v6")),
    ("output", "tcp", 53, ("ip.daddr", "@dns_servers_v4")),
    ("output", "tcp", 53, ("ip6.daddr", "@dns_servers_v6")),
    ("output", "udp", 123, None),
    ("output", "tcp", 80, None),
    ("output", "tcp", 443, None),
    ("output", "udp", 443, None),
    ("output", "tcp", 25, None),
    ("output", "tcp", 2703, None),
}
EXPECTED_SETS = {
    "mail_servers_v4": nets("10.0.0.5/32"),
    "mail_servers_v6": nets("2001:db8:1::25/128"),
    "admin_sources_v4": nets("192.0.2.0/24", "198.51.100.7/32"),
    "admin_sources_v6": nets("2001:db8:2::/48"),
    "dns_servers_v4": nets("1.1.1.1/32", "8.8.8.8/32"),
    "dns_servers_v6": nets("2606:4700:4700::1111/128"),
}


def port_rules(rules: list[dict[str, Any]]) -> set[tuple[str, str, int, Any]]:
    out = set()
    for r in rules:
        for proto in ("tcp", "udp"):
            if f"{proto}.dport" in r["matches"]:
                addr = [(k, v) for k, v in r["matches"].items()
                        if k in ("ip.saddr", "ip6.saddr", "ip.daddr", "ip6.daddr")]
                assert len(addr) <= 1
                out.add((r["chain"], proto, r["matches"][f"{proto}.dport"],
                         addr[0] if addr else None))
    return out


def test_nftables_passes_nft_check(tmp_path: Path) -> None:
    path = write(tmp_path, render_nftables(sample(), "mx1.example.com"))
    done = run(NFT, "-c", "-f", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_nftables_loaded_in_a_namespace_holds_the_prerequisites(tmp_path: Path) -> None:
    items = load_in_namespace(write(tmp_path, render_nftables(sample(), "mx1.example.com")))
    # a namespace of its own: only our table is there
    assert [(t["family"], t["name"]) for t in of_kind(items, "table")] == [("inet", "pmgdns")]

    chains = {c["name"]: c for c in of_kind(items, "chain")}
    assert set(chains) == {"input", "output", "forward"}
    for name in chains:
        assert (chains[name]["hook"], chains[name]["type"], chains[name]["policy"]) == (
            name, "filter", "drop")

    sets = {s["name"]: s for s in of_kind(items, "set")}
    assert set(sets) == set(EXPECTED_SETS)
    for name, expected in EXPECTED_SETS.items():
        assert sets[name]["type"] == ("ipv4_addr" if name.endswith("v4") else "ipv6_addr")
        assert sets[name]["flags"] == ["interval"]
        assert {element(e) for e in sets[name]["elem"]} == expected, name

    rules = [describe(r) for r in of_kind(items, "rule")]
    assert port_rules(rules) == EXPECTED_PORTS
    # every port rule accepts and says which prerequisite it comes from
    for r in rules:
        assert r["comment"], r
        if any(k.endswith(".dport") for k in r["matches"]):
            assert r["verdict"] == "accept"
            port = r["matches"].get("tcp.dport", r["matches"].get("udp.dport"))
            assert r["comment"].startswith("prerequisites "), r
            assert str(port) in r["comment"], r
        else:
            assert r["comment"].startswith("implicit"), r

    for chain, lo in (("input", "iif"), ("output", "oif")):
        mine = [r for r in rules if r["chain"] == chain]
        assert mine[0]["matches"] == {f"meta.{lo}": "lo"} and mine[0]["verdict"] == "accept"
        assert mine[1]["matches"] == {"ct.state": ["established", "related"]}
        assert mine[1]["verdict"] == "accept"
        drops = [r for r in mine if r["verdict"] == "drop"]
        assert [d["matches"] for d in drops] == [{"ct.state": "invalid"}]
        # nothing after the invalid drop matches ICMP errors (they come first)
        first_port = next(i for i, r in enumerate(mine) if "tcp.dport" in r["matches"]
                          or "udp.dport" in r["matches"])
        assert mine.index(drops[0]) < first_port

    def accepted_icmp(chain: str, proto: str) -> set[str]:
        out: set[str] = set()
        for r in rules:
            if r["chain"] == chain and r["verdict"] == "accept" and f"{proto}.type" in r["matches"]:
                value = r["matches"][f"{proto}.type"]
                out |= set(value if isinstance(value, list) else [value])
        return out

    # path MTU discovery and error reports
    assert {"destination-unreachable", "time-exceeded"} <= accepted_icmp("input", "icmp")
    assert {"packet-too-big", "destination-unreachable", "time-exceeded",
            "parameter-problem"} <= accepted_icmp("input", "icmpv6")
    # IPv6 neighbour discovery both ways, router advertisements in, MLD
    assert {"nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert",
            "mld-listener-query"} <= accepted_icmp("input", "icmpv6")
    assert {"nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-solicit",
            "mld2-listener-report"} <= accepted_icmp("output", "icmpv6")
    nd = [r for r in rules if r["chain"] == "input"
          and "nd-neighbor-solicit" in r["matches"].get("icmpv6.type", [])]
    assert nd[0]["matches"]["ip6.hoplimit"] == 255
    # ping is optional: accepted, rate-limited inbound
    ping_in = [r for r in rules if r["chain"] == "input"
               and r["matches"].get("icmp.type") == "echo-request"]
    assert ping_in[0]["limit"] == {"rate": 10, "burst": 5, "per": "second"}
    # redirects are not accepted: the host's routes are not the internet's to change
    assert "redirect" not in accepted_icmp("input", "icmp")
    assert "nd-redirect" not in accepted_icmp("input", "icmpv6")


def test_nftables_reload_replaces_only_its_own_table(tmp_path: Path) -> None:
    other = write(tmp_path, "table inet other {\n\tchain c {\n\t}\n}\n", "other.nft")
    first = write(tmp_path, render_nftables(sample(), "mx1.example.com"), "a.nft")
    smaller = check(spec(admin_sources=["203.0.113.0/24"]))[0]
    second = write(tmp_path, render_nftables(smaller, "mx1.example.com"), "b.nft")
    items = load_in_namespace(other, first, first, second)
    assert sorted(t["name"] for t in of_kind(items, "table")) == ["other", "pmgdns"]
    sets = {s["name"]: s for s in of_kind(items, "set")}
    assert {element(e) for e in sets["admin_sources_v4"]["elem"]} == nets("203.0.113.0/24")
    assert "elem" not in sets["admin_sources_v6"]  # the old IPv6 network is gone
    once = [r for r in of_kind(items, "rule") if r["table"] == "pmgdns"]
    assert len(once) == len(of_kind(load_in_namespace(first), "rule"))


def test_nftables_zero_prefix_and_single_family_lists_load(tmp_path: Path) -> None:
    fw, _ = check({"mail_servers": ["2001:db8:1::/64"], "admin_sources": ["0.0.0.0/0", "::/0"],
                   "dns_servers": ["9.9.9.9"]})
    items = load_in_namespace(write(tmp_path, render_nftables(fw, "mx1.example.com")))
    sets = {s["name"]: s for s in of_kind(items, "set")}
    assert {element(e) for e in sets["admin_sources_v4"]["elem"]} == nets("0.0.0.0/0")
    assert {element(e) for e in sets["admin_sources_v6"]["elem"]} == nets("::/0")
    assert "elem" not in sets["mail_servers_v4"] and "elem" not in sets["dns_servers_v6"]


def test_hand_built_overlapping_firewall_is_collapsed(tmp_path: Path) -> None:
    fw = Firewall(mail_servers=(IPv4Network("10.0.0.0/25"), IPv4Network("10.0.0.128/25"),
                                IPv4Network("10.0.0.7/32")),
                  admin_sources=(IPv4Network("192.0.2.0/24"),),
                  dns_servers=(IPv4Network("1.1.1.1/32"),))
    items = load_in_namespace(write(tmp_path, render_nftables(fw, "mx1.example.com")))
    sets = {s["name"]: s for s in of_kind(items, "set")}
    assert {element(e) for e in sets["mail_servers_v4"]["elem"]} == nets("10.0.0.0/24")


def test_gateway_name_cannot_inject_into_the_outputs(tmp_path: Path) -> None:
    evil = "mx1.example.com\nflush ruleset\n| x | y |"
    text = render_nftables(sample(), evil)
    assert "\nflush ruleset" not in text
    assert "'mx1.example.com\\nflush ruleset\\n| x | y |'" in text
    done = run(NFT, "-c", "-f", str(write(tmp_path, text)))
    assert done.returncode == 0, done.stderr
    assert "\nflush ruleset" not in render_pve(sample(), evil)
    md = render_markdown(sample(), evil)
    assert "\nflush ruleset" not in md and "\\| x \\| y \\|" in md


# ------------------------------------------------------------------------------------------
# Proxmox VE

# The grammar of pve-firewall's VM config (src/PVE/Firewall.pm, read for this test).
PVE_BOOL_OPTIONS = {"enable", "dhcp", "ndp", "radv", "macfilter", "ipfilter", "ips"}
PVE_IPSET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-_]+")
PVE_ICMP_TYPES = {"destination-unreachable", "time-exceeded", "parameter-problem",
                  "fragmentation-needed", "echo-request", "echo-reply"}
PVE_ICMPV6_TYPES = {"destination-unreachable", "packet-too-big", "time-exceeded",
                    "parameter-problem", "echo-request", "echo-reply"}


def parse_pve(text: str) -> dict[str, Any]:
    options: dict[str, str] = {}
    ipsets: dict[str, list[IPv4Network | IPv6Network]] = {}
    rules: list[dict[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := re.fullmatch(r"\[(\w+)(?:\s+(\S+))?\]\s*(?:#.*)?", line):
            kind, name = m.group(1).upper(), m.group(2)
            assert kind in ("OPTIONS", "IPSET", "RULES"), line
            section = kind
            if kind == "IPSET":
                assert name and PVE_IPSET_NAME.fullmatch(name) and len(name) <= 64, line
                assert name not in ipsets
                ipsets[name] = []
            continue
        assert section, f"line outside a section: {line!r}"
        if section == "OPTIONS":
            m = re.fullmatch(r"(\w+):\s*(\S+)", line)  # no trailing comment allowed
            assert m, line
            key, value = m.groups()
            if key in PVE_BOOL_OPTIONS:
                assert value in ("0", "1"), line
            else:
                assert key in ("policy_in", "policy_out") and value in ("ACCEPT", "DROP",
                                                                         "REJECT"), line
            options[key] = value
        elif section == "IPSET":
            entry = line.split("#", 1)[0].strip()
            net = ip_network(entry)
            assert net.prefixlen > 0, "pve-firewall refuses a zero prefix in an ipset"
            members = ipsets[list(ipsets)[-1]]
            assert net not in members
            members.append(net)
        else:
            body, _, comment = line.partition("#")
            tokens = body.split()
            assert tokens[0] in ("IN", "OUT") and tokens[1] in ("ACCEPT", "DROP", "REJECT"), line
            rule = {"dir": tokens[0], "action": tokens[1], "comment": comment.strip()}
            rest = tokens[2:]
            while rest:
                flag, value = rest[0], rest[1]
                name = {"-p": "proto", "-proto": "proto"}.get(flag, flag.lstrip("-"))
                assert name in ("proto", "dport", "sport", "source", "dest", "icmp-type"), line
                rule[name] = value
                rest = rest[2:]
            if "dport" in rule:
                assert rule["proto"] in ("tcp", "udp") and 0 < int(rule["dport"]) < 65536
            if "icmp-type" in rule:
                names = PVE_ICMP_TYPES if rule["proto"] == "icmp" else PVE_ICMPV6_TYPES
                assert rule["proto"] in ("icmp", "icmpv6") and rule["icmp-type"] in names, line
            for key in ("source", "dest"):
                if key in rule:
                    assert rule[key].startswith("+") and rule[key][1:] in ipsets, line
            rules.append(rule)
    return {"options": options, "ipsets": ipsets, "rules": rules}


def test_pve_file_holds_the_prerequisites_v4_and_v6() -> None:
    text = render_pve(sample(), "mx1.example.com")
    assert "/etc/pve/firewall/<VMID>.fw" in text.split("[OPTIONS]")[0]
    fw = parse_pve(text)
    assert fw["options"]["enable"] == "1"
    assert fw["options"]["policy_in"] == "DROP" and fw["options"]["policy_out"] == "DROP"
    assert fw["options"]["ndp"] == "1"

    sets = fw["ipsets"]
    assert set(sets) == {"mail_servers", "admin_sources", "dns_servers"}
    assert set(sets["mail_servers"]) == nets("10.0.0.5/32", "2001:db8:1::25/128")
    assert set(sets["admin_sources"]) == nets("192.0.2.0/24", "198.51.100.7/32",
                                               "2001:db8:2::/48")
    assert set(sets["dns_servers"]) == nets("1.1.1.1/32", "8.8.8.8/32",
                                             "2606:4700:4700::1111/128")

    got: set[tuple[str, str, int, tuple[str, str] | None]] = set()
    for r in fw["rules"]:
        assert r["action"] == "ACCEPT" and r["comment"], r
        if "dport" not in r:
            continue
        assert r["comment"].startswith("prerequisites ") and r["dport"] in r["comment"]
        chain = "input" if r["dir"] == "IN" else "output"
        peer = r.get("source") or r.get("dest")
        if peer is None:
            got.add((chain, r["proto"], int(r["dport"]), None))
            continue
        # one PVE rule covers both families: each ipset must hold v4 and v6 members here
        members = sets[peer[1:]]
        for version, field in ((4, "ip"), (6, "ip6")):
            assert any(n.version == version for n in members), (peer, version)
            side = "saddr" if r["dir"] == "IN" else "daddr"
            got.add((chain, r["proto"], int(r["dport"]),
                     (f"{field}.{side}", f"@{peer[1:]}_v{version}")))
    assert got == EXPECTED_PORTS

    icmp = {(r["dir"], r["proto"], r["icmp-type"]) for r in fw["rules"] if "icmp-type" in r}
    assert {("IN", "icmp", "destination-unreachable"), ("IN", "icmp", "time-exceeded"),
            ("IN", "icmpv6", "packet-too-big"), ("IN", "icmpv6", "destination-unreachable"),
            ("IN", "icmpv6", "time-exceeded")} <= icmp
    assert all(r["comment"].startswith("implicit") for r in fw["rules"] if "icmp-type" in r)


def test_pve_zero_prefix_is_written_as_two_halves() -> None:
    fw, _ = check(spec(admin_sources=["0.0.0.0/0", "::/0"]))
    sets = parse_pve(render_pve(fw, "mx1.example.com"))["ipsets"]
    admin = sets["admin_sources"]
    assert set(admin) == nets("0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1")
    v4 = [n for n in admin if isinstance(n, IPv4Network)]
    assert list(ipaddress.collapse_addresses(v4)) == [IPv4Network("0.0.0.0/0")]


# ------------------------------------------------------------------------------------------
# Markdown, and the format table


def test_markdown_change_request_table() -> None:
    text = render_markdown(sample(), "mx1.example.com")
    assert text.startswith("## Firewall change request: Proxmox Mail Gateway mx1.example.com")
    table = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["#", "Direction", "Protocol/port", "Source", "Destination", "Why"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert all(len(r) == 6 and r[5] for r in rows)
    by_port = {(r[1], r[2]): r for r in rows}
    assert by_port[("inbound", "25/tcp")][3:5] == ["any", "gateway"]
    assert by_port[("inbound", "26/tcp")][3] == "mail servers: 10.0.0.5, 2001:db8:1::25"
    assert by_port[("inbound", "8006/tcp")][3] == (
        "admin sources: 192.0.2.0/24, 198.51.100.7, 2001:db8:2::/48")
    assert by_port[("outbound", "53/tcp, 53/udp")][3:5] == [
        "gateway", "DNS servers: 1.1.1.1, 8.8.8.8, 2606:4700:4700::1111"]
    for port in ("123/udp", "80/tcp", "443/tcp, 443/udp", "25/tcp", "2703/tcp"):
        assert by_port[("outbound", port)][3:5] == ["gateway", "any"], port
    assert any("path MTU" in r[5] for r in rows)
    assert "IPv4 and IPv6" in text


def test_formats_table() -> None:
    assert set(FORMATS) == {"nftables", "pve", "markdown"}
    assert FORMATS["nftables"] is render_nftables and FORMATS["pve"] is render_pve
    for name, render in FORMATS.items():
        text = render(sample(), "mx1.example.com")
        assert text.endswith("\n") and "mx1.example.com" in text, name


def test_nftables_included_from_a_flushing_nftables_conf(tmp_path: Path) -> None:
    """The README's persistent set-up: Debian's /etc/nftables.conf flushes, then includes."""
    rules = write(tmp_path, render_nftables(sample(), "mx1.example.com"))
    conf = write(tmp_path, f'#!/usr/sbin/nft -f\nflush ruleset\ninclude "{rules}"\n',
                 "nftables.conf")
    done = run(NFT, "-c", "-f", str(conf))
    assert done.returncode == 0, done.stderr
    items = load_in_namespace(conf, conf)  # loading it twice (a service reload) also works
    assert [t["name"] for t in of_kind(items, "table")] == ["pmgdns"]
    assert len(of_kind(items, "rule")) == len(of_kind(load_in_namespace(rules), "rule"))


# -- through the command line --------------------------------------------------------------------


def _cli_project(project: Any, firewall: Any) -> None:
    spec = project.spec()
    spec["firewall"] = firewall
    project.write_spec(spec)


@pytest.mark.parametrize("firewall,fragments", [
    ({"mail_servers": ["10.0.0.5/33"], "admin_sources": ["192.0.2.0/24"],
      "dns_servers": ["1.1.1.1"]}, ("firewall.mail_servers.0",)),
    ({"mail_servers": ["10.0.0.5"], "admin_sources": ["192.0.2.0/24"],
      "dns_servers": ["1.1.1.1"], "mailservers": ["x"]}, ("firewall.mailservers", "unknown key")),
    ({"mail_servers": [], "admin_sources": ["192.0.2.0/24"], "dns_servers": ["1.1.1.1"]},
     ("firewall.mail_servers", "26/tcp")),
])
def test_bad_firewall_blocks_exit_1_and_apply_nothing(project: Any, firewall: Any,
                                                       fragments: tuple[str, ...]) -> None:
    from .conftest import assert_clean_error

    _cli_project(project, firewall)
    for command in (["validate"], ["firewall"], ["apply", "--yes"]):
        assert_clean_error(project.run(*command), "config/site.yaml", *fragments)
    assert not (project.root / "build" / "zones").exists()


def test_firewall_command_and_validate_warning(project: Any, tmp_path: Path) -> None:
    from .conftest import assert_clean_error

    assert_clean_error(project.run("firewall"), "no `firewall:` block")
    _cli_project(project, {"mail_servers": ["10.0.0.5"], "admin_sources": ["0.0.0.0/0"],
                           "dns_servers": ["1.1.1.1", "2606:4700:4700::1111"]})
    result = project.run("validate")
    assert result.code == 0
    assert "firewall.admin_sources.0" in result.err and "0.0.0.0/0" in result.err
    nft = project.run("firewall", "--format", "nftables")
    assert nft.code == 0 and nft.out.startswith("#")
    path = tmp_path / "rules.nft"
    path.write_text(nft.out)
    check = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stderr
    pve = project.run("firewall", "--format", "pve")
    assert "[OPTIONS]" in pve.out and "[RULES]" in pve.out and "enable: 1" in pve.out
    md = project.run("firewall", "--format", "markdown")
    assert "| " in md.out and "8006" in md.out and "mx1.example.com" in md.out


# ------------------------------------------------------------------------------------------
# ssh_sources, and a cluster's nodes (spec-v1 §6.3, v1.2)


def test_ssh_sources_is_optional_and_checked_like_the_other_lists() -> None:
    fw, warnings = check(SPEC)
    assert fw.ssh_sources == () and warnings == []
    fw, warnings = check(spec(ssh_sources=["203.0.113.0/24", "2001:db8:3::7"]))
    assert fw.ssh_sources == (IPv4Network("203.0.113.0/24"), IPv6Network("2001:db8:3::7/128"))
    assert warnings == []
    err = failure(spec(ssh_sources=[]))
    assert err.path == ("firewall", "ssh_sources")
    assert "must not be empty" in err.message and "open to nobody" in err.message
    assert "leaving the key out" in err.message and "remove the key" in err.message
    err = failure(spec(ssh_sources=["203.0.113.0/24", "203.0.113.9"]))
    assert err.path == ("firewall", "ssh_sources", "1") and "lies inside entry 0" in err.message
    err = failure(spec(ssh_sources=["203.0.113.9", "203.0.113.9/32"]))
    assert "repeats entry 0" in err.message
    err = failure(spec(ssh_sources=["203.0.113.9/24"]))
    assert "has host bits set" in err.message and "203.0.113.0/24" in err.message
    err = failure(spec(ssh_sources="203.0.113.9"))
    assert err.path == ("firewall", "ssh_sources") and "must be a list" in err.message
    _, warnings = check(spec(ssh_sources=["0.0.0.0/0", "::/0"]))
    assert [p for p, _ in warnings] == [("firewall", "ssh_sources", "0"),
                                        ("firewall", "ssh_sources", "1")]
    assert "opens SSH (22/tcp) to the whole IPv4 internet" in warnings[0][1]
    assert "restricted sources only" in warnings[1][1]
    _, warnings = check(spec(ssh_sources=["64.0.0.0/3", "10.0.0.0/8", "fc00::/7"]))
    assert [p for p, _ in warnings] == [("firewall", "ssh_sources", "0")]
    assert "opens SSH (22/tcp) to 536870912 public IPv4 addresses" in warnings[0][1]
    assert "did you mean 'ssh_sources'?" in failure(spec(ssh_source=["10.0.0.1"])).message


NODE_ADDRESSES = {"mx1": ("192.0.2.1", "2001:db8::1"), "mx2": ("192.0.2.2", "2001:db8::2")}


def cluster(fw: Firewall, *names: str) -> Firewall:
    """`fw` with the gateway nodes `names` (default both of NODE_ADDRESSES)."""
    nodes = tuple(ClusterNode(f"{n}.example.com", tuple(ip_network(a) for a in NODE_ADDRESSES[n]))
                  for n in names or NODE_ADDRESSES)
    return dataclasses.replace(fw, nodes=nodes)


CLUSTER_PORTS = {
    ("input", "tcp", 22, ("ip.saddr", "@cluster_nodes_v4")),
    ("input", "tcp", 22, ("ip6.saddr", "@cluster_nodes_v6")),
    ("input", "tcp", 8006, ("ip.saddr", "@cluster_nodes_v4")),
    ("input", "tcp", 8006, ("ip6.saddr", "@cluster_nodes_v6")),
    ("output", "tcp", 22, ("ip.daddr", "@cluster_nodes_v4")),
    ("output", "tcp", 22, ("ip6.daddr", "@cluster_nodes_v6")),
    ("output", "tcp", 8006, ("ip.daddr", "@cluster_nodes_v4")),
    ("output", "tcp", 8006, ("ip6.daddr", "@cluster_nodes_v6")),
}
SSH_PORTS = {("input", "tcp", 22, ("ip.saddr", "@ssh_sources_v4")),
             ("input", "tcp", 22, ("ip6.saddr", "@ssh_sources_v6"))}


def test_nftables_of_a_cluster_with_ssh_sources(tmp_path: Path) -> None:
    fw = cluster(check(spec(ssh_sources=["203.0.113.0/24"]))[0])
    path = write(tmp_path, render_nftables(fw, "mx1.example.com, mx2.example.com"))
    done = run(NFT, "-c", "-f", str(path))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    items = load_in_namespace(path)
    sets = {s["name"]: s for s in of_kind(items, "set")}
    assert {element(e) for e in sets["cluster_nodes_v4"]["elem"]} == nets("192.0.2.1/32",
                                                                          "192.0.2.2/32")
    assert {element(e) for e in sets["cluster_nodes_v6"]["elem"]} == nets("2001:db8::1/128",
                                                                          "2001:db8::2/128")
    assert {element(e) for e in sets["ssh_sources_v4"]["elem"]} == nets("203.0.113.0/24")
    rules = [describe(r) for r in of_kind(items, "rule")]
    assert port_rules(rules) == EXPECTED_PORTS | CLUSTER_PORTS | SSH_PORTS
    for r in rules:
        if r["matches"].get("tcp.dport") == 22 or "@cluster_nodes_v4" in r["matches"].values():
            assert r["comment"].startswith(("cluster ", "admin ")), r
    header = path.read_text().split("\ntable inet pmgdns\n")[0]
    assert "firewall.ssh_sources" in header and "same file on every node" in header


def test_one_node_has_no_cluster_rules_and_no_ssh_without_ssh_sources(tmp_path: Path) -> None:
    fw = cluster(sample(), "mx1")
    text = render_nftables(fw, "mx1.example.com")
    items = load_in_namespace(write(tmp_path, text))
    assert {s["name"] for s in of_kind(items, "set")} == set(EXPECTED_SETS)
    assert port_rules([describe(r) for r in of_kind(items, "rule")]) == EXPECTED_PORTS
    assert "SSH (22/tcp) from anywhere is dropped" in text
    assert "firewall.ssh_sources" in text and "cluster" not in text
    pve = render_pve(fw, "mx1.example.com")
    assert "cluster_nodes" not in pve and "cluster's nodes" not in pve
    assert "SSH (22/tcp) from anywhere is dropped" in pve
    assert "cluster" not in render_markdown(fw, "mx1.example.com")


def test_pve_and_markdown_of_a_cluster() -> None:
    fw = cluster(check(spec(ssh_sources=["203.0.113.0/24"]))[0])
    pve = parse_pve(render_pve(fw, "mx1.example.com, mx2.example.com"))
    assert set(pve["ipsets"]["cluster_nodes"]) == nets("192.0.2.1/32", "192.0.2.2/32",
                                                       "2001:db8::1/128", "2001:db8::2/128")
    assert set(pve["ipsets"]["ssh_sources"]) == nets("203.0.113.0/24")
    got = {(r["dir"], int(r["dport"]), r.get("source") or r.get("dest")) for r in pve["rules"]
           if r.get("dport") in ("22", "8006")}
    assert got == {("IN", 22, "+cluster_nodes"), ("IN", 8006, "+cluster_nodes"),
                   ("OUT", 22, "+cluster_nodes"), ("OUT", 8006, "+cluster_nodes"),
                   ("IN", 22, "+ssh_sources"), ("IN", 8006, "+admin_sources")}
    assert all(r["proto"] == "tcp" and r["action"] == "ACCEPT" for r in pve["rules"]
               if r.get("dport") in ("22", "8006"))

    md = render_markdown(fw, "mx1.example.com, mx2.example.com")
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in md.splitlines()[1:] if line.startswith("| ") and line[2].isdigit()]
    nodes = "cluster nodes: mx1.example.com (192.0.2.1, 2001:db8::1); " \
            "mx2.example.com (192.0.2.2, 2001:db8::2)"
    by = {(r[1], r[2], r[3], r[4]) for r in rows}
    for port in ("22/tcp", "8006/tcp"):
        assert ("inbound", port, nodes, "gateway") in by
        assert ("outbound", port, "gateway", nodes) in by
    assert ("inbound", "22/tcp", "SSH sources (admins): 203.0.113.0/24", "gateway") in by
    assert "cluster of 2 nodes" in md


# -- real packets between namespaces ---------------------------------------------------------

LAB_HOSTS = {**NODE_ADDRESSES, "outsider": ("192.0.2.3", "2001:db8::3"),
             "admin": ("192.0.2.4", "2001:db8::4")}


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """mx1, mx2 (the gateway nodes), an outsider and an admin's host on one isolated bridge."""
    lab = Lab()
    try:
        lab.start(LAB_HOSTS)
        yield lab
    finally:
        lab.stop()


def cluster_spec(project: Any, firewall: dict[str, Any], *names: str) -> None:
    data = project.spec()
    data.pop("gateway")
    data["gateways"] = [{"hostname": f"{n}.example.com", "ipv4": NODE_ADDRESSES[n][0],
                         "ipv6": NODE_ADDRESSES[n][1]} for n in names or NODE_ADDRESSES]
    data["firewall"] = firewall
    project.write_spec(data)


LAB_FIREWALL = {"mail_servers": ["10.0.0.5"], "admin_sources": ["198.51.100.0/24"],
                "dns_servers": ["1.1.1.1"]}


def load_nodes(lab: Lab, project: Any, tmp_path: Path) -> str:
    """`pmgdns firewall` of the project, checked with `nft -c -f` and loaded into mx1 and mx2."""
    result = project.run("firewall")
    assert result.code == 0, result.err
    done = run(NFT, "-c", "-f", str(write(tmp_path, result.out)))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for node in NODE_ADDRESSES:
        lab.load(node, result.out)
    text: str = result.out
    return text


def targets(host: tuple[str, str], *ports: int) -> list[tuple[str, int]]:
    return [(address, port) for address in host for port in ports]


def test_cluster_nodes_reach_each_other_and_ssh_sources_reach_ssh(
        lab: Lab, project: Any, tmp_path: Path) -> None:
    cluster_spec(project, {**LAB_FIREWALL, "ssh_sources": ["192.0.2.4", "2001:db8::4"]})
    load_nodes(lab, project, tmp_path)
    mx1, mx2 = LAB_HOSTS["mx1"], LAB_HOSTS["mx2"]
    # both ways, IPv4 and IPv6, through the output chain of one node and the input of the other
    assert set(lab.connect("mx1", targets(mx2, 22, 8006)).values()) == {"ok"}
    assert set(lab.connect("mx2", targets(mx1, 22, 8006)).values()) == {"ok"}
    # a host that is not a node: dropped on 22 and 8006
    assert set(lab.connect("outsider", targets(mx1, 22, 8006)).values()) == {"timeout"}
    # the admin's host (ssh_sources) reaches SSH, and only SSH
    assert lab.connect("admin", targets(mx1, 22, 8006)) == {
        (mx1[0], 22): "ok", (mx1[1], 22): "ok", (mx1[0], 8006): "timeout",
        (mx1[1], 8006): "timeout"}
    # outbound, 22 and 8006 go to the other nodes only (the outsider has no rules: the
    # packets never leave mx2)
    assert set(lab.connect("mx2", targets(LAB_HOSTS["outsider"], 22, 8006)).values()) == {
        "timeout"}
    assert set(lab.connect("admin", targets(LAB_HOSTS["outsider"], 22)).values()) == {"ok"}


def test_without_ssh_sources_ssh_is_dropped_but_the_nodes_still_sync(
        lab: Lab, project: Any, tmp_path: Path) -> None:
    cluster_spec(project, LAB_FIREWALL)
    text = load_nodes(lab, project, tmp_path)
    assert "ssh_sources" not in text.split("\ntable inet pmgdns\n")[1]  # no set, no rule
    mx1, mx2 = LAB_HOSTS["mx1"], LAB_HOSTS["mx2"]
    assert set(lab.connect("admin", targets(mx1, 22)).values()) == {"timeout"}
    assert set(lab.connect("outsider", targets(mx2, 22)).values()) == {"timeout"}
    assert set(lab.connect("mx1", targets(mx2, 22, 8006)).values()) == {"ok"}
    assert set(lab.connect("mx2", targets(mx1, 22, 8006)).values()) == {"ok"}


def test_single_node_rules_leave_another_host_out(lab: Lab, project: Any,
                                                  tmp_path: Path) -> None:
    """The same two hosts with the rules of a one-node spec: no cluster rules, so 22 and 8006
    are dropped out of mx2 and into mx1."""
    cluster_spec(project, LAB_FIREWALL, "mx1")
    load_nodes(lab, project, tmp_path)
    mx1 = targets(LAB_HOSTS["mx1"], 22, 8006)
    assert set(lab.connect("mx2", mx1).values()) == {"timeout"}
    lab.load("mx2", "")  # mx2 without rules: its packets now reach mx1, which drops them
    assert set(lab.connect("mx2", mx1).values()) == {"timeout"}
    lab.load("mx1", "")  # and without rules on either side, they pass
    assert set(lab.connect("mx2", mx1).values()) == {"ok"}


def test_validate_warns_once_when_ssh_stays_closed(project: Any) -> None:
    def ssh_warnings(err: str) -> list[str]:
        return [line for line in err.splitlines() if "ssh_sources" in line]

    cluster_spec(project, {**LAB_FIREWALL, "mail_servers": ["10.0.0.5", "10.0.0.6"]},
                 "mx1", "mx2")
    result = project.run("validate")
    assert result.code == 0, result.err
    warned = ssh_warnings(result.err)
    assert len(warned) == 1, result.err  # once per run, not once per node
    assert warned[0].startswith("Warning: config/site.yaml, line ")
    assert "firewall: has no ssh_sources" in warned[0]
    assert "from anywhere but the cluster's own nodes are dropped" in warned[0]
    cluster_spec(project, LAB_FIREWALL, "mx1")
    warned = ssh_warnings(project.run("validate").err)
    assert len(warned) == 1 and "from anywhere are dropped" in warned[0]
    cluster_spec(project, {**LAB_FIREWALL, "ssh_sources": ["198.51.100.0/24"]})
    result = project.run("validate")
    assert result.code == 0 and ssh_warnings(result.err) == [], result.err


def test_readme_firewall_block_is_a_valid_block_with_ssh_sources() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```yaml\n(firewall:\n.*?)```", readme, re.S)
    assert block, "the README's firewall section has no `firewall:` example"
    fw, warnings = check(yaml.safe_load(block.group(1))["firewall"])
    assert fw.ssh_sources and warnings == []
