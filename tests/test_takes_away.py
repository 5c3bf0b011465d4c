"""Onboarding without taking anything away (spec-v1 §7.1): SPF as parts, every gateway node
authorised, the plan's "Takes away", and apply refusing to remove an SPF sender the spec did not
name. Against a real BIND; pyspf (an independent SPF implementation) judges the published records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

import dns.resolver
import jsonschema
import pytest
import spf as pyspf
import yaml

from pmgdns.families.loader import parse_site
from pmgdns.families.spf import spf_value
from pmgdns.plan.engine import Change
from pmgdns.plan.takes_away import refusal, takes_away

from .conftest import Project, assert_clean_error, base_spec, verify_json
from .servers import BindServer, zone_text

CUSTOMER = """\
@ IN TXT "v=spf1 include:spf.vendor.example ip4:192.0.2.10 -all"
@ IN TXT "vendor-verification=abc"
@ IN MX 10 mail.vendor.example.
_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:reports@dmarc.vendor.example"
"""
VENDOR = """\
@ IN TXT "v=spf1 ip4:203.0.113.50 -all"
deep IN TXT "v=spf1 include:d1.vendor.example include:d2.vendor.example """ \
    """include:d3.vendor.example include:d4.vendor.example include:d5.vendor.example -all"
""" + "".join(f'd{i} IN TXT "v=spf1 include:d0.vendor.example -all"\n' for i in range(1, 6)) + \
    'd0 IN TXT "v=spf1 ip4:203.0.113.51 -all"\n'

NODES = [{"hostname": "mx1.example.com", "ipv4": "198.51.100.25", "ipv6": "2001:db8::25"},
         {"hostname": "mx2.example.com", "ipv4": "198.51.100.26"}]
STRANGER = "203.0.113.9"


# -- SPF as parts, every node authorised ---------------------------------------------------------


def _site(keys: Any, **changes: Any) -> Any:
    spec = base_spec(keys)
    if "gateways" in changes:
        spec.pop("gateway")
    spec.update(changes)
    return parse_site(yaml.safe_dump(spec), "site.yaml")


def test_a_domain_served_by_every_node_publishes_v1_exactly(keys: Any) -> None:
    site = _site(keys, gateways=NODES)
    assert spf_value(site, site.domains["example.com"]) == "v=spf1 mx -all"
    site = _site(keys)
    assert spf_value(site, site.domains["example.com"]) == "v=spf1 mx -all"


def test_a_domain_served_by_a_subset_authorises_every_node(keys: Any) -> None:
    site = _site(keys, gateways=NODES,
                 domains={"example.com": {},
                          "example.org": {"gateways": ["mx2.example.com"]},
                          "example.net": {"gateways": ["mx2.example.com"],
                                          "spf": "v=spf1 mx include:_spf.example.net ~all"},
                          "example.info": {"gateways": ["mx2.example.com"],
                                           "spf": "v=spf1 a ip4:198.51.100.25 -all"}})
    assert spf_value(site, site.domains["example.org"]) == \
        "v=spf1 mx ip4:198.51.100.25 ip6:2001:db8::25 -all"
    # the string form gets the missing nodes after `mx`
    assert spf_value(site, site.domains["example.net"]) == \
        "v=spf1 mx ip4:198.51.100.25 ip6:2001:db8::25 include:_spf.example.net ~all"
    # without `mx` the string keeps its v1 meaning
    assert spf_value(site, site.domains["example.info"]) == "v=spf1 a ip4:198.51.100.25 -all"


def test_parts_compose_in_the_contract_order_and_merge_over_defaults(keys: Any) -> None:
    site = _site(keys, gateways=NODES,
                 defaults={"spf": {"include": ["_spf.msp.example"], "all": "~all",
                                   "drop": ["include:_spf.old.example"]}},
                 domains={"example.com": {},
                          "example.org": {"gateways": ["mx1.example.com"],
                                          "spf": {"ip4": ["192.0.2.10", "192.0.2.0/24"],
                                                  "ip6": ["2001:DB8:1::/48"],
                                                  "include": ["spf.protection.outlook.com"]}},
                          "example.net": {"spf": "v=spf1 mx -all"}})
    com, org, net = (site.domains[d] for d in ("example.com", "example.org", "example.net"))
    assert spf_value(site, com) == "v=spf1 mx include:_spf.msp.example ~all"
    assert spf_value(site, org) == ("v=spf1 mx ip4:198.51.100.26 ip4:192.0.2.10 ip4:192.0.2.0/24 "
                                    "ip6:2001:db8:1::/48 include:spf.protection.outlook.com ~all")
    assert spf_value(site, net) == "v=spf1 mx -all"
    assert org.spf.drop == ("include:_spf.old.example",)  # inherited key by key
    assert net.spf.drop == ("include:_spf.old.example",)


