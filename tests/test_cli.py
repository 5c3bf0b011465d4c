"""Commands, formats and exit codes (spec-v1 §4, §5) on the local target."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import Project, assert_clean_error


def test_plan_json_shape(project: Project) -> None:
    result = project.run("plan", "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["version"] == 1
    assert data["summary"] == {"create": 13, "update": 0, "delete": 0}
    assert len(data["checksum"]) == 64
    assert data["manual"] == [
        {"kind": "ptr", "address": "198.51.100.25", "name": "mx1.example.com."},
        {"kind": "ptr", "address": "2001:db8::25", "name": "mx1.example.com."}]
    by_name = {(c["name"], c["type"]): c for c in data["changes"]}
    dmarc = by_name[("_dmarc.example.com.", "TXT")]
    assert dmarc == {"zone": "example.com.", "target": "local", "action": "create",
                     "name": "_dmarc.example.com.", "type": "TXT", "ttl": 3600,
                     "values": ["v=DMARC1; p=quarantine; aspf=s; adkim=s;"], "previous": []}
    assert by_name[("example.org.", "MX")]["values"] == ["10 mx1.example.com."]
    dkim = by_name[("pmg2026._domainkey.example.org.", "TXT")]["values"][0]
    assert dkim == f"v=DKIM1; h=sha256; k=rsa; p={project.keys.b64()}"  # unsplit, unescaped


def test_detailed_exitcode(project: Project) -> None:
    assert project.run("plan", "--detailed-exitcode").code == 2
    assert project.run("plan").code == 0
    assert project.run("apply", "--yes").code == 0
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_markdown_has_marker_and_goes_to_step_summary(project: Project) -> None:
    summary = project.root / "summary.md"
    result = project.run("plan", "--format", "markdown",
                         env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.code == 0
    assert result.out.startswith("<!-- pmgdns-plan -->\n")
    assert "**Plan: 13 to add, 0 to change, 0 to destroy.**" in result.out
    assert "| + create | `_dmarc.example.com.` | TXT | 3600 |" in result.out
    assert summary.read_text() == result.out


def test_plan_selects_domains_by_glob(project: Project) -> None:
    result = project.run("plan", "--format", "json", "*.org")
    zones = {c["zone"] for c in json.loads(result.out)["changes"]}
    assert zones == {"example.org."}
    assert_clean_error(project.run("plan", "nothing.example"), "`nothing.example` matches no "
                                                                "domain")


def test_apply_without_terminal_refuses(project: Project) -> None:
    env = dict(os.environ, NO_COLOR="1")
    result = subprocess.run([sys.executable, "-m", "pmgdns", "apply"], cwd=project.root,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env,
                            timeout=120)
    assert result.returncode == 1
    assert "no terminal to ask on" in result.stderr and "--yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.local_zone("example.com").exists()


def test_plan_out_and_apply_plan(project: Project) -> None:
    result = project.run("plan", "--out", "build/plan.json")
    assert result.code == 0
    doc = json.loads((project.root / "build" / "plan.json").read_text())
    assert doc["format"] == "pmgdns-plan" and doc["summary"]["create"] == 13
    applied = project.run("apply", "--plan", "build/plan.json")
    assert applied.code == 0, applied.err
    assert "Apply complete! 13 added" in applied.out
    assert "No changes" in project.run("plan").out


def test_apply_plan_refuses_after_spec_edit(project: Project) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    spec = project.spec()
    spec["defaults"] = {"ttl": 600}
    project.write_spec(spec)
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "stale", "the spec config/site.yaml changed")
    assert not project.local_zone("example.com").exists()


def test_apply_plan_refuses_when_a_target_changed(project: Project) -> None:
    assert project.run("apply", "--yes", "example.com").code == 0
    assert project.run("plan", "--out", "plan.json").code == 0
    # someone edits a record pmgdns owns behind its back
    path = project.local_zone("example.com")
    path.write_text(path.read_text().replace("198.51.100.25", "203.0.113.9"))
    before = path.read_bytes()
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "stale", "example.com. at local")
    assert path.read_bytes() == before
    assert not project.local_zone("example.org").exists()
    assert project.run("plan", "--out", "plan.json").code == 0
    assert project.run("apply", "--plan", "plan.json").code == 0
    assert "No changes" in project.run("plan").out


def test_apply_plan_rejects_garbage(project: Project) -> None:
    (project.root / "plan.json").write_text("{not json")
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "not a readable pmgdns plan")
    assert_clean_error(project.run("apply", "--plan", "missing.json"), "no such plan file")


def test_ptr_ticket_formats(project: Project) -> None:
    text = project.run("ptr-ticket")
    assert text.code == 0
    assert "25.100.51.198.in-addr.arpa." in text.out
    nibbles = "5.2.0.0." + "0.0.0.0." * 5 + "8.b.d.0.1.0.0.2.ip6.arpa."
    assert nibbles in text.out
    assert "PTR  mx1.example.com." in text.out
    assert "forward-confirmed reverse DNS" in text.out
    assert "mx1.example.com.  A  198.51.100.25" in text.out
    data = json.loads(project.run("ptr-ticket", "--format", "json").out)
    assert data["ptr"][0] == {"address": "198.51.100.25",
                              "reverse_name": "25.100.51.198.in-addr.arpa.",
                              "ptr": "mx1.example.com."}
    assert data["ptr"][1]["reverse_name"] == nibbles
    md = project.run("ptr-ticket", "--format", "markdown").out
    assert "| `198.51.100.25` | `25.100.51.198.in-addr.arpa.` | `mx1.example.com.` |" in md


def test_init_then_validate_points_at_the_todo(project: Project) -> None:
    os.unlink(project.spec_path)
    result = project.run("init")
    assert result.code == 0 and "Wrote config/site.yaml" in result.out
    assert_clean_error(project.run("init"), "exists already", "--force")
    assert_clean_error(project.run("validate"), "dkim.record")
    text = project.spec_path.read_text().replace("PASTE-THE-DKIM-RECORD-HERE",
                                                 project.keys.pmg_record())
    project.spec_path.write_text(text)
    ok = project.run("validate")
    assert ok.code == 0, ok.err
    assert "is valid: 1 domain" in ok.out


def test_version_help_and_config_env(project: Project) -> None:
    assert project.run("--version").out.startswith("pmgdns, version ")
    helptext = project.run("-h").out
    for command in ("render", "validate", "plan", "apply", "ptr-ticket", "init"):
        assert command in helptext
    os.rename(project.spec_path, project.root / "other.yaml")
    result = project.run("validate", env={"PMGDNS_CONFIG": "other.yaml"})
    assert result.code == 0, result.err


def test_gateway_outside_the_spec_is_noted(project: Project) -> None:
    spec = project.spec()
    spec["gateway"]["hostname"] = "gw.hoster.example.net"
    project.write_spec(spec)
    out = project.run("plan").out
    assert "Note: gw.hoster.example.net lies in none of the spec's domains" in out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert any("lies in none" in n for n in data["notes"])


def test_many_domains_print_a_table_and_detail_with_v(project: Project) -> None:
    spec = project.spec()
    spec["domains"] = {f"d{i:02}.example": {} for i in range(25)}
    spec["gateway"]["hostname"] = "mx1.d00.example"
    project.write_spec(spec)
    table = project.run("plan")
    assert table.code == 0
    assert "one row per zone and target" in table.out
    assert "  d07.example.  local      5       0        0" in table.out
    assert "Plan: 128 to add, 0 to change, 0 to destroy." in table.out
    assert "_dmarc.d07.example." not in table.out
    detail = project.run("-v", "plan")
    assert "_dmarc.d07.example." in detail.out and "one row per zone" not in detail.out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert len(data["changes"]) == 128


def test_progress_bar_only_on_a_terminal(project: Project) -> None:
    import pty
    import select

    spec = project.spec()
    spec["domains"] = {f"d{i:02}.example": {} for i in range(25)}
    project.write_spec(spec)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pmgdns", "plan", "--parallel", "4"],
                            cwd=project.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=follower, env=dict(os.environ, NO_COLOR="1"))
    os.close(follower)
    out, _ = proc.communicate(timeout=120)
    err = b""
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"planning [" in err and b"25/25" in err
    assert b"planning [" not in out
    piped = subprocess.run([sys.executable, "-m", "pmgdns", "plan"], cwd=project.root,
                           capture_output=True, timeout=120)
    assert b"planning [" not in piped.stderr + piped.stdout


def test_apply_plan_refuses_after_a_domain_left_the_spec(project: Project) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    spec = project.spec()
    spec["domains"].pop("example.org")
    project.write_spec(spec)
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale")
    assert not project.local_zone("example.com").exists()


def test_default_parallelism_follows_the_targets(project: Project) -> None:
    from pmgdns.families.loader import load_site
    from pmgdns.plan.engine import default_parallel

    site = load_site("config/site.yaml")
    assert default_parallel(site, list(site.domains)) == 1
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": "env/CF"}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    site = load_site("config/site.yaml")
    assert default_parallel(site, ["example.com"]) == 1
    # remote: as many threads as the pace keeps busy (Little's law), 4 for unpaced APIs
    assert default_parallel(site, list(site.domains)) == 3
    spec["providers"]["cf"]["requests_per_second"] = 17.2
    project.write_spec(spec)
    site = load_site("config/site.yaml")
    assert default_parallel(site, list(site.domains)) == 8
    spec["providers"]["pdns"] = {"class": "octodns_powerdns.PowerDnsProvider", "host": "127.0.0.1",
                                 "api_key": "env/PDNS"}
    spec["domains"]["example.org"] = {"targets": ["pdns"]}
    project.write_spec(spec)
    site = load_site("config/site.yaml")
    assert default_parallel(site, list(site.domains)) == 4


def test_reapplying_an_applied_plan_names_each_stale_zone_once(project: Project) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    assert project.run("apply", "--plan", "plan.json").code == 0
    again = project.run("apply", "--plan", "plan.json")
    assert_clean_error(again, "stale", "(example.com. at local, example.org. at local now differ)")


def test_a_lock_held_by_another_run_names_its_pid(project: Project) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pmgdns.plan.lock import apply_lock\n"
         "with apply_lock('build'):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        cwd=project.root, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = project.run("apply", "--yes")
        assert_clean_error(result, f"another pmgdns apply is running in this checkout (PID "
                                   f"{holder.pid}, lock build/apply.lock)")
        assert not project.local_zone("example.com").exists()
    finally:
        holder.kill()
        holder.wait()


def test_plan_out_is_the_json_plan_file_and_refuses_a_report_name(project: Project) -> None:
    for args, page in ((("--format", "html", "--out", "plan.html"), "html"),
                       (("--out", "Plan.HTM"), "html"), (("--out", "plan.md"), "markdown")):
        result = project.run("plan", *args)
        assert_clean_error(result, "--out writes the plan file for `pmgdns apply --plan`",
                           "which is JSON", f"`pmgdns plan --format {page} >")
        assert not any(project.root.glob("plan*")) and not any(project.root.glob("Plan*"))
    both = project.run("plan", "--format", "html", "--out", "plan.json")
    assert both.code == 0 and both.out.startswith("<!DOCTYPE html>")
    assert json.loads((project.root / "plan.json").read_text())["format"] == "pmgdns-plan"
    assert project.run("apply", "--plan", "plan.json").code == 0
    assert "PLANFILE" in project.run("plan", "--help").out
    assert "always JSON" in " ".join(project.run("plan", "--help").out.split())


def test_init_keeps_generated_files_out_of_git(project: Project) -> None:
    os.unlink(project.spec_path)
    gitignore = project.root / ".gitignore"
    mine = "# my lines\n*.swp\n!keep.me\n.venv"  # no newline at the end
    gitignore.write_text(mine)
    result = project.run("init")
    assert result.code == 0 and "Added /build/ to .gitignore" in result.out
    text = gitignore.read_text()
    assert text.startswith(mine + "\n") and text.endswith("\n/build/\n")
    assert project.run("init", "--force").code == 0  # no second line
    assert gitignore.read_text() == text
    project.write_spec(project.spec())
    assert project.run("apply", "--yes").code == 0 and project.local_zone("example.com").exists()
    git = ["git", "-C", str(project.root)]
    subprocess.run([*git, "init", "-q"], check=True)
    ignored = subprocess.run([*git, "check-ignore", "build/zones/example.com.zone",
                              "build/octodns.yaml", "zones/example.com.yaml",
                              "config/site.yaml"], capture_output=True, text=True)
    assert ignored.stdout.split() == ["build/zones/example.com.zone", "build/octodns.yaml"]
    # a .gitignore that has the line in another spelling is left alone; none is created
    gitignore.write_text("build\n")
    assert "gitignore" not in project.run("init", "--force").out
    assert gitignore.read_text() == "build\n"
    gitignore.unlink()
    assert project.run("init", "--force").code == 0
    assert gitignore.read_text() == "# pmgdns: generated files (commit config/ and zones/, " \
                                    "not these)\n/build/\n"


def test_render_of_many_zones_prints_the_count(project: Project) -> None:
    spec = project.spec()
    spec["domains"] = {f"d{i:03}.example": {} for i in range(120)}
    spec["gateway"]["hostname"] = "mx1.d000.example"
    project.write_spec(spec)
    result = project.run("render")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines == ["Rendered 120 zones into zones/ and build/octodns.yaml; 120 files changed "
                     "(-v lists them)."], lines
    spec["defaults"] = {"ttl": 600}
    project.write_spec(spec)
    listed = project.run("-v", "render").out.splitlines()
    assert listed[0].endswith("; 120 files changed:")
    assert listed[1:] == [f"  zones/d{i:03}.example.yaml" for i in range(120)]
    assert project.run("render").out.endswith("; nothing changed.\n")


def test_quiet_does_not_repeat_the_spec_warnings(project: Project) -> None:
    """-q (PMGDNS_QUIET=1) leaves out the spec's warnings; validate shows them anyway."""
    loud = project.run("plan")
    assert loud.err.count("is a documentation address") == 2
    for quiet in (project.run("-q", "plan"), project.run("plan", env={"PMGDNS_QUIET": "1"})):
        assert quiet.code == 0 and quiet.err == "" and quiet.out == loud.out
    assert project.run("-q", "validate").err.count("is a documentation address") == 2


