"""A spec from a pull request cannot send a provider credential elsewhere (issue 27, item 1).

A recording HTTP server on 127.0.0.1 stands for the attacker's host: with the spec naming it as
a provider endpoint, nothing reaches it and pmgdns ends with exit 1 naming the key, the host and
PMGDNS_ALLOW_ENDPOINTS; once the operator allows it there, the request (credential included)
arrives, which shows the first result is the check and not a failing connection."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pmgdns.zones.endpoints import endpoint_options, parse_url, signs_only
from pmgdns.zones.provider_classes import load_provider_class

from .conftest import Project, assert_clean_error

TOKEN_ENV = "PMGDNS_TEST_ENDPOINT_TOKEN"


class Recorder:
    """An HTTP server on loopback that records each request's headers and answers 401."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                recorder.requests.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"success": false, "errors": [{"code": 9109, "message": "no"}]}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def carrying(self, secret: str) -> list[dict[str, str]]:
        return [r for r in self.requests if any(secret in v for v in r.values())]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    try:
        yield server
    finally:
        server.stop()


def _provider(cls: str, port: int) -> tuple[dict[str, Any], str]:
    """The provider block naming the recorder, and the base URL an operator would allow."""
    if "PowerDns" in cls:
        return ({"class": cls, "host": "127.0.0.1", "port": port, "api_key": f"env/{TOKEN_ENV}",
                 "enable_dynamic": False}, f"http://127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/client/v4"
    return ({"class": cls, "token": f"env/{TOKEN_ENV}", "api_url": url, "pagerules": False,
             "retry_count": 1, "retry_period": 0}, url)


BEARER_CLASSES = ["octodns_cloudflare.CloudflareProvider",
                  "pmgdns.providers.cloudflare.CloudflareProvider",
                  "octodns_powerdns.PowerDnsProvider"]


@pytest.mark.parametrize("cls", BEARER_CLASSES)
def test_a_foreign_endpoint_never_receives_the_credential(
        cls: str, project: Project, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"tok-{secrets.token_hex(12)}"
    monkeypatch.setenv(TOKEN_ENV, token)
    monkeypatch.delenv("PMGDNS_ALLOW_ENDPOINTS", raising=False)
    conf, base = _provider(cls, recorder.port)
    key = "host" if "PowerDns" in cls else "api_url"
    spec = project.spec(providers={"theirs": conf})
    spec["domains"]["example.org"] = {"targets": ["theirs"]}
    project.write_spec(spec)
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        result = project.run(*command)
        assert_clean_error(result, f"providers.theirs.{key}", "127.0.0.1",
                           "PMGDNS_ALLOW_ENDPOINTS")
        assert token not in result.out + result.err
        assert recorder.requests == [], command
    assert not project.local_zone("example.com").exists()  # nothing applied, not even locally

    # the operator allows it: now the request goes there, credential and all
    allowance = f"{base}/api/v1" if "PowerDns" in cls else base  # an origin allows its paths
    monkeypatch.setenv("PMGDNS_ALLOW_ENDPOINTS", f"https://dns.example.net/v1, {allowance}")
    assert project.run("validate").code == 0
    project.run("plan")
    assert recorder.carrying(token), recorder.requests


@pytest.mark.parametrize("url", [
    "https://api.cloudflare.com.evil.example/client/v4",
    "http://api.cloudflare.com/client/v4",  # the token in clear text
    "https://api.cloudflare.com:8443/client/v4",
    "https://evil.example\\@api.cloudflare.com/client/v4",  # parsers disagree on the host
    "https://user:pw@api.cloudflare.com/client/v4",
    "https://api.cloudflare.com/client/v4/../../x",
    "https://api.cloudflare.com%2f@evil.example/client/v4",
    "env/HOME",  # an environment variable the spec picks is no better
])
def test_only_the_providers_own_endpoint_passes_unallowed(url: str, project: Project,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMGDNS_ALLOW_ENDPOINTS", raising=False)
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": f"env/{TOKEN_ENV}", "api_url": url}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    assert_clean_error(project.run("validate"), "providers.cf.api_url")


def test_the_providers_own_default_needs_no_allowance(project: Project,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMGDNS_ALLOW_ENDPOINTS", raising=False)
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": f"env/{TOKEN_ENV}",
                                          "api_url": "https://api.cloudflare.com/client/v4/"},
                                   "cf2": {"class": "octodns_cloudflare.CloudflareProvider",
                                           "token": f"env/{TOKEN_ENV}"}})
    spec["domains"]["example.org"] = {"targets": ["cf", "cf2"]}
    project.write_spec(spec)
    assert project.run("validate").code == 0


def test_a_malformed_allowance_is_a_usage_error(project: Project, recorder: Recorder,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    conf, _ = _provider("octodns_cloudflare.CloudflareProvider", recorder.port)
    spec = project.spec(providers={"cf": conf})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    monkeypatch.setenv(TOKEN_ENV, "endpoint-test-token")
    monkeypatch.setenv("PMGDNS_ALLOW_ENDPOINTS", "127.0.0.1")
    assert_clean_error(project.run("plan"), "PMGDNS_ALLOW_ENDPOINTS", "base URL")
    assert recorder.requests == []


def test_endpoint_options_are_found_from_the_classes() -> None:
    """Not a hand list: the option names come from the constructors (and their bases')."""
    assert endpoint_options(load_provider_class("octodns_cloudflare.CloudflareProvider")) == [
        "api_url"]
    paced = load_provider_class("pmgdns.providers.cloudflare.CloudflareProvider")
    assert endpoint_options(paced) == ["api_url"]  # through **kwargs to its base
    assert endpoint_options(load_provider_class("octodns_powerdns.PowerDnsProvider")) == ["host"]

    class Custom:
        def __init__(self, id: str, endpoint_url: str = "https://x.example/", baseurl: str = "",
                     server: str = "", token: str = "", retries: int = 1) -> None:
            pass

    assert endpoint_options(Custom) == ["baseurl", "endpoint_url", "server"]
    # TSIG and SigV4 sign with the secret and never send it: their host options stay free
    for signing in ("octodns_bind.Rfc2136Provider", "pmgdns.providers.rfc2136.Rfc2136Provider",
                    "octodns_route53.Route53Provider", "pmgdns.providers.route53.Route53Provider"):
        assert signs_only(load_provider_class(signing)), signing
    assert not signs_only(paced)


def test_strict_urls() -> None:
    assert parse_url("https://API.cloudflare.com./client/v4") == parse_url(
        "https://api.cloudflare.com:443/client/v4")
    for bad in ("https://a.example\\@b.example/", "https://u@b.example/", "ftp://b.example/",
                "https://b.example/%2e%2e/", "https://b.example/?q", "https://b.example:99999/"):
        assert parse_url(bad) is None, bad
