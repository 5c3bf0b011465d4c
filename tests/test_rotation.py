"""A staged DKIM key rotation (spec-v1 §6.4) through the command line, end to end: a fake PMG API
over real HTTPS, a real BIND, and at no moment a PMG that signs with a selector the DNS lacks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import Project, Result, assert_clean_error
from .pmg_api import Certs, FakePmg, PmgState, User, make_certs
from .servers import BindServer, zone_text
from .test_pmg import DkimKeys

PASSWORD = "rotation-Pw-7q;&x"

SPEC = """\
# the gateway fleet of the example company
version: 1
gateway: {{hostname: mx1.example.com, ipv4: 198.51.100.25}}

dkim:
  selector: pmg2026            # what PMG signs with today
  key_file: keys/pmg2026.pub
  # next: added at stage 2

defaults:
  targets: [bind]

domains:
  example.com: {{}}
  example.org: {{}}   # the shop

providers:
  bind:
    class: octodns_bind.Rfc2136Provider
    host: 127.0.0.1
    port: {port}
    key_name: pmgdns-test.
    key_secret: env/PMGDNS_TSIG_SECRET
    key_algorithm: hmac-sha256
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pmg-certs"))


@pytest.fixture
def world(project: Project, certs: Certs, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[tuple[BindServer, FakePmg, DkimKeys]]:
    keys = DkimKeys()
    bind = BindServer({z: zone_text(z, "") for z in ("example.com", "example.org")}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", bind.secret)
    (project.root / "keys").mkdir()
    for name in ("pmg2026", "pmg2027"):
        (project.root / "keys" / f"{name}.pub").write_text(keys.pem(name))
    project.write_spec(SPEC.format(port=bind.port))
    pmg = FakePmg(certs, PmgState(users={"root@pam": User(PASSWORD, "root")},
                                  relay_domains={"example.com": "", "example.org": ""},
                                  selector="pmg2026", public_key=keys.b64("pmg2026"))).start()
    try:
        yield bind, pmg, keys
    finally:
        pmg.stop()
        bind.stop()


def _pull(project: Project, pmg: FakePmg, *extra: str, password: str = PASSWORD) -> Result:
    return project.run("pmg", "pull", "--url", pmg.url, "--fingerprint",
                       pmg.certs.fingerprint, *extra, env={"PMG_PASSWORD": password})


def _published(bind: BindServer, selector: str) -> set[str]:
    """The keys at SELECTOR._domainkey in each zone (p= values)."""
    out = set()
    for zone in ("example.com", "example.org"):
        for value in bind.txt(f"{selector}._domainkey.{zone}."):
            out.add(value.split("p=")[-1])
    return out


def _signing_is_published(bind: BindServer, pmg: FakePmg) -> None:
    """The invariant: the key PMG signs with is what every zone publishes at its selector."""
    state = pmg.state
    assert state.selector is not None
    assert _published(bind, state.selector) == {state.public_key}


def test_rotation_stages(project: Project, world: tuple[BindServer, FakePmg, DkimKeys]) -> None:
    bind, pmg, keys = world
    # stage 0: in sync with the gateway, and published
    check = _pull(project, pmg, "--check")
    assert check.code == 0 and "already in sync" in check.out
    assert project.run("apply", "--yes").code == 0
    _signing_is_published(bind, pmg)

    # stage 1: publish the next key beside the current one
    text = project.spec_path.read_text()
    project.spec_path.write_text(text.replace(
        "  # next: added at stage 2\n",
        "  next: {selector: pmg2027, key_file: keys/pmg2027.pub}\n"))
    plan = project.run("plan", "--format", "json")
    data = json.loads(plan.out)
    assert {c["name"] for c in data["changes"]} == {"pmg2027._domainkey.example.com.",
                                                    "pmg2027._domainkey.example.org."}
    assert any("next DKIM key (pmg2027)" in n and "no earlier than 3600 s" in n
               for n in data["notes"])
    assert project.run("apply", "--yes").code == 0
    _signing_is_published(bind, pmg)
    assert _published(bind, "pmg2027") == {keys.b64("pmg2027")}
    again = project.run("plan")
    assert "already published" in again.out and "No changes" in again.out
    # the command PMG accepts: dkim_set requires the key size
    assert "`pmgconfig dkim_set --selector pmg2027 --keysize 2048`" in again.out
    # a plan of some domains only does not vouch for the others
    some = project.run("plan", "example.com")
    assert "already published" not in some.out
    assert "1 other domain was not planned" in some.out
    verify = json.loads(project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}",
                                    "--format", "json").out)
    dkim = [c for c in verify["checks"] if c["family"] == "dkim"]
    assert len(dkim) == 4 and all(c["status"] == "OK" for c in dkim)

    # stage 2: PMG switches (`pmgconfig dkim_set --selector pmg2027`); the key is already there
    pmg.state.selector, pmg.state.public_key = "pmg2027", keys.b64("pmg2027")
    _signing_is_published(bind, pmg)
    drift = _pull(project, pmg, "--check")
    assert drift.code == 1
    before = project.spec_path.read_text()
    assert project.spec_path.read_text() == before

    # stage 3: pull promotes next and retires the old selector; comments stay
    pulled = _pull(project, pmg)
    assert pulled.code == 0, pulled.err
    spec = yaml.safe_load(project.spec_path.read_text())
    assert spec["dkim"]["selector"] == "pmg2027"
    assert spec["dkim"]["key_file"] == "keys/pmg2027.pub"
    assert "next" not in spec["dkim"]
    assert spec["dkim"]["retired_selectors"] == ["pmg2026"]
    after = project.spec_path.read_text()
    for comment in ("# the gateway fleet of the example company", "# the shop",
                    "# what PMG signs with today"):
        assert comment in after
    assert _pull(project, pmg, "--check").code == 0

    # stage 4: apply retires pmg2026 everywhere; PMG's key stays published throughout
    plan = json.loads(project.run("plan", "--format", "json").out)
    assert {(c["name"], c["action"]) for c in plan["changes"]} == {
        ("pmg2026._domainkey.example.com.", "delete"),
        ("pmg2026._domainkey.example.org.", "delete")}
    assert project.run("apply", "--yes").code == 0
    _signing_is_published(bind, pmg)
    assert _published(bind, "pmg2026") == set()
    assert project.run("plan", "--detailed-exitcode").code == 0


