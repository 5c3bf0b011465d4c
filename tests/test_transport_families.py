"""Transport security and parked domains (spec-v1 §6.2) end to end: the records against a real
BIND, and `verify --smtp` against a real STARTTLS server and an HTTPS policy server on loopback,
one break at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkdmarc.mta_sts import parse_mta_sts_policy, parse_mta_sts_record
from checkdmarc.smtp_tls_reporting import parse_smtp_tls_reporting_record

from pmgdns.spec.certs import spki_sha256

from .conftest import Project, assert_clean_error
from .servers import BindServer, zone_text
from .tls_servers import Answer, CertFactory, Issued, PolicyServer, SMTPServer

REV4 = "100.51.198.in-addr.arpa"
ZONES = ("example.com", "example.org", "parked.example")


@dataclass
class World:
    bind: BindServer
    certs: CertFactory
    mx: Issued
    smtp: SMTPServer
    web: PolicyServer

    def resolve(self) -> list[str]:
        out = ["--resolve", f"mx1.example.com:25:127.0.0.1:{self.smtp.port}"]
        for d in ("example.com", "example.org"):
            out += ["--resolve", f"mta-sts.{d}:443:127.0.0.1:{self.web.port}"]
        return out


def _spec(project: Project, bind: BindServer, mx: Issued, **changes: Any) -> dict[str, Any]:
    spec = project.spec(defaults={"targets": ["bind"],
                                  "mta_sts": {"mode": "enforce", "max_age": 604800,
                                              "web": {"ipv4": "198.51.100.80"}},
                                  "tls_rpt": {"rua": ["mailto:tls-reports@example.com"]}},
                        providers={"bind": bind.provider_config()})
    spec.pop("gateway")
    spec["gateways"] = [{"hostname": "mx1.example.com", "ipv4": "198.51.100.25",
                         "caa": ["letsencrypt.org"], "tlsa": [{"cert_file": str(mx.cert_file)}]}]
    spec["domains"] = {"example.com": {}, "example.org": {}, "parked.example": {"parked": True}}
    spec.update(changes)
    return spec


@pytest.fixture
def world(project: Project, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Iterator[World]:
    zones = {z: zone_text(z, "www IN A 203.0.113.80\n") for z in ZONES}
    zones[REV4] = zone_text(REV4, "25 IN PTR mx1.example.com.\n")
    bind = BindServer(zones).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", bind.secret)
    certs = CertFactory(tmp_path / "certs")
    mx = certs.good("mx1.example.com")
    web_certs = {f"mta-sts.{d}": certs.good(f"mta-sts.{d}") for d in ("example.com",
                                                                      "example.org")}
    project.write_spec(_spec(project, bind, mx))
    assert project.run("apply", "--yes").code == 0
    policy = (project.root / "build" / "mta-sts" / "example.com" / ".well-known" /
              "mta-sts.txt").read_bytes()
    w = World(bind, certs, mx, SMTPServer(mx),
              PolicyServer(web_certs, web_certs["mta-sts.example.com"], Answer(body=policy)))
    try:
        yield w
    finally:
        try:
            w.web.stop()
            w.smtp.stop()
        finally:
            bind.stop()


def _verify(project: Project, world: World, *extra: str) -> tuple[int, list[dict[str, str]]]:
    result = project.run("verify", "--nameserver", f"127.0.0.1:{world.bind.port}", "--smtp",
                         *world.resolve(), "--ca-file", str(world.certs.ca_file), "--format",
                         "json", *extra)
    assert "Traceback" not in result.err
    assert result.out, result.err
    return result.code, json.loads(result.out)["checks"]


def _problems(checks: list[dict[str, str]]) -> dict[tuple[str, str, str], str]:
    return {(c["subject"], c["family"], c["check"]): c["status"] for c in checks
            if c["status"] != "OK"}


def test_everything_publishes_parses_and_verifies(project: Project, world: World) -> None:
    bind = world.bind
    assert project.run("plan", "--detailed-exitcode").code == 0
    sts = bind.txt("_mta-sts.example.com.")
    assert len(sts) == 1 and parse_mta_sts_record(sts[0])["tags"]["id"]
    rpt = bind.txt("_smtp._tls.example.org.")
    assert rpt == ["v=TLSRPTv1; rua=mailto:tls-reports@example.com"]
    parse_smtp_tls_reporting_record(rpt[0])
    policy = (project.root / "build" / "mta-sts" / "example.org" / ".well-known" /
              "mta-sts.txt").read_bytes().decode()
    assert policy == ("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\n"
                      "max_age: 604800\r\n")
    assert parse_mta_sts_policy(policy)["policy"]["mx"] == ["mx1.example.com"]
    rr = bind.rrsets("example.com")
    assert rr[("mx1.example.com.", "CAA")][1] == frozenset({'0 issue "letsencrypt.org"'})
    tlsa = rr[("_25._tcp.mx1.example.com.", "TLSA")][1]
    assert tlsa == frozenset({f"3 1 1 {spki_sha256(world.mx.cert_pem)}"})
    assert rr[("mta-sts.example.com.", "A")][1] == frozenset({"198.51.100.80"})
    parked = bind.rrsets("parked.example")
    assert parked[("parked.example.", "MX")][1] == frozenset({"0 ."})
    assert bind.txt("parked.example.") == ["v=spf1 -all"]
    assert bind.txt("_dmarc.parked.example.") == ["v=DMARC1; p=reject; aspf=s; adkim=s;"]
    assert bind.txt("*._domainkey.parked.example.") == ["v=DKIM1; p="]
    assert ("pmg2026._domainkey.parked.example.", "TXT") not in parked
    assert ("_mta-sts.parked.example.", "TXT") not in parked

    code, checks = _verify(project, world)
    # the test zones are not DNSSEC-signed: TLSA is published, and verify says it is ignored
    assert _problems(checks) == {("mx1.example.com.", "tlsa", "DNSSEC"): "WARN"}, checks
    assert code == 0
    families = {c["family"] for c in checks}
    assert {"mta_sts", "tls_rpt", "caa", "tlsa", "smtp", "parked"} <= families
    smtp_checks = {c["check"] for c in checks if c["family"] == "smtp"}
    assert {"STARTTLS", "certificate name", "certificate chain", "TLSA match",
            "certificate expiry"} <= smtp_checks
    # the policy was fetched as senders fetch it, for each domain, by its own name
    assert set(world.web.requests) >= {("/.well-known/mta-sts.txt", "mta-sts.example.com"),
                                       ("/.well-known/mta-sts.txt", "mta-sts.example.org")}


def _restart_smtp(world: World, cert: Issued | None) -> None:
    world.smtp.stop()
    world.smtp = SMTPServer(cert)


@pytest.mark.parametrize("break_,family,check,fragment", [
    ("no starttls", "smtp", "STARTTLS", "STARTTLS"),
    ("other name", "smtp", "certificate name", "mx9.other.example"),
    ("expired", "smtp", "certificate expiry", "expired"),
    ("tlsa other key", "tlsa", "TLSA", "the spec says"),
    ("policy misses a node", "mta_sts", "MTA-STS policy", "mx"),
])
def test_each_break_is_named(project: Project, world: World, break_: str, family: str,
                             check: str, fragment: str) -> None:
    if break_ == "no starttls":
        _restart_smtp(world, None)
    elif break_ == "other name":
        _restart_smtp(world, world.certs.other_name())
    elif break_ == "expired":
        _restart_smtp(world, world.certs.expired())
    elif break_ == "tlsa other key":
        other = world.certs.leaf("other-key", ["mx1.example.com"])  # a key the node lacks
        upd = world.bind.update("example.com")
        upd.replace("_25._tcp.mx1.example.com.", 3600, "TLSA",
                    f"3 1 1 {spki_sha256(other.cert_pem)}")
        world.bind.send(upd)
    else:
        world.web.answer.body = world.web.answer.body.replace(b"mx: mx1.example.com\r\n",
                                                              b"mx: mx9.other.example\r\n")
    code, checks = _verify(project, world)
    assert code == 1
    failing = [c for c in checks if c["status"] == "FAIL"]
    assert (("mx1.example.com." if family in ("smtp", "tlsa") else "example.com"), family,
            check) in {(c["subject"], c["family"], c["check"]) for c in failing}, failing
    named = [c for c in failing if c["family"] == family and c["check"] == check]
    assert any(fragment in c["message"] and c["fix"] for c in named), named
    if break_ == "tlsa other key":  # the node presents the published key no longer
        assert any(c["check"] == "TLSA match" for c in failing)


def test_switching_off_removes_only_what_pmgdns_published(project: Project,
                                                          world: World) -> None:
    bind = world.bind
    spec = _spec(project, bind, world.mx)
    spec["defaults"]["mta_sts"] = False  # deletions are explicit (spec-v1 §3)
    spec["defaults"]["tls_rpt"] = False
    spec["domains"]["parked.example"] = {}
    spec["gateways"][0]["caa"] = []
    spec["gateways"][0]["tlsa"] = []
    project.write_spec(spec)
    result = project.run("apply", "--yes", "--force")
    assert result.code == 0, result.err
    for d in ("example.com", "example.org"):
        names = {name for name, _ in bind.rrsets(d)}
        assert f"_mta-sts.{d}." not in names and f"_smtp._tls.{d}." not in names
    rr = bind.rrsets("example.com")
    assert ("mx1.example.com.", "CAA") not in rr
    assert ("_25._tcp.mx1.example.com.", "TLSA") not in rr
    assert ("mta-sts.example.com.", "A") in rr  # `web` owned only while given
    assert ("www.example.com.", "A") in rr
    parked = bind.rrsets("parked.example")
    assert parked[("parked.example.", "MX")][1] == frozenset({"10 mx1.example.com."})
    assert project.run("plan", "--detailed-exitcode").code == 0


FOREIGN = ('_mta-sts IN TXT "v=STSv1; id=handmade1"\n'
           '_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tls@hoster.example"\n'
           "_25._tcp.mx1 IN TLSA 3 1 1 " + "ab" * 32 + "\n"
           "mx1 IN CAA 0 issue \"hoster-ca.example\"\n"
           "mta-sts IN CNAME sts.hoster.example.net.\n"
           '*._domainkey IN TXT "v=DKIM1; p="\n')


@pytest.fixture
def hoster(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    """Zones that already hold what the hoster set up by hand at the names the v1.1 families
    use; the spec below uses none of those features."""
    bind = BindServer({"example.com": zone_text("example.com", FOREIGN),
                       "example.org": zone_text("example.org", FOREIGN)}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", bind.secret)
    try:
        yield bind
    finally:
        bind.stop()


def _names_of_the_new_families(bind: BindServer, zone: str) -> dict[Any, Any]:
    keep = ("_mta-sts.", "_smtp._tls.", "_25._tcp.", "*._domainkey.", "mta-sts.")
    return {k: v for k, v in bind.rrsets(zone).items()
            if k[0].startswith(keep) or k == (f"mx1.{zone}.", "CAA")}


def test_a_v1_spec_leaves_the_new_names_alone(project: Project, hoster: BindServer) -> None:
    """A spec that does not use MTA-STS, TLS-RPT, DANE, CAA or parking keeps its meaning: what
    the hoster holds at those names is never touched — published, absent, or a node retired."""
    before = {z: _names_of_the_new_families(hoster, z) for z in ("example.com", "example.org")}
    assert all(before.values())
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": hoster.provider_config()})
    project.write_spec(spec)
    assert project.run("apply", "--yes", "--force").code == 0
    spec["domains"]["example.org"] = {"absent": True}
    spec["gateway"]["hostname"] = "mx2.example.com"
    spec["retired_gateways"] = ["mx1.example.com"]
    project.write_spec(spec)
    assert project.run("apply", "--yes", "--force").code == 0
    after = {z: _names_of_the_new_families(hoster, z) for z in ("example.com", "example.org")}
    assert after == before
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_a_published_cname_beside_foreign_data_is_a_conflict(project: Project,
                                                             hoster: BindServer) -> None:
    upd = hoster.update("example.com")
    upd.delete("mta-sts.example.com.", "CNAME")
    upd.add("mta-sts.example.com.", 300, "A", "192.0.2.80")
    hoster.send(upd)
    spec = project.spec(defaults={"targets": ["bind"],
                                  "mta_sts": {"web": {"cname": "sts.example.net"}}},
                        providers={"bind": hoster.provider_config()})
    project.write_spec(spec)
    before = hoster.rrsets("example.com")
    assert_clean_error(project.run("apply", "--yes", "--force"), "CNAME conflict",
                       "mta-sts.example.com.", "Nothing was applied")
    assert hoster.rrsets("example.com") == before


@pytest.mark.parametrize("change,fragments", [
    ({"mta_sts": {"mode": "strict"}}, ("defaults.mta_sts.mode", "enforce, testing or none")),
    ({"mta_sts": {"max_age": 60}}, ("defaults.mta_sts.max_age", "86400")),
    ({"mta_sts": {"web": {"cname": "a.example.net", "ipv4": "198.51.100.9"}}},
     ("defaults.mta_sts.web", "not both")),
    ({"tls_rpt": {"rua": ["ftp://x.example"]}}, ("defaults.tls_rpt.rua.0", "https: URL")),
    ({"tls_rpt": {}}, ("defaults.tls_rpt.rua", "is missing")),
    ({"parked": "yes"}, ("defaults.parked", "true or false")),
])
def test_bad_transport_keys(project: Project, change: dict[str, Any],
                            fragments: tuple[str, ...]) -> None:
    project.write_spec(project.spec(defaults=change))
    assert_clean_error(project.run("validate"), *fragments)


def test_bad_node_keys(project: Project, tmp_path: Path) -> None:
    spec = project.spec()
    spec["gateway"]["tlsa"] = [{"spki_sha256": "abc"}]
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "gateway.tlsa.0.spki_sha256", "64 hex digits")
    key = tmp_path / "key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    spec["gateway"]["tlsa"] = [{"cert_file": str(key)}]
    project.write_spec(spec)
    result = project.run("validate")
    assert_clean_error(result, "gateway.tlsa.0.cert_file", "private key")
    assert key.read_text().splitlines()[1] not in result.err
    spec["gateway"]["tlsa"] = [{"cert_file": str(tmp_path / "missing.pem")}]
    spec["gateway"]["caa"] = ["not a domain!"]
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "gateway.caa.0")