BAD_PARTS = [
    ({"includes": ["x.example"]}, "domains.example.org.spf.includes", "include"),
    ({"ip4": ["2001:db8::1"]}, "domains.example.org.spf.ip4.0", "ip6"),
    ({"ip4": ["192.0.2.300"]}, "domains.example.org.spf.ip4.0", "IPv4 address or CIDR"),
    ({"ip6": ["192.0.2.1"]}, "domains.example.org.spf.ip6.0", "ip4"),
    ({"include": ["not a domain"]}, "domains.example.org.spf.include.0", "not a domain name"),
    ({"include": ["http://x.example/"]}, "domains.example.org.spf.include.0", "domain name"),
    ({"all": "+all"}, "domains.example.org.spf.all", "-all or ~all"),
    ({"all": "?all"}, "domains.example.org.spf.all", "-all or ~all"),
    ({"drop": ["-all"]}, "domains.example.org.spf.drop.0", "not a sender term"),
    ({"drop": ["v=spf1"]}, "domains.example.org.spf.drop.0", "not a sender term"),
    ({"drop": ["ip4:nonsense"]}, "domains.example.org.spf.drop.0", "not a sender term"),
    ({"value": "v=spf1 mx -all", "include": ["x.example"]}, "domains.example.org.spf.include",
     "not both"),
    ({"include": [f"i{i}.example" for i in range(10)]}, "domains.example.org.spf.include",
     "at most 10"),
]


@pytest.mark.parametrize("parts,path,fix", BAD_PARTS, ids=[p for _, p, _ in BAD_PARTS])
def test_bad_spf_parts_are_refused_naming_the_key(project: Project, parts: dict[str, Any],
                                                  path: str, fix: str) -> None:
    spec = project.spec()
    spec["domains"]["example.org"] = {"spf": parts}
    project.write_spec(spec)
    for command in (("validate",), ("apply", "--yes")):
        result = project.run(*command)
        assert_clean_error(result, path, fix)
    assert not project.local_zone("example.org").exists()


