"""A PMG cluster (spec-v1 §6.1): several gateways behind every domain, against a real BIND."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pmgdns.families.loader import parse_site
from pmgdns.zones.records import site_records

from .conftest import Keys, Project, assert_clean_error, base_spec
from .servers import BindServer, zone_text

REV4 = "100.51.198.in-addr.arpa"
NODES = [{"hostname": "mx1.example.com", "ipv4": "198.51.100.25", "ipv6": "2001:db8::25"},
         {"hostname": "mx2.example.com", "ipv4": "198.51.100.26"}]


def cluster_spec(keys: Keys, **extra: Any) -> dict[str, Any]:
    spec = base_spec(keys)
    spec.pop("gateway")
    spec["gateways"] = [dict(n) for n in NODES]
    spec.update(extra)
    return spec


def test_records_of_a_cluster(keys: Keys) -> None:
    spec = cluster_spec(keys)
    spec["domains"]["example.org"] = {"gateways": ["mx2.example.com"]}
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    recs = {(r.fqdn, r.type): r.values for zone in site_records(site).values() for r in zone}
    assert recs[("example.com.", "MX")] == ("10 mx1.example.com.", "10 mx2.example.com.")
    assert recs[("example.org.", "MX")] == ("10 mx2.example.com.",)
    assert recs[("mx1.example.com.", "A")] == ("198.51.100.25",)
    assert recs[("mx1.example.com.", "AAAA")] == ("2001:db8::25",)
    assert recs[("mx2.example.com.", "A")] == ("198.51.100.26",)
    assert ("mx2.example.com.", "AAAA") not in recs
    assert recs[("mx2.example.com.", "TXT")] == ("v=spf1 a -all",)
    spec["gateways"][1]["mx_priority"] = 20
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    com = {(r.fqdn, r.type): r.values for r in site_records(site)["example.com."]}
    assert com[("example.com.", "MX")] == ("10 mx1.example.com.", "20 mx2.example.com.")


def test_gateway_is_the_one_node_form(keys: Keys) -> None:
    single = base_spec(keys)
    cluster = base_spec(keys)
    cluster["gateways"] = [cluster.pop("gateway")]
    a = site_records(parse_site(yaml.safe_dump(single), "s.yaml"))
    b = site_records(parse_site(yaml.safe_dump(cluster), "s.yaml"))
    assert a == b


BAD = [
    ("both forms", lambda s: s.update(gateway=NODES[0]), ("gateways", "both given")),
    ("empty list", lambda s: s.update(gateways=[]), ("gateways", "non-empty list")),
    ("duplicate hostname", lambda s: s["gateways"][1].update(hostname="mx1.example.com"),
     ("gateways.1.hostname", "also the hostname of gateways.0")),
    ("duplicate address", lambda s: s["gateways"][1].update(ipv4="198.51.100.25"),
     ("gateways.1.ipv4", "also the address of gateways.0")),
    ("unknown node in a domain", lambda s: s["domains"].update(
        {"example.org": {"gateways": ["mx9.example.com"]}}),
     ("domains.example.org.gateways.0", "not a gateway node")),
    ("retired still listed", lambda s: s.update(retired_gateways=["mx2.example.com"]),
     ("retired_gateways.0", "still a gateway node")),
    ("node key typo", lambda s: s["gateways"][0].update(ipv5="x"),
     ("gateways.0.ipv5", "unknown key")),
]


@pytest.mark.parametrize("mutate,fragments", [(m, f) for _, m, f in BAD],
                         ids=[n for n, _, _ in BAD])
def test_bad_cluster_input(project: Project, mutate: Any, fragments: tuple[str, ...]) -> None:
    spec = cluster_spec(project.keys)
    mutate(spec)
    project.write_spec(spec)
    for command in (["validate"], ["apply", "--yes"]):
        assert_clean_error(project.run(*command), "config/site.yaml", *fragments)
    assert not (project.root / "build" / "zones").exists()


def test_ptr_ticket_lists_every_address(project: Project) -> None:
    project.write_spec(cluster_spec(project.keys))
    text = project.run("ptr-ticket").out
    assert "Subject: Reverse DNS (PTR) for our mail gateways mx1.example.com. and " \
           "mx2.example.com." in text
    rows = [line.split() for line in text.splitlines() if "  PTR  " in line]
    assert rows == [["198.51.100.25", "25.100.51.198.in-addr.arpa.", "PTR", "mx1.example.com."],
                    ["2001:db8::25", "5.2.0.0." + "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2.ip6.arpa.",
                     "PTR", "mx1.example.com."],
                    ["198.51.100.26", "26.100.51.198.in-addr.arpa.", "PTR", "mx2.example.com."]]
    assert "mx2.example.com.  A  198.51.100.26" in text
    data = json.loads(project.run("ptr-ticket", "--format", "json").out)
    assert [p["ptr"] for p in data["ptr"]] == ["mx1.example.com.", "mx1.example.com.",
                                               "mx2.example.com."]
    md = project.run("ptr-ticket", "--format", "markdown").out
    assert "| `198.51.100.26` | `26.100.51.198.in-addr.arpa.` | `mx2.example.com.` |" in md
    plan = json.loads(project.run("plan", "--format", "json").out)
    assert [(m["address"], m["name"]) for m in plan["manual"]] == [
        ("198.51.100.25", "mx1.example.com."), ("2001:db8::25", "mx1.example.com."),
        ("198.51.100.26", "mx2.example.com.")]


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({
        "example.com": zone_text("example.com", "www IN A 203.0.113.80\n"
                                                "mx0 IN A 198.51.100.24\n"
                                                'mx0 IN TXT "v=spf1 a -all"\n'
                                                'mx0 IN TXT "owner=ops"\n'),
        "example.org": zone_text("example.org", ""),
        REV4: zone_text(REV4, "25 IN PTR mx1.example.com.\n26 IN PTR mx2.example.com.\n"),
    }).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = cluster_spec(project.keys, defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    spec["gateways"][0].pop("ipv6")
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def _verify(project: Project, bind: BindServer) -> tuple[int, list[dict[str, str]]]:
    result = project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}", "--format", "json")
    return result.code, json.loads(result.out)["checks"]


def test_cluster_against_bind(project: Project, bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    res = bind.resolver()
    for zone in ("example.com.", "example.org."):
        mx = sorted((r.preference, r.exchange.to_text()) for r in res.resolve(zone, "MX"))
        assert mx == [(10, "mx1.example.com."), (10, "mx2.example.com.")]
    assert [r.address for r in res.resolve("mx2.example.com.", "A")] == ["198.51.100.26"]
    assert bind.txt("mx2.example.com.") == ["v=spf1 a -all"]
    assert project.run("plan", "--detailed-exitcode").code == 0
    code, checks = _verify(project, bind)
    assert code == 0, [c for c in checks if c["status"] != "OK"]
    subjects = {c["subject"] for c in checks if c["family"] in ("gateway", "ptr")}
    assert subjects == {"mx1.example.com.", "mx2.example.com."}

    # one node's A record goes missing: verify names that node
    upd = bind.update("example.com")
    upd.delete("mx2.example.com.", "A")
    bind.send(upd)
    code, checks = _verify(project, bind)
    assert code == 1
    failing = {(c["subject"], c["check"]) for c in checks if c["status"] == "FAIL"}
    assert ("mx2.example.com.", "A") in failing
    assert not any(s == "mx1.example.com." for s, _ in failing)
    assert project.run("apply", "--yes").code == 0

    # mx0 was a node once; retiring it removes its pmgdns records and nothing else
    before = bind.rrsets("example.com")
    spec = cluster_spec(project.keys, defaults={"targets": ["bind"]},
                        providers={"bind": bind.provider_config()},
                        retired_gateways=["mx0.example.com"])
    spec["gateways"][0].pop("ipv6")
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    after = bind.rrsets("example.com")
    assert ("mx0.example.com.", "A") not in after
    assert after[("mx0.example.com.", "TXT")][1] == frozenset({'"owner=ops"'})
    assert {k: v for k, v in after.items() if not k[0].startswith("mx0.")} == \
        {k: v for k, v in before.items() if not k[0].startswith("mx0.")}
    assert project.run("plan", "--detailed-exitcode").code == 0

    # a domain served by one node only: its MX set is that node, and verify agrees
    spec["domains"]["example.org"] = {"gateways": ["mx1.example.com"]}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    assert [r.exchange.to_text() for r in res.resolve("example.org.", "MX")] == \
        ["mx1.example.com."]
    code, checks = _verify(project, bind)
    assert code == 0, [c for c in checks if c["status"] != "OK"]
