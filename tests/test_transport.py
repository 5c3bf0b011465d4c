"""The verify checkers (pmgdns.verify: smtp, policy, session) against real servers on 127.0.0.1:
STARTTLS and the node's certificate, the MTA-STS policy over HTTPS, TLSA digests, --resolve. One
break per test; nothing is mocked.

An audit hook fails any test that connects to, or looks up, anything but a loopback address."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pmgdns.core.errors import TransportError
from pmgdns.spec.certs import spki_sha256
from pmgdns.verify.policy import fetch_policy, mta_sts_checks, policy_checks
from pmgdns.verify.session import FAIL, OK, WARN, Finding, connect_address, parse_resolve
from pmgdns.verify.smtp import smtp_checks

from .tls_servers import (
    T0,
    Answer,
    CertFactory,
    ClosedPort,
    Issued,
    PolicyServer,
    RawServer,
    SMTPServer,
    TrickleServer,
    policy_text,
)

NODE = "mx1.example.com"
NODES = ["mx1.example.com", "mx2.example.com"]
DOMAIN = "example.com"
STS = "mta-sts.example.com"
RENDERED = policy_text("enforce", NODES)


# --- loopback only -----------------------------------------------------------------------------

_guard: dict[str, Any] = {"on": False, "violations": []}


class _OffLoopback(RuntimeError):
    pass


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _guard["on"]:
        return
    bad = None
    if event == "socket.connect" and isinstance(args[1], tuple):
        bad = None if _is_loopback(args[1][0]) else args[1]
    elif event == "socket.getaddrinfo":
        bad = None if args[0] is None or _is_loopback(args[0]) else args[0]
    elif event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        bad = args
    if bad is not None:
        _guard["violations"].append((event, bad))
        raise _OffLoopback(f"{event} {bad!r}: the tests use 127.0.0.1 only")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    _guard["on"], _guard["violations"] = True, []
    yield
    _guard["on"] = False
    assert _guard["violations"] == []


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFactory:
    return CertFactory(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def running() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.stop()


@pytest.fixture
def smtp_server(running: list[Any]) -> Callable[[Issued | None], SMTPServer]:
    def start(cert: Issued | None) -> SMTPServer:
        server = SMTPServer(cert)
        running.append(server)
        return server
    return start


@pytest.fixture
def policy_server(running: list[Any], certs: CertFactory) -> Callable[..., PolicyServer]:
    def start(answer: Answer, cert: Issued | None = None) -> PolicyServer:
        server = PolicyServer({STS: cert or certs.good(STS)}, certs.good("default.invalid"),
                              answer)
        running.append(server)
        return server
    return start


def problems(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.status, f.check, f.message) for f in findings if f.status != OK]


def check(server_port: int, certs: CertFactory, *, tlsa: list[str] | None = None,
          ca: bool = True, timeout: float = 10) -> list[Finding]:
    """smtp_checks for mx1.example.com the way the CLI runs it: through a --resolve mapping."""
    resolve = parse_resolve([f"{NODE}:25:127.0.0.1:{server_port}"])
    address, port = connect_address(NODE, 25, "192.0.2.25", resolve)
    return smtp_checks(NODE, address, port, ca_file=str(certs.ca_file) if ca else None,
                       tlsa=tlsa or [], now=T0, timeout=timeout)


def when(delta: timedelta) -> str:
    return f"{T0 + delta:%Y-%m-%d %H:%M} UTC"


# --- SMTP --------------------------------------------------------------------------------------

def test_all_good(certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    cert = certs.good()
    server = smtp_server(cert)
    findings = check(server.port, certs, tlsa=[f"3 1 1 {spki_sha256(cert.cert_pem)}"])
    assert [(f.status, f.check) for f in findings] == [
        (OK, "STARTTLS"), (OK, "certificate name"), (OK, "certificate chain"), (OK, "TLSA match"),
        (OK, "certificate expiry")]
    assert findings[0].message.startswith(f"offered by {NODE} at 127.0.0.1:{server.port} (TLSv1.")
    assert findings[1].message == f"covers {NODE}"
    assert findings[2].message == f"chains to a root in --ca-file {certs.ca_file}"
    assert findings[3].message == (
        f"the certificate matches TLSA 3 1 1 {spki_sha256(cert.cert_pem)}")
    assert findings[4].message == f"valid until {when(timedelta(days=90))} (90 days)"


def test_no_tlsa_published_skips_the_tlsa_check(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    findings = check(smtp_server(certs.good()).port, certs)
    assert [f.check for f in findings] == [
        "STARTTLS", "certificate name", "certificate chain", "certificate expiry"]
    assert problems(findings) == []


def test_no_starttls(certs: CertFactory,
                     smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    server = smtp_server(None)
    findings = check(server.port, certs)
    assert problems(findings) == [
        (FAIL, "STARTTLS", f"no STARTTLS offered by {NODE} at 127.0.0.1:{server.port}")]
    assert len(findings) == 1
    assert "Mail Proxy → TLS" in findings[0].fix


def test_certificate_for_another_name(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    findings = check(smtp_server(certs.other_name()).port, certs)
    assert problems(findings) == [
        (FAIL, "certificate name", f"the certificate is for mx9.other.example, not {NODE}")]
    assert findings[1].observed == "mx9.other.example"


def test_untrusted_chain_without_ca_file(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    findings = check(smtp_server(certs.good()).port, certs, ca=False)
    assert problems(findings) == [
        (FAIL, "certificate chain", "does not verify against the system's trust store: "
         "unable to get local issuer certificate")]


def test_tlsa_for_another_key_fails_and_matching_tlsa_passes(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    cert, other = certs.good(), certs.good("mx2.example.com")
    have, published = spki_sha256(cert.cert_pem), spki_sha256(other.cert_pem)
    port = smtp_server(cert).port
    findings = check(port, certs, tlsa=[published])
    assert problems(findings) == [
        (FAIL, "TLSA match", f"the certificate's key is 3 1 1 {have}, which no published TLSA "
         f"record matches (3 1 1 {published}); DANE senders will not deliver")]
    # a key rollover: the old and the new key both published
    findings = check(port, certs, tlsa=[f"3 1 1 {published}", f"3 1 1 {have.upper()}"])
    assert problems(findings) == []
    assert [f.message for f in findings if f.check == "TLSA match"] == [
        f"the certificate matches TLSA 3 1 1 {have}"]


def test_expired_certificate(certs: CertFactory,
                             smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    findings = check(smtp_server(certs.expired()).port, certs)
    # OpenSSL's verifier rejects the chain for the same reason; both are reported.
    assert problems(findings) == [
        (FAIL, "certificate chain", f"does not verify against --ca-file {certs.ca_file}: "
         "certificate has expired"),
        (FAIL, "certificate expiry", f"expired on {when(timedelta(days=-10))} (10 days ago)")]


def test_certificate_expiring_in_5_days_warns(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    findings = check(smtp_server(certs.expiring(days=5)).port, certs)
    assert problems(findings) == [
        (WARN, "certificate expiry", f"expires on {when(timedelta(days=5))}, in 5 days "
         "(under 14)")]


def test_several_problems_are_reported_separately(
        certs: CertFactory, smtp_server: Callable[[Issued | None], SMTPServer]) -> None:
    cert = certs.leaf("all-wrong", ["mail.other.example"], not_after=T0 + timedelta(days=3))
    findings = check(smtp_server(cert).port, certs, ca=False, tlsa=["0" * 64])
    assert [(f.status, f.check) for f in findings] == [
        (OK, "STARTTLS"), (FAIL, "certificate name"), (FAIL, "certificate chain"),
        (FAIL, "TLSA match"), (WARN, "certificate expiry")]


def test_connection_refused(certs: CertFactory, running: list[Any]) -> None:
    closed = ClosedPort()
    running.append(closed)
    findings = check(closed.port, certs)
    assert problems(findings) == [
        (FAIL, "SMTP connection", f"{NODE} at 127.0.0.1:{closed.port}: connection refused")]
    assert "listens" in findings[0].fix


def test_non_smtp_banner_is_escaped(certs: CertFactory, running: list[Any]) -> None:
    raw = RawServer(b"HTTP/1.1 400 Bad Request\x1b[2J\x07\r\n")
    running.append(raw)
    findings = check(raw.port, certs)
    assert problems(findings) == [
        (FAIL, "SMTP connection", f"{NODE} at 127.0.0.1:{raw.port}: does not greet like an SMTP "
         r"server (it sent 'HTTP/1.1 400 Bad Request\x1b[2J\x07')")]
    assert "\x1b" not in findings[0].message


def test_refusing_greeting(certs: CertFactory, running: list[Any]) -> None:
    raw = RawServer(b"554 5.7.1 go away\r\n")
    running.append(raw)
    assert problems(check(raw.port, certs)) == [
        (FAIL, "SMTP connection", f"{NODE} at 127.0.0.1:{raw.port}: greets with "
         "'554 5.7.1 go away', not 220 (the server refuses this session)")]


def test_silent_server_times_out(certs: CertFactory, running: list[Any]) -> None:
    raw = RawServer(None)
    running.append(raw)
    assert problems(check(raw.port, certs, timeout=0.5)) == [
        (FAIL, "SMTP connection", f"{NODE} at 127.0.0.1:{raw.port}: no greeting within 0.5 s "
         "(timed out)")]


def test_a_tarpit_ends_at_the_session_deadline(certs: CertFactory, running: list[Any]) -> None:
    # every line well within the per-read timeout, the whole greeting never
    tarpit = TrickleServer(b"220-mx1.example.com\r\n", b"220-still greeting\r\n", 0.1)
    running.append(tarpit)
    assert problems(check(tarpit.port, certs, timeout=0.5)) == [
        (FAIL, "SMTP connection", f"{NODE} at 127.0.0.1:{tarpit.port}: did not finish greeting, "
         "EHLO and STARTTLS within 1.5 s (it answers too slowly)")]


def test_an_endless_ehlo_reply_is_cut_off(certs: CertFactory, running: list[Any]) -> None:
    flood = TrickleServer(b"220 mx1.example.com ESMTP\r\n", b"250-" + b"X" * 1000 + b"\r\n", 0)
    running.append(flood)
    [(status, name, message)] = problems(check(flood.port, certs, timeout=5))
    assert (status, name) == (FAIL, "STARTTLS")
    assert "over 64 KiB of replies" in message


def test_bad_arguments_are_clear_errors(certs: CertFactory, tmp_path: Path) -> None:
    with pytest.raises(TransportError, match=r"TLSA value 'abc': the data is not the hex"):
        smtp_checks(NODE, "127.0.0.1", 9, ca_file=None, tlsa=["abc"], now=T0)
    missing = tmp_path / "missing.pem"
    with pytest.raises(TransportError, match=rf"--ca-file {missing}: cannot load it"):
        smtp_checks(NODE, "127.0.0.1", 9, ca_file=str(missing), tlsa=[], now=T0)


# --- MTA-STS policy ----------------------------------------------------------------------------

def fetch(server: PolicyServer, certs: CertFactory, *, ca: bool = True,
          domain: str = DOMAIN) -> str:
    resolve = parse_resolve([f"mta-sts.{domain}:443:127.0.0.1:{server.port}"])
    return fetch_policy(domain, resolve=resolve, ca_file=str(certs.ca_file) if ca else None,
                        timeout=5)


def url(server: PolicyServer, domain: str = DOMAIN) -> str:
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt (via 127.0.0.1:{server.port})"


def test_policy_fetched_and_equal(certs: CertFactory,
                                  policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(RENDERED.encode(), content_type="text/plain; charset=utf-8"))
    served = fetch(server, certs)
    assert served == RENDERED
    assert server.requests == [("/.well-known/mta-sts.txt", STS)]  # Host header: the real name
    findings = policy_checks(DOMAIN, served, RENDERED, NODES)
    assert [(f.status, f.check, f.message) for f in findings] == [
        (OK, "MTA-STS policy", "served policy equals the rendered one (mode enforce, max_age "
         "604800, 2 mx)"),
        (OK, "MTA-STS mx", "covers mx1.example.com, mx2.example.com"),
        (OK, "MTA-STS line ends", "CRLF")]


def test_policy_missing_a_node(certs: CertFactory,
                               policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(policy_text("enforce", ["mx1.example.com"]).encode()))
    findings = policy_checks(DOMAIN, fetch(server, certs), RENDERED, NODES)
    assert problems(findings) == [
        (FAIL, "MTA-STS policy", "the served policy differs from the rendered one: "
         "missing mx: mx2.example.com"),
        (FAIL, "MTA-STS mx", "the policy's mx lines (mx1.example.com) do not cover "
         "mx2.example.com; enforcing senders will not deliver to it")]


def test_policy_wildcard_covers_nodes_but_differs(certs: CertFactory) -> None:
    findings = policy_checks(DOMAIN, policy_text("enforce", ["*.example.com"]), RENDERED, NODES)
    assert problems(findings) == [
        (FAIL, "MTA-STS policy", "the served policy differs from the rendered one: "
         "missing mx: mx1.example.com, mx2.example.com; extra mx: *.example.com")]
    assert [f.status for f in findings if f.check == "MTA-STS mx"] == [OK]


def test_policy_with_wrong_mode(certs: CertFactory,
                                policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(policy_text("testing", NODES, max_age=86400).encode()))
    findings = policy_checks(DOMAIN, fetch(server, certs), RENDERED, NODES)
    assert problems(findings) == [
        (FAIL, "MTA-STS policy", "the served policy differs from the rendered one: "
         "mode is 'testing', expected 'enforce'; max_age is '86400', expected '604800'")]


def test_policy_with_lf_line_ends_warns(certs: CertFactory) -> None:
    findings = policy_checks(DOMAIN, policy_text("enforce", NODES, eol="\n"), RENDERED, NODES)
    assert problems(findings) == [
        (WARN, "MTA-STS line ends", "the served policy has LF line ends; RFC 8461 §3.2 says "
         "CRLF-separated (most senders accept LF)")]


def test_policy_that_does_not_parse(certs: CertFactory) -> None:
    served = "version: STSv1\r\nmode: enforce\x1b[31m\r\nmx: mx1.example.com\r\n"
    findings = policy_checks(DOMAIN, served, RENDERED, NODES)
    assert problems(findings) == [
        (FAIL, "MTA-STS policy", r"the served policy does not parse: Line 2: Invalid mode: "
         r"enforce\x1b[31m")]


def test_policy_404(certs: CertFactory, policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(b"not here", status=404))
    with pytest.raises(TransportError) as e:
        fetch(server, certs)
    assert str(e.value) == (f"{url(server)}: HTTP 404 Not Found; senders accept only 200 and "
                            "follow no redirects (RFC 8461 §3.3)")


def test_policy_redirect_not_followed(certs: CertFactory,
                                      policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(b"", status=301,
                                  headers={"Location": "https://192.0.2.1/mta-sts.txt"}))
    with pytest.raises(TransportError) as e:
        fetch(server, certs)
    assert str(e.value) == (
        f"{url(server)}: HTTP 301 Moved Permanently (redirect to 'https://192.0.2.1/mta-sts.txt', "
        "not followed); senders accept only 200 and follow no redirects (RFC 8461 §3.3)")


def test_policy_wrong_content_type(certs: CertFactory,
                                   policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(RENDERED.encode(), content_type="text/html"))
    with pytest.raises(TransportError) as e:
        fetch(server, certs)
    assert str(e.value) == (f"{url(server)}: Content-Type is 'text/html'; senders accept only "
                            "text/plain (RFC 8461 §3.2)")


def test_policy_too_large(certs: CertFactory,
                          policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(RENDERED.encode() + b"x" * 70000))
    with pytest.raises(TransportError) as e:
        fetch(server, certs)
    assert str(e.value) == (f"{url(server)}: the policy is {len(RENDERED) + 70000} bytes, over "
                            "the 64 KiB senders read")


def test_a_policy_server_that_trickles_ends_at_the_deadline(
        certs: CertFactory, policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(RENDERED.encode(), trickle=0.05))
    resolve = parse_resolve([f"{STS}:443:127.0.0.1:{server.port}"])
    with pytest.raises(TransportError) as e:
        fetch_policy(DOMAIN, resolve=resolve, ca_file=str(certs.ca_file), timeout=0.5)
    assert str(e.value) == (f"{url(server)}: did not answer within 1.5 s in all "
                            "(it sends too slowly)")


def test_policy_untrusted_certificate(certs: CertFactory,
                                      policy_server: Callable[..., PolicyServer]) -> None:
    server = policy_server(Answer(RENDERED.encode()))
    with pytest.raises(TransportError) as e:
        fetch(server, certs, ca=False)
    assert str(e.value) == (f"{url(server)}: certificate invalid: unable to get local issuer "
                            "certificate (checked against the system's trust store)")


def test_policy_certificate_for_another_name(
        certs: CertFactory, policy_server: Callable[..., PolicyServer]) -> None:
    # The server has no certificate for mta-sts.example.org and answers with its default one.
    server = policy_server(Answer(RENDERED.encode()))
    with pytest.raises(TransportError) as e:
        fetch(server, certs, domain="example.org")
    assert str(e.value) == (
        f"{url(server, 'example.org')}: certificate invalid: Hostname mismatch, certificate is "
        "not valid for 'mta-sts.example.org'. (checked against --ca-file "
        f"{certs.ca_file})")


def test_policy_unreachable_becomes_a_fail(certs: CertFactory, running: list[Any]) -> None:
    closed = ClosedPort()
    running.append(closed)
    findings = mta_sts_checks(DOMAIN, RENDERED, NODES, ca_file=str(certs.ca_file),
                              resolve=parse_resolve([f"{STS}:443:127.0.0.1:{closed.port}"]))
    assert problems(findings) == [
        (FAIL, "MTA-STS policy", "could not fetch https://mta-sts.example.com/.well-known/"
         f"mta-sts.txt: https://mta-sts.example.com/.well-known/mta-sts.txt (via 127.0.0.1:"
         f"{closed.port}): unreachable: connection refused")]


def test_policy_default_address(certs: CertFactory,
                                policy_server: Callable[..., PolicyServer]) -> None:
    # With no mapping for port 443 the policy is fetched from default_address:443; on 127.0.0.1
    # nothing listens there, which shows where the connection went.
    with pytest.raises(TransportError, match=r"\(via 127\.0\.0\.1:443\): unreachable"):
        fetch_policy(DOMAIN, resolve={}, ca_file=str(certs.ca_file), timeout=2,
                     default_address="127.0.0.1")


# --- TLSA digests ------------------------------------------------------------------------------

def openssl_spki_sha256(cert_file: Path) -> str:
    """openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum"""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert_file), "-noout", "-pubkey"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         check=True, capture_output=True).stdout
    out = subprocess.run(["sha256sum"], input=der, check=True, capture_output=True).stdout
    return out.split()[0].decode()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_spki_sha256_of_certificate_equals_public_key_and_openssl(certs: CertFactory,
                                                                 kind: str) -> None:
    cert = certs.good() if kind == "ec" else certs.rsa_good()
    digest = spki_sha256(cert.cert_pem)
    assert len(digest) == 64 and digest == digest.lower()
    assert digest == openssl_spki_sha256(cert.cert_file)
    assert spki_sha256(cert.public_key_pem) == digest
    assert spki_sha256(cert.cert.public_bytes(serialization.Encoding.DER)) == digest
    spki_der = cert.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert spki_sha256(spki_der) == digest
    # a chain file: the first certificate is the leaf
    ca_pem = certs.ca_file.read_bytes()
    assert spki_sha256(cert.cert_pem + ca_pem) == digest
    if kind == "rsa":  # PKCS#1 "RSA PUBLIC KEY" is re-encoded as SubjectPublicKeyInfo
        pkcs1 = cert.cert.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.PKCS1)
        assert spki_sha256(pkcs1) == digest


def test_spki_sha256_refuses_a_private_key(certs: CertFactory) -> None:
    cert = certs.good()
    pem = cert.key_file.read_bytes()
    der = cert.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    encrypted = cert.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))
    for data in (pem, der, encrypted, cert.cert_pem + pem):
        with pytest.raises(TransportError) as e:
            spki_sha256(data)
        assert str(e.value).startswith("this is a private key: give the certificate or the "
                                       "public key instead")
        body = b"".join(pem.splitlines()[1:-1]).decode()
        assert body[:20] not in str(e.value)


def test_spki_sha256_refuses_other_data() -> None:
    for data in (b"hello", b"", b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE"
                 b"-----\n", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"):
        with pytest.raises(TransportError, match="not a certificate or public key"):
            spki_sha256(data)


# --- --resolve ---------------------------------------------------------------------------------

def test_parse_resolve_good_entries() -> None:
    assert parse_resolve([
        "MX1.Example.COM.:25:127.0.0.1:2525",
        "mta-sts.example.com:443:[2001:DB8::1]:8443",
        "mx1.example.com:25:127.0.0.1:2525",  # repeated identically: fine
    ]) == {
        ("mx1.example.com", 25): ("127.0.0.1", 2525),
        ("mta-sts.example.com", 443): ("2001:db8::1", 8443),
    }
    resolve = parse_resolve(["mx1.example.com:25:127.0.0.1:2525"])
    assert connect_address("MX1.example.com.", 25, "192.0.2.25", resolve) == ("127.0.0.1", 2525)
    assert connect_address("mx2.example.com", 25, "192.0.2.26", resolve) == ("192.0.2.26", 25)
    assert connect_address("mx1.example.com", 587, "192.0.2.25", resolve) == ("192.0.2.25", 587)


@pytest.mark.parametrize(("entry", "message"), [
    ("mx1.example.com:25:127.0.0.1", "expected NAME:PORT:ADDRESS:PORT"),
    ("mx1.example.com:25:2001:db8::1:25", "expected NAME:PORT:ADDRESS:PORT"),
    ("mx1.example.com:99999:127.0.0.1:25", "PORT 99999 is not a port"),
    ("mx1.example.com:25:127.0.0.1:0", "the second PORT 0 is not a port"),
    ("mx1.example.com:25:mail.example.net:25", "'mail.example.net' is not an IP address"),
    ("mx1.example.com:25:[127.0.0.1]:25", "'127.0.0.1' is not an IP address"),
    ("mx 1.example.com:25:127.0.0.1:25", "'mx 1.example.com' is not a host name"),
    ("mx1.example.com:25:127.0.0.1:25\x1b[2J", "expected NAME:PORT:ADDRESS:PORT"),
])
def test_parse_resolve_bad_entries(entry: str, message: str) -> None:
    with pytest.raises(TransportError) as e:
        parse_resolve(["ok.example.com:25:127.0.0.1:25", entry])
    text = str(e.value)
    assert text.startswith("--resolve '") and message in text
    assert "\x1b" not in text


def test_parse_resolve_conflicting_entries() -> None:
    with pytest.raises(TransportError, match="mx1.example.com:25 is mapped twice"):
        parse_resolve(["mx1.example.com:25:127.0.0.1:2525", "mx1.example.com:25:127.0.0.2:25"])
