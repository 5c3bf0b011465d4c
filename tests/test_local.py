"""The built-in local target: zone files that named-checkzone accepts, idempotent, and that keep
what others put in them."""

from __future__ import annotations

import shutil
import subprocess

import dns.rdatatype
import dns.zone
import pytest

from .conftest import Project

CHECKZONE = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"


def _checkzone(zone: str, path: str) -> None:
    # -i local: check in-zone integrity only (out-of-zone names would need the network)
    result = subprocess.run([CHECKZONE, "-i", "local", zone, path], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_first_run_apply_then_nothing_to_do(project: Project) -> None:
    plan = project.run("plan")
    assert plan.code == 0, plan.err
    assert plan.out.count("  + ") >= 10
    assert "Plan: 13 to add, 0 to change, 0 to destroy." in plan.out
    assert "PTR 198.51.100.25 -> mx1.example.com." in plan.out
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert "Apply complete! 13 added, 0 changed, 0 destroyed." in applied.out
    for zone in ("example.com", "example.org"):
        _checkzone(zone, str(project.local_zone(zone)))
    before = {z: project.local_zone(z).read_bytes() for z in ("example.com", "example.org")}
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out
    second = project.run("apply", "--yes")
    assert second.code == 0 and "No changes" in second.out
    assert {z: project.local_zone(z).read_bytes() for z in before} == before


def test_dkim_split_and_reassembled(project: Project) -> None:
    assert project.run("apply", "--yes").code == 0
    z = dns.zone.from_file(str(project.local_zone("example.com")), "example.com.",
                           relativize=False)
    rdataset = z.find_rdataset("pmg2026._domainkey.example.com.", dns.rdatatype.TXT)
    strings = rdataset[0].strings
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert b"".join(strings).decode() == \
        f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64()}"


def test_foreign_records_in_the_file_survive(project: Project) -> None:
    assert project.run("apply", "--yes").code == 0
    path = project.local_zone("example.com")
    with path.open("a") as fh:
        fh.write('@ 3600 IN TXT "google-site-verification=tok123"\n'
                 '@ 3600 IN TXT "v=spf1 include:_spf.old.example -all"\n'
                 "www 300 IN A 203.0.113.80\n"
                 "_acme-challenge 60 IN TXT \"acme-token\"\n"
                 "@ 3600 IN CAA 0 issue \"letsencrypt.org\"\n")
    plan = project.run("plan")
    assert "~ example.com. TXT 3600" in plan.out
    assert '- "v=spf1 include:_spf.old.example -all"' in plan.out
    assert '"google-site-verification=tok123"' in plan.out
    assert "www" not in plan.out and "acme" not in plan.out
    refused = project.run("apply", "--yes")  # the old sender goes only when the spec says so
    assert refused.code == 1 and "include:_spf.old.example" in refused.err
    project.write_spec(project.spec(defaults={"spf": {"drop": ["include:_spf.old.example"]}}))
    assert project.run("apply", "--yes").code == 0
    z = dns.zone.from_file(str(path), "example.com.", relativize=False)
    apex = {s.strings[0].decode() for s in z.find_rdataset("example.com.", "TXT")}
    assert apex == {"google-site-verification=tok123", "v=spf1 mx -all"}
    assert z.find_rdataset("www.example.com.", "A")[0].address == "203.0.113.80"
    assert z.find_rdataset("_acme-challenge.example.com.", "TXT")
    assert z.find_rdataset("example.com.", "CAA")
    _checkzone("example.com", str(path))
    assert "No changes" in project.run("plan").out


def test_owned_mx_and_a_are_replaced_and_the_plan_says_so(project: Project) -> None:
    assert project.run("apply", "--yes").code == 0
    path = project.local_zone("example.com")
    lines = [("@ 3600 IN MX 5 old-mx.example.net." if " MX " in line else line)
             for line in path.read_text().replace("198.51.100.25", "203.0.113.7").splitlines()]
    path.write_text("\n".join(lines) + "\n")
    plan = project.run("plan")
    assert "~ mx1.example.com. A 3600" in plan.out
    assert "- 203.0.113.7" in plan.out and "+ 198.51.100.25" in plan.out
    assert "- 5 old-mx.example.net." in plan.out
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in plan.out
    assert project.run("apply", "--yes").code == 0
    assert "No changes" in project.run("plan").out


@pytest.mark.parametrize("name", ["mx1", "_dmarc"])
def test_cname_conflict_is_an_error_and_nothing_applied(project: Project, name: str) -> None:
    project.local_zone("example.com").parent.mkdir(parents=True)
    project.local_zone("example.com").write_text(
        "$ORIGIN example.com.\n@ 3600 IN SOA ns.invalid. webmaster 1 3600 600 604800 3600\n"
        f"@ 3600 IN NS ns.invalid.\n{name} 300 IN CNAME elsewhere.example.net.\n")
    before = project.local_zone("example.com").read_bytes()
    result = project.run("apply", "--yes")
    assert result.code == 1
    assert f"CNAME conflict: {name}.example.com. is a CNAME" in result.err
    assert "Traceback" not in result.err
    assert project.local_zone("example.com").read_bytes() == before
    assert not project.local_zone("example.org").exists()
