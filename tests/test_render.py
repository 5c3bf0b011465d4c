"""Rendering: zone YAML octoDNS loads with its strict validators, build/octodns.yaml, --check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from octodns.provider.yaml import YamlProvider
from octodns.record import Record
from octodns.zone import Zone

from .conftest import Project, assert_clean_error


def _load_zone(directory: str, name: str) -> Zone:
    Record.enable_validators(["legacy", "strict"])
    zone = Zone(name, [])
    YamlProvider("t", directory, enforce_order=True, escaped_semicolons=False).populate(zone)
    zone.validate()
    return zone


def test_render_writes_zones_octodns_loads_strictly(project: Project) -> None:
    result = project.run("render")
    assert result.code == 0, result.err
    assert "Rendered 2 zones" in result.out
    zone = _load_zone("zones", "example.com.")
    by_key = {(r.name, r._type): r for r in zone.records}
    assert set(by_key) == {("", "MX"), ("", "TXT"), ("_dmarc", "TXT"), ("*", "TXT"),
                           ("pmg2026._domainkey", "TXT"), ("mx1", "A"), ("mx1", "AAAA"),
                           ("mx1", "TXT")}
    dmarc = by_key[("_dmarc", "TXT")].values[0]
    assert dmarc.to_raw_text() == "v=DMARC1; p=quarantine; aspf=s; adkim=s;"
    dkim = by_key[("pmg2026._domainkey", "TXT")].values[0]
    # one string in the YAML; octoDNS splits it into 255-byte strings for the wire
    assert dkim.to_raw_text() == f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64()}"
    text = (project.root / "zones" / "example.com.yaml").read_text()
    assert text.startswith("# Rendered by pmgdns")
    assert "\\;" not in text
    config = yaml.safe_load((project.root / "build" / "octodns.yaml").read_text())
    assert config["zones"]["example.com."] == {"sources": ["pmgdns"], "targets": ["local"]}
    assert config["processors"]["pmgdns-ownership"]["class"] == \
        "pmgdns.zones.ownership.OwnershipProcessor"


def test_render_check(project: Project) -> None:
    assert_clean_error(project.run("render", "--check"), "zones/ is stale", "pmgdns render")
    assert not (project.root / "zones").exists()
    assert project.run("render").code == 0
    ok = project.run("render", "--check")
    assert ok.code == 0 and "up to date" in ok.out
    spec = project.spec()
    spec["domains"]["example.org"] = {"dmarc": {"p": "reject"}}
    project.write_spec(spec)
    assert_clean_error(project.run("render", "--check"), "zones/example.org.yaml")
    # a domain removed from the spec leaves a stale file that render removes
    spec["domains"].pop("example.org")
    project.write_spec(spec)
    assert_clean_error(project.run("render", "--check"), "zones/example.org.yaml")
    assert project.run("render").code == 0
    assert not (project.root / "zones" / "example.org.yaml").exists()
    assert project.run("render", "--check").code == 0


def test_render_keeps_foreign_files_in_zones(project: Project) -> None:
    (project.root / "zones").mkdir()
    (project.root / "zones" / "handmade.example.yaml").write_text("--- {}\n")
    assert project.run("render").code == 0
    assert (project.root / "zones" / "handmade.example.yaml").exists()


def _sync(*args: str) -> subprocess.CompletedProcess[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "octodns-sync")
    return subprocess.run([exe, "--config-file", "build/octodns.yaml", *args],
                          capture_output=True, text=True, timeout=120)


def test_octodns_sync_runs_the_same_sync(project: Project) -> None:
    plan = project.run("plan", "--format", "json")
    assert plan.code == 0, plan.err
    import json

    creates = json.loads(plan.out)["summary"]["create"]
    dry = _sync()
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.count("*   Create <") == creates
    # octodns-sync applies through the same processor and local target; pmgdns then agrees
    doit = _sync("--doit")
    assert doit.returncode == 0, doit.stderr
    again = project.run("plan", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert "No changes" in again.out


def test_plan_re_renders_a_hand_edited_zone_file(project: Project) -> None:
    assert project.run("render").code == 0
    path = project.root / "zones" / "example.com.yaml"
    rendered = path.read_text()
    path.write_text(rendered.replace("v=spf1 mx -all", "v=spf1 +all"))
    assert project.run("plan").code == 0
    assert path.read_text() == rendered  # the spec wins; zones/ is derived from it
    spec = project.spec()
    spec["domains"]["example.com"] = {"mx_priority": 20}
    project.write_spec(spec)
    assert "20 mx1.example.com." in project.run("plan").out
    assert "preference: 20" in path.read_text()


def test_the_committed_example_is_rendered() -> None:
    """config/site.yaml and zones/ in the repository agree (what `render --check` enforces)."""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "pmgdns", "render", "--check"], cwd=root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
