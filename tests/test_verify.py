"""`pmgdns verify` against a real BIND that also serves the gateway's reverse zones."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import Project, assert_clean_error, verify_json
from .servers import BindServer, zone_text

REV4 = "100.51.198.in-addr.arpa"
REV6 = "8.b.d.0.1.0.0.2.ip6.arpa"
PTR6_NAME = "5.2.0.0." + "0.0.0.0." * 5 + REV6 + "."


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({
        "example.com": zone_text("example.com", "www IN A 203.0.113.80\n"),
        "example.org": zone_text("example.org", ""),
        REV4: zone_text(REV4, "25 IN PTR mx1.example.com.\n"),
        REV6: zone_text(REV6, f"{PTR6_NAME} IN PTR mx1.example.com.\n"),
    }).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    spec["domains"]["example.org"] = {"dmarc": {"p": "reject",
                                                "rua": ["mailto:dmarc@example.com"]}}
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def _verify(project: Project, bind: BindServer) -> tuple[int, dict[str, Any]]:
    return verify_json(project, bind.port)


def _fails(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["subject"], c["check"]) for c in report["checks"] if c["status"] == "FAIL"}


def test_verify_fails_before_apply_and_passes_after(project: Project, bind: BindServer) -> None:
    code, report = _verify(project, bind)
    assert code == 1
    assert ("example.com", "MX") in _fails(report)
    assert ("example.org", "DKIM") in _fails(report)
    assert project.run("apply", "--yes").code == 0
    code, report = _verify(project, bind)
    assert code == 0, [c for c in report["checks"] if c["status"] != "OK"]
    checks = {(c["subject"], c["check"]) for c in report["checks"]}
    assert {("mx1.example.com.", "A"), ("mx1.example.com.", "AAAA"),
            ("mx1.example.com.", "gateway SPF"), ("mx1.example.com.", "PTR"),
            ("example.com", "MX"), ("example.com", "SPF"), ("example.com", "wildcard SPF"),
            ("example.com", "DMARC"), ("example.com", "DKIM"), ("example.org", "DMARC")} <= checks
    ptrs = [c["message"] for c in report["checks"] if c["check"] == "PTR"]
    assert any("forward-confirmed" in m for m in ptrs) and len(ptrs) == 2
    text = project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}")
    assert text.code == 0 and "failed." in text.out and "0 failed" in text.out
    md = project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}", "--format", "markdown")
    assert md.out.startswith("<!-- pmgdns-verify -->")


def _break_and_check(project: Project, bind: BindServer, zone: str, edit: Any,
                     expected: set[tuple[str, str]], fragment: str) -> None:
    upd = bind.update(zone)
    edit(upd)
    bind.send(upd)
    code, report = _verify(project, bind)
    assert code == 1
    fails = _fails(report)
    assert fails and fails <= expected, fails
    messages = " ".join(c["message"] + " " + c["fix"] for c in report["checks"]
                        if c["status"] == "FAIL")
    assert fragment in messages, messages


def test_each_break_names_the_right_fail(project: Project, bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    assert _verify(project, bind)[0] == 0

    # a second SPF value at the domain
    _break_and_check(project, bind, "example.com",
                     lambda u: u.add("example.com.", 3600, "TXT", '"v=spf1 a -all"'),
                     {("example.com", "SPF")}, "2 v=spf1 values")
    # its `a` goes only when the spec says so (spec-v1 §7.1)
    assert_clean_error(project.run("apply", "--yes"), "`a`", "spf.drop")
    spec = yaml.safe_load(project.spec_path.read_text())
    spec["domains"]["example.com"] = {"spf": {"drop": ["a"]}}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0

    # a missing DMARC record
    _break_and_check(project, bind, "example.org",
                     lambda u: u.delete("_dmarc.example.org.", "TXT"),
                     {("example.org", "DMARC")}, "no DMARC record")
    assert project.run("apply", "--yes").code == 0

    # a wrong DKIM key
    other = project.keys.b64("rsa4096")
    chunks = " ".join(f'"{c}"' for c in [f"v=DKIM1; k=rsa; p={other}"[i:i + 250]
                                         for i in range(0, len(other) + 20, 250)])
    _break_and_check(project, bind, "example.com",
                     lambda u: u.replace("pmg2026._domainkey.example.com.", 3600, "TXT", chunks),
                     {("example.com", "DKIM")}, "not the spec's key")
    assert project.run("apply", "--yes").code == 0

    # an MX elsewhere (and so `mx` in the SPF no longer authorises the gateway)
    _break_and_check(project, bind, "example.org",
                     lambda u: u.replace("example.org.", 3600, "MX", "10 www.example.com."),
                     {("example.org", "MX"), ("example.org", "SPF")},
                     "the spec wants 10 mx1.example.com. only")
    assert project.run("apply", "--yes").code == 0

    # a wrong PTR
    _break_and_check(project, bind, REV4,
                     lambda u: u.replace(f"25.{REV4}.", 3600, "PTR", "host.example.net."),
                     {("mx1.example.com.", "PTR")}, "pmgdns ptr-ticket")
    upd = bind.update(REV4)
    upd.replace(f"25.{REV4}.", 3600, "PTR", "mx1.example.com.")
    bind.send(upd)
    assert _verify(project, bind)[0] == 0

    # a CNAME at the gateway (its own records removed first, as BIND requires)
    def cname(u: Any) -> None:
        for rtype in ("A", "AAAA", "TXT"):
            u.delete("mx1.example.com.", rtype)
        u.add("mx1.example.com.", 300, "CNAME", "www.example.com.")

    _break_and_check(project, bind, "example.com", cname,
                     {("mx1.example.com.", "gateway"), ("example.com", "MX"),
                      ("example.org", "MX"), ("mx1.example.com.", "PTR"),
                      ("example.com", "SPF"), ("example.org", "SPF")}, "is a CNAME")


def test_bad_nameserver_option(project: Project) -> None:
    result = project.run("verify", "--nameserver", "dns.example.net")
    assert result.code == 1 and "give an IP address" in result.err


def test_dmarc_with_another_report_address_fails(project: Project, bind: BindServer) -> None:
    """Someone points the aggregate reports elsewhere (or adds sp=none): every tag counts."""
    assert project.run("apply", "--yes").code == 0
    _break_and_check(project, bind, "example.org",
                     lambda u: u.replace("_dmarc.example.org.", 3600, "TXT",
                                         '"v=DMARC1; p=reject; sp=none; '
                                         'rua=mailto:harvest@attacker.example; aspf=s; adkim=s;"'),
                     {("example.org", "DMARC")}, "rua=mailto:harvest@attacker.example")
    code, report = _verify(project, bind)
    messages = [c["message"] for c in report["checks"] if c["check"] == "DMARC"
                and c["status"] == "FAIL"]
    assert any("sp=none" in m and "no sp" in m for m in messages), messages


def _own_process(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pmgdns", *args], cwd=project.root,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_COLOR": "1"})


def test_no_python_warning_reaches_the_user(project: Project, bind: BindServer) -> None:
    """Libraries' own warnings (dnspython's DSA module under a newer cryptography, reached
    through checkdmarc) never reach the user; `-vv` shows them."""
    probe = subprocess.run([sys.executable, "-W", "always", "-c", "import checkdmarc"],
                           capture_output=True, text=True, timeout=60)
    library_warns = "Warning" in probe.stderr
    ns = ("--nameserver", f"127.0.0.1:{bind.port}")
    runs = [_own_process(project, *args) for args in (
        ("render",), ("validate",), ("plan",), ("apply", "--yes"), ("verify", *ns),
        ("verify", *ns, "--format", "html", "--out", "report.html"))]
    for result in runs:
        assert result.returncode == 0, result.stderr
        # the example's own warnings (documentation addresses) are the spec's, not Python's
        foreign = [line for line in result.stderr.splitlines()
                   if "Warning" in line and not line.startswith("Warning: config/site.yaml")]
        assert not foreign, result.stderr
        assert "site-packages" not in result.stderr
    page = (project.root / "report.html").read_text()  # says when, and whom it asked
    assert f"answers from <code>127.0.0.1:{bind.port}</code> (<code>--nameserver</code>)" in page
    assert re.search(r'<p id="made" class="muted">Made <time datetime="\d{4}-\d\d-\d\dT', page)
    loud = _own_process(project, "-vv", "verify", *ns)
    assert loud.returncode == 0
    if library_warns:
        assert "checkdmarc warned while being imported" in loud.stderr, loud.stderr


def test_counts_are_plain_english(project: Project, bind: BindServer) -> None:
    """`1 warning`, `1 lookup`: no `1 warnings` in any report, and `--out` still recognises
    the report it wrote."""
    assert project.run("apply", "--yes").code == 0
    name = "pmg2026._domainkey.example.com."
    testing = bind.txt(name)[0].rstrip("; ") + "; t=y"  # one WARN: the key is in testing mode
    upd = bind.update("example.com")
    upd.replace(name, 3600, "TXT", " ".join(f'"{testing[i:i + 200]}"'
                                            for i in range(0, len(testing), 200)))
    bind.send(upd)
    ns = ("--nameserver", f"127.0.0.1:{bind.port}")
    text = project.run("verify", *ns)
    assert re.search(r"^Verify: \d+ ok, 1 warning, 0 failed\.$", text.out, re.M), text.out
    assert "(1 lookup, 0 void)" in text.out and "lookups" not in text.out
    md = project.run("verify", *ns, "--format", "markdown")
    assert ", 1 warning, 0 failed.**" in md.out
    out = project.root / "verify.txt"
    for _ in range(2):  # the second run overwrites the report the first wrote
        written = project.run("verify", *ns, "--out", str(out))
        assert written.code == 0, written.err
        assert "1 warning, 0 failed" in written.err + written.out
    assert out.read_text().endswith(", 1 warning, 0 failed.\n")
