"""`pmgdns pmg pull` (spec-v1 §6.4) against a fake PMG API over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import os
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pmgdns.core.errors import PmgdnsError
from pmgdns.pmg.client import (
    PmgAuthError,
    PmgConnectionError,
    PmgError,
    PmgTlsError,
    PullResult,
    fetch_state,
    parse_fingerprint,
    pull,
)
from pmgdns.pmg.specedit import GatewayState, apply_state, normalise_record
from pmgdns.spec import dkim_keys as dkimlib

from .pmg_api import Certs, FakePmg, PmgState, User, closed_port, make_certs, pmg_record

PASSWORD = "Pw-MARKER-7f3a9c;&=%+ü"      # characters that need form-encoding, on purpose
AUDIT_PASSWORD = "audit-pass-1234"
TFA_PASSWORD = "tfa-pass-5678"


# ---------------------------------------------------------------------------------------------
# fixtures


class DkimKeys:
    def __init__(self) -> None:
        self.public = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048)
                       .public_key() for name in ("pmg2025", "pmg2026", "pmg2027", "other")}

    def b64(self, name: str) -> str:
        der = self.public[name].public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def pem(self, name: str) -> str:
        return self.public[name].public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def record(self, selector: str, name: str | None = None) -> str:
        return pmg_record(selector, self.b64(name or selector))


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pmg-certs"))


@pytest.fixture(scope="session")
def dk() -> DkimKeys:
    return DkimKeys()


@pytest.fixture
def pmg(certs: Certs, dk: DkimKeys) -> Iterator[FakePmg]:
    state = PmgState(
        users={"root@pam": User(PASSWORD, "root"),
               "auditor@pmg": User(AUDIT_PASSWORD, "audit"),
               "tfa@pmg": User(TFA_PASSWORD, "admin", tfa=True)},
        relay_domains={"example.com": "", "example.org": "the shop"},
        selector="pmg2026", public_key=dk.b64("pmg2026"))
    fake = FakePmg(certs, state).start()
    yield fake
    fake.stop()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dk: DkimKeys) -> Path:
    """A checkout (the cwd) with keys/ and config/; returns the spec path (not yet written)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keys").mkdir()
    for name in ("pmg2026", "pmg2027"):
        (tmp_path / "keys" / f"{name}.pub").write_text(dk.pem(name))
    (tmp_path / "config").mkdir()
    return tmp_path / "config" / "site.yaml"


SIMPLE = """\
version: 1
gateway: {hostname: mx1.example.com, ipv4: 198.51.100.25}
dkim:
  selector: pmg2026
  key_file: keys/pmg2026.pub
domains:
  example.com: {}
  example.org: {}
"""


def do_pull(spec: Path, fake: FakePmg, *, user: str = "root@pam", password: str = PASSWORD,
            check: bool = False, **tls: Any) -> PullResult:
    if not tls:
        tls = {"fingerprint": fake.certs.fingerprint}
    tls.setdefault("fingerprint", None)
    tls.setdefault("ca_file", None)
    return pull(str(spec), fake.url, user, password, check=check, timeout=5, **tls)


