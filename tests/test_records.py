"""Record expansion (spec-v1 §2): pure functions, every row of the table."""

from __future__ import annotations

from typing import Any

import yaml

from pmgdns.families.loader import parse_site
from pmgdns.zones.records import domain_records, gateway_note, site_records, txt_kind

from .conftest import Keys, base_spec


def _site(spec: dict[str, Any]) -> Any:
    return parse_site(yaml.safe_dump(spec), "site.yaml")


def _table(recs: list[Any]) -> dict[tuple[str, str], tuple[int, tuple[str, ...]]]:
    return {(r.fqdn, r.type): (r.ttl, r.values) for r in recs}


def test_every_row_for_the_gateway_domain(keys: Keys) -> None:
    site = _site(base_spec(keys))
    got = _table(domain_records(site, site.domains["example.com"]))
    key = keys.b64()
    assert got == {
        ("mx1.example.com.", "A"): (3600, ("198.51.100.25",)),
        ("mx1.example.com.", "AAAA"): (3600, ("2001:db8::25",)),
        ("mx1.example.com.", "TXT"): (3600, ("v=spf1 a -all",)),
        ("example.com.", "MX"): (3600, ("10 mx1.example.com.",)),
        ("example.com.", "TXT"): (3600, ("v=spf1 mx -all",)),
        ("_dmarc.example.com.", "TXT"): (3600, ("v=DMARC1; p=quarantine; aspf=s; adkim=s;",)),
        ("pmg2026._domainkey.example.com.", "TXT"):
            (3600, (f"v=DKIM1; h=sha256; k=rsa; p={key}",)),
        ("*.example.com.", "TXT"): (3600, ("v=spf1 -all",)),
    }


def test_other_domain_has_no_gateway_records(keys: Keys) -> None:
    site = _site(base_spec(keys))
    got = _table(domain_records(site, site.domains["example.org"]))
    assert ("mx1.example.com.", "A") not in got
    assert got[("example.org.", "MX")] == (3600, ("10 mx1.example.com.",))
    assert len(got) == 5


def test_overrides_priority_ttl_spf_wildcard(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["gateway"].pop("ipv6")
    spec["domains"]["example.org"] = {"ttl": 300, "mx_priority": 20, "wildcard_spf": False,
                                      "spf": "v=spf1 mx include:_spf.example.net -all"}
    site = _site(spec)
    org = _table(domain_records(site, site.domains["example.org"]))
    assert org[("example.org.", "MX")] == (300, ("20 mx1.example.com.",))
    assert org[("example.org.", "TXT")] == (300, ("v=spf1 mx include:_spf.example.net -all",))
    assert ("*.example.org.", "TXT") not in org
    com = _table(domain_records(site, site.domains["example.com"]))
    assert ("mx1.example.com.", "AAAA") not in com


def test_report_authorisation_record(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["domains"]["example.org"] = {"dmarc": {"rua": ["mailto:dmarc@reports.example.com"],
                                                "ruf": ["mailto:x@example.org"]}}
    site = _site(spec)
    com = _table(domain_records(site, site.domains["example.com"]))
    assert com[("example.org._report._dmarc.reports.example.com.", "TXT")] == (
        3600, ("v=DMARC1",))
    org = _table(domain_records(site, site.domains["example.org"]))
    assert not any("_report" in name for name, _ in org)  # own-domain ruf needs no record
    assert site.warnings == [w for w in site.warnings if "_report" not in w]


def test_report_to_unmanaged_domain_warns_naming_the_record(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["defaults"] = {"dmarc": {"rua": ["mailto:agg@dmarc.example.net"]}}
    site = _site(spec)
    assert any('example.com._report._dmarc.dmarc.example.net. TXT "v=DMARC1"' in w
               for w in site.warnings)
    assert not any("_report" in r.fqdn for recs in site_records(site).values() for r in recs)


def test_gateway_outside_the_spec(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["gateway"]["hostname"] = "gw.hoster.example.net"
    site = _site(spec)
    assert all(r.type not in ("A", "AAAA") for recs in site_records(site).values() for r in recs)
    assert "gw.hoster.example.net lies in none of the spec's domains" in gateway_note(site)
    com = _table(domain_records(site, site.domains["example.com"]))
    assert com[("example.com.", "MX")] == (3600, ("10 gw.hoster.example.net.",))


def test_absent_domain_publishes_nothing(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["domains"]["example.org"] = {"absent": True}
    site = _site(spec)
    assert domain_records(site, site.domains["example.org"]) == []


def test_gateway_in_a_subzone_goes_to_the_longest_match(keys: Keys) -> None:
    spec = base_spec(keys)
    spec["gateway"]["hostname"] = "mx1.mail.example.com"
    spec["domains"]["mail.example.com"] = {}
    site = _site(spec)
    assert site.gateway_zone() == "mail.example.com"
    sub = _table(domain_records(site, site.domains["mail.example.com"]))
    assert ("mx1.mail.example.com.", "A") in sub


def test_txt_kind() -> None:
    assert txt_kind("v=spf1 -all") == "v=spf1"
    assert txt_kind("V=SPF1 mx -all") == "v=spf1"
    assert txt_kind("v=spf1") == "v=spf1"
    assert txt_kind("v=spf10 -all") is None
    assert txt_kind("v=DMARC1; p=none") == "v=DMARC1"
    assert txt_kind("v=DKIM1; k=rsa; p=x") == "v=DKIM1"
    assert txt_kind("google-site-verification=abc") is None
    assert txt_kind("v=DMARC1") == "v=DMARC1"
