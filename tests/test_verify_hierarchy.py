"""`verify` sees the DNS around the records (spec-v1 §7.3) in a real hierarchy on loopback: root,
TLD, children and a recursive resolver (tests/dns_hierarchy.py). One break per zone, each named
by verify as `delv`/`dig` see it."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Project
from .dns_hierarchy import Hierarchy, start

REV4 = "100.51.198.in-addr.arpa"
PTR6 = "5.2.0.0." + "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2.ip6.arpa."
GATEWAY = {"hostname": "mx1.plain.test", "ipv4": "198.51.100.25", "ipv6": "2001:db8::25"}
LISTED = "25.100.51.198.bl.test."
REFUSED6 = "5.2.0.0." + "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2.bl.test."


@pytest.fixture(scope="module")
def lab() -> Iterator[Hierarchy]:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    hierarchy = start(secret, {
        "in-addr.arpa.": f"25.{REV4}. IN PTR mx1.plain.test.\n",
        "ip6.arpa.": f"{PTR6} IN PTR mx1.plain.test.\n",
    }, f'{LISTED} IN A 127.0.0.2\n{LISTED} IN TXT "listed: https://bl.test/198.51.100.25"\n'
       f"{REFUSED6} IN A 127.255.255.254\n")
    try:
        hierarchy.add_ds("good.test")
        hierarchy.add_ds("badds.test", wrong=True)
        yield hierarchy
    finally:
        hierarchy.stop()


@pytest.fixture
def applied(lab: Hierarchy, project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", lab.child.secret)
    spec = project.spec(gateway=GATEWAY, defaults={"targets": ["bind"]},
                        providers={"bind": lab.child.provider_config()},
                        domains={z: {} for z in ("good.test", "plain.test", "nods.test",
                                                 "badds.test", "lame.test", "moved.test",
                                                 "missing.test", "half.test",
                                                 "flat.test")})
    spec["domains"]["stale.test"] = {"targets": ["local"]}  # signed beforehand, left alone
    project.write_spec(spec)
    result = project.run("apply", "--yes")
    assert result.code == 0, result.err
    return project


def _verify(project: Project, lab: Hierarchy, *args: str) -> tuple[int, dict[str, Any]]:
    import json

    result = project.run("verify", "--nameserver", lab.nameserver, "--format", "json", *args)
    assert "Traceback" not in result.err and result.out, result.err
    return result.code, json.loads(result.out)


def _one(report: dict[str, Any], subject: str, family: str) -> dict[str, str]:
    found = [c for c in report["checks"] if c["subject"] == subject and c["family"] == family]
    assert len(found) == 1, (subject, family, found)
    return found[0]


@pytest.fixture
def report(applied: Project, lab: Hierarchy) -> dict[str, Any]:
    code, found = _verify(applied, lab)
    assert code == 1
    # what apply cannot fix never sends the user to apply
    assert all("pmgdns apply" not in c["fix"] for c in found["checks"]
               if c["family"] in ("delegation", "dnssec")), found
    return found


def test_a_sound_zone_passes_every_check(report: dict[str, Any], lab: Hierarchy) -> None:
    assert "fully validated" in lab.delv("good.test.", "SOA")
    for zone in ("good.test", "plain.test"):
        bad = [c for c in report["checks"] if c["subject"] == zone and c["status"] != "OK"]
        assert not bad, bad
    assert _one(report, "good.test", "dnssec")["message"].startswith("secure: the DS at test.")
    delegation = _one(report, "good.test", "delegation")
    assert delegation["message"] == ("test. delegates good.test. to ns1.good.test., the NS set "
                                     "its target serves")
    assert "not signed" in _one(report, "plain.test", "dnssec")["message"]
    assert "unsigned answer" in lab.delv("plain.test.", "SOA")
    assert not report["notes"]


def test_signed_without_ds_warns(report: dict[str, Any], lab: Hierarchy) -> None:
    assert "unsigned answer" in lab.delv("nods.test.", "SOA")  # the judge: insecure
    check = _one(report, "nods.test", "dnssec")
    assert check["status"] == "WARN"
    assert "signed, not delegated securely" in check["message"]
    assert "TLSA" in check["message"]
    # the fix is the DS to publish, the one dnssec-dsfromkey would give
    assert check["fix"].startswith("publish the DS at the registrar: nods.test. IN DS ")


def test_a_wrong_ds_is_bogus(report: dict[str, Any], lab: Hierarchy) -> None:
    judged = lab.delv("badds.test.", "SOA")
    assert "fully validated" not in judged and "resolution failed" in judged, judged
    check = _one(report, "badds.test", "dnssec")
    assert check["status"] == "FAIL"
    assert check["message"].startswith("bogus: no DS at test.")
    assert "mail to it stops" in check["message"]
    assert "replace the DS at the registrar by badds.test. IN DS" in check["fix"]
    assert "apply cannot fix this: the DS is published at the registrar" in check["fix"]


def test_expired_signatures_are_bogus(report: dict[str, Any], lab: Hierarchy) -> None:
    judged = lab.delv("stale.test.", "SOA")
    assert "fully validated" not in judged and "resolution failed" in judged, judged
    check = _one(report, "stale.test", "dnssec")
    assert check["status"] == "FAIL"
    assert check["message"].startswith("bogus: the RRSIG over its DNSKEY does not validate")
    assert "re-sign the zone" in check["fix"] and "apply cannot fix" in check["fix"]
    assert _one(report, "stale.test", "delegation")["status"] == "OK"


def test_not_delegated_is_not_registered(report: dict[str, Any], lab: Hierarchy) -> None:
    import dns.rcode

    assert lab.top.ask("missing.test.", "NS").rcode() == dns.rcode.NXDOMAIN  # dig's view
    check = _one(report, "missing.test", "delegation")
    assert check["status"] == "FAIL"
    assert "not registered or not delegated" in check["message"]
    assert check["fix"].endswith("apply cannot fix this: the delegation is made at the registrar")
    others = [c for c in report["checks"] if c["subject"] == "missing.test"
              and c["status"] == "FAIL" and c["family"] != "delegation"]
    assert others and all("apply`" not in c["fix"] for c in others), others
    assert all(c["fix"].startswith("fix the delegation first") for c in others
               if c["family"] in ("mx", "dmarc", "dkim")), others


def test_a_name_without_delegation_is_not_registered(report: dict[str, Any]) -> None:
    check = _one(report, "flat.test", "delegation")
    assert check["status"] == "FAIL"
    assert check["message"].startswith("flat.test. is not registered or not delegated: test. "
                                       "has no delegation for it (it answers without NS records)")
    assert check["observed"] == "no delegation at test."


def test_a_lame_delegation(report: dict[str, Any], lab: Hierarchy) -> None:
    import dns.rcode

    assert lab.away.ask("lame.test.", "SOA").rcode() == dns.rcode.REFUSED
    check = _one(report, "lame.test", "delegation")
    assert check["status"] == "FAIL"
    assert check["message"].startswith("lame delegation: test. delegates lame.test. to "
                                       "ns.away.test., and none of them answers for it")
    assert "REFUSED" in check["message"]
    assert "the records were applied at bind" in check["message"]
    assert "delegate lame.test at the registrar to ns1.lame.test." in check["fix"]


def test_a_partly_lame_delegation_warns(report: dict[str, Any], lab: Hierarchy) -> None:
    check = _one(report, "half.test", "delegation")
    assert check["status"] == "WARN"
    assert check["message"] == (f"part of the delegation of half.test. is lame: ns.away.test. "
                                f"{lab.away.address} answers REFUSED"), check["message"]


def test_a_delegation_elsewhere(report: dict[str, Any], lab: Hierarchy) -> None:
    check = _one(report, "moved.test", "delegation")
    assert check["status"] == "FAIL"
    assert check["message"] == (
        "delegated elsewhere: test. delegates moved.test. to ns.away.test.; the world asks "
        f"ns.away.test., the records were applied at bind ({lab.child.address}:53) "
        "(NS ns1.moved.test.)"), check["message"]
    assert "apply cannot fix this" in check["fix"]
    # what the world sees there is the old copy: the MX failure is not sent to apply
    mx = [c for c in report["checks"] if c["subject"] == "moved.test" and c["check"] == "MX"]
    assert mx and mx[0]["status"] == "FAIL" and "old-host" in mx[0]["message"]
    assert mx[0]["fix"].startswith("fix the delegation first")


def _blocklist(report: dict[str, Any]) -> list[dict[str, str]]:
    return [c for c in report["checks"] if c["family"] == "dnsbl"]


def test_a_listed_address_fails_and_a_refused_query_warns(applied: Project,
                                                          lab: Hierarchy) -> None:
    import dns.resolver

    judge = dns.resolver.Resolver(configure=False)  # dig's question, through the resolver
    judge.nameservers = [lab.resolver.address]
    assert [r.address for r in judge.resolve(LISTED, "A")] == ["127.0.0.2"]
    code, report = _verify(applied, lab)
    assert not _blocklist(report)  # no list given: none asked
    code, report = _verify(applied, lab, "--dnsbl", "bl.test")
    found = {c["message"].split(" ")[0]: c for c in _blocklist(report)}
    v4 = [c for c in _blocklist(report) if c["status"] == "FAIL"]
    assert len(v4) == 1 and v4[0]["subject"] == "mx1.plain.test."
    assert v4[0]["message"] == ("198.51.100.25 is listed in bl.test (127.0.0.2): listed: "
                                "https://bl.test/198.51.100.25"), found
    v6 = [c for c in _blocklist(report) if c["status"] == "WARN"]
    assert len(v6) == 1 and "refused the query for 2001:db8::25 (127.255.255.254)" in \
        v6[0]["message"]
    assert "own resolver" in v6[0]["fix"]


def test_blocklists_from_the_spec(applied: Project, lab: Hierarchy) -> None:
    import yaml

    spec = yaml.safe_load(applied.spec_path.read_text())
    spec["verify"] = {"dnsbl": ["bl.test", "other-bl.test"]}
    applied.write_spec(spec)
    code, report = _verify(applied, lab, "--dnsbl", "bl.test")
    checks = _blocklist(report)
    assert len(checks) == 4  # two addresses, two lists (bl.test once)
    assert {c["status"] for c in checks if "other-bl.test" in c["message"]} == {"OK"}
    assert [c["status"] for c in checks if "bl.test (" in c["message"]] == ["FAIL"]


def test_the_reports_carry_the_new_checks(applied: Project, lab: Hierarchy) -> None:
    import json

    import jsonschema

    from .test_report import SCHEMA

    code, report = _verify(applied, lab, "--dnsbl", "bl.test")
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    assert {"delegation", "dnssec", "dnsbl"} <= {c["family"] for c in report["checks"]}
    ns = lab.nameserver
    text = applied.run("verify", "--nameserver", ns, "--dnsbl", "bl.test").out
    assert "  FAIL  delegation: missing.test. is not registered or not delegated" in text
    assert "  WARN  DNSSEC: signed, not delegated securely" in text
    assert "  FAIL  blocklist: 198.51.100.25 is listed in bl.test (127.0.0.2)" in text
    md = applied.run("verify", "--nameserver", ns, "--dnsbl", "bl.test", "--format",
                     "markdown").out
    assert "| FAIL | `badds.test` | DNSSEC | `bogus: no DS at test." in md
    page = applied.run("verify", "--nameserver", ns, "--dnsbl", "bl.test", "--format",
                       "html").out
    for family, label in (("delegation", "Delegation"), ("dnssec", "DNSSEC"),
                          ("dnsbl", "Blocklists")):
        # a column of the fleet grid, and one of the table of families
        assert f'<th data-k="{family}">{label}</th>' in page, family
        assert f'<th data-family="{family}">{label}</th>' in page, family


def _until_resolved(lab: Hierarchy, name: str, rtype: str, value: bytes) -> None:
    """Wait (at most 10 s) until the resolver's cached answer (max-cache-ttl 1) has gone and it
    answers `value` at name, as receivers would after the change."""
    import time

    import dns.message
    import dns.query

    deadline = time.monotonic() + 10
    while True:
        reply = dns.query.udp(dns.message.make_query(name, rtype), lab.resolver.address,
                              timeout=2)
        if any(value in b"".join(r.strings) for rrset in reply.answer for r in rrset
               if hasattr(r, "strings")):
            return
        assert time.monotonic() < deadline, f"the resolver still answers the old {name}"
        time.sleep(0.2)


def test_through_a_resolver_wildcards_and_cnames(applied: Project, lab: Hierarchy) -> None:
    """The same receiver's view through a recursive resolver: a DKIM key deleted under the
    wildcard is missing, and a CNAME into another zone whose target has no address is named."""
    import yaml

    spec = yaml.safe_load(applied.spec_path.read_text())
    spec["domains"]["plain.test"] = {"mta_sts": {"web": {"cname": "gone.good.test"}}}
    applied.write_spec(spec)
    assert applied.run("apply", "--yes").code == 0
    try:
        upd = lab.child.update("plain.test.")
        upd.delete("pmg2026._domainkey.plain.test.", "TXT")
        lab.child.send(upd)
        _until_resolved(lab, "pmg2026._domainkey.plain.test.", "TXT", b"v=spf1 -all")
        code, report = _verify(applied, lab)
        dkim = _one(report, "plain.test", "dkim")
        assert dkim["message"].startswith("no DKIM key at pmg2026._domainkey.plain.test.; the "
                                          "wildcard *.plain.test answers in its place")
        policy = [c for c in report["checks"] if c["subject"] == "plain.test"
                  and c["check"] == "MTA-STS policy"]
        assert [c["message"] for c in policy] == [
            "mta-sts.plain.test is a CNAME to gone.good.test., which has no address, so no "
            "sender can fetch the policy"]
    finally:
        spec["domains"]["plain.test"] = {"mta_sts": False}
        applied.write_spec(spec)
        assert applied.run("apply", "--yes").code == 0