def test_demo_reads_cleanly(project: Project) -> None:
    """scripts/demo.sh, run as shipped on the repository's example (its setup step stubbed:
    the installed pmgdns stands in for the one it would install): each command is echoed once,
    and the example's two documentation-address warnings are printed once."""
    root = Path(__file__).resolve().parent.parent
    (project.root / "scripts").mkdir()
    shutil.copy(root / "scripts" / "demo.sh", project.root / "scripts" / "demo.sh")
    (project.root / "scripts" / "bootstrap.sh").write_text("exit 0\n")
    (project.root / ".venv" / "bin").mkdir(parents=True)
    (project.root / ".venv" / "bin" / "pmgdns").symlink_to(Path(sys.executable).parent / "pmgdns")
    shutil.copy(root / "config" / "site.yaml", project.spec_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMGDNS_")}
    result = subprocess.run(["bash", "scripts/demo.sh"], cwd=project.root, capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    both = result.stdout + result.stderr
    assert both.count("is a documentation address") == 2, both
    echoed = [line for line in both.splitlines() if line.startswith(("$ ", "+ "))]
    assert echoed == ["$ pmgdns validate", "$ pmgdns render", "$ pmgdns plan",
                      "$ pmgdns apply --yes", "$ pmgdns plan --detailed-exitcode",
                      "$ pmgdns ptr-ticket"], echoed
    assert "No changes" in result.stdout
