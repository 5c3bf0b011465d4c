"""Shared fixtures: keys, a project directory with a spec, and a way to run the CLI in-process."""

from __future__ import annotations

import base64
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pmgdns.cli import main

from .servers import BindServer, zone_text


def spki_b64(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@dataclass
class Keys:
    rsa2048: Any
    rsa1024: Any
    rsa4096: Any
    rsa512: Any
    ed: Any

    def b64(self, name: str = "rsa2048") -> str:
        return spki_b64(getattr(self, name))

    def pem(self, name: str = "rsa2048") -> str:
        return getattr(self, name).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def pmg_record(self, selector: str = "pmg2026", name: str = "rsa2048") -> str:
        """The record text as `pmgconfig dkim_record` prints it (250-character chunks)."""
        p = "p=" + self.b64(name)
        chunks = " ".join(f'"{p[i:i + 250]}"' for i in range(0, len(p), 250))
        return f'{selector}._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " {chunks} )'


@pytest.fixture(scope="session")
def keys() -> Keys:
    def gen(bits: int) -> Any:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()

    small = rsa.RSAPublicNumbers(65537, (1 << 511) | 12345677).public_key()
    return Keys(gen(2048), gen(1024), gen(4096), small,
                ed25519.Ed25519PrivateKey.generate().public_key())


def base_spec(keys: Keys) -> dict[str, Any]:
    return {
        "version": 1,
        "gateway": {"hostname": "mx1.example.com", "ipv4": "198.51.100.25",
                    "ipv6": "2001:db8::25"},
        "dkim": {"selector": "pmg2026", "public_key": keys.b64()},
        "domains": {"example.com": {}, "example.org": {}},
    }


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Project:
    """A temporary checkout: config/site.yaml, zones/, build/ (the cwd during the test)."""

    root: Path
    keys: Keys
    runner: Callable[..., Result]

    @property
    def spec_path(self) -> Path:
        return self.root / "config" / "site.yaml"

    def write_spec(self, spec: dict[str, Any] | str) -> Path:
        self.spec_path.parent.mkdir(parents=True, exist_ok=True)
        text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
        self.spec_path.write_text(textwrap.dedent(text) if isinstance(spec, str) else text)
        return self.spec_path

    def spec(self, **changes: Any) -> dict[str, Any]:
        data = base_spec(self.keys)
        data.update(changes)
        return data

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.runner(*args, env=env)

    def local_zone(self, zone: str) -> Path:
        return self.root / "build" / "zones" / f"{zone.rstrip('.')}.zone"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
            ) -> Callable[..., Result]:
    """Run `pmgdns ARGS` in-process through the real entry point (exit codes included)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        capsys.readouterr()
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def project(tmp_path: Path, keys: Keys, run_cli: Callable[..., Result],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PMGDNS_CONFIG", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    p = Project(tmp_path, keys, run_cli)
    p.write_spec(p.spec())
    yield p


def allow_endpoint(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Let the spec point a provider at `url` (a local test server), as an operator does."""
    current = os.environ.get("PMGDNS_ALLOW_ENDPOINTS", "")
    monkeypatch.setenv("PMGDNS_ALLOW_ENDPOINTS", f"{current},{url}" if current else url)


def verify_json(project: Project, port: int, *args: str) -> tuple[int, dict[str, Any]]:
    """`pmgdns verify --format json` against a name server on 127.0.0.1:`port`."""
    import json

    result = project.run("verify", "--nameserver", f"127.0.0.1:{port}", "--format", "json",
                         *args)
    assert "Traceback" not in result.err
    assert result.out, result.err
    report: dict[str, Any] = json.loads(result.out)
    return result.code, report


def assert_clean_error(result: Result, *fragments: str) -> None:
    """Exit 1, one paragraph naming what is wrong, no traceback."""
    assert result.code == 1, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.err
    for f in fragments:
        assert f in errors[0], (f, errors[0])


os.environ.setdefault("NO_COLOR", "1")


# Figures the tests measure (e.g. API requests per zone) and report at the end of the run.
REPORT: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT:
        terminalreporter.section("pmgdns measurements")
        for key, value in sorted(REPORT.items()):
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[BindServer]:
    """A real BIND on loopback holding example.com and example.org, the spec's only target (a
    test file with other zones defines its own `bind`)."""
    server = BindServer({"example.com": zone_text("example.com", "www IN A 203.0.113.80\n"),
                         "example.org": zone_text("example.org", "")}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    project.write_spec(project.spec(defaults={"targets": ["bind"]},
                                    providers={"bind": server.provider_config()}))
    try:
        yield server
    finally:
        server.stop()
