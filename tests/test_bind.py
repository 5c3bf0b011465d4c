"""Shared zones against a real BIND9 (RFC 2136 + AXFR): pmgdns owns exactly what spec-v1 §3 says."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Project, assert_clean_error
from .servers import BindServer, zone_text

COM_FOREIGN = """\
www 300 IN A 203.0.113.80
@ IN TXT "google-site-verification=abc123"
@ IN TXT "MS=ms12345"
@ IN TXT "v=spf1 include:_spf.oldprovider.example -all"
@ IN MX 20 oldmx.example.net.
shop IN CNAME shops.example.net.
_acme-challenge 60 IN TXT "acme-validation-token"
_dmarc IN TXT "v=DMARC1; p=none"
"""
ORG_FOREIGN = """\
@ IN TXT "v=spf1 a mx -all"
@ IN MX 10 mail.example.org.
mail IN A 203.0.113.25
www IN CNAME hosting.example.net.
"""

# the senders the seeded SPF records authorise that the spec lets go (spec-v1 §7.1)
DROPPED = {"drop": ["include:_spf.oldprovider.example", "a"]}

# (owner, type) sets pmgdns may touch in the seeded zones, and the TXT kinds it owns there
OWNED_WHOLE = {("example.com.", "MX"), ("example.org.", "MX"), ("mx1.example.com.", "A"),
               ("mx1.example.com.", "AAAA")}
OWNED_TXT = {"example.com.": "v=spf1", "*.example.com.": "v=spf1",
             "mx1.example.com.": "v=spf1", "_dmarc.example.com.": "v=DMARC1",
             "example.org.": "v=spf1", "*.example.org.": "v=spf1",
             "_dmarc.example.org.": "v=DMARC1"}


def _foreign(rrsets: dict[tuple[str, str], tuple[int, frozenset[str]]]
             ) -> dict[tuple[str, str], Any]:
    """The part of a zone pmgdns does not own: whole sets with TTL, shared TXT values only."""
    out: dict[tuple[str, str], Any] = {}
    for (name, rtype), (ttl, values) in rrsets.items():
        if (name, rtype) in OWNED_WHOLE:
            continue
        if rtype == "TXT" and (name in OWNED_TXT or "._domainkey." in name):
            kind = OWNED_TXT.get(name, "v=DKIM1").lower()
            rest = frozenset(v for v in values
                             if not v.strip('"').lower().startswith(kind))
            if rest:
                out[(name, "TXT-foreign")] = rest
            continue
        out[(name, rtype)] = (ttl, values)
    return out


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({"example.com": zone_text("example.com", COM_FOREIGN),
                         "example.org": zone_text("example.org", ORG_FOREIGN)}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"], "spf": DROPPED},
                        providers={"bind": server.provider_config()})
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def _spec_with(project: Project, bind: BindServer, **domains: Any) -> dict[str, Any]:
    spec = project.spec(defaults={"targets": ["bind"], "spf": DROPPED},
                        providers={"bind": bind.provider_config()})
    spec["domains"].update(domains)
    return spec


def test_round_trip_publishes_every_record_and_keeps_the_rest(project: Project,
                                                              bind: BindServer) -> None:
    before = {z: bind.rrsets(z) for z in ("example.com", "example.org")}
    plan = project.run("plan")
    assert plan.code == 0, plan.err
    assert "www" not in plan.out and "shop" not in plan.out and "acme" not in plan.out
    assert "- 20 oldmx.example.net." in plan.out
    assert '- "v=spf1 include:_spf.oldprovider.example -all"' in plan.out
    assert '"google-site-verification=abc123"' in plan.out
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert bind.secret not in applied.out + applied.err + plan.out + plan.err

    res = bind.resolver()
    key = project.keys.b64()
    assert [r.address for r in res.resolve("mx1.example.com.", "A")] == ["198.51.100.25"]
    assert [r.address for r in res.resolve("mx1.example.com.", "AAAA")] == ["2001:db8::25"]
    assert bind.txt("mx1.example.com.") == ["v=spf1 a -all"]
    for zone in ("example.com", "example.org"):
        mx = [(r.preference, r.exchange.to_text()) for r in res.resolve(f"{zone}.", "MX")]
        assert mx == [(10, "mx1.example.com.")]
        apex = bind.txt(f"{zone}.")
        assert [v for v in apex if v.startswith("v=spf1")] == ["v=spf1 mx -all"]
        assert bind.txt(f"_dmarc.{zone}.") == ["v=DMARC1; p=quarantine; aspf=s; adkim=s;"]
        # the DKIM key, split into <=255-byte strings on the wire, reassembles byte for byte
        answer = res.resolve(f"pmg2026._domainkey.{zone}.", "TXT")
        strings = answer[0].strings
        assert len(strings) > 1 and all(len(s) <= 255 for s in strings)
        assert b"".join(strings).decode() == f"v=DKIM1; h=sha256; k=rsa; p={key}"
        random_name = f"{secrets.token_hex(6)}.{zone}."
        assert bind.txt(random_name) == ["v=spf1 -all"]
    assert sorted(bind.txt("example.com.")) == sorted(
        ["google-site-verification=abc123", "MS=ms12345", "v=spf1 mx -all"])

    after = {z: bind.rrsets(z) for z in ("example.com", "example.org")}
    for z in after:
        assert _foreign(after[z]) == _foreign(before[z])
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out


def test_absent_and_key_rotation_remove_only_pmgdns_values(project: Project,
                                                           bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    foreign_before = {z: _foreign(bind.rrsets(z)) for z in ("example.com", "example.org")}

    # rotate the DKIM key: a new selector, the old one retired
    spec = _spec_with(project, bind)
    spec["dkim"] = {"selector": "pmg2027", "public_key": project.keys.b64("rsa4096"),
                    "retired_selectors": ["pmg2026"]}
    project.write_spec(spec)
    plan = project.run("plan", "--format", "json")
    actions = {(c["name"], c["action"]) for c in json.loads(plan.out)["changes"]}
    assert ("pmg2026._domainkey.example.com.", "delete") in actions
    assert ("pmg2027._domainkey.example.org.", "create") in actions
    assert project.run("apply", "--yes").code == 0
    assert bind.txt("pmg2026._domainkey.example.com.") == []
    assert bind.txt("pmg2027._domainkey.example.com.") == [
        f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64('rsa4096')}"]

    # example.org leaves the gateway: pmgdns removes its values, nothing else
    spec["domains"]["example.org"] = {"absent": True}
    project.write_spec(spec)
    result = project.run("apply", "--yes")
    assert result.code == 0, result.err
    org = bind.rrsets("example.org")
    assert ("example.org.", "MX") not in org
    assert ("_dmarc.example.org.", "TXT") not in org
    assert ("*.example.org.", "TXT") not in org
    assert ("pmg2027._domainkey.example.org.", "TXT") not in org
    assert bind.txt("example.org.") == []  # its only TXT value was the SPF pmgdns replaced
    for z in ("example.com", "example.org"):
        assert _foreign(bind.rrsets(z)) == foreign_before[z]
    assert "No changes" in project.run("plan").out


def test_cname_at_the_gateway_is_a_conflict_and_nothing_is_applied(project: Project,
                                                                   bind: BindServer) -> None:
    upd = bind.update("example.com")
    upd.add("mx1.example.com.", 300, "CNAME", "gw.example.net.")
    bind.send(upd)
    before = {z: bind.rrsets(z) for z in ("example.com", "example.org")}
    result = project.run("apply", "--yes")
    assert_clean_error(result, "CNAME conflict", "mx1.example.com. is a CNAME",
                       "Nothing was applied")
    assert {z: bind.rrsets(z) for z in before} == before


def test_safety_threshold_counts_the_whole_zone(project: Project, bind: BindServer) -> None:
    upd = bind.update("example.com")
    upd.add("mx1.example.com.", 300, "A", "203.0.113.99")
    for i in range(3):
        upd.add(f"host{i}.example.com.", 300, "A", f"203.0.113.{i + 1}")
    bind.send(upd)
    # 12 existing records; pmgdns would update MX, apex TXT, _dmarc and mx1 A: 4/12 > 30 %
    before = bind.rrsets("example.com")
    plan = project.run("plan", "example.com")
    assert plan.code == 0
    assert "Too many updates" in plan.out and "apply needs --force" in plan.out
    refused = project.run("apply", "--yes", "example.com")
    assert_clean_error(refused, "safety check", "--force", "Nothing was applied")
    assert bind.rrsets("example.com") == before
    forced = project.run("apply", "--yes", "--force", "example.com")
    assert forced.code == 0, forced.err
    assert _foreign(bind.rrsets("example.com")) == _foreign(before)
    assert "No changes" in project.run("plan", "example.com").out


def test_octodns_sync_with_the_rendered_config_keeps_foreign_records(project: Project,
                                                                      bind: BindServer) -> None:
    import os
    import subprocess
    import sys

    assert project.run("render").code == 0
    before = {z: _foreign(bind.rrsets(z)) for z in ("example.com", "example.org")}
    exe = os.path.join(os.path.dirname(sys.executable), "octodns-sync")
    result = subprocess.run([exe, "--config-file", "build/octodns.yaml", "--doit"],
                            capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {z: _foreign(bind.rrsets(z)) for z in before} == before
    assert "No changes" in project.run("plan").out


def test_report_authorisations_follow_the_spec(project: Project, bind: BindServer) -> None:
    spec = _spec_with(project, bind, **{"example.org": {"dmarc": {
        "rua": ["mailto:dmarc@example.com"]}}})
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    assert bind.txt("example.org._report._dmarc.example.com.") == ["v=DMARC1"]
    foreign = {k: v for k, v in _foreign(bind.rrsets("example.com")).items()
               if "_report" not in k[0]}
    # example.com leaves the gateway: what pmgdns published there goes, authorisation included
    spec["domains"]["example.com"] = {"absent": True}
    project.write_spec(spec)
    refused = project.run("apply", "--yes")  # most of a small zone goes: octoDNS wants --force
    assert_clean_error(refused, "Too many deletes", "--force")
    result = project.run("apply", "--yes", "--force")
    assert result.code == 0, result.err
    assert bind.txt("example.org._report._dmarc.example.com.") == []
    assert ("mx1.example.com.", "A") not in bind.rrsets("example.com")
    after = _foreign(bind.rrsets("example.com"))
    assert {k: v for k, v in after.items() if "_report" not in k[0]} == foreign
    assert "No changes" in project.run("plan").out
