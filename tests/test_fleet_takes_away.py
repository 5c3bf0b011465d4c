"""What a fleet's plan takes away (spec-v1 §7.1), read batch by batch as the plan is made (in
worker processes too), and kept in the streamed JSON and the streamed, digested plan file.
The batch size is lowered here so that a few zones take the large-fleet paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pmgdns import api
from pmgdns.plan import engine, planfile
from pmgdns.plan.compact import Change
from pmgdns.plan.takes_away import takes_away

from .conftest import Project, assert_clean_error
from .servers import zone_text

N = 14
ONBOARDED = (1, 7, 12)  # domains that already publish a vendor's SPF and MX: one a batch
LIVE = ('@ IN TXT "v=spf1 include:spf.vendor.example -all"\n'
        "@ IN MX 10 mail.vendor.example.\n")


def _fleet(project: Project) -> None:
    spec = project.spec()
    spec.pop("defaults", None)
    spec["domains"] = {f"d{i:02}.example": {} for i in range(N)}
    spec["gateway"]["hostname"] = "mx1.d00.example"
    project.write_spec(spec)
    for i in ONBOARDED:
        zone = project.local_zone(f"d{i:02}.example")
        zone.parent.mkdir(parents=True, exist_ok=True)
        zone.write_text(zone_text(f"d{i:02}.example", LIVE))


def _json(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("plan", "--format", "json", *args)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_a_fleet_plan_takes_away_what_one_pass_over_its_changes_does(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "BATCH", 3)
    _fleet(project)
    here = _json(project)
    assert _json(project, "--parallel", "2") == here  # worker processes, 3 zones a chunk
    changes = [Change(c["zone"], c["target"], c["action"], c["name"], c["type"], c["ttl"],
                      tuple(c["values"]), tuple(c["previous"])) for c in here["changes"]]
    site = api.Workspace().load()
    assert here["takes_away"] == [t.to_json() for t in takes_away(site, changes)]
    taken = {(t["zone"], t["kind"], t["value"], t["refused"]) for t in here["takes_away"]}
    assert taken == {(f"d{i:02}.example.", kind, value, kind == "spf-sender")
                     for i in ONBOARDED
                     for kind, value in (("spf-sender", "include:spf.vendor.example"),
                                         ("mail-flow", "10 mail.vendor.example."))}


def test_a_streamed_plan_file_keeps_what_it_takes_away_and_apply_refuses(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "BATCH", 3)
    _fleet(project)
    before = project.local_zone("d07.example").read_text()
    assert project.run("plan", "--out", "plan.json").code == 0
    raw = json.loads((project.root / "plan.json").read_text())
    assert len(raw["takes_away"]) == 2 * len(ONBOARDED)
    assert raw["digest"] == planfile.document_digest(raw)
    refused = project.run("apply", "--plan", "plan.json")
    assert_clean_error(refused, "include:spf.vendor.example", "spf.drop",
                       "Nothing was applied at any target")
    assert project.local_zone("d07.example").read_text() == before
    assert not project.local_zone("d00.example").exists()
    # what it takes away is covered by the digest like the rest
    raw["takes_away"] = []
    (project.root / "plan.json").write_text(json.dumps(raw, indent=2) + "\n")
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale", "digest")
    assert not project.local_zone("d00.example").exists()
