"""The fleet report end to end: 50 domains applied to a real BIND (reverse zones included), three
breaks made by RFC 2136, `pmgdns verify --format html --out` read back by headless Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from pmgdns.families.checking import Check
from pmgdns.reports.verify_report import report_markdown, report_text
from pmgdns.verify.run import Report

from .conftest import Project
from .servers import BindServer, zone_text
from .test_report import SCHEMA, dump_dom, png_size, problems, screenshot

ROOT = Path(__file__).resolve().parent.parent
REV4 = "100.51.198.in-addr.arpa"
REV6 = "8.b.d.0.1.0.0.2.ip6.arpa"
PTR6 = "5.2.0.0." + "0.0.0.0." * 5 + REV6 + "."
DOMAINS = [f"d{i:02}.example" for i in range(50)]


@pytest.fixture
def fleet(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    zones = {d: zone_text(d, "www IN A 203.0.113.80\n") for d in DOMAINS}
    zones[REV4] = zone_text(REV4, "25 IN PTR mx1.d00.example.\n")
    zones[REV6] = zone_text(REV6, f"{PTR6} IN PTR mx1.d00.example.\n")
    server = BindServer(zones).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    spec["gateway"]["hostname"] = "mx1.d00.example"
    spec["domains"] = {d: {} for d in DOMAINS}
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def test_a_fleet_with_three_breaks_at_a_glance(project: Project, fleet: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    # three breaks behind pmgdns's back: DMARC gone, a second SPF, another DKIM key
    upd = fleet.update("d07.example")
    upd.delete("_dmarc.d07.example.", "TXT")
    fleet.send(upd)
    upd = fleet.update("d23.example")
    upd.add("d23.example.", 3600, "TXT", '"v=spf1 include:old.example -all"')
    fleet.send(upd)
    other = f"v=DKIM1; k=rsa; p={project.keys.b64('rsa4096')}"
    upd = fleet.update("d41.example")
    upd.replace("pmg2026._domainkey.d41.example.", 3600, "TXT",
                " ".join(f'"{other[i:i + 250]}"' for i in range(0, len(other), 250)))
    fleet.send(upd)

    report = project.root / "build" / "verify.html"
    result = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                         "html", "--out", str(report))
    assert result.code == 1 and result.out == ""
    assert "Report written to" in result.err and "3 failed" in result.err
    assert fleet.secret not in report.read_text()

    dom = dump_dom(report)
    assert problems(dom) == {("d07.example", "dmarc"): "FAIL", ("d23.example", "spf"): "FAIL",
                             ("d41.example", "dkim"): "FAIL"}
    text = dom.text
    assert "no DMARC record at _dmarc.d07.example." in text
    assert "2 v=spf1 values at d23.example." in text
    assert "is not the spec's key" in text
    assert project.keys.b64("rsa4096")[:40] in text  # the observed value, beside the expected
    headline = " ".join(dom.by_id("headline").text.split())
    # 50 domains and the gateway node: 3 failing, the rest OK
    assert "51 subjects: ✗ 3 FAIL, ! 0 WARN, ✓ 48 OK" in headline, headline

    # kept as a CI artifact, and the picture in the README comes from this very run
    png = ROOT / "build" / "fleet-report.png"
    screenshot(report, png)
    assert png_size(png) == (1280, 900)

    # the same run as JSON validates against the shipped schema
    doc = json.loads(project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}",
                                 "--format", "json").out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["summary"]["FAIL"] == 3
    # written a check at a time, it is the text json.dumps writes of the whole document
    raw = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                      "json").out
    assert raw == json.dumps(json.loads(raw), indent=2) + "\n"

    # at a fleet's size the text shows what needs attention, and counts the rest
    text_report = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}")
    lines = text_report.out.splitlines()
    assert text_report.code == 1
    assert [line for line in lines if not line.startswith(" ")][:3] == [
        "d07.example", "d23.example", "d41.example"]
    assert not any(line.lstrip().startswith("OK") for line in lines)
    assert "48 more domains or nodes passed every check." in lines
    assert lines[-1].startswith("Verify: ") and lines[-1].endswith("3 failed.")
    assert len(lines) < 15
    every = project.run("-v", "verify", "--nameserver", f"127.0.0.1:{fleet.port}").out
    assert all(d in every.splitlines() for d in DOMAINS)
    markdown = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                           "markdown").out
    assert markdown.count("| FAIL |") == 3 and "| OK |" not in markdown
    assert "48 more domains or nodes passed every check." in markdown

    # a report written again over itself (its marker at the end, for text)
    for _ in range(2):
        again = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--out",
                            "build/verify.txt")
        assert again.code == 1 and "Report written to build/verify.txt" in again.err
    assert (project.root / "build" / "verify.txt").read_text().rstrip().endswith("3 failed.")

    # an --out over a file pmgdns did not write is refused, and the file kept
    spec_before = project.spec_path.read_bytes()
    refused = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                          "html", "--out", str(project.spec_path))
    assert refused.code == 1 and "not a verify report pmgdns wrote" in refused.err
    assert project.spec_path.read_bytes() == spec_before
    # a file that merely mentions what a report holds is not one
    for fmt, text in (("text", "Notes\nVerify: the MX first, then SPF.\n"),
                      ("json", '{"comment": "the checks", "checks": []}\n')):
        notes = project.root / f"notes.{fmt}"
        notes.write_text(text)
        refused = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                              fmt, "--out", str(notes))
        assert refused.code == 1 and "not a verify report pmgdns wrote" in refused.err
        assert notes.read_text() == text
    # a JSON report is written over again
    for _ in range(2):
        again = project.run("verify", "--nameserver", f"127.0.0.1:{fleet.port}", "--format",
                            "json", "--out", "build/verify.json")
        assert again.code == 1 and "Report written to build/verify.json" in again.err


def test_plan_as_a_page(project: Project, fleet: BindServer, tmp_path: Path) -> None:
    result = project.run("plan", "--format", "html", "d0*")
    assert result.code == 0
    page = tmp_path / "plan.html"
    page.write_text(result.out)
    dom = dump_dom(page)
    text = " ".join(dom.text.split())
    # ten zones of 5 records, and the gateway's own 3 records in d00
    assert "Plan: 53 to add, 0 to change, 0 to destroy" in text
    assert "_dmarc.d03.example." in text and "www.d03.example." not in text


def test_a_fleet_with_many_failures_shows_fifty_and_counts_the_rest() -> None:
    report = Report()
    for i in range(70):
        name = f"d{i:02}.example"
        report.checks.append(Check(name, "mx", "MX", "OK", "10 mx1.example."))
        if i < 60:
            report.checks.append(Check(name, "dmarc", "DMARC", "FAIL", "no DMARC record",
                                       "pmgdns apply"))
        if i % 20 == 0:
            report.checks.append(Check(name, "spf", "SPF", "WARN", "11 lookups", "fewer"))
    lines = report_text(report, lambda text, _style: text).splitlines()
    shown = [line for line in lines if line.startswith("d")]
    assert shown == [f"d{i:02}.example" for i in range(50)]
    assert ("... and 11 more domains or nodes with warnings or failures (DMARC fail 10, "
            "SPF warn 1)." in lines)
    assert "9 more domains or nodes passed every check." in lines
    assert lines[-1] == "Verify: 70 ok, 4 warnings, 60 failed."
    every = report_text(report, lambda text, _style: text, verbose=True).splitlines()
    assert len([line for line in every if line.startswith("d")]) == 70
    markdown = report_markdown(report)
    assert markdown.count("| FAIL |") == 50 and markdown.count("| WARN |") == 3  # d60: not shown