def snapshot(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


# ---------------------------------------------------------------------------------------------
# TLS


def test_wrong_fingerprint_sends_nothing(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    wrong = "AB:" * 31 + "CD"
    with pytest.raises(PmgTlsError) as err:
        do_pull(site, pmg, fingerprint=wrong)
    # the TLS handshake reached the server, and then the connection ended without a request
    assert pmg.wait_closed(1), "the client never connected"
    assert pmg.handshakes >= 1
    assert pmg.requests == []
    message = str(err.value)
    assert pmg.certs.fingerprint in message            # the fingerprint seen
    assert wrong in message                             # and the one expected
    assert "nothing was sent" in message and "Certificates" in message
    assert snapshot(site) == before


@pytest.mark.parametrize("form", ["colons", "plain-lower", "openssl"])
def test_right_fingerprint(pmg: FakePmg, site: Path, form: str) -> None:
    site.write_text(SIMPLE)
    fp = pmg.certs.fingerprint
    given = {"colons": fp, "plain-lower": fp.replace(":", "").lower(),
             "openssl": f"SHA256 Fingerprint={fp}"}[form]
    result = do_pull(site, pmg, fingerprint=given)
    assert result.differs is False and result.complete and not result.written
    assert [r.path for r in pmg.requests] == [
        "/api2/json/access/ticket", "/api2/json/config/domains",
        "/api2/json/config/dkim/domains", "/api2/json/config/dkim/selector"]


def test_ca_file(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    result = do_pull(site, pmg, ca_file=str(pmg.certs.ca_file))
    assert result.summary.endswith(f"already in sync with PMG at 127.0.0.1:{pmg.port}; nothing "
                                   "to change.")
    assert len(pmg.requests) == 4

    # a CA that did not issue the certificate: refused before any request
    with pytest.raises(PmgTlsError) as err:
        do_pull(site, pmg, ca_file=str(pmg.certs.other_ca_file))
    assert "could not be verified against --ca-file" in str(err.value)
    assert pmg.wait_closed(2)          # the first pull's connection, and the refused one
    assert len(pmg.requests) == 4


def test_system_trust_store_is_the_default(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    with pytest.raises(PmgTlsError) as err:
        do_pull(site, pmg, fingerprint=None, ca_file=None)
    assert "the system's trust store" in str(err.value)
    assert "--fingerprint" in str(err.value) and "--ca-file" in str(err.value)
    assert pmg.wait_closed(1)
    assert pmg.requests == []


@pytest.mark.parametrize("bad, why", [
    ("AB:CD", "has 2 pairs"),
    ("AB:" * 19 + "CD", "SHA-1"),
    ("ZZ:" * 31 + "ZZ", "not a pair of hex digits"),
    ("abc123", "6 hex digits"),
    ("not a fingerprint", "not hex digits"),
])
def test_malformed_fingerprint_is_refused_before_connecting(pmg: FakePmg, site: Path, bad: str,
                                                            why: str) -> None:
    site.write_text(SIMPLE)
    with pytest.raises(PmgError) as err:
        do_pull(site, pmg, fingerprint=bad)
    assert why in str(err.value) and "AA:BB" in str(err.value)
    assert pmg.handshakes == 0 and pmg.requests == []
    assert parse_fingerprint(pmg.certs.fingerprint.lower()) == \
        pmg.certs.fingerprint.replace(":", "").lower()


# ---------------------------------------------------------------------------------------------
# login and transport failures


def test_wrong_password(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    with pytest.raises(PmgAuthError) as err:
        do_pull(site, pmg, password="not-the-password")
    assert str(err.value) == "PMG refused the login for root@pam: check PMG_PASSWORD and --user"
    assert [r.path for r in pmg.requests] == ["/api2/json/access/ticket"]
    assert snapshot(site) == before


def test_tfa_user_is_refused_without_a_second_attempt(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    with pytest.raises(PmgAuthError) as err:
        do_pull(site, pmg, user="tfa@pmg", password=TFA_PASSWORD)
    assert "two-factor" in str(err.value) and "tfa@pmg" in str(err.value)
    # one login, no TFA answer that would count against the user's lockout, nothing else
    assert [(r.method, r.path) for r in pmg.requests] == [("POST", "/api2/json/access/ticket")]


def test_user_without_realm_is_refused_before_connecting(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    with pytest.raises(PmgError) as err:
        do_pull(site, pmg, user="root")
    assert "root@pam" in str(err.value) and "quarantine" in str(err.value)
    assert pmg.handshakes == 0


def test_unreachable_gateway(site: Path, certs: Certs) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    port = closed_port()
    with pytest.raises(PmgConnectionError) as err:
        pull(str(site), f"https://127.0.0.1:{port}", "root@pam", PASSWORD,
             fingerprint=certs.fingerprint, ca_file=None, check=False, timeout=3)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "connection refused" in message and "pmgproxy" in message
    assert "Traceback" not in message and "HTTPSConnectionPool" not in message
    assert snapshot(site) == before


def test_pmg_answers_500(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    pmg.state.fail["GET /config/domains"] = (
        "unable to open file '/etc/pmg/domains' - Permission denied\n")
    with pytest.raises(PmgError) as err:
        do_pull(site, pmg)
    message = str(err.value)
    assert "HTTP 500" in message and "GET /api2/json/config/domains" in message
    assert "unable to open file '/etc/pmg/domains' - Permission denied" in message
    assert snapshot(site) == before


def test_an_endless_answer_is_cut_off(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    pmg.state.endless["GET /config/domains"] = (b" " * 2**20, 0)
    with pytest.raises(PmgError) as err:
        do_pull(site, pmg)
    assert str(err.value) == (f"PMG at 127.0.0.1:{pmg.port} answered GET /api2/json/config/"
                              "domains with over 32 MiB; is this a Proxmox Mail Gateway?")
    assert snapshot(site) == before


def test_a_trickled_answer_ends_at_the_deadline(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    pmg.state.endless["GET /config/domains"] = (b" ", 0.02)
    with pytest.raises(PmgError) as err:
        pull(str(site), pmg.url, "root@pam", PASSWORD, fingerprint=pmg.certs.fingerprint,
             ca_file=None, check=False, timeout=0.25)
    assert str(err.value).startswith(f"PMG at 127.0.0.1:{pmg.port} did not finish answering GET "
                                     "/api2/json/config/domains within 1.5 seconds")


@pytest.mark.parametrize("bad", ["evil\x1b]0;pwned\x07.example", "a b.example",
                                 "x" * 300 + ".example", "bad\u202e.example", "..example"])
def test_a_relay_domain_that_is_no_domain_name_is_refused(pmg: FakePmg, site: Path,
                                                          bad: str) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    pmg.state.relay_domains[bad] = ""
    with pytest.raises(PmgError) as err:
        do_pull(site, pmg)
    message = str(err.value)
    assert "relay domains" in message and "not a domain name" in message
    assert "nothing was written" in message
    assert not any(ch in message for ch in "\x1b\x07\u202e") and len(message) < 400
    assert snapshot(site) == before


# ---------------------------------------------------------------------------------------------
# the edits


def commented_spec(dk: DkimKeys) -> str:
    record = normalise_record(dk.record("pmg2027"))
    record_block = "".join("      " + line + "\n" for line in record.splitlines())
    return f"""\
# Mail site for Example Ltd.
# Edited by people and by `pmgdns pmg pull`.
version: 1

gateway:                          # the PMG host
  hostname: mx1.example.com
  ipv4: 198.51.100.25
  ipv6: "2001:db8::25"            # quoted on purpose

dkim:                             # PMG signs every domain with ONE selector
  # the key PMG signs with today
  selector: pmg2026
  key_file: keys/pmg2026.pub      # exported 2026-01-10
  # staged for the December rotation
  next:
    selector: 'pmg2027'           # published 2026-11-20
    record: |
{record_block}    # ^ pasted from `pmgconfig dkim_record`
  retired_selectors: [pmg2025]    # removed in March

defaults:
  ttl: 3600
  targets: [local]
  spf: v=spf1 mx include:_spf.example.net include:spf.protection.example.org -all
  dmarc:
    p: quarantine                 # tighten later
    rua: ["mailto:dmarc@example.com"]

domains:                          # each key is a PMG relay domain
  example.com: {{}}                 # inherits every default
  # the shop
  example.org:
    dmarc: {{p: reject, rua: [mailto:dmarc@example.org]}}
    # targets: [cloudflare]       # after the move
  old-brand.example: {{absent: true}}   # going away

  # end of domains

providers: {{}}
# trailing comment
"""


def test_commented_spec_kept_byte_for_byte(pmg: FakePmg, site: Path, dk: DkimKeys) -> None:
    original = commented_spec(dk)
    site.write_text(original)
    os.chmod(site, 0o640)
    pmg.state.relay_domains["new.example"] = ""
    pmg.state.selector, pmg.state.public_key = "pmg2027", dk.b64("pmg2027")
    result = do_pull(site, pmg)
    assert result.written

    record = normalise_record(dk.record("pmg2027"))
    record_block = "".join("    " + line + "\n" for line in record.splitlines())
    expected = original.replace(
        "  selector: pmg2026\n"
        "  key_file: keys/pmg2026.pub      # exported 2026-01-10\n",
        "  selector: pmg2027\n"
        "  record: |\n" + record_block,
    )
    start = expected.index("  next:\n")
    end = expected.index("  retired_selectors:")
    expected = expected[:start] + expected[end:]
    expected = expected.replace("[pmg2025]    # removed", "[pmg2025, pmg2026]    # removed")
    expected = expected.replace("  old-brand.example: {absent: true}   # going away\n",
                                "  old-brand.example: {absent: true}   # going away\n"
                                "  new.example: {}\n")
    assert site.read_text() == expected
    assert stat.S_IMODE(site.stat().st_mode) == 0o640
    assert sorted(p.name for p in site.parent.iterdir()) == ["site.yaml"]   # no temp file left


def test_relay_domain_added(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE.replace("  example.org: {}\n", "  Example.ORG.: {}\n"
                                                          "  bücher.example: {}\n"))
    pmg.state.relay_domains.update({"xn--bcher-kva.example": "", "New.Example": "",
                                    ".sub.example": ""})
    result = do_pull(site, pmg)
    assert result.written and result.differs
    assert result.changes == (
        f"domains: added new.example ({{}}): PMG at 127.0.0.1:{pmg.port} relays it and the spec "
        "did not list it",)
    text = site.read_text()
    assert text.endswith("  bücher.example: {}\n  new.example: {}\n")
    assert list(load(site)["domains"]) == ["example.com", "Example.ORG.", "bücher.example",
                                           "new.example"]
    assert any("every subdomain of sub.example" in w for w in result.warnings)


def test_next_promoted(pmg: FakePmg, site: Path, dk: DkimKeys) -> None:
    site.write_text("""\
version: 1
dkim:
  selector: pmg2026
  key_file: keys/pmg2026.pub
  next:
    selector: pmg2027
    key_file: keys/pmg2027.pub
  retired_selectors:
    - pmg2024
domains:
  example.com: {}
  example.org: {}
""")
    pmg.state.selector, pmg.state.public_key = "pmg2027", dk.b64("pmg2027")
    result = do_pull(site, pmg)
    assert result.written
    dkim = load(site)["dkim"]
    assert dkim == {"selector": "pmg2027", "key_file": "keys/pmg2027.pub",
                    "retired_selectors": ["pmg2024", "pmg2026"]}
    assert site.read_text().startswith("""\
version: 1
dkim:
  selector: pmg2027
  key_file: keys/pmg2027.pub
  retired_selectors:
    - pmg2024
    - pmg2026
domains:
""")
    assert any(c.startswith("dkim.selector: pmg2026 -> pmg2027") for c in result.changes)
    assert any(c.startswith("dkim.retired_selectors: added pmg2026") for c in result.changes)
    assert any(c.startswith("dkim.next: removed") for c in result.changes)
    assert result.warnings == ()
    # the old key file stays where it was
    assert (site.parent.parent / "keys" / "pmg2026.pub").read_text() == dk.pem("pmg2026")


def test_unknown_selector_becomes_current_with_a_warning(pmg: FakePmg, site: Path,
                                                         dk: DkimKeys) -> None:
    site.write_text(SIMPLE)
    pmg.state.selector, pmg.state.public_key = "surprise", dk.b64("other")
    result = do_pull(site, pmg)
    assert result.written and result.differs
    dkim = load(site)["dkim"]
    assert dkim["selector"] == "surprise"
    assert "key_file" not in dkim
    assert dkimlib.from_record_text(dkim["record"]).p == dk.b64("other")
    assert dkim["retired_selectors"] == ["pmg2026"]
    assert any("surprise, which the spec did not know: mail signed with it fails DKIM until "
               "`pmgdns apply`" in w for w in result.warnings)
    assert any("keys/pmg2026.pub is no longer named by the spec" in w for w in result.warnings)
    assert (site.parent.parent / "keys" / "pmg2026.pub").exists()


def test_same_selector_other_key_replaces_key_file_by_record(pmg: FakePmg, site: Path,
                                                             dk: DkimKeys) -> None:
    site.write_text(SIMPLE)
    pmg.state.public_key = dk.b64("other")            # PMG re-generated pmg2026's key
    result = do_pull(site, pmg)
    dkim = load(site)["dkim"]
    assert set(dkim) == {"selector", "record"} and dkim["selector"] == "pmg2026"
    assert dkimlib.from_record_text(dkim["record"]).p == dk.b64("other")
    assert result.changes == (
        "dkim.record: PMG's record for pmg2026 replaces key_file keys/pmg2026.pub: PMG signs "
        "with a different key than the spec held",)
    assert any("fails DKIM until `pmgdns apply`" in w for w in result.warnings)
    # the file is not overwritten: its key is kept for reference
    assert (site.parent.parent / "keys" / "pmg2026.pub").read_text() == dk.pem("pmg2026")


def test_check_writes_nothing_and_reports_the_difference(pmg: FakePmg, site: Path,
                                                         dk: DkimKeys) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    pmg.state.relay_domains["new.example"] = ""
    result = do_pull(site, pmg, check=True)
    assert result.differs and not result.written and result.exit_code == 1
    assert result.changes and "--check wrote nothing" in result.summary
    assert snapshot(site) == before
    assert sorted(p.name for p in site.parent.iterdir()) == ["site.yaml"]


def test_already_in_sync(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    before = snapshot(site)
    result = do_pull(site, pmg)
    assert result.changes == () and result.warnings == ()
    assert not result.differs and not result.written and result.exit_code == 0
    assert "already in sync" in result.summary
    assert snapshot(site) == before
    assert do_pull(site, pmg, check=True).exit_code == 0


def test_absent_and_vanished_domains_are_reported_not_changed(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE.replace("  example.org: {}\n", "  example.org: {absent: true}\n"
                                                          "  gone.example: {}\n"))
    before = snapshot(site)
    result = do_pull(site, pmg, check=True)
    assert result.changes == () and result.differs and result.exit_code == 1
    assert any("domains.example.org is `absent: true`, but PMG" in w for w in result.warnings)
    assert any(f"domains.gone.example: PMG at 127.0.0.1:{pmg.port} does not relay gone.example. "
               "pmg pull deletes nothing" in w for w in result.warnings)
    result = do_pull(site, pmg)                     # without --check: still nothing to write
    assert not result.written and "nothing was written" in result.summary
    assert snapshot(site) == before


def test_dkim_domain_that_pmg_does_not_relay(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    pmg.state.dkim_domains = {"example.com": "", "newsletter.example": ""}
    result = do_pull(site, pmg)
    assert not result.written and "newsletter.example" not in site.read_text()
    assert any("signs mail from newsletter.example (a DKIM domain) but does not relay it" in w
               and "pmg2026._domainkey.newsletter.example" in w for w in result.warnings)
    assert any("does not DKIM-sign mail from example.org" in w for w in result.warnings)


def test_audit_user_cannot_read_dkim(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    pmg.state.relay_domains["new.example"] = ""
    result = do_pull(site, pmg, user="auditor@pmg", password=AUDIT_PASSWORD)
    assert result.written and not result.complete          # the domain part still works
    assert "new.example" in load(site)["domains"]
    assert any("auditor@pmg may not read PMG's DKIM selector and key (HTTP 403" in w
               and "not to audit users" in w for w in result.warnings)
    assert do_pull(site, pmg, user="auditor@pmg", password=AUDIT_PASSWORD,
                   check=True).exit_code == 1      # a drift gate that cannot see DKIM fails


def test_selector_shown_without_its_key(pmg: FakePmg, site: Path) -> None:
    site.write_text(SIMPLE)
    pmg.state.key_unreadable = True
    before = snapshot(site)
    result = do_pull(site, pmg)
    assert not result.complete and not result.differs and not result.written
    assert any("shows the selector pmg2026 but not its key" in w for w in result.warnings)
    assert snapshot(site) == before


def test_apply_state_flow_styles_and_crlf(dk: DkimKeys, tmp_path: Path) -> None:
    text = ("version: 1\r\n"
            "dkim: {selector: pmg2026, public_key: " + dk.b64("pmg2026") + "}  # flow\r\n"
            "domains: {example.com: {}}   # flow too\r\n")
    state = GatewayState(("example.com", "example.net"), (), "pmg2027", 2048,
                         dk.record("pmg2027"))
    result = apply_state(text, state, tmp_path)
    lines = result.new_text.split("\r\n")
    assert lines[0] == "version: 1" and lines[-1] == ""
    assert lines[2] == "domains: {example.com: {}, example.net: {}}   # flow too"
    assert lines[1].startswith("dkim: {selector: pmg2027, record: \"pmg2027._domainkey IN TXT")
    assert lines[1].endswith(", retired_selectors: [pmg2026]}  # flow")
    data = yaml.safe_load(result.new_text)
    assert dkimlib.from_record_text(data["dkim"]["record"]).p == dk.b64("pmg2027")


def test_apply_state_block_record_flow_next_and_trailing_comments(dk: DkimKeys,
                                                                  tmp_path: Path) -> None:
    current = normalise_record(dk.record("pmg2026"))
    block = "".join("    " + line + "\n" for line in current.splitlines())
    text = ("dkim:\n"
            "  selector: pmg2026\n"
            "  record: |\n" + block +
            "  next: {selector: pmg2027, public_key: " + dk.b64("pmg2027") + "}   # staged\n"
            "domains:\n"
            "  example.com:\n"
            "    dmarc:\n"
            "      p: reject\n"
            "    # mx_priority: 20\n"
            "\n"
            "# the end\n")
    state = GatewayState(("a.example", "example.com"), (), "pmg2027", 2048, dk.record("pmg2027"))
    result = apply_state(text, state, tmp_path)
    assert result.new_text == (
        "dkim:\n"
        "  selector: pmg2027\n"
        "  public_key: " + dk.b64("pmg2027") + "\n"
        "  retired_selectors: [pmg2026]\n"
        "domains:\n"
        "  example.com:\n"
        "    dmarc:\n"
        "      p: reject\n"
        "    # mx_priority: 20\n"
        "  a.example: {}\n"
        "\n"
        "# the end\n")
    assert result.differs and result.complete and len(result.changes) == 4


# ---------------------------------------------------------------------------------------------
# the password


def test_password_appears_nowhere(pmg: FakePmg, site: Path, dk: DkimKeys, tmp_path: Path,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    site.write_text(SIMPLE)
    texts: list[str] = []

    def attempt(**kw: Any) -> None:
        try:
            result = do_pull(site, pmg, **kw)
            texts.extend([*result.changes, *result.warnings, result.summary, repr(result)])
        except PmgdnsError as exc:
            texts.extend([str(exc), repr(exc), "".join(traceback.format_exception(exc))])
            assert exc.__context__ is None and exc.__cause__ is None

    pmg.state.relay_domains["new.example"] = ""
    pmg.state.selector, pmg.state.public_key = "surprise", dk.b64("other")
    attempt()                                                   # a pull that writes
    attempt(fingerprint="00" * 32)                              # TLS mismatch
    attempt(password=PASSWORD + "x")                            # wrong password
    pmg.state.fail["GET /config/dkim/domains"] = f"cannot parse '{PASSWORD}'"   # PMG echoes it
    attempt()
    pmg.state.fail.clear()
    pmg.state.users["root@pam"].tfa = True
    attempt()                                                   # TFA challenge

    sent = [r.body for r in pmg.requests if r.path.endswith("/access/ticket")]
    assert any(requests.utils.quote(PASSWORD, safe="").encode() in body.replace(b"+", b"%20")
               or b"MARKER" in body for body in sent), "the password was never sent: vacuous"
    marker = "MARKER-7f3a9c"
    assert texts and not [t for t in texts if marker in t]
    assert "[redacted]" in "".join(texts)                      # the echoed 500 was masked
    assert caplog.records, "nothing was logged: the DEBUG capture is not working"
    assert marker not in caplog.text
    assert not [r for r in caplog.records if marker in r.getMessage()]
    tickets = [t.split("::")[-1] for t in pmg.tickets]           # their signatures
    assert tickets and not [t for t in tickets if t in caplog.text or t in "".join(texts)]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------
# the fake itself follows PMG's rules (the tests above rely on it)


def test_fake_pmg_checks_ticket_and_csrf(pmg: FakePmg) -> None:
    base = pmg.url + "/api2/json"
    ca = str(pmg.certs.ca_file)
    r = requests.get(base + "/config/domains", verify=ca, timeout=5)
    assert (r.status_code, r.reason, r.content) == (401, "No ticket", b"")
    login = requests.post(base + "/access/ticket", data={"username": "root@pam",
                                                         "password": PASSWORD},
                          verify=ca, timeout=5).json()["data"]
    assert login["ticket"].startswith("PMG:root@pam:") and login["username"] == "root@pam"
    cookie = {"PMGAuthCookie": login["ticket"]}
    r = requests.get(base + "/config/domains", cookies=cookie, verify=ca, timeout=5)
    assert r.json() == {"data": [{"domain": "example.com", "comment": ""},
                                 {"domain": "example.org", "comment": "the shop"}]}
    r = requests.post(base + "/config/domains", data={"domain": "x.example"}, cookies=cookie,
                      verify=ca, timeout=5)
    assert (r.status_code, r.reason) == (401, "Permission denied - invalid csrf token")
    r = requests.post(base + "/config/domains", data={"domain": "x.example"}, cookies=cookie,
                      headers={"CSRFPreventionToken": login["CSRFPreventionToken"]},
                      verify=ca, timeout=5)
    assert r.status_code == 200 and "x.example" in pmg.state.relay_domains
    bad = requests.post(base + "/access/ticket", data={"username": "root@pam",
                                                       "password": "nope"}, verify=ca, timeout=5)
    assert (bad.status_code, bad.json()) == (
        401, {"data": None, "message": "authentication failure\n"})


def test_fetch_state_reads_pmg(pmg: FakePmg, dk: DkimKeys) -> None:
    pmg.state.dkim_domains = {"example.com": ""}
    state = fetch_state(pmg.url, "root@pam", PASSWORD, fingerprint=pmg.certs.fingerprint,
                        timeout=5)
    assert state.relay_domains == ("example.com", "example.org")
    assert state.dkim_domains == ("example.com",) and state.signing_domains == ("example.com",)
    assert (state.selector, state.keysize, state.dkim_unreadable) == ("pmg2026", 2048, None)
    assert state.record is not None and "\t" in state.record        # PMG's own layout
    assert dkimlib.from_record_text(state.record).p == dk.b64("pmg2026")
