"""Regression tests for hostile input (issue #11): no hang, no leak, no code from the spec, values
are data, bounded resources, the truth after Ctrl-C, and reviewed plans that cannot be edited."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest
import yaml

from pmgdns.core.redact import MASK, Redactor

from .conftest import Project, assert_clean_error
from .servers import BindServer, zone_text

ESC = "\x1b"


def _cli(project: Project, *args: str, timeout: float = 60,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run pmgdns in a process of its own, so a hang is a timeout, not a stuck suite."""
    return subprocess.run([sys.executable, "-m", "pmgdns", *args], cwd=project.root,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})})


def _seed_local(project: Project, zone: str, lines: str) -> Path:
    path = project.local_zone(zone)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"$ORIGIN {zone}.\n@ 3600 IN SOA ns.invalid. hostmaster 1 3600 600 604800 3600"
                    f"\n@ 3600 IN NS ns.invalid.\n{lines}")
    return path


def _txt(path: Path, zone: str, name: str) -> set[bytes]:
    z = dns.zone.from_file(str(path), f"{zone}.", relativize=False)
    return {b"".join(r.strings) for r in z.find_rdataset(name, dns.rdatatype.TXT)}


# -- 1. no hang: a value ending in a backslash ----------------------------------------------------


def test_spf_with_a_backslash_or_quote_is_refused(project: Project) -> None:
    for spf in ("v=spf1 mx -all\\", 'v=spf1 mx -all" "evil', "v=spf1 mx\x00 -all",
                f"v=spf1 mx {ESC}[2J -all", "v=spf1 mx\x7f -all"):
        spec = project.spec(defaults={"spf": spf})
        project.write_spec(spec)
        result = _cli(project, "apply", "--yes", timeout=60)
        assert result.returncode == 1, result.stderr
        assert "defaults.spf" in result.stderr and "Traceback" not in result.stderr
        assert ESC not in result.stderr and "\x00" not in result.stderr
        assert not project.local_zone("example.com").exists()


def test_foreign_value_ending_in_a_backslash_local_target(project: Project) -> None:
    path = _seed_local(project, "example.com", '@ 3600 IN TXT "token\\\\"\n'
                                               '@ 3600 IN TXT "v=spf1 -all"\n')
    result = _cli(project, "apply", "--yes", timeout=60)
    assert result.returncode == 0, result.stderr
    assert _txt(path, "example.com", "example.com.") == {b"token\\", b"v=spf1 mx -all"}
    assert _cli(project, "plan", "--detailed-exitcode").returncode == 0


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    server = BindServer({"example.com": zone_text(
        "example.com", '@ IN TXT "token\\\\"\n@ IN TXT "v=spf1 -all"\n'
                       '@ IN TXT "a\\"quote;semi"\n')}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    spec = project.spec(defaults={"targets": ["bind"]},
                        providers={"bind": server.provider_config()})
    spec["domains"] = {"example.com": {}}
    project.write_spec(spec)
    try:
        yield server
    finally:
        server.stop()


def test_foreign_value_ending_in_a_backslash_bind(project: Project, bind: BindServer) -> None:
    result = _cli(project, "apply", "--yes", timeout=60,
                  env={"PMGDNS_TSIG_SECRET": bind.secret})
    assert result.returncode == 0, result.stderr
    assert sorted(bind.txt("example.com.")) == sorted(
        ["token\\", 'a"quote;semi', "v=spf1 mx -all"])
    again = _cli(project, "plan", "--detailed-exitcode", env={"PMGDNS_TSIG_SECRET": bind.secret})
    assert again.returncode == 0, again.stdout + again.stderr


# -- 2. no leak ------------------------------------------------------------------------------------


def test_a_secret_with_a_trailing_newline_is_named_not_shown(project: Project) -> None:
    token = "cf-token-3b9f0c1e7d"
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": "env/PMGDNS_TEST_CF", "pagerules": False,
                                          "api_url": "http://127.0.0.1:9/client/v4"}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    result = project.run("-vv", "plan", env={"PMGDNS_TEST_CF": token + "\n"})
    assert_clean_error(result, "providers.cf.token", "PMGDNS_TEST_CF", "white space")
    assert token not in result.out + result.err


