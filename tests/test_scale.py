"""Fleet scale: planning in worker processes gives exactly the single-process plan, plans that
cost what the change costs (`--changed-since`), and verify across processes (issue #15)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Project, assert_clean_error
from .servers import BindServer, zone_text

N = 240  # above the threshold (200 zones) from which planning and verify use processes


def fleet_spec(project: Project, n: int = N, **defaults: Any) -> dict[str, Any]:
    spec = project.spec(defaults=defaults or None)
    if not defaults:
        spec.pop("defaults")
    spec["domains"] = {f"d{i:03}.example": {} for i in range(n)}
    spec["gateway"]["hostname"] = "mx1.d000.example"
    return spec


def _plan(project: Project, *args: str) -> dict[str, Any]:
    result = project.run("plan", "--format", "json", *args)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_processes_plan_exactly_what_one_process_plans(project: Project) -> None:
    project.write_spec(fleet_spec(project))
    one = _plan(project, "--parallel", "1")
    many = _plan(project)  # default: worker processes from 200 zones on
    two = _plan(project, "--parallel", "2")
    assert one == many == two
    assert one["summary"]["create"] == N * 5 + 3
    # a reviewed plan made by the workers applies, and converges
    assert project.run("plan", "--out", "plan.json").code == 0
    applied = project.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err
    assert f"Apply complete! {N * 5 + 3} added" in applied.out
    assert project.run("plan", "--detailed-exitcode").code == 0
    # a change behind pmgdns's back between plan and apply is caught (stale), not applied
    spec = fleet_spec(project)
    spec["domains"]["d100.example"] = {"ttl": 60}
    project.write_spec(spec)
    assert project.run("plan", "--out", "plan.json").code == 0
    path = project.local_zone("d100.example")
    path.write_text(path.read_text() + 'extra 300 IN TXT "added"\n')
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale",
                       "d100.example. at local")


def _git(project: Project, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=project.root, check=True, capture_output=True, timeout=60)


def test_changed_since_plans_what_changed(project: Project) -> None:
    (project.root / "keys").mkdir()
    (project.root / "keys" / "dkim.pub").write_text(project.keys.pem())
    spec = fleet_spec(project)
    spec["dkim"] = {"selector": "pmg2026", "key_file": "keys/dkim.pub"}
    project.write_spec(spec)
    _git(project, "init", "-q")
    _git(project, "add", "config", "keys")
    _git(project, "commit", "-qm", "fleet")
    assert project.run("apply", "--yes").code == 0

    spec["domains"]["d042.example"] = {"dmarc": {"p": "reject"}}
    spec["domains"]["d999.example"] = {}
    project.write_spec(spec)
    data = _plan(project, "--changed-since", "HEAD")
    assert {c["zone"] for c in data["changes"]} == {"d042.example.", "d999.example."}
    assert any(f"planned 2 of {N + 1} domains" in n and "HEAD" in n for n in data["notes"])
    text = project.run("plan", "--changed-since", "HEAD").out
    assert f"planned 2 of {N + 1} domains" in text
    assert "p=reject" in (project.root / "zones" / "d042.example.yaml").read_text()
    # a DOMAIN argument narrows it further
    only = _plan(project, "--changed-since", "HEAD", "d04*")
    assert {c["zone"] for c in only["changes"]} == {"d042.example."}
    # apply takes the same option
    assert project.run("apply", "--yes", "--changed-since", "HEAD").code == 0
    assert project.run("plan", "--detailed-exitcode").code == 0
    _git(project, "add", "config")
    _git(project, "commit", "-qm", "two domains")

    # a change every domain sees (defaults) plans every domain
    project.write_spec(dict(spec, defaults={"ttl": 600}))
    data = _plan(project, "--changed-since", "HEAD")
    assert len({c["zone"] for c in data["changes"]}) == N + 1
    project.write_spec(spec)
    # a key file that changed plans every domain too, though the spec did not change
    (project.root / "keys" / "dkim.pub").write_text(project.keys.pem("rsa4096"))
    data = _plan(project, "--changed-since", "HEAD")
    assert len({c["zone"] for c in data["changes"]}) == N + 1
    assert any("keys/dkim.pub changed" in n for n in data["notes"])

    # a reviewed plan of no change (nothing changed since HEAD) applies as "no changes"
    project.write_spec(spec)
    (project.root / "keys" / "dkim.pub").write_text(project.keys.pem())
    assert project.run("plan", "--changed-since", "HEAD", "--out", "none.json").code == 0
    assert json.loads((project.root / "none.json").read_text())["domains"] == []
    applied = project.run("apply", "--plan", "none.json")
    assert applied.code == 0, applied.err
    assert "No changes" in applied.out

    # a provider's settings changed: the domains on that provider are planned again
    moved = dict(spec, providers={"side": {"class": "pmgdns.providers.local.LocalZoneFileProvider",
                                           "directory": "./build/side"}})
    moved["domains"] = dict(spec["domains"], **{"d007.example": {"targets": ["side"]}})
    project.write_spec(moved)
    _git(project, "add", "config")
    _git(project, "commit", "-qm", "side provider")
    moved["providers"]["side"]["directory"] = "./build/side2"
    project.write_spec(moved)
    data = _plan(project, "--changed-since", "HEAD")
    assert {c["zone"] for c in data["changes"]} == {"d007.example."}

    assert_clean_error(project.run("plan", "--changed-since", "no-such-ref"),
                       "--changed-since no-such-ref", "full `pmgdns plan`")
    assert_clean_error(project.run("plan", "--changed-since", "--oops"), "--changed-since")


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({f"d{i:03}.example": zone_text(f"d{i:03}.example", "")
                         for i in range(N)}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = fleet_spec(project, targets=["bind"])
    spec["providers"] = {"bind": server.provider_config()}
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def test_verify_across_processes(project: Project, bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    upd = bind.update("d123.example")
    upd.delete("_dmarc.d123.example.", "TXT")
    bind.send(upd)
    result = project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}", "--format", "json")
    checks = json.loads(result.out)["checks"]
    failing = {(c["subject"], c["family"]) for c in checks
               if c["status"] == "FAIL" and c["family"] != "ptr"}
    assert failing == {("d123.example", "dmarc")}
    domains = {c["subject"] for c in checks if c["family"] == "dkim"}
    assert domains == {f"d{i:03}.example" for i in range(N)}
    # the same answers with one worker thread in one process
    single = project.run("verify", "d12*", "--workers", "1", "--nameserver",
                         f"127.0.0.1:{bind.port}", "--format", "json")
    some = json.loads(single.out)["checks"]
    assert {(c["subject"], c["family"], c["status"]) for c in some} == {
        (c["subject"], c["family"], c["status"]) for c in checks
        if c["subject"].startswith("d12") or c["subject"].endswith(".d000.example.")}
