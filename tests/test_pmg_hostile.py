"""`pmgdns pmg pull` against a hostile or slow PMG (issue 27): every request has a total deadline,
and the password never shows, not even inside a value PMG returns."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .pmg_api import Certs, FakePmg, PmgState, User, make_certs

PASSWORD = "Pw-hostile-9c1e;&=%+ü"
SPEC = """\
version: 1
gateway: {hostname: mx1.example.com, ipv4: 198.51.100.25}
dkim:
  selector: pmg2026
  key_file: keys/pmg2026.pub
domains:
  example.com: {}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("pmg-certs"))


@pytest.fixture(scope="module")
def key_b64() -> str:
    der = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def pmg(certs: Certs, key_b64: str) -> Iterator[FakePmg]:
    fake = FakePmg(certs, PmgState(users={"root@pam": User(PASSWORD, "root")},
                                   relay_domains={"example.com": ""},
                                   selector="pmg2026", public_key=key_b64)).start()
    yield fake
    fake.stop()


@pytest.fixture
def checkout(tmp_path: Path, key_b64: str) -> Path:
    (tmp_path / "keys").mkdir()
    der = base64.b64decode(key_b64)
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "keys" / "pmg2026.pub").write_bytes(pem)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "site.yaml").write_text(SPEC)
    return tmp_path


def pull_cli(checkout: Path, pmg: FakePmg, *args: str, password: str = PASSWORD,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pmgdns", "pmg", "pull", "--url", pmg.url, "--user", "root@pam",
         "--fingerprint", pmg.certs.fingerprint, *args],
        cwd=checkout, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "PMG_PASSWORD": password})


# -- item 2: a peer answering a byte at a time ----------------------------------------------------


@pytest.mark.parametrize("request_line,where", [
    ("POST /access/ticket", "headers"),
    ("GET /config/domains", "headers"),
    ("GET /config/dkim/selector", "body"),
])
def test_a_byte_at_a_time_peer_ends_the_pull_at_its_deadline(
        pmg: FakePmg, checkout: Path, request_line: str, where: str) -> None:
    pmg.state.trickle[request_line] = (where, 1.0)  # a byte a second: no read ever times out
    before = (checkout / "config" / "site.yaml").read_bytes()
    start = time.monotonic()
    result = pull_cli(checkout, pmg, "--timeout", "5")
    took = time.monotonic() - start
    assert took < 60, took
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    method, path = request_line.split()
    assert f"127.0.0.1:{pmg.port}" in error and f"{method} /api2/json{path}" in error, error
    assert "seconds" in error and "--timeout 5" in error, error
    assert (checkout / "config" / "site.yaml").read_bytes() == before
    assert PASSWORD not in result.stdout + result.stderr


# -- item 3: the password in a value PMG returns, and passwords pmgdns cannot mask -------------


def _other_key(checkout: Path) -> None:
    """The spec holds another key than PMG signs with, so pull would write PMG's record."""
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (checkout / "keys" / "pmg2026.pub").write_bytes(pem)


@pytest.mark.parametrize("where", ["relay comment", "dkim note", "dkim domain comment"])
def test_a_value_from_pmg_holding_the_password_is_refused_unshown(
        pmg: FakePmg, checkout: Path, key_b64: str, where: str) -> None:
    password = "Notes-pw-4f9a1c2e7b"
    pmg.state.users["root@pam"] = User(password, "root")
    _other_key(checkout)
    if where == "relay comment":
        pmg.state.relay_domains["example.com"] = f"owner's login: {password}"
    elif where == "dkim domain comment":
        pmg.state.dkim_domains["example.com"] = password
    else:
        from .pmg_api import pmg_record

        pmg.state.record_text = pmg_record("pmg2026", key_b64).replace(
            "k=rsa; ", f"k=rsa; n={password}; ")
    spec = checkout / "config" / "site.yaml"
    before = spec.read_bytes()
    result = pull_cli(checkout, pmg, password=password)
    everything = result.stdout + result.stderr + spec.read_text()
    for form in (password, password[:8], password[-8:], password.upper()):
        assert form not in everything, (form, result.stderr)
    assert result.returncode == 1, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert "holds the password" in error and "data" in error, error
    assert spec.read_bytes() == before


