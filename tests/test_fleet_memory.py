"""Large fleets in bounded memory (issue #28): plans kept compact, streamed out, applied batch
by batch. The thresholds are lowered here so that a few zones take the large-fleet paths; the
100,000-domain figures are bench/run.py's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pmgdns import api, cli
from pmgdns.core.errors import StalePlanError
from pmgdns.plan import compact, engine, planfile
from pmgdns.reports import plan_report

from .conftest import Project
from .servers import zone_text

N = 14


def fleet(project: Project, n: int = N) -> dict[str, Any]:
    spec = project.spec()
    spec.pop("defaults", None)
    spec["domains"] = {f"d{i:02}.example": {} for i in range(n)}
    spec["domains"]["sub.d03.example"] = {}  # a child zone: planned first, as octoDNS does
    spec["gateway"]["hostname"] = "mx1.d00.example"
    return spec


def _json(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("plan", "--format", "json", *args)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_the_compact_plan_is_the_plan(project: Project) -> None:
    project.write_spec(fleet(project))
    result = api.plan(api.Workspace(), api.Workspace().load())
    changes = result.result.changes
    assert isinstance(changes, compact.ChangeLog)
    as_list = list(changes)
    assert len(as_list) == len(changes) == sum(zp.count for zp in result.result.zone_plans)
    assert changes == as_list and as_list[3] == changes[3] and changes[-1] == as_list[-1]
    assert changes[2:9] == as_list[2:9]
    assert as_list[0].zone == "sub.d03.example."  # children zones first
    # the checksum hashed batch by batch is octoDNS's over the whole list
    kept = engine.Engine(api.Workspace().load(), in_process=True).plan()
    assert all(zp.plan is not None for zp in kept.zone_plans)
    assert engine.octodns_checksum(zp.plan.data for zp in kept.zone_plans) \
        == kept.checksum == result.result.checksum
    groups = result.result.by_zone_target()
    assert len(groups) == len(result.result.zone_plans) == N + 1
    assert [c for cs in groups.values() for c in cs] == as_list
    assert groups[("d05.example.", "local")] == [c for c in as_list if c.zone == "d05.example."]
    with pytest.raises(KeyError):
        groups[("nowhere.example.", "local")]


def test_batches_plan_what_one_pass_plans(project: Project,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    project.write_spec(fleet(project))
    whole = _json(project)
    monkeypatch.setattr(engine, "BATCH", 3)
    assert _json(project) == whole
    assert _json(project, "--parallel", "2") == whole  # worker processes, 3 zones a chunk
    assert compact.Collector().checksum() == planfile.empty_checksum()


def test_a_large_apply_plans_each_batch_again(project: Project,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "BATCH", 4)
    monkeypatch.setattr(engine, "KEEP_PLANS", 5)  # octoDNS's plans are not kept: re-planned
    project.write_spec(fleet(project))
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert f"Apply complete! {(N + 1) * 5 + 3} added" in applied.out
    assert project.run("plan", "--detailed-exitcode").code == 0
    assert project.local_zone("d13.example").exists()


def test_a_target_changed_during_a_large_apply_stops_at_its_batch(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "BATCH", 4)
    monkeypatch.setattr(engine, "KEEP_PLANS", 5)
    project.write_spec(fleet(project))
    site = api.Workspace().load()
    late = project.local_zone("d09.example")  # in the third batch

    def behind_our_back(run: api.PlanRun) -> None:
        late.parent.mkdir(parents=True, exist_ok=True)
        late.write_text(zone_text("d09.example", "www IN A 203.0.113.80\n"))

    with pytest.raises(StalePlanError) as caught:
        api.apply(api.Workspace(), site, show=behind_our_back)
    message = str(caught.value)
    assert "d09.example. at local is stale" in message and "Applied before:" in message
    assert "converges" in message
    assert project.local_zone("d00.example").exists()  # the batches before it were applied
    assert not project.local_zone("d13.example").exists()  # none after it
    assert "pmgdns" not in late.read_text()  # nor it


def test_many_zones_print_one_row_per_target(project: Project,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plan_report, "TOTALS_ABOVE", 5)
    project.write_spec(fleet(project))
    out = project.run("plan").out
    assert f"{N + 1} zones and targets with changes" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("local"))
    assert row.split() == ["local", str(N + 1), str((N + 1) * 5 + 3), "0", "0"]
    assert "d07.example" not in out  # no line per domain
    assert "d07.example" in project.run("-v", "plan").out  # unless asked


def test_a_plan_file_is_written_as_json_dumps_writes_it(project: Project,
                                                        tmp_path: Any) -> None:
    project.write_spec(fleet(project))
    assert project.run("plan", "--out", "plan.json").code == 0
    text = (tmp_path / "plan.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    doc = planfile.read_plan(str(tmp_path / "plan.json"))
    assert len(doc["changes"]) == doc["summary"]["create"] == (N + 1) * 5 + 3
    empty = {"format": planfile.FORMAT, "changes": []}
    assert "".join(planfile._pieces(empty)) == json.dumps(empty, indent=2) + "\n"


def test_json_output_is_streamed_as_json_dumps_writes_it(project: Project) -> None:
    project.write_spec(fleet(project))
    run = api.plan(api.Workspace(), api.Workspace().load())
    whole = json.dumps(plan_report.plan_json_data(run.result, run.manual, run.notes),
                       indent=2) + "\n"
    pieces = list(plan_report.plan_json_pieces(run.result, run.manual, run.notes))
    assert len(pieces) > len(run.result.changes) and "".join(pieces) == whole
    assert project.run("plan", "--format", "json").out == whole
    nothing = engine.PlanResult([], planfile.empty_checksum())
    assert plan_report.plan_json(nothing, [], []) == json.dumps(
        plan_report.plan_json_data(nothing, [], []), indent=2) + "\n"


def test_a_large_apply_logs_tenths_not_zones(project: Project,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "LINES_MAX", 10)  # no terminal here: the log of a CI job
    project.write_spec(fleet(project, 29))
    result = project.run("apply", "--yes")
    assert result.code == 0, result.err
    assert "Applied 5 changes to" not in result.err  # no line per zone
    tenths = [line for line in result.err.splitlines() if " zones and targets." in line]
    assert tenths[-1] == "Applied 30 of 30 zones and targets." and len(tenths) == 10
    assert "Apply complete! 153 added" in result.out


def test_a_read_plan_file_keeps_digests_of_its_changes(project: Project, tmp_path: Any) -> None:
    project.write_spec(fleet(project))
    assert project.run("plan", "--out", "plan.json").code == 0
    doc = planfile.read_plan(str(tmp_path / "plan.json"))
    assert all(isinstance(c, planfile.ReadChange) for c in doc["changes"])
    zone, target, digest = doc["changes"][0]
    assert (zone, target) == ("sub.d03.example.", "local") and len(digest) == 64
    # the digest written as the changes were streamed is the one of the document read back
    raw = json.loads((tmp_path / "plan.json").read_text())
    assert raw["digest"] == planfile.document_digest(raw) == planfile.document_digest(doc)
    # a change edited in the file (a key added): its digest finds it
    raw["changes"][3]["note"] = "edited"
    (tmp_path / "plan.json").write_text(json.dumps(raw, indent=2) + "\n")
    stale = project.run("apply", "--plan", "plan.json")
    assert stale.code == 1 and "does not match its digest" in stale.err
    # and with the digest made again, it is not the change planned: refused
    raw["digest"] = planfile.document_digest(raw)
    (tmp_path / "plan.json").write_text(json.dumps(raw, indent=2) + "\n")
    assert not isinstance(planfile.read_plan(str(tmp_path / "plan.json"))["changes"][3],
                          planfile.ReadChange)
    refused = project.run("apply", "--plan", "plan.json")
    assert refused.code == 1 and "not the ones planned" in refused.err
    assert not project.local_zone("d00.example").exists()
    raw["changes"][3].pop("note")
    raw["digest"] = planfile.document_digest(raw)
    (tmp_path / "plan.json").write_text(json.dumps(raw, indent=2) + "\n")
    applied = project.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err


def test_a_plan_holds_no_second_copy_of_the_zones(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project.write_spec(fleet(project))
    site = api.Workspace().load()
    planner = engine.Engine(site)
    assert planner.manager().config["zones"] == {}  # pmgdns walks the zones itself
    result = planner.plan()
    assert result.zone_plans and all(zp.plan is None for zp in result.zone_plans)
    monkeypatch.setattr(engine, "KEEP_PLANS", 5)  # too many to hold for an apply
    assert all(zp.plan is None for zp in engine.Engine(site, in_process=True).plan().zone_plans)


def test_a_fleet_plan_summary_for_ci_is_one_row_per_target(
        project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(plan_report, "TOTALS_ABOVE", 5)
    project.write_spec(fleet(project))
    summary = tmp_path / "summary.md"
    assert project.run("plan", env={"GITHUB_STEP_SUMMARY": str(summary)}).code == 0
    text = summary.read_text()
    assert f"| `local` | {N + 1} | {(N + 1) * 5 + 3} | 0 | 0 |" in text
    assert "#### `d07.example.`" not in text and "d07.example" not in text


def test_a_reviewed_plan_names_its_domains_in_time_linear_in_the_fleet(
        project: Project) -> None:
    project.write_spec(fleet(project))
    site = api.Workspace().load()
    names = list(site.domains)
    # names are looked up, not matched as globs against every domain; globs still match
    assert engine.select_domains(site, [*reversed(names), *names]) == list(reversed(names))
    assert engine.select_domains(site, ["D01.example.", "d1*.example"]) == [
        "d01.example", "d10.example", "d11.example", "d12.example", "d13.example"]
