"""Property: over random pre-existing zones and random specs, after apply against a real BIND the
foreign part of every zone is identical and the pmgdns part equals spec-v1 §2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmgdns.families.loader import parse_site
from pmgdns.zones.records import site_records, txt_kind

from .conftest import Keys, base_spec
from .servers import BindServer, zone_text

ZONES = ("prop.example", "other.example")
# BIND refuses A records at names that are not host names, and CNAMEs beside other data
NAMES = ["", "www", "mx1", "_dmarc", "*", "pmg2026._domainkey", "pmg2025._domainkey", "mail",
         "_acme-challenge", "a.b", "prop.example._report._dmarc",
         "other.example._report._dmarc"]
HOSTS = ["", "www", "mx1", "mail", "a.b"]
TXT_VALUES = ["google-site-verification=tok", "MS=ms1", "v=spf1 include:_spf.x.example -all",
              "V=SPF1 a -all", "v=DMARC1; p=none", "v=DKIM1; p=QUJD", "acme-token", "hello world",
              "v=spf1 -all"]

record = st.one_of(
    st.tuples(st.sampled_from(NAMES), st.just("TXT"), st.sampled_from([60, 300, 3600]),
              st.lists(st.sampled_from(TXT_VALUES), min_size=1, max_size=3, unique=True)),
    st.tuples(st.sampled_from(HOSTS), st.just("A"), st.sampled_from([300, 3600]),
              st.lists(st.sampled_from(["203.0.113.5", "203.0.113.6", "198.51.100.25"]),
                       min_size=1, max_size=2, unique=True)),
    st.tuples(st.sampled_from(["", "mail"]), st.just("MX"), st.sampled_from([300, 3600]),
              st.lists(st.sampled_from(["10 mail.example.net.", "20 backup.example.net.",
                                        "30 mx.example.net."]),
                       min_size=1, max_size=2, unique=True)),
    st.tuples(st.sampled_from(["shop"]), st.just("CNAME"), st.just(300),
              st.just(["shops.example.net."])),
)
zone_contents = st.lists(record, max_size=8, unique_by=lambda r: (r[0], r[1]))


@st.composite
def specs(draw: Any) -> dict[str, Any]:
    return {
        "gateway_in_zone": draw(st.booleans()),
        "ipv6": draw(st.booleans()),
        "wildcard_spf": draw(st.booleans()),
        "p": draw(st.sampled_from(["none", "quarantine", "reject"])),
        "ttl": draw(st.sampled_from([300, 3600])),
        "other_absent": draw(st.booleans()),
        "retire": draw(st.booleans()),
        "rua_other": draw(st.booleans()),
    }


@pytest.fixture(scope="module")
def server() -> Iterator[BindServer]:
    s = BindServer({z: zone_text(z, "") for z in ZONES}).start()
    try:
        yield s
    finally:
        s.stop()


def _reset(server: BindServer, zone: str, contents: list[Any]) -> None:
    origin = dns.name.from_text(f"{zone}.")
    upd = server.update(zone)
    for name, rdataset in server.axfr(zone).iterate_rdatasets():
        if name == origin and rdataset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
            continue
        if name == dns.name.from_text(f"ns1.{zone}."):
            continue
        upd.delete(name, rdataset.rdtype)
    for rel, rtype, ttl, values in contents:
        owner = f"{rel}.{zone}." if rel else f"{zone}."
        for v in values:
            upd.add(owner, ttl, rtype, f'"{v}"' if rtype == "TXT" else v)
    server.send(upd)


def _owned(site: Any, zone: str) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """(whole (name, type) sets, {name: TXT kind}) pmgdns owns in `zone` under `site`."""
    d = site.domains[zone]
    g = site.gateway.fqdn
    whole: set[tuple[str, str]] = set()
    kinds: dict[str, str] = {}
    g_here = site.gateway_zone() == zone
    if d.absent:
        whole.add((f"{zone}.", "MX"))
        kinds.update({f"{zone}.": "v=spf1", f"*.{zone}.": "v=spf1", f"_dmarc.{zone}.": "v=DMARC1",
                      f"pmg2026._domainkey.{zone}.": "v=DKIM1"})
        if g_here:
            whole |= {(g, "A"), (g, "AAAA")}
            kinds[g] = "v=spf1"
        for other in site.domains.values():
            if other.name != zone and zone in other.dmarc.report_domains():
                kinds[f"{other.name}._report._dmarc.{zone}."] = "v=DMARC1"
    for r in site_records(site)[f"{zone}."]:
        if r.type == "TXT":
            kinds[r.fqdn] = txt_kind(r.values[0]) or ""
        else:
            whole.add((r.fqdn, r.type))
    for sel in site.dkim.retired_selectors:
        kinds[f"{sel}._domainkey.{zone}."] = "v=DKIM1"
    for other in site.domains.values():
        if other.absent and other.name != zone:
            kinds[f"{other.name}._report._dmarc.{zone}."] = "v=DMARC1"
    # spec-v1 §6.2: every TXT value at a selector's name is pmgdns's, whatever its kind
    for name in [n for n in kinds if "._domainkey." in n]:
        del kinds[name]
        whole.add((name, "TXT"))
    return whole, kinds


def _split(rrsets: dict[tuple[str, str], tuple[int, frozenset[str]]], whole: set[Any],
           kinds: dict[str, str]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    foreign: dict[Any, Any] = {}
    ours: dict[Any, Any] = {}
    for (name, rtype), (ttl, values) in rrsets.items():
        if (name, rtype) in whole:
            if rtype == "TXT":
                values = frozenset("".join(p.strip('"') for p in v.split('" "'))
                                   for v in values)
            ours[(name, rtype)] = (ttl, values)
        elif rtype == "TXT" and name in kinds:
            texts = {v: "".join(p.strip('"') for p in v.split('" "')) for v in values}
            mine = frozenset(t for t in texts.values() if txt_kind(t) == kinds[name])
            rest = frozenset(t for t in texts.values() if txt_kind(t) != kinds[name])
            if mine:
                ours[(name, rtype)] = (ttl, mine)
            if rest:
                foreign[(name, "TXT")] = rest
        else:
            foreign[(name, rtype)] = (ttl, values)
    return foreign, ours


def _expected(site: Any, zone: str) -> dict[Any, Any]:
    out = {}
    for r in site_records(site)[f"{zone}."]:
        out[(r.fqdn, r.type)] = (r.ttl, frozenset(r.values))
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prop=zone_contents, other=zone_contents, choice=specs())
def test_foreign_part_identical_and_pmgdns_part_exact(
        prop: list[Any], other: list[Any], choice: dict[str, Any], server: BindServer,
        keys: Keys, tmp_path_factory: pytest.TempPathFactory, run_cli: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _reset(server, "prop.example", prop)
    _reset(server, "other.example", other)
    spec = base_spec(keys)
    spec["gateway"]["hostname"] = ("mx1.prop.example" if choice["gateway_in_zone"]
                                   else "mx1.elsewhere.example")
    if not choice["ipv6"]:
        spec["gateway"].pop("ipv6")
    spec["defaults"] = {"targets": ["bind"], "ttl": choice["ttl"],
                        "wildcard_spf": choice["wildcard_spf"], "dmarc": {"p": choice["p"]},
                        # the seeded SPF senders may go (spec-v1 §7.1)
                        "spf": {"drop": ["include:_spf.x.example", "a"]}}
    spec["providers"] = {"bind": server.provider_config()}
    spec["domains"] = {"prop.example": {}, "other.example": {"absent": choice["other_absent"]}}
    if choice["rua_other"]:
        spec["domains"]["prop.example"] = {"dmarc": {"rua": ["mailto:d@other.example"]}}
    if choice["retire"]:
        spec["dkim"]["retired_selectors"] = ["pmg2025"]
    text = yaml.safe_dump(spec)
    site = parse_site(text, "site.yaml")

    before = {z: _split(server.rrsets(z), *_owned(site, z))[0] for z in ZONES}
    root: Path = tmp_path_factory.mktemp("prop")
    (root / "config").mkdir()
    (root / "config" / "site.yaml").write_text(text)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    result = run_cli("apply", "--yes", "--force")
    assert result.code == 0, result.err

    for z in ZONES:
        foreign, ours = _split(server.rrsets(z), *_owned(site, z))
        assert foreign == before[z], z
        assert ours == _expected(site, z), z
    again = run_cli("plan", "--detailed-exitcode")
    assert again.code == 0, again.out