@pytest.mark.parametrize("password,why", [
    ("Qz7", "fewer than 8"),
    ("Qz7x9Kp", "fewer than 8"),
    (" Qz7-long-enough-pw", "white space"),
    ("Qz7-long-enough-pw\n", "white space"),
    ("Qz7-long\x1benough-pw", "control character"),
])
def test_a_password_pmgdns_cannot_mask_is_refused_unshown(
        pmg: FakePmg, checkout: Path, password: str, why: str) -> None:
    from pmgdns.pmg.client import PmgAuthError, pull

    pmg.state.users["root@pam"] = User(password, "root")
    with pytest.raises(PmgAuthError) as err:
        pull(str(checkout / "config" / "site.yaml"), pmg.url, "root@pam", password,
             fingerprint=pmg.certs.fingerprint, ca_file=None, check=False, timeout=5)
    message = str(err.value)
    assert why in message and "PMG_PASSWORD" in message
    assert password.strip() not in message and password.strip()[:3] not in message
    assert pmg.handshakes == 0  # refused before anything was sent


# -- item 6: Ctrl-C during pmg pull ---------------------------------------------------------------


def test_ctrl_c_during_pull_says_the_spec_was_not_changed(pmg: FakePmg, checkout: Path) -> None:
    import signal

    pmg.state.trickle["GET /config/domains"] = ("headers", 0.5)
    spec = checkout / "config" / "site.yaml"
    before = spec.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmgdns", "pmg", "pull", "--url", pmg.url, "--user", "root@pam",
         "--fingerprint", pmg.certs.fingerprint, "--timeout", "30"],
        cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, env={**os.environ, "NO_COLOR": "1", "PMG_PASSWORD": PASSWORD})
    deadline = time.monotonic() + 60
    while not any(r.path.endswith("/config/domains") for r in pmg.requests) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "interrupted" in errors[0] and "not changed" in errors[0], errors[0]
    assert spec.read_bytes() == before
    assert sorted(p.name for p in (checkout / "config").iterdir()) == ["site.yaml"]
    assert PASSWORD not in out + err


def test_a_peer_trickling_the_tls_handshake_ends_at_the_deadline(checkout: Path,
                                                                  certs: Certs) -> None:
    """A TLS record header announcing 16 KiB, then a byte a second: no read times out, the
    handshake as a whole does (Python bounds a handshake by one timeout)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

            def trickle(c: socket.socket = conn) -> None:
                try:
                    c.sendall(b"\x16\x03\x03\x40\x00")
                    while True:
                        c.sendall(b"\x00")
                        time.sleep(1)
                except OSError:
                    pass

            threading.Thread(target=trickle, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    port = server.getsockname()[1]
    try:
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pmgdns", "pmg", "pull", "--url", f"https://127.0.0.1:{port}",
             "--user", "root@pam", "--fingerprint", certs.fingerprint, "--timeout", "5"],
            cwd=checkout, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1", "PMG_PASSWORD": PASSWORD})
        assert time.monotonic() - start < 60
        assert result.returncode == 1, result.stderr
        error = result.stderr.strip().splitlines()[-1]
        assert f"127.0.0.1:{port}" in error and "5 seconds" in error, error
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_slow_answers_end_at_the_whole_pulls_deadline(pmg: FakePmg, checkout: Path) -> None:
    """Each answer within its own deadline (6 x 0.5 s), together past the pull's (8 x 0.5 s)."""
    from pmgdns.pmg.client import PmgConnectionError, pull

    for request in ("POST /access/ticket", "GET /config/domains", "GET /config/dkim/domains",
                    "GET /config/dkim/selector"):
        pmg.state.slow[request] = 2.5
    start = time.monotonic()
    with pytest.raises(PmgConnectionError) as err:
        pull(str(checkout / "config" / "site.yaml"), pmg.url, "root@pam", PASSWORD,
             fingerprint=pmg.certs.fingerprint, ca_file=None, check=False, timeout=0.5)
    assert time.monotonic() - start < 4 + 1.5
    assert "GET /api2/json/config/domains" in str(err.value)
    assert "the whole pull 8" in str(err.value)
