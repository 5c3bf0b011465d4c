"""Zones the MSP does not hold (spec-v1 §7.2): the built-in `customer` target and delegation into
a zone the MSP holds. The spec, the records and the plan; the ticket and the real-DNS round trip
are in test_customer_ticket.py."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from pmgdns.families.loader import parse_site
from pmgdns.plan.engine import Change
from pmgdns.plan.takes_away import takes_away
from pmgdns.zones.records import domain_records

from .conftest import Keys, Project, assert_clean_error, base_spec

NODES = [{"hostname": "mx1.msp.example", "ipv4": "198.51.100.25", "ipv6": "2001:db8::25"},
         {"hostname": "mx2.msp.example", "ipv4": "198.51.100.26"}]


def fleet(keys: Keys, **extra: Any) -> dict[str, Any]:
    """An MSP zone that holds the delegated records, and two customer zones."""
    spec = base_spec(keys)
    del spec["gateway"]
    spec["gateways"] = copy.deepcopy(NODES)
    spec["dkim"]["selector"] = "pmga"
    spec["delegate"] = {"zone": "msp.example", "dkim": ["pmga", "pmgb"]}
    spec["defaults"] = {"mta_sts": {"mode": "enforce"},
                        "tls_rpt": {"rua": ["mailto:tls@msp.example"]}}
    spec["domains"] = {"msp.example": {},
                       "customer.example": {"targets": ["customer"],
                                            "spf": {"include": ["spf.vendor.example"]}},
                       "other.example": {"targets": ["customer"]}}
    spec.update(extra)
    return spec


def records(spec: dict[str, Any], domain: str) -> dict[tuple[str, str], tuple[str, ...]]:
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    return {(r.name, r.type): r.values for r in domain_records(site, site.domains[domain])}


def test_a_customer_zone_is_planned_and_applied_nowhere(project: Project) -> None:
    spec = project.spec()
    spec["domains"]["customer.example"] = {"targets": ["customer"]}
    project.write_spec(spec)
    result = project.run("plan", "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    jsonschema.validate(doc, json.loads(
        files("pmgdns").joinpath("schemas/plan.schema.json").read_text()))
    assert {c["zone"] for c in doc["changes"]} == {"example.com.", "example.org."}
    assert all(c["target"] != "customer" for c in doc["changes"])
    mine = [m for m in doc["manual"] if m["kind"] == "customer"]
    assert {"kind": "customer", "zone": "customer.example.", "name": "customer.example.",
            "type": "MX", "ttl": "3600", "value": "10 mx1.example.com."} in mine
    assert {(m["name"], m["type"]) for m in mine} >= {
        ("customer.example.", "TXT"), ("_dmarc.customer.example.", "TXT"),
        ("pmg2026._domainkey.customer.example.", "TXT"), ("*.customer.example.", "TXT")}
    text = project.run("plan")
    assert "Customer zone customer.example." in text.out
    assert "pmgdns customer-ticket customer.example" in text.out
    page = project.run("plan", "--format", "html").out
    assert "Customer zones" in page and "<code>_dmarc.customer.example.</code>" in page
    # only the customer's zone: nothing to change anywhere, so --detailed-exitcode says 0
    assert project.run("plan", "customer.example", "--detailed-exitcode").code == 0
    assert project.run("apply", "--yes").code == 0
    assert project.local_zone("example.com").exists()
    assert not project.local_zone("customer.example").exists()
    # octodns-sync with the rendered config knows the built-in target too
    config = yaml.safe_load((project.root / "build" / "octodns.yaml").read_text())
    assert config["zones"]["customer.example."]["targets"] == ["customer"]
    assert config["providers"]["customer"]["class"].endswith("CustomerProvider")


def test_a_provider_named_customer_is_refused(project: Project) -> None:
    spec = project.spec(providers={"customer": {"class": "octodns_bind.Rfc2136Provider",
                                                "host": "127.0.0.1"}})
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "providers.customer", "built in",
                       "another name")


def test_customer_beside_another_target_is_refused(project: Project) -> None:
    spec = project.spec()
    spec["domains"]["example.org"] = {"targets": ["customer", "local"]}
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "domains.example.org.targets.1",
                       "held by the customer or by you, not both")


def test_a_delegated_domain_publishes_the_cnames_and_the_include(keys: Keys) -> None:
    spec = fleet(keys)
    got = records(spec, "customer.example")
    assert got[("", "TXT")] == (
        "v=spf1 include:_spf.msp.example include:spf.vendor.example -all",)
    assert got[("pmga._domainkey", "CNAME")] == ("pmga._domainkey.msp.example.",)
    assert got[("pmgb._domainkey", "CNAME")] == ("pmgb._domainkey.msp.example.",)
    assert got[("_mta-sts", "CNAME")] == ("_mta-sts.msp.example.",)
    assert got[("_smtp._tls", "CNAME")] == ("_smtp._tls.msp.example.",)
    # MX, DMARC and the wildcard SPF stay direct; no key and no id at D itself
    assert got[("", "MX")] == ("10 mx1.msp.example.", "10 mx2.msp.example.")
    assert ("_dmarc", "TXT") in got and ("*", "TXT") in got
    assert ("pmga._domainkey", "TXT") not in got and ("_mta-sts", "TXT") not in got
    assert records(spec, "other.example")[("", "TXT")] == (
        "v=spf1 include:_spf.msp.example -all",)
    msp = records(spec, "msp.example")
    assert msp[("_spf", "TXT")] == (
        "v=spf1 ip4:198.51.100.25 ip4:198.51.100.26 ip6:2001:db8::25 -all",)
    assert msp[("pmga._domainkey", "TXT")][0].startswith("v=DKIM1;")
    assert ("pmgb._domainkey", "TXT") not in msp  # no dkim.next: nothing there
    assert msp[("", "TXT")] == ("v=spf1 mx -all",)  # the MSP zone's own records stay as they are
    # `delegated: false` keeps a customer zone direct; a zone the MSP holds may delegate too
    spec["domains"]["other.example"]["delegated"] = False
    spec["domains"]["held.example"] = {"delegated": True}
    assert records(spec, "other.example")[("pmga._domainkey", "TXT")][0].startswith("v=DKIM1")
    assert ("pmga._domainkey", "CNAME") in records(spec, "held.example")


def test_the_delegate_zone_holds_a_policy_id_it_does_not_publish_itself(keys: Keys) -> None:
    spec = fleet(keys)
    spec["defaults"] = {}
    spec["domains"]["customer.example"].update(
        mta_sts={"mode": "testing"}, tls_rpt={"rua": ["mailto:tls@msp.example"]})
    msp = records(spec, "msp.example")
    assert msp[("_mta-sts", "TXT")][0].startswith("v=STSv1; id=")
    assert msp[("_smtp._tls", "TXT")] == ("v=TLSRPTv1; rua=mailto:tls@msp.example",)
    assert ("_mta-sts", "CNAME") not in records(spec, "other.example")


def test_a_rotation_and_a_new_node_change_only_the_delegate_zone_and_mx(keys: Keys) -> None:
    before = fleet(keys)
    after = copy.deepcopy(before)
    after["dkim"] = {"selector": "pmgb", "public_key": keys.b64("rsa4096"),
                     "retired_selectors": ["pmga"]}
    after["gateways"].append({"hostname": "mx3.msp.example", "ipv4": "198.51.100.27"})
    for domain in ("customer.example", "other.example"):
        old, new = records(before, domain), records(after, domain)
        changed = {slot for slot in old.keys() | new.keys() if old.get(slot) != new.get(slot)}
        assert changed == {("", "MX")}, (domain, changed)
    assert records(before, "msp.example") != records(after, "msp.example")


@pytest.mark.parametrize(("change", "fragments"), [
    (lambda s: s["dkim"].update(selector="pmgc"),
     ["dkim.selector", "`pmgc` is not in delegate.dkim", "add it to delegate.dkim"]),
    (lambda s: s["dkim"].update(next={"selector": "pmgx", "public_key": s["dkim"]["public_key"]}),
     ["dkim.next.selector", "`pmgx` is not in delegate.dkim"]),
    (lambda s: s["delegate"].update(zone="elsewhere.example"),
     ["delegate.zone", "not one of the spec's domains"]),
    (lambda s: s["domains"]["msp.example"].update(targets=["customer"]),
     ["delegate.zone", "is a `customer` zone"]),
    (lambda s: s["domains"]["msp.example"].update(delegated=True),
     ["domains.msp.example.delegated", "cannot itself be delegated"]),
    (lambda s: s["domains"]["other.example"].update(mta_sts={"mode": "testing"}),
     ["domains.other.example.mta_sts", "other.example differs from that of customer.example",
      "delegated: false"]),
    (lambda s: s["domains"]["other.example"].update(tls_rpt={"rua": ["mailto:x@other.example"]}),
     ["domains.other.example.tls_rpt", "other.example differs from that of customer.example"]),
    (lambda s: s["delegate"].update(dkim=[]), ["delegate.dkim", "e.g. [pmga, pmgb]"]),
    (lambda s: s["delegate"].update(spf="mx1"), ["delegate.spf", "keep the default _spf"]),
    (lambda s: s["delegate"].update(extra=1), ["delegate.extra"]),
    (lambda s: s.pop("delegate"), ["domains.x.example.delegated", "needs a top-level"]),
])
def test_bad_delegation_is_refused_naming_the_key(project: Project, change: Any,
                                                  fragments: list[str]) -> None:
    spec = fleet(project.keys)
    spec["domains"]["msp.example"].update(mta_sts=False, tls_rpt=False)
    change(spec)
    if "delegate" not in spec:
        spec["domains"]["x.example"] = {"delegated": True}
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), *fragments)


def test_the_delegate_include_is_never_taken_away(keys: Keys) -> None:
    spec = fleet(keys)
    spec["domains"]["other.example"] = {"delegated": False}  # held again, and direct
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    change = Change("other.example.", "local", "update", "other.example.", "TXT", 3600,
                    ("v=spf1 mx -all",),
                    ("v=spf1 include:_spf.msp.example include:old.example -all",))
    assert [t.value for t in takes_away(site, [change])] == ["include:old.example"]


def test_a_zone_you_hold_delegates_and_goes_back_to_direct_records(project: Project) -> None:
    spec = fleet(project.keys)
    spec["domains"]["held.example"] = {"delegated": True}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    zone = project.local_zone("held.example").read_text()
    assert "pmgb._domainkey 3600 IN CNAME pmgb._domainkey.msp.example." in zone
    assert "v=DKIM1" not in zone
    assert project.run("plan", "--detailed-exitcode").code == 0
    spec["domains"]["held.example"] = {"delegated": False}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    zone = project.local_zone("held.example").read_text()
    assert "CNAME" not in zone and "pmga._domainkey 3600 IN TXT" in zone
    assert "v=STSv1; id=" in zone and '"v=spf1 mx -all"' in zone
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_a_fleet_of_customer_zones_is_one_line_in_the_text_plan(project: Project) -> None:
    spec = project.spec()
    spec["domains"].update({f"c{i:02}.example": {"targets": ["customer"]} for i in range(11)})
    project.write_spec(spec)
    short = project.run("plan").out
    assert "11 customer zones (" in short and "Customer zone c00.example." not in short
    assert "Customer zone c10.example." in project.run("-v", "plan").out
    assert len(json.loads(project.run("plan", "--format", "json").out)["manual"]) > 11 * 5


def test_an_absent_customer_zone_gets_a_ticket_to_delete_the_records(project: Project) -> None:
    spec = fleet(project.keys)
    spec["domains"]["other.example"]["absent"] = True
    project.write_spec(spec)
    text = project.run("customer-ticket", "other.example").out
    assert "We no longer handle mail for other.example. Please delete" in text
    assert "pmga._domainkey.other.example. 3600 IN CNAME pmga._domainkey.msp.example." in text
    assert "set once" not in text
    doc = json.loads(project.run("plan", "--format", "json").out)
    assert not [m for m in doc["manual"] if m.get("zone") == "other.example."]
    # the delegated domains left share what they shared
    assert records(spec, "customer.example")[("_mta-sts", "CNAME")] == ("_mta-sts.msp.example.",)


def test_a_ticket_needs_a_customer_zone(project: Project) -> None:
    project.write_spec(project.spec())
    assert_clean_error(project.run("customer-ticket"), "has no `customer` zone",
                       "targets: [customer]")
    assert_clean_error(project.run("customer-ticket", "nope.example"), "matches no domain")


def test_customer_zones_without_delegation_are_warned_about_once(project: Project) -> None:
    spec = project.spec()
    spec["domains"].update({"a.example": {"targets": ["customer"]},
                            "b.example": {"targets": ["customer"]}})
    project.write_spec(spec)
    result = project.run("validate")
    assert result.code == 0, result.err
    warned = [line for line in result.err.splitlines() if "customer zone(s)" in line]
    assert len(warned) == 1 and "2 customer zone(s)" in warned[0] and "delegate:" in warned[0]
    spec["domains"]["a.example"]["delegated"] = False
    spec["domains"]["b.example"]["delegated"] = False
    project.write_spec(spec)
    assert "customer zone(s)" not in project.run("validate").err
