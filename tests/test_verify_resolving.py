"""`verify` resolves as a receiver does (spec-v1 §7.3): CNAMEs followed into other zones, and an
answer the wildcard `*.D` synthesised at a name pmgdns publishes reported as that name missing.
Against a real BIND; `dig` is the independent judge of what the DNS answers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pmgdns.families.loader import load_site
from pmgdns.verify.probe import DnsProbe

from .conftest import Project, assert_clean_error, verify_json
from .servers import BindServer, zone_text

REV4 = "100.51.198.in-addr.arpa"
REV6 = "8.b.d.0.1.0.0.2.ip6.arpa"
PTR6_NAME = "5.2.0.0." + "0.0.0.0." * 5 + REV6 + "."


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({
        "example.com": zone_text("example.com", ""),
        "example.org": zone_text("example.org", ""),
        "web.test": zone_text("web.test", "sts IN A 127.0.0.1\n"),
        REV4: zone_text(REV4, "25 IN PTR mx1.example.com.\n"),
        REV6: zone_text(REV6, f"{PTR6_NAME} IN PTR mx1.example.com.\n"),
    }).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def dig(server: BindServer, name: str, rtype: str) -> list[str]:
    """What `dig` (bind9-dnsutils) answers: the independent judge."""
    out = subprocess.run([shutil.which("dig") or "dig", "@127.0.0.1", "-p", str(server.port),
                          "+short", "+norec", name, rtype], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    return sorted(line for line in out.splitlines() if line)


def _checks(report: dict[str, Any], check: str) -> list[dict[str, str]]:
    return [c for c in report["checks"] if c["check"] == check]


def test_a_deleted_key_answered_by_the_wildcard_is_missing(project: Project,
                                                           bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    code, report = verify_json(project, bind.port)
    assert code == 0, [c for c in report["checks"] if c["status"] != "OK"]
    # an authoritative-only server refuses the parent (com.): those checks are not made, and
    # verify says so once
    assert not [c for c in report["checks"] if c["family"] in ("delegation", "dnssec")]
    assert [n for n in report["notes"] if "could not be asked" in n] == [
        "the parent zone(s) com., org. could not be asked (the name server refuses or does not "
        "answer for them, as an authoritative-only --nameserver does): the delegation and DNSSEC "
        "checks were not made"]

    key = "pmg2026._domainkey.example.com."
    upd = bind.update("example.com")
    upd.delete(key, "TXT")
    bind.send(upd)
    # the judge: the name answers the wildcard's value, and so does any name beside it
    assert dig(bind, key, "TXT") == ['"v=spf1 -all"']
    assert dig(bind, "x7k2q._domainkey.example.com.", "TXT") == ['"v=spf1 -all"']

    code, report = verify_json(project, bind.port)
    assert code == 1
    dkim = [c for c in _checks(report, "DKIM") if c["subject"] == "example.com"]
    assert [c["status"] for c in dkim] == ["FAIL"]
    message = dkim[0]["message"]
    assert message.startswith(f"no DKIM key at {key}")
    assert "the wildcard *.example.com answers in its place" in message
    assert "DKIM1" not in message and dkim[0]["observed"] == "nothing"
    assert "pmgdns apply" in dkim[0]["fix"]
    # the same key in the other zone is still there and still fine
    assert [c["status"] for c in _checks(report, "DKIM") if c["subject"] == "example.org"] \
        == ["OK"]


def test_a_deleted_dmarc_is_missing_and_the_wildcard_named_only_where_it_speaks(project: Project,
                                                                  bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    upd = bind.update("example.com")
    upd.delete("_dmarc.example.com.", "TXT")
    upd.delete("mx1.example.com.", "TXT")
    bind.send(upd)
    # mx1 keeps its A/AAAA: the name exists, so the wildcard does not speak for it (RFC 4592)
    assert dig(bind, "mx1.example.com.", "TXT") == []
    assert dig(bind, "_dmarc.example.com.", "TXT") == ['"v=spf1 -all"']
    code, report = verify_json(project, bind.port)
    assert code == 1
    dmarc = [c for c in _checks(report, "DMARC") if c["subject"] == "example.com"]
    assert "no DMARC record at _dmarc.example.com." in dmarc[0]["message"]
    assert "answers in its place" in dmarc[0]["message"]
    spf = _checks(report, "gateway SPF")
    assert spf[0]["status"] == "FAIL"
    assert spf[0]["message"] == "no SPF record at mx1.example.com.", spf[0]


def test_a_real_value_equal_to_nothing_the_wildcard_says_is_a_wrong_value(
        project: Project, bind: BindServer) -> None:
    """A wrong value really published at the name is reported as wrong, not as missing."""
    assert project.run("apply", "--yes").code == 0
    upd = bind.update("example.com")
    upd.replace("pmg2026._domainkey.example.com.", 3600, "TXT", '"v=spf1 a -all"')
    bind.send(upd)
    code, report = verify_json(project, bind.port)
    dkim = [c for c in _checks(report, "DKIM") if c["subject"] == "example.com"]
    assert "v=spf1" in dkim[0]["message"] and "in its place" not in dkim[0]["message"]


def _mta_sts_spec(project: Project, bind: BindServer, cname: str) -> None:
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": bind.provider_config()})
    spec["domains"]["example.com"] = {"mta_sts": {"web": {"cname": cname}}}
    project.write_spec(spec)


def test_cnames_are_followed_into_other_zones(project: Project, bind: BindServer) -> None:
    _mta_sts_spec(project, bind, "sts.web.test")
    assert project.run("apply", "--yes").code == 0
    assert dig(bind, "mta-sts.example.com.", "A") == ["sts.web.test."]  # one link only
    site = load_site(str(project.spec_path))
    probe = DnsProbe(site, bind.resolver())
    assert probe.addresses("mta-sts.example.com.") == {"127.0.0.1"}
    code, report = verify_json(project, bind.port)
    policy = _checks(report, "MTA-STS policy")
    assert policy and all("no address" not in c["message"] for c in policy), policy


def test_a_cname_to_a_name_without_address_is_named(project: Project, bind: BindServer) -> None:
    _mta_sts_spec(project, bind, "gone.web.test")
    assert project.run("apply", "--yes").code == 0
    assert dig(bind, "gone.web.test.", "A") == []
    code, report = verify_json(project, bind.port)
    assert code == 1
    policy = _checks(report, "MTA-STS policy")
    assert [c["status"] for c in policy] == ["FAIL"]
    assert ("mta-sts.example.com is a CNAME to gone.web.test., which has no address"
            in policy[0]["message"])
    assert "gone.web.test." in policy[0]["fix"] and "apply" not in policy[0]["fix"]


def test_a_bad_blocklist_zone_is_a_clean_error(project: Project) -> None:
    result = project.run("verify", "--dnsbl", "zen.spamhaus.org,not a zone")
    assert_clean_error(result, "--dnsbl", "`not a zone` is not a DNS blocklist zone")
    project.write_spec(dict(project.spec(), verify={"dnsbl": ["-bad-"]}))
    assert_clean_error(project.run("validate"), "verify.dnsbl.0")


def test_dnssec_loads_without_cryptography_warnings() -> None:
    """dns.dnssec warns about DSA on import with cryptography >= 44; verify filters it there
    (and only there), so `-W error` runs stay clean."""
    import sys

    code = ("import warnings\n"
            "from pmgdns.families.dnssec import _dnssec\n"
            "assert _dnssec().__name__ == 'dns.dnssec'\n"
            "assert not any(f[0] == 'ignore' and 'DSA' in str(f[1]) for f in warnings.filters)\n")
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_wildcard_may_serve_a_name_pmgdns_does_not_publish(project: Project,
                                                             bind: BindServer) -> None:
    """Without mta_sts.web pmgdns publishes no mta-sts.D: a wildcard A there is the web host's
    way of serving it, and verify takes it as a sender does."""
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": bind.provider_config()})
    spec["domains"]["example.com"] = {"mta_sts": {"mode": "testing"}}
    project.write_spec(spec)
    upd = bind.update("example.com")
    upd.add("*.example.com.", 3600, "A", "127.0.0.1")
    bind.send(upd)
    assert project.run("apply", "--yes").code == 0
    assert dig(bind, "mta-sts.example.com.", "A") == ["127.0.0.1"]
    code, report = verify_json(project, bind.port)
    policy = _checks(report, "MTA-STS policy")
    assert policy and all("no address" not in c["message"] for c in policy), policy
