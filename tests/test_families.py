"""The record families as an extension point, and the DKIM selector owned whole (spec-v1 §6.2)
against a real BIND, with dkimpy as the receiver."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import dkim as dkimpy
import dns.resolver
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pmgdns.families import FAMILIES
from pmgdns.families.loader import parse_site
from pmgdns.zones.ownership import OwnershipProcessor
from pmgdns.zones.records import site_records
from pmgdns.zones.render import processor_config

from .conftest import Keys, Project, assert_clean_error, base_spec, verify_json
from .servers import BindServer, zone_text


def _rich_spec(keys: Keys) -> dict[str, Any]:
    spec = base_spec(keys)
    spec["dkim"]["retired_selectors"] = ["pmg2025"]
    spec["domains"] = {
        "example.com": {"dmarc": {"rua": ["mailto:d@example.org"]}},
        "example.org": {"wildcard_spf": False, "mx_priority": 5},
        "gone.example": {"absent": True},
    }
    return spec


def test_every_published_slot_is_claimed_by_a_family(keys: Keys) -> None:
    """A family that publishes a record must claim it, or the processor refuses the zone."""
    site = parse_site(yaml.safe_dump(_rich_spec(keys)), "site.yaml")
    options = processor_config(site)
    options.pop("class")
    processor = OwnershipProcessor("t", **options)
    for zone, records in site_records(site).items():
        desired = {(r.name, r.type) for r in records}
        claims = processor.claims(zone, desired, {n for n, _ in desired})
        assert desired <= set(claims), (zone, desired - set(claims))
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))


def test_absent_zone_claims_what_pmgdns_may_have_published(keys: Keys) -> None:
    site = parse_site(yaml.safe_dump(_rich_spec(keys)), "site.yaml")
    options = processor_config(site)
    options.pop("class")
    processor = OwnershipProcessor("t", **options)
    claims = processor.claims("gone.example.", set(), {"", "*", "_dmarc", "pmg2026._domainkey",
                                                       "www"})
    assert {("", "MX"), ("", "TXT"), ("*", "TXT"), ("_dmarc", "TXT"),
            ("pmg2026._domainkey", "TXT"), ("pmg2025._domainkey", "TXT")} <= set(claims)
    assert ("www", "A") not in claims
    assert claims[("pmg2026._domainkey", "TXT")].whole
    assert not claims[("", "TXT")].whole


def test_ed25519_key_in_the_spec_is_refused(project: Project) -> None:
    project.write_spec(project.spec(dkim={"selector": "s1", "public_key": project.keys.b64("ed")}))
    assert_clean_error(project.run("validate"), "dkim.public_key", "RSA only")


def test_one_gateway_zones_pass_octodns_best_practice_mail_validator(project: Project) -> None:
    """octoDNS 2 enables the `best-practice` set; pmgdns pins the mail validator's MX minimum."""
    from octodns.manager import Manager
    from octodns.record import Record
    from octodns.zone import Zone

    from pmgdns.zones.source import SiteSource

    assert project.run("render").code == 0
    Manager("build/octodns.yaml")
    try:
        Record.enable_validators(["legacy", "strict", "best-practice"])
        Zone.enable_zone_validators(["legacy", "strict", "best-practice"])
        site = parse_site(project.spec_path.read_text(), "site.yaml")
        source = SiteSource("pmgdns", site_records(site))
        for d in site.domains.values():
            zone = Zone(d.zone, [])
            source.populate(zone)
            zone.validate()
    finally:
        Record.enable_validators(["legacy", "strict"])
        Zone.enable_zone_validators(["legacy", "strict"])


# -- the DKIM selector, owned whole, against a real BIND and dkimpy -----------------------------


