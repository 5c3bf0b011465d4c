"""TLS test fixtures on 127.0.0.1: a certificate factory (a test CA and leaves), an SMTP server with
or without STARTTLS (aiosmtpd), raw TCP servers for broken SMTP greetings, and an HTTPS server that
serves an MTA-STS policy with a certificate chosen by SNI. Every server binds 127.0.0.1:0 itself
(no port guessing) and stops cleanly."""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# One reference moment for every certificate, so tests can pass it as `now` and get exact days.
T0 = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, in memory and as PEM files."""

    cert: x509.Certificate
    key: Any
    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def public_key_pem(self) -> bytes:
        return self.cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CertFactory:
    """A test CA in `directory` and leaves it signs (EC P-256 keys unless told otherwise)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("pmgdns test CA"))
            .issuer_name(_name("pmgdns test CA"))
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(T0 - timedelta(days=30))
            .not_valid_after(T0 + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = self.dir / "ca.pem"
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self, tag: str, names: list[str], *, not_before: datetime | None = None,
             not_after: datetime | None = None, key: Any = None) -> Issued:
        """A server certificate for `names` (SAN dNSNames), valid from 1 day before T0 to 90 days
        after unless told otherwise; files `<tag>.pem` and `<tag>.key`."""
        key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or T0 - timedelta(days=1))
            .not_valid_after(not_after or T0 + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.ca_key.public_key()), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_file, key_file = self.dir / f"{tag}.pem", self.dir / f"{tag}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return Issued(cert, key, cert_file, key_file)

    # The leaves the tests need.
    def good(self, name: str = "mx1.example.com") -> Issued:
        return self.leaf(f"good-{name}", [name])

    def rsa_good(self, name: str = "mx1.example.com") -> Issued:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.leaf(f"rsa-{name}", [name], key=key)

    def expired(self, name: str = "mx1.example.com") -> Issued:
        return self.leaf(f"expired-{name}", [name], not_before=T0 - timedelta(days=100),
                         not_after=T0 - timedelta(days=10))

    def expiring(self, name: str = "mx1.example.com", days: int = 5) -> Issued:
        return self.leaf(f"expiring-{name}", [name], not_after=T0 + timedelta(days=days))

    def other_name(self, name: str = "mx9.other.example") -> Issued:
        return self.leaf(f"other-{name}", [name])


# --- SMTP --------------------------------------------------------------------------------------

class _BoundController(Controller):
    """aiosmtpd's threaded Controller on a socket we bound to 127.0.0.1:0 ourselves."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class SMTPServer:
    """An SMTP server on 127.0.0.1 (aiosmtpd), offering STARTTLS with `cert` when one is given."""

    def __init__(self, cert: Issued | None, banner_name: str = "mx1.example.com") -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        kwargs: dict[str, Any] = {"server_hostname": banner_name}  # no socket.getfqdn() lookup
        if cert is not None:
            kwargs["tls_context"] = cert.server_context()
        self._controller = _BoundController(Sink(), sock, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class RawServer:
    """A TCP server on 127.0.0.1 that sends `greeting` (None: nothing) to each client, then waits
    for the client to hang up: a non-SMTP service, or a silent one."""

    def __init__(self, greeting: bytes | None) -> None:
        payload = greeting

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                if payload is not None:
                    self.request.sendall(payload)
                self.request.settimeout(10)
                try:
                    while self.request.recv(1024):
                        pass
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class TrickleServer:
    """A TCP server on 127.0.0.1 that sends `first`, then `each` every `pause` seconds for as long
    as the client listens: a tarpit (slow `each`) or a flood (`pause` 0)."""

    def __init__(self, first: bytes, each: bytes, pause: float) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    self.request.sendall(first)
                    while True:
                        time.sleep(pause)
                        self.request.sendall(each)
                except OSError:
                    pass

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class ClosedPort:
    """A port on 127.0.0.1 that is bound but not listening: connecting to it is refused, and
    nobody else can take it while this holds it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def stop(self) -> None:
        self._sock.close()


# --- HTTPS (MTA-STS policy) --------------------------------------------------------------------

@dataclass
class Answer:
    """What the policy server answers for /.well-known/mta-sts.txt (anything else: 404)."""

    body: bytes = b""
    status: int = 200
    content_type: str | None = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float = 0  # > 0: no length, then `body` one byte at a time this often, forever


class _TLSHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, answer: Answer) -> None:
        self.context = context
        self.answer = answer
        self.requests: list[tuple[str, str | None]] = []  # (path, Host header)
        super().__init__(("127.0.0.1", 0), _PolicyHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn() (a reverse lookup); the tests need no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The handshake runs in the request's thread, and a client that rejects the certificate
        # only ends its own request.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class _PolicyHandler(http.server.BaseHTTPRequestHandler):
    server: _TLSHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append((self.path, self.headers.get("Host")))
        a = self.server.answer
        if self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(a.status)
        if a.content_type is not None:
            self.send_header("Content-Type", a.content_type)
        for k, v in a.headers.items():
            self.send_header(k, v)
        if a.trickle:
            self.end_headers()
            try:
                while True:
                    for i in range(len(a.body)):
                        self.wfile.write(a.body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(a.trickle)
            except OSError:
                return
        self.send_header("Content-Length", str(len(a.body)))
        self.end_headers()
        self.wfile.write(a.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


class PolicyServer:
    """HTTPS on 127.0.0.1 serving an MTA-STS policy. The certificate is chosen by SNI from
    `certs` (server name -> certificate); a client that sends another name, or none, gets
    `default`."""

    def __init__(self, certs: dict[str, Issued], default: Issued,
                 answer: Answer | None = None) -> None:
        contexts = {name: c.server_context() for name, c in certs.items()}
        context = default.server_context()

        def pick(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None,
                 _ctx: ssl.SSLContext) -> None:
            if name in contexts:
                sock.context = contexts[name]

        context.sni_callback = pick
        self.answer = answer or Answer()
        self._server = _TLSHTTPServer(context, self.answer)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def policy_text(mode: str, mx: list[str], max_age: int = 604800, eol: str = "\r\n") -> str:
    """An MTA-STS policy as `pmgdns render` writes it (spec §6.2)."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}"]
    return "".join(line + eol for line in lines)