# -- against BIND: plan, refuse, keep or drop, apply -----------------------------------------------


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({"example.com": zone_text("example.com", ""),
                         "example.org": zone_text("example.org", CUSTOMER),
                         "vendor.example": zone_text("vendor.example", VENDOR)}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    project.write_spec(_bind_spec(project, server))
    try:
        yield server
    finally:
        server.stop()


def _bind_spec(project: Project, server: BindServer, **org: Any) -> dict[str, Any]:
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    spec["domains"]["example.org"] = org
    return spec


def _state(bind: BindServer) -> dict[str, Any]:
    return {z: bind.rrsets(z) for z in ("example.com", "example.org")}


def test_onboarding_a_live_domain_lists_what_it_takes_and_refuses(project: Project,
                                                                  bind: BindServer) -> None:
    before = _state(bind)
    plan = project.run("plan", "--format", "json")
    assert plan.code == 0, plan.err
    doc = json.loads(plan.out)
    schema = json.loads(files("pmgdns").joinpath("schemas/plan.schema.json").read_text())
    jsonschema.validate(doc, schema)
    taken = {(t["kind"], t["value"]): t for t in doc["takes_away"]}
    assert set(taken) == {
        ("spf-sender", "include:spf.vendor.example"), ("spf-sender", "ip4:192.0.2.10"),
        ("dmarc-report", "rua=mailto:reports@dmarc.vendor.example"),
        ("dmarc-policy", "p=reject -> p=quarantine"),
        ("mail-flow", "10 mail.vendor.example.")}
    include = taken[("spf-sender", "include:spf.vendor.example")]
    assert include["zone"] == include["name"] == "example.org." and include["type"] == "TXT"
    assert include["refused"] and include["targets"] == ["bind"]
    assert "domains.example.org.spf.include" in include["fix"]
    assert "add include:spf.vendor.example to domains.example.org.spf.drop" in include["fix"]
    assert "domains.example.org.spf.ip4" in taken[("spf-sender", "ip4:192.0.2.10")]["fix"]
    assert "domains.example.org.dmarc.rua" in \
        taken[("dmarc-report", "rua=mailto:reports@dmarc.vendor.example")]["fix"]
    assert "domains.example.org.dmarc.p: reject" in \
        taken[("dmarc-policy", "p=reject -> p=quarantine")]["fix"]
    assert not taken[("mail-flow", "10 mail.vendor.example.")]["refused"]
    # the gateway's own records take nothing away (example.com has no SPF yet)
    assert {t["zone"] for t in doc["takes_away"]} == {"example.org."}

    text = project.run("plan").out
    assert text.index("Takes away (5)") < text.index("example.org. at bind:")
    for value in ("include:spf.vendor.example", "ip4:192.0.2.10", "p=reject -> p=quarantine",
                  "rua=mailto:reports@dmarc.vendor.example", "10 mail.vendor.example."):
        assert value in text.split("example.org. at bind:")[0]
    markdown = project.run("plan", "--format", "markdown").out
    assert markdown.index("#### Takes away (5)") < markdown.index("#### `example.org.` at")
    assert "**refused by apply**" in markdown
    html = project.run("plan", "--format", "html").out
    assert html.index('id="takes-away"') < html.index('id="headline"')
    assert "include:spf.vendor.example" in html

    refused = project.run("apply", "--yes")
    assert_clean_error(refused, "include:spf.vendor.example", "ip4:192.0.2.10",
                       "domains.example.org.spf.include", "domains.example.org.spf.ip4",
                       "domains.example.org.spf.drop", "Nothing was applied at any target")
    assert _state(bind) == before  # nothing, not even example.com's records

    # a reviewed plan file carries the list, and apply --plan refuses the same way
    assert project.run("plan", "--out", "plan.json").code == 0
    reviewed = json.loads((project.root / "plan.json").read_text())
    assert {(t["kind"], t["value"]) for t in reviewed["takes_away"]} == set(taken)
    assert_clean_error(project.run("apply", "--plan", "plan.json"),
                       "include:spf.vendor.example", "ip4:192.0.2.10", "spf.drop")
    assert _state(bind) == before

    # keep the include, let the address go: apply publishes, and the plan comes back clean
    project.write_spec(_bind_spec(project, bind, spf={"include": ["spf.vendor.example"],
                                                      "drop": ["ip4:192.0.2.10"]}))
    again = project.run("plan", "--format", "json")
    kinds = {(t["kind"], t["value"], t["refused"]) for t in json.loads(again.out)["takes_away"]}
    assert ("spf-sender", "ip4:192.0.2.10", False) in kinds
    assert not any(v == "include:spf.vendor.example" for _, v, _ in kinds)
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert sorted(bind.txt("example.org.")) == [
        "v=spf1 mx include:spf.vendor.example -all", "vendor-verification=abc"]
    clean = project.run("plan", "--detailed-exitcode")
    assert clean.code == 0 and "No changes" in clean.out and "Takes away" not in clean.out


def test_a_parked_domain_lists_its_senders_and_is_never_refused(project: Project,
                                                                bind: BindServer) -> None:
    project.write_spec(_bind_spec(project, bind, parked=True))
    doc = json.loads(project.run("plan", "--format", "json").out)
    senders = [t for t in doc["takes_away"] if t["kind"] == "spf-sender"]
    assert {t["value"] for t in senders} == {"include:spf.vendor.example", "ip4:192.0.2.10"}
    assert not any(t["refused"] for t in senders)
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert "v=spf1 -all" in bind.txt("example.org.")


# -- pyspf judges every composed record ----------------------------------------------------------


@pytest.fixture
def receiver(bind: BindServer, monkeypatch: pytest.MonkeyPatch) -> BindServer:
    """pyspf asks dnspython's default resolver: point it at the BIND on loopback."""
    monkeypatch.setattr(dns.resolver, "default_resolver", bind.resolver())
    return bind


def _verdict(address: str, domain: str) -> str:
    result, _explanation = pyspf.check2(i=address, s=f"postmaster@{domain}", h=f"relay.{domain}",
                                        timeout=5)
    return str(result)


def test_pyspf_passes_every_node_and_fails_others(project: Project, receiver: BindServer) -> None:
    spec = _bind_spec(project, receiver, gateways=["mx1.example.com"],
                      spf={"include": ["vendor.example"], "ip4": ["192.0.2.77"],
                           "drop": ["include:spf.vendor.example", "ip4:192.0.2.10"]})
    spec.pop("gateway")
    spec["gateways"] = NODES
    project.write_spec(spec)
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    for domain in ("example.com", "example.org"):
        published = [v for v in receiver.txt(f"{domain}.") if v.startswith("v=spf1")]
        assert published == [spf_value(site, site.domains[domain])]
    assert receiver.txt("example.org.")[0] == ("v=spf1 mx ip4:198.51.100.26 ip4:192.0.2.77 "
                                               "include:vendor.example -all")
    for domain in ("example.com", "example.org"):
        for node in NODES:
            for address in (node["ipv4"], node.get("ipv6")):
                if address:
                    assert _verdict(address, domain) == "pass", (domain, address)
        assert _verdict(STRANGER, domain) == "fail", domain
        assert _verdict("2001:db8:ffff::9", domain) == "fail", domain
    # the parts are authorised as written
    assert _verdict("192.0.2.77", "example.org") == "pass"
    assert _verdict("203.0.113.50", "example.org") == "pass"  # through include:vendor.example
    assert _verdict("203.0.113.50", "example.com") == "fail"


# -- SPF's lookup limits at verify ----------------------------------------------------------------


@pytest.mark.parametrize("spf,fragment", [
    ({"include": ["deep.vendor.example"]}, "12/10"),  # 2 terms visible, 12 through includes
    ({"value": "v=spf1 mx a:nx1.vendor.example a:nx2.vendor.example mx:nx3.vendor.example -all"},
     "3/2 maximum void"),
], ids=["over-10-lookups", "over-2-void-lookups"])
def test_verify_counts_the_published_spf_recursively(project: Project, bind: BindServer,
                                                     spf: dict[str, Any], fragment: str) -> None:
    project.write_spec(_bind_spec(project, bind, spf={
        **spf, "drop": ["include:spf.vendor.example", "ip4:192.0.2.10"]}))
    assert project.run("validate").code == 0  # what validate can see is within the limit
    assert project.run("apply", "--yes").code == 0
    code, report = verify_json(project, bind.port, "example.org")
    spf_checks = [c for c in report["checks"] if c["check"] == "SPF"]
    assert code == 1 and [c["status"] for c in spf_checks] == ["FAIL"], spf_checks
    assert fragment in spf_checks[0]["message"], spf_checks[0]
    assert "10 DNS-querying terms" in spf_checks[0]["fix"]


def test_validate_counts_the_visible_lookups_in_the_string_form(project: Project) -> None:
    spec = project.spec()
    spec["domains"]["example.org"] = {"spf": "v=spf1 mx a ptr exists:x.example " + " ".join(
        f"include:i{i}.example" for i in range(6)) + " redirect=r.example"}
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "domains.example.org.spf", "11 DNS-querying")