@pytest.fixture
def signer() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(private: Any) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def bind(project: Project, keys: Keys, signer: Any, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[BindServer]:
    old = keys.b64("rsa2048")
    chunks = " ".join(f'"{c}"' for c in [f"k=rsa; p={old}"[i:i + 250]
                                         for i in range(0, len(old) + 10, 250)])
    server = BindServer({"example.com": zone_text(
        "example.com", f"pmg2026._domainkey IN TXT {chunks}\n"
                       'pmg2026._domainkey IN TXT "google-site-verification=stray"\n')}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()},
                        dkim={"selector": "pmg2026", "public_key": _b64(signer)})
    spec["domains"] = {"example.com": {}}
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def _verify(project: Project, bind: BindServer) -> tuple[int, dict[str, Any]]:
    return verify_json(project, bind.port)


def _dkim(report: dict[str, Any]) -> list[dict[str, str]]:
    return [c for c in report["checks"] if c["family"] == "dkim"]


def _dkimpy_verifies(bind: BindServer, private: Any) -> bool:
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    message = (b"From: a@example.com\r\nTo: b@example.net\r\nSubject: test\r\n"
               b"Date: Wed, 25 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
               b"Hello.\r\n")
    signature = dkimpy.sign(message, b"pmg2026", b"example.com", pem,
                            include_headers=[b"from", b"to", b"subject", b"date"])

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = bind.resolver().resolve(name.decode(), "TXT")
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(answer[0].strings)

    return bool(dkimpy.verify(signature + message, dnsfunc=dnsfunc))


def test_an_old_key_without_v_dkim1_is_replaced_not_kept(project: Project, bind: BindServer,
                                                         signer: Any) -> None:
    code, report = _verify(project, bind)
    assert code == 1
    dkim_checks = _dkim(report)
    assert dkim_checks[0]["status"] == "FAIL"
    assert "2 TXT values at pmg2026._domainkey.example.com." in dkim_checks[0]["message"]

    plan = json.loads(project.run("plan", "--format", "json").out)
    change = next(c for c in plan["changes"] if c["name"] == "pmg2026._domainkey.example.com.")
    assert change["action"] == "update" and len(change["previous"]) == 2
    assert change["values"] == [f"v=DKIM1; h=sha256; k=rsa; p={_b64(signer)}"]
    assert project.run("apply", "--yes").code == 0

    assert bind.txt("pmg2026._domainkey.example.com.") == [
        f"v=DKIM1; h=sha256; k=rsa; p={_b64(signer)}"]
    code, report = _verify(project, bind)
    # no reverse zone here: only the PTR checks may fail
    assert [c for c in report["checks"] if c["status"] != "OK" and c["family"] != "ptr"] == []
    assert [c["status"] for c in _dkim(report)] == ["OK"]
    # the receiver agrees, every time: there is one key to pick
    assert all(_dkimpy_verifies(bind, signer) for _ in range(5))
    assert project.run("plan", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("record,status,fragment", [
    ("k=rsa; p={key}", "OK", "rsa, 2048 bits"),  # v=DKIM1 is optional (RFC 6376 §3.6.1)
    ("v=DKIM1; h=sha1; k=rsa; p={key}", "FAIL", "h=sha1"),
    ("v=DKIM1; s=tlsrpt; p={key}", "FAIL", "s=tlsrpt"),
    ("v=DKIM1; t=s; p={key}", "FAIL", "t=s"),
    ("v=DKIM1; t=y; p={key}", "WARN", "t=y"),
    ("v=DKIM1; k=ed25519; p={key}", "FAIL", "32 bytes"),
    ("v=DKIM1; p=", "FAIL", "revoked"),
])
def test_key_record_tags_that_break_verification(project: Project, bind: BindServer,
                                                 signer: Any, record: str, status: str,
                                                 fragment: str) -> None:
    assert project.run("apply", "--yes").code == 0
    value = record.format(key=_b64(signer))
    upd = bind.update("example.com")
    upd.replace("pmg2026._domainkey.example.com.", 3600, "TXT",
                " ".join(f'"{value[i:i + 250]}"' for i in range(0, len(value), 250)))
    bind.send(upd)
    _, report = _verify(project, bind)
    checks = _dkim(report)
    assert len(checks) == 1 and checks[0]["status"] == status, checks
    assert fragment in checks[0]["message"]