@pytest.mark.parametrize("token", ["8443", "k9x2p7q"])
def test_a_secret_shorter_than_8_characters_is_refused_by_name(project: Project,
                                                                token: str) -> None:
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": "env/PMGDNS_TEST_CF", "pagerules": False,
                                          "api_url": "http://127.0.0.1:9/client/v4"}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    for command in (("plan",), ("apply", "--yes")):
        result = project.run("-vv", *command, env={"PMGDNS_TEST_CF": token})
        assert_clean_error(result, "providers.cf.token", "PMGDNS_TEST_CF",
                           "fewer than 8 characters", "garble")
        assert token not in result.out + result.err
        assert not project.local_zone("example.com").exists()


@pytest.mark.parametrize("secret", ["tok3n\n", "p@ss word/&x", 'quo"te\\back', "ünïcode-tök"])
def test_every_form_of_a_secret_is_redacted(secret: str) -> None:
    redact = Redactor([secret])
    import urllib.parse

    for form in (secret, secret.strip(), repr(secret), json.dumps(secret),
                 secret.encode("unicode_escape").decode(), urllib.parse.quote(secret, safe=""),
                 f"Invalid header value b'Bearer {secret}'"):
        masked = redact(f"error: {form} here")
        assert secret.strip() not in masked and MASK in masked, (form, masked)


# -- 4. values are data -------------------------------------------------------------------------


@pytest.mark.parametrize("rua", ["mailto:dmarc\\reports@example.com", "mailto:a\x1b@example.com",
                                 'mailto:a"b@example.com', "mailto:ab@exa\x00mple.com"])
def test_report_addresses_are_checked(project: Project, rua: str) -> None:
    project.write_spec(project.spec(defaults={"dmarc": {"rua": [rua]}}))
    result = project.run("validate")
    assert_clean_error(result, "defaults.dmarc.rua.0", "not a mailto: URI")
    assert ESC not in result.err and "\x00" not in result.err


def test_foreign_values_are_shown_escaped(project: Project) -> None:
    _seed_local(project, "example.com", f'@ 3600 IN TXT "evil{ESC}[1A{ESC}[2Kline"\n'
                                        '@ 3600 IN TXT "back`tick|pipe"\n'
                                        '@ 3600 IN TXT "v=spf1 -all"\n')
    text = project.run("plan")
    assert text.code == 0
    assert ESC not in text.out and "evil\\x1b[1A\\x1b[2Kline" in text.out
    md = project.run("plan", "--format", "markdown").out
    assert ESC not in md
    assert "``back`tick\\|pipe``" in md
    rows = [line for line in md.splitlines() if line.startswith("| ~ update | `example.com.`")]
    assert len(rows) == 1 and rows[0].count(" | ") == 5  # six cells, none split by the value


# -- 5. resources --------------------------------------------------------------------------------


def test_yaml_alias_bomb_ends_quickly(project: Project) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    project.spec_path.write_text("\n".join(lines) + "\nversion: 1\n")
    result = _cli(project, "validate", timeout=60)
    assert result.returncode == 1
    assert "expands to more than" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "huge"])