# -- what counts as taken ------------------------------------------------------------------------


def _change(name: str, type_: str, before: tuple[str, ...], after: tuple[str, ...],
            zone: str = "example.org.", action: str = "update") -> Change:
    return Change(zone, "local", action, name, type_, 3600, after, before)


def test_what_counts_as_taken(keys: Any) -> None:
    site = _site(keys, gateways=NODES, retired_gateways=["mx0.example.com"],
                 domains={"example.com": {}, "example.org": {"spf": {"drop": ["a:old.example"]}}})
    changes = [
        _change("example.org.", "TXT",
                ("v=spf1 mx a:OLD.example. ip4:198.51.100.26/32 ip6:2001:DB8::25 "
                 "-include:x.example ~ip4:192.0.2.1 +ip4:192.0.2.0/24 include:%{d}.spf.example "
                 "exists:%{i}.x.example redirect=_spf.example.net ip4:bogus -all", "other=1"),
                ("v=spf1 mx ip4:192.0.2.0/24 -all", "other=1")),
        # a TTL change that keeps the value takes nothing
        _change("example.com.", "TXT", ("v=spf1 include:kept.example -all",),
                ("v=spf1 include:kept.example -all",), zone="example.com."),
        _change("_dmarc.example.org.", "TXT",
                ("v=DMARC1; p=quarantine; sp=reject; rua=mailto:a@x.example!10m,mailto:b@x.example;"
                 " ruf=mailto:f@x.example",),
                ("v=DMARC1; p=quarantine; sp=none; rua=mailto:A@x.example;",)),
        _change("example.org.", "MX", ("10 mx0.example.com.", "20 mx2.example.com.",
                                       "30 backup.example.net."), ("10 mx1.example.com.",)),
        # creates never take anything
        _change("example.net.", "TXT", (), ("v=spf1 mx -all",), zone="example.org.",
                action="create"),
    ]
    taken = {(t.kind, t.value): t for t in takes_away(site, changes)}
    assert set(taken) == {
        ("spf-sender", "a:OLD.example."), ("spf-sender", "include:%{d}.spf.example"),
        ("spf-sender", "exists:%{i}.x.example"), ("spf-sender", "redirect=_spf.example.net"),
        ("dmarc-report", "rua=mailto:b@x.example"), ("dmarc-report", "ruf=mailto:f@x.example"),
        ("dmarc-policy", "sp=reject -> sp=none"), ("mail-flow", "30 backup.example.net.")}
    assert not taken[("spf-sender", "a:OLD.example.")].refused  # in spf.drop, as compared
    assert taken[("spf-sender", "redirect=_spf.example.net")].refused
    # a macro include cannot be a part: keeping it means the string form
    assert "whole record" in taken[("spf-sender", "include:%{d}.spf.example")].fix
    message = refusal(list(taken.values()))
    assert message is not None and "redirect=_spf.example.net" in message
    assert "a:OLD.example." not in message
