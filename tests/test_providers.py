"""Cloudflare, Route53 and PowerDNS through the real octoDNS provider classes, on loopback only."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import dns.rdata
import pytest

from .cloudflare_api import FakeCloudflare, Fault
from .conftest import REPORT, Project, allow_endpoint, assert_clean_error
from .servers import PowerDnsServer, free_port

CF_TOKEN_ENV = "PMGDNS_TEST_CF_TOKEN"


# -- Cloudflare ----------------------------------------------------------------------------------


# the seeded SPF's sender, which the spec lets go (spec-v1 §7.1)
OLD_SENDER_GOES = {"drop": ["include:_spf.old.example"]}


@pytest.fixture
def cloudflare(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudflare]:
    token = f"cf-token-{secrets.token_hex(12)}"
    api = FakeCloudflare(token=token, read_only_token=f"cf-readonly-{secrets.token_hex(12)}")
    for zone in ("example.com", "example.org"):
        api.add_zone(zone)
    api.add_record("example.com", "example.com", "TXT", "google-site-verification=abc123")
    api.add_record("example.com", "example.com", "TXT", '"v=spf1 include:_spf.old.example ~all"')
    api.add_record("example.com", "www.example.com", "A", "203.0.113.80", ttl=1, proxied=True)
    api.add_record("example.com", "example.com", "MX", "oldmx.example.net", priority=20)
    api.start()
    monkeypatch.setenv(CF_TOKEN_ENV, token)
    allow_endpoint(monkeypatch, api.url)
    project.write_spec(project.spec(
        defaults={"targets": ["cloudflare"], "spf": OLD_SENDER_GOES},
        providers={"cloudflare": {"class": "octodns_cloudflare.CloudflareProvider",
                                  "token": f"env/{CF_TOKEN_ENV}", "api_url": api.url,
                                  "pagerules": False, "retry_count": 2, "retry_period": 0}}))
    try:
        yield api
    finally:
        api.stop()


def _cf_state(api: FakeCloudflare, zone: str) -> list[tuple[str, str, str, Any]]:
    return [(r["name"], r["type"], r["content"], r.get("priority"))
            for r in api.zone_records(zone)]


def test_cloudflare_round_trip(project: Project, cloudflare: FakeCloudflare) -> None:
    plan = project.run("plan")
    assert plan.code == 0, plan.err
    assert "www" not in plan.out
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err

    api = cloudflare
    recs = {(r["name"], r["type"]): r for r in api.zone_records("example.com")
            if r["type"] != "TXT"}
    assert recs[("example.com", "MX")]["content"] == "mx1.example.com"  # no trailing dot
    assert recs[("example.com", "MX")]["priority"] == 10
    assert recs[("mx1.example.com", "A")]["proxied"] is False  # a mail host is never proxied
    assert recs[("www.example.com", "A")]["proxied"] is True  # foreign: untouched
    assert api.txt_values("example.com") == ["google-site-verification=abc123",
                                             "v=spf1 mx -all"]
    assert api.txt_values("*.example.com") == ["v=spf1 -all"]
    assert api.txt_values("_dmarc.example.org") == ["v=DMARC1; p=quarantine; aspf=s; adkim=s;"]
    dkim = [r for r in api.zone_records("example.org")
            if r["name"] == "pmg2026._domainkey.example.org"]
    assert len(dkim) == 1 and dkim[0]["content"].count('" "') == 1  # two <=255-byte strings
    assert api.txt_values("pmg2026._domainkey.example.org") == [
        f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64()}"]

    api.requests.clear()
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out
    per_zone = sum(api.requests.values()) / 2
    REPORT["cloudflare API requests per zone for a no-change plan (2 zones)"] = f"{per_zone:g}"
    assert per_zone <= 2, api.requests
    assert all(key.startswith("GET ") for key in api.requests)


def test_cloudflare_bad_token_401(project: Project, cloudflare: FakeCloudflare) -> None:
    result = project.run("plan", env={CF_TOKEN_ENV: "wrong-token-value"})
    assert_clean_error(result, "cloudflare failed", "at cloudflare", "401",
                       "credentials were refused")
    assert "wrong-token-value" not in result.out + result.err
    assert cloudflare.token not in result.out + result.err


def test_cloudflare_missing_permission_403_then_rerun_converges(
        project: Project, cloudflare: FakeCloudflare) -> None:
    before = _cf_state(cloudflare, "example.com")
    result = project.run("apply", "--yes", env={CF_TOKEN_ENV: cloudflare.read_only_token or ""})
    assert_clean_error(result, "cloudflare failed", "example.com. at cloudflare",
                       "lack a permission", "DNS > Edit", "Applied before the failure: nothing")
    assert _cf_state(cloudflare, "example.com") == before
    assert project.run("apply", "--yes").code == 0
    assert "No changes" in project.run("plan").out


def test_cloudflare_rate_limit_429(project: Project, cloudflare: FakeCloudflare) -> None:
    cloudflare.faults.append(Fault(429, times=3, retry_after=1))
    result = project.run("plan")
    assert_clean_error(result, "cloudflare failed", "rate-limiting", "wait")
    assert project.run("apply", "--yes").code == 0  # the limit has passed
    assert "No changes" in project.run("plan").out


def test_cloudflare_500_mid_apply_stops_and_rerun_converges(
        project: Project, cloudflare: FakeCloudflare) -> None:
    plan = json.loads(project.run("plan", "--format", "json").out)
    assert plan["summary"]["create"] > 2
    cloudflare.faults.append(Fault(500, method="POST", times=1))
    result = project.run("apply", "--yes")
    assert_clean_error(result, "cloudflare failed", "internal error", "run again",
                       "Not applied:")
    posts_after_fault = [m for m, _ in cloudflare.log[-3:] if m == "POST"]
    assert len(posts_after_fault) <= 1  # nothing further was attempted
    rerun = project.run("apply", "--yes")
    assert rerun.code == 0, rerun.err
    assert "No changes" in project.run("plan").out


# -- Route53 (moto's server) -----------------------------------------------------------------------


@pytest.fixture
def route53(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"AKIA{secrets.token_hex(8).upper()}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"aws-secret-{secrets.token_hex(16)}")
    client = boto3.client("route53")
    zone_id = client.create_hosted_zone(Name="example.com.", CallerReference="t1")[
        "HostedZone"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": f"host{i}.example.com.", "Type": "A", "TTL": 300,
        "ResourceRecords": [{"Value": f"203.0.113.{i % 250 + 1}"}]}} for i in range(320)]
    changes.append({"Action": "CREATE", "ResourceRecordSet": {
        "Name": "example.com.", "Type": "TXT", "TTL": 300,
        "ResourceRecords": [{"Value": '"google-site-verification=r53token"'}]}})
    client.change_resource_record_sets(HostedZoneId=zone_id,
                                       ChangeBatch={"Changes": changes})
    spec = project.spec(defaults={"targets": ["route53"]},
                        dkim={"selector": "pmg2026", "public_key": project.keys.b64("rsa4096")},
                        providers={"route53": {"class": "octodns_route53.Route53Provider",
                                               "access_key_id": "env/AWS_ACCESS_KEY_ID",
                                               "secret_access_key": "env/AWS_SECRET_ACCESS_KEY"}})
    spec["domains"] = {"example.com": {}}
    project.write_spec(spec)
    try:
        yield client, zone_id
    finally:
        server.stop()


def _r53_sets(client: Any, zone_id: str) -> dict[tuple[str, str], Any]:
    out = {}
    for page in client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rs in page["ResourceRecordSets"]:
            name = rs["Name"].replace("\\052", "*")
            out[(name, rs["Type"])] = (rs.get("TTL"),
                                       sorted(r["Value"] for r in rs["ResourceRecords"]))
    return out


def test_route53_round_trip(project: Project, route53: Any) -> None:
    client, zone_id = route53
    before = _r53_sets(client, zone_id)
    assert len(before) > 300  # more than one list page
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    after = _r53_sets(client, zone_id)
    assert after[("example.com.", "MX")] == (3600, ["10 mx1.example.com."])
    assert after[("mx1.example.com.", "A")] == (3600, ["198.51.100.25"])
    assert after[("*.example.com.", "TXT")] == (3600, ['"v=spf1 -all"'])
    assert after[("example.com.", "TXT")][1] == ['"google-site-verification=r53token"',
                                                 '"v=spf1 mx -all"']
    # Route53 keeps TXT in presentation format; read it as a resolver would
    dkim = dns.rdata.from_text("IN", "TXT", after[("pmg2026._domainkey.example.com.", "TXT")][1][0])
    assert len(dkim.strings) >= 3 and all(len(s) <= 255 for s in dkim.strings)
    assert b"".join(dkim.strings).decode() == \
        f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64('rsa4096')}"
    for key, value in before.items():
        if key[0].startswith("host") or key[1] in ("NS", "SOA"):
            assert after[key] == value
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    import os

    for secret in (os.environ["AWS_SECRET_ACCESS_KEY"], os.environ["AWS_ACCESS_KEY_ID"]):
        assert secret not in applied.out + applied.err + again.out + again.err


# -- PowerDNS -------------------------------------------------------------------------------------


@pytest.fixture
def powerdns(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[PowerDnsServer]:
    server = PowerDnsServer().start()
    server.api("POST", "/zones", {
        "name": "example.com.", "kind": "Native", "nameservers": ["ns1.example.net."],
        "rrsets": [
            {"name": "www.example.com.", "type": "A", "ttl": 300,
             "records": [{"content": "203.0.113.80", "disabled": False}]},
            {"name": "example.com.", "type": "TXT", "ttl": 300,
             "records": [{"content": '"google-site-verification=pdnstoken"', "disabled": False}]},
        ]})
    monkeypatch.setenv("PMGDNS_PDNS_API_KEY", server.api_key)
    allow_endpoint(monkeypatch, f"http://127.0.0.1:{server.api_port}")
    project.write_spec(project.spec(defaults={"targets": ["powerdns"]},
                                    providers={"powerdns": server.provider_config()}))
    try:
        yield server
    finally:
        server.stop()


def test_powerdns_round_trip(project: Project, powerdns: PowerDnsServer) -> None:
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    res = powerdns.resolver()
    assert [r.address for r in res.resolve("mx1.example.com.", "A")] == ["198.51.100.25"]
    apex = sorted(b"".join(r.strings).decode() for r in res.resolve("example.com.", "TXT"))
    assert apex == ["google-site-verification=pdnstoken", "v=spf1 mx -all"]
    dkim = res.resolve("pmg2026._domainkey.example.org.", "TXT")[0]
    assert b"".join(dkim.strings).decode() == \
        f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64()}"
    assert [r.address for r in res.resolve("www.example.com.", "A")] == ["203.0.113.80"]
    assert b"".join(res.resolve("x1y2.example.org.", "TXT")[0].strings) == b"v=spf1 -all"
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


# -- several targets for one domain ----------------------------------------------------------------


def test_two_targets_and_a_failing_one_is_named(project: Project, cloudflare: FakeCloudflare,
                                                powerdns: PowerDnsServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cf = {"class": "octodns_cloudflare.CloudflareProvider", "token": f"env/{CF_TOKEN_ENV}",
          "api_url": cloudflare.url, "pagerules": False, "retry_count": 1, "retry_period": 0}
    spec = project.spec(defaults={"targets": ["powerdns", "cloudflare"], "spf": OLD_SENDER_GOES},
                        providers={"powerdns": powerdns.provider_config(), "cloudflare": cf})
    project.write_spec(spec)
    plan = json.loads(project.run("plan", "--format", "json").out)
    assert {c["target"] for c in plan["changes"]} == {"powerdns", "cloudflare"}
    cloudflare.faults.append(Fault(500, method="POST", times=1))
    result = project.run("apply", "--yes")
    assert_clean_error(result, "cloudflare failed", "Applied before the failure:",
                       "at powerdns", "Not applied:")
    assert project.run("apply", "--yes").code == 0
    assert "No changes" in project.run("plan").out
    assert cloudflare.txt_values("example.org") == ["v=spf1 mx -all"]


# -- secrets never leak --------------------------------------------------------------------------


def test_secrets_appear_in_no_output_plan_file_or_log(project: Project,
                                                      cloudflare: FakeCloudflare,
                                                      powerdns: PowerDnsServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cf_marker = cloudflare.token
    pdns_marker = powerdns.api_key
    cf = {"class": "octodns_cloudflare.CloudflareProvider", "token": f"env/{CF_TOKEN_ENV}",
          "api_url": cloudflare.url, "pagerules": False, "retry_count": 1, "retry_period": 0}
    spec = project.spec(providers={"powerdns": powerdns.provider_config(), "cloudflare": cf},
                        defaults={"spf": OLD_SENDER_GOES})
    spec["domains"] = {"example.com": {"targets": ["cloudflare"]},
                       "example.org": {"targets": ["powerdns"]}}
    project.write_spec(spec)
    outputs: list[str] = []

    def run(*args: str, env: dict[str, str] | None = None) -> Any:
        r = project.run("-vv", *args, env=env)
        outputs.extend([r.out, r.err])
        return r

    assert run("plan", "--out", "plan.json").code == 0
    assert run("plan", "--format", "json").code == 0
    assert run("plan", "--format", "markdown").code == 0
    assert run("apply", "--plan", "plan.json").code == 0
    # error paths: a rejected token, an unreachable provider, a provider error mid-apply
    run("plan", env={CF_TOKEN_ENV: "x" + cf_marker})
    cloudflare.faults.append(Fault(500, method="GET", times=5))
    run("plan")
    cloudflare.faults.clear()
    powerdns.stop()
    run("plan")
    run("apply", "--yes")
    monkeypatch.delenv(CF_TOKEN_ENV)
    missing = run("plan")
    assert "PMGDNS_TEST_CF_TOKEN" in missing.err
    files = [p.read_text(errors="replace") for p in project.root.rglob("*")
             if p.is_file() and ".zone" not in p.suffixes[-1:]]
    everything = "\n".join(outputs + files)
    assert "DEBUG" in everything  # -vv really logged octoDNS's and the providers' debug output
    for marker in (cf_marker, pdns_marker):
        assert marker not in everything