def test_pull_on_the_command_line(project: Project,
                                  world: tuple[BindServer, FakePmg, DkimKeys]) -> None:
    _, pmg, _ = world
    pmg.state.relay_domains["new.example"] = "added in the GUI"
    before = project.spec_path.read_bytes()
    result = _pull(project, pmg, "--check")
    assert result.code == 1 and "new.example" in result.out
    assert project.spec_path.read_bytes() == before
    result = _pull(project, pmg)
    assert result.code == 0
    assert "new.example: {}" in project.spec_path.read_text()
    everything = result.out + result.err
    assert PASSWORD not in everything

    bad = _pull(project, pmg, password="wrong-password")
    assert_clean_error(bad, "refused the login")
    assert "wrong-password" not in bad.err
    no_password = project.run("pmg", "pull", "--url", pmg.url, "--fingerprint",
                              pmg.certs.fingerprint)
    assert_clean_error(no_password, "PMG_PASSWORD is not set")
    stray = _pull(project, pmg, password=PASSWORD + "\n")
    assert_clean_error(stray, "white space")
    assert PASSWORD not in stray.err
    pmg.requests.clear()
    wrong = project.run("pmg", "pull", "--url", pmg.url, "--fingerprint", "AA:" * 31 + "AA",
                        env={"PMG_PASSWORD": PASSWORD})
    assert wrong.code == 1 and "fingerprint" in wrong.err
    assert pmg.requests == []  # nothing was sent, not even the login
    files = [p.read_text(errors="replace") for p in Path(project.root).rglob("*")
             if p.is_file()]
    assert not any(PASSWORD in f for f in files)
