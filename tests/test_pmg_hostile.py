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