def test_spec_key_and_plan_files_that_are_not_sane_files(project: Project, kind: str) -> None:
    odd = project.root / "odd"
    if kind == "fifo":
        os.mkfifo(odd)
    elif kind == "dev_zero":
        odd.symlink_to("/dev/zero")
    else:
        with odd.open("wb") as fh:
            fh.truncate(3 * 1024**3)  # sparse
    spec = project.spec()
    result = _cli(project, "-c", str(odd), "validate", timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(odd) in result.stderr
    project.write_spec(dict(spec, dkim={"selector": "s1", "key_file": str(odd)}))
    result = _cli(project, "validate", timeout=30)
    assert result.returncode == 1 and "dkim.key_file" in result.stderr
    project.write_spec(spec)
    result = _cli(project, "apply", "--plan", str(odd), timeout=30)
    assert result.returncode == 1 and str(odd) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_key_file_is_never_echoed(project: Project) -> None:
    secret = "root:$6$SECRETSALT$hashhashhash:19000:0:99999:7:::"
    (project.root / "shadow").write_text(secret + "\ndaemon:*:19000:0:99999:7:::\n")
    project.write_spec(project.spec(dkim={"selector": "s1", "key_file": "shadow"}))
    result = project.run("validate")
    assert_clean_error(result, "dkim.key_file", "no usable DKIM public key")
    for fragment in ("root", "SECRETSALT", "hash", "daemon"):
        assert fragment not in result.err


# -- 6. the truth after Ctrl-C ---------------------------------------------------------------------


def test_ctrl_c_during_apply_reports_what_was_applied(project: Project) -> None:
    spec = project.spec()
    spec["domains"] = {f"d{i:03}.example": {} for i in range(150)}
    spec["gateway"]["hostname"] = "mx1.d000.example"
    project.write_spec(spec)
    proc = subprocess.Popen([sys.executable, "-m", "pmgdns", "apply", "--yes"],
                            cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, bufsize=0,
                            env={**os.environ, "NO_COLOR": "1"})
    assert proc.stderr is not None
    # a one-page pipe read a line at a time: apply cannot run more than ~90 lines ahead of the
    # reader, so Ctrl-C comes while it is still applying (on a busy machine too)
    fcntl.fcntl(proc.stderr.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    applied = 0
    while line := proc.stderr.readline().decode():  # "Applied N changes to ZONE at local."
        if line.startswith("Applied "):
            applied += 1
            if applied == 5:
                proc.send_signal(signal.SIGINT)
                break
    rest = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 1
    errors = [line for line in rest.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, rest
    message = errors[0]
    assert "Nothing was applied" not in message
    assert "Applied" in message and "d000.example. at local" in message
    assert "Not applied:" in message and "converges" in message
    written = sorted(p.name for p in (project.root / "build" / "zones").glob("*.zone"))
    assert len(written) >= 5 and len(written) < 150
    for p in written:
        assert p.replace(".zone", ".") in message  # every zone written is named as applied
    leftovers = [p for p in (project.root / "build").rglob("*")
                 if p.name.startswith((".tmp-", ".run-", ".pmgdns-"))]
    assert leftovers == []


# -- 7. a reviewed plan cannot be edited ----------------------------------------------------------


def test_an_edited_plan_file_is_refused(project: Project) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    doc = json.loads((project.root / "plan.json").read_text())
    doc["changes"] = []
    doc["summary"] = {"create": 0, "update": 0, "delete": 0}
    (project.root / "plan.json").write_text(json.dumps(doc))
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "stale", "edited")
    assert not project.local_zone("example.com").exists()


def test_a_foreign_record_added_at_the_target_makes_the_plan_stale(project: Project) -> None:
    assert project.run("apply", "--yes", "example.com").code == 0
    spec = project.spec()
    spec["domains"]["example.com"] = {"ttl": 600}
    project.write_spec(spec)
    assert project.run("plan", "--out", "plan.json", "example.com").code == 0
    path = project.local_zone("example.com")
    path.write_text(path.read_text() + "www 300 IN A 203.0.113.80\n")
    before = path.read_bytes()
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "stale", "example.com. at local")
    assert path.read_bytes() == before


def test_plan_out_never_overwrites_the_spec(project: Project) -> None:
    before = project.spec_path.read_bytes()
    result = project.run("plan", "--out", str(project.spec_path))
    assert_clean_error(result, "not a plan file pmgdns wrote")
    assert project.spec_path.read_bytes() == before
    assert yaml.safe_load(before)["version"] == 1
