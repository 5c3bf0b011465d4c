"""A fake Proxmox Mail Gateway API on 127.0.0.1, over HTTPS, for the `pmg pull` tests.

Modelled on the real server (read, not copied):
- pmg-api `src/PMG/HTTPServer.pm` (auth_handler): every call except the login needs the ticket
  in the cookie `PMGAuthCookie` ("No ticket" otherwise), a TFA-challenge ticket is no ticket,
  Authorization-header API tokens are refused ("API tokens not implemented"), and every
  non-GET call needs the header `CSRFPreventionToken`.
- pmg-api `src/PMG/API2/AccessControl.pm` (create_ticket): POST /access/ticket with username and
  password; a user without @pam/@pmg/@realm gets the realm `quarantine`; root@pmg is root@pam;
  any failure is 401 "authentication failure" (no detail, against user enumeration); success
  answers {username, ticket "PMG:…", CSRFPreventionToken, role}, and for a TFA user a challenge
  ticket with NeedTFA: 1.
- pmg-api `src/PMG/API2/Domains.pm`, `DKIMSignDomains.pm`: GET /config/domains and
  /config/dkim/domains list sorted {domain, comment} (roles admin, audit); POST adds one (admin).
- pmg-api `src/PMG/API2/DKIMSign.pm` and `src/PMG/DKIMSign.pm`: GET /config/dkim/selector is for
  the admin role only (an audit user gets 403 "Permission check failed"); it answers {} without a
  configured selector, {selector} alone when the private key cannot be read, else
  {selector, keysize, record} with the record in PMG's layout (tabs, 250-character chunks,
  `; ----- DKIM key SEL`).
- pmg-api `src/PMG/RESTEnvironment.pm` (check_api2_permissions): root@pam may do anything.
- pve-http-server `AnyEvent.pm` and `Formatter/Standard.pm`: JSON answers are {"data": …}; on an
  error the first line of the message is the HTTP reason phrase and the body is
  {"data": null, "message": …} (plus "errors" for parameter errors); a failed authentication
  check is a bare 401 with the message as reason and no body; errors close the connection.
  (The real server delays every 401 by 3 seconds; this one does not.)

Every HTTP request is recorded (method, path, headers, body) before anything else is done with
it; TLS handshakes are counted apart, so a test can tell "connected" from "sent a request".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

API = "/api2/json"


# ---------------------------------------------------------------------------------------------
# certificates


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and the fingerprint."""

    ca_file: Path           # the CA certificate, PEM
    cert_file: Path         # the server certificate, PEM
    key_file: Path          # its private key, PEM
    fingerprint: str        # SHA-256 of the server certificate's DER, as PMG shows it (AA:BB:…)
    other_ca_file: Path     # a CA that did not issue the server certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_certs(directory: Path) -> Certs:
    """Write a CA and a server certificate (SAN 127.0.0.1, localhost) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("Fake PMG test CA")
    _, other_ca = _ca("Some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("pmg.test")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (directory / "other-ca.pem").write_bytes(other_ca.public_bytes(pem))
    (directory / "pmg-api.pem").write_bytes(cert.public_bytes(pem))
    (directory / "pmg-api.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Certs(directory / "ca.pem", directory / "pmg-api.pem", directory / "pmg-api.key",
                 ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper(),
                 directory / "other-ca.pem")


# ---------------------------------------------------------------------------------------------
# PMG's DKIM record layout


def pmg_record(selector: str, public_key_b64: str) -> str:
    """The record as PMG::DKIMSign::get_selector_info builds it."""
    record = f'{selector}._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n\t  "p='
    cur, rest = 0, len(public_key_b64)
    while rest > 0:
        if rest < 250:
            record += public_key_b64[cur:]
            rest = 0
        else:
            record += public_key_b64[cur:cur + 250] + '"\n\t  "'
            cur += 250
            rest -= 250
    return record + f'" )  ; ----- DKIM key {selector}'


# ---------------------------------------------------------------------------------------------
# the server


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class User:
    password: str
    role: str                 # root, admin, audit, helpdesk, qmanager
    tfa: bool = False


@dataclass
class PmgState:
    """What the fake gateway holds; tests change it freely before a call."""

    users: dict[str, User] = field(default_factory=dict)
    relay_domains: dict[str, str] = field(default_factory=dict)     # domain -> comment
    dkim_domains: dict[str, str] = field(default_factory=dict)
    selector: str | None = None
    keysize: int = 2048
    public_key: str | None = None       # base64 SPKI of the selector's key
    key_unreadable: bool = False        # /etc/pmg/dkim/SEL.private cannot be read
    fail: dict[str, str] = field(default_factory=dict)   # "GET /config/domains" -> 500 message
    # "GET /config/domains" -> (chunk, pause): a 200 whose body is `chunk` every `pause` seconds
    # for as long as the client reads (a flood, or a tarpit)
    endless: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    # "POST /access/ticket" -> ("headers" | "body", pause): an answer sent one byte every
    # `pause` seconds, forever, in its headers or in its body (a slowloris peer)
    trickle: dict[str, tuple[str, float]] = field(default_factory=dict)
    record_text: str | None = None      # the DKIM record as shown, in place of PMG's layout
    # "GET /config/domains" -> seconds: the answer's body is sent evenly over this long
    slow: dict[str, float] = field(default_factory=dict)


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, fake: FakePmg) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.fake.errors.append(f"{client_address}")  # e.g. a handshake the client aborted


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10

    # TLS per connection, in the handler's thread (a stalled client blocks no one else)
    def setup(self) -> None:
        fake = self.server.fake
        try:
            self.request = fake.tls.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError):
            with fake.lock:
                fake.tls_failures += 1
            raise
        with fake.lock:
            fake.handshakes += 1
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.fake.lock:
                self.server.fake.closed += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no output; requests are recorded instead

    # dispatch -------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        with fake.lock:
            fake.requests.append(Recorded(method, path, {k: v for k, v in self.headers.items()},
                                          body))
        if not path.startswith(API + "/"):
            return self._bare(501, "no such uri")
        rel = path[len(API):].rstrip("/") or "/"
        if f"{method} {rel}" in fake.state.fail:
            return self._json(500, None, fake.state.fail[f"{method} {rel}"])
        self.spread = fake.state.slow.get(f"{method} {rel}", 0.0)
        if f"{method} {rel}" in fake.state.trickle:
            return self._trickle(*fake.state.trickle[f"{method} {rel}"])
        if f"{method} {rel}" in fake.state.endless:
            return self._endless(*fake.state.endless[f"{method} {rel}"])
        if rel == "/access/ticket" and method == "POST":
            return self._login(body)
        if rel == "/access/ticket" and method == "GET":
            return self._json(200, None)
        auth = self._authenticate(method)
        if auth is None:
            return
        user, role = auth
        return self._api(method, rel, user, role, body)

    # answers --------------------------------------------------------------------------------
    def _send(self, code: int, reason: str, body: bytes, ctype: str | None) -> None:
        self.send_response(code, reason.split("\n")[0])
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if code >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        spread = getattr(self, "spread", 0.0)
        if not spread or not body:
            self.wfile.write(body)
            return
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                time.sleep(spread / len(body))
        except OSError:
            pass

    def _endless(self, chunk: bytes, pause: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(b'{"data":[')
            while True:
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass

    def _trickle(self, where: str, pause: float) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 1000000\r\n\r\n" if where == "body" else b"X-Pad: "
        self.close_connection = True
        try:
            self.wfile.write(head if where == "body" else head[:1])
            rest = b"" if where == "body" else head[1:]
            while True:
                byte, rest = (rest[:1], rest[1:]) if rest else (b"a" if where == "headers"
                                                                else b" ", b"")
                self.wfile.write(byte)
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass

    def _json(self, code: int, data: Any, message: str | None = None,
              errors: dict[str, str] | None = None) -> None:
        out: dict[str, Any] = {"data": data}
        if errors:
            out["errors"] = errors
        if code >= 400:
            out["message"] = message or self.responses.get(code, ("",))[0]
        self._send(code, message or self.responses.get(code, ("OK",))[0],
                   json.dumps(out).encode(), "application/json;charset=UTF-8")

    def _bare(self, code: int, reason: str) -> None:
        self._send(code, reason, b"", None)

    # login ----------------------------------------------------------------------------------
    def _login(self, body: bytes) -> None:
        fake = self.server.fake
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
            except ValueError:
                return self._json(400, None, "Parameter verification failed.")
        else:
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                   keep_blank_values=True).items()}
        missing = {p: "property is missing and it is not optional"
                   for p in ("username", "password") if p not in params}
        if missing:
            return self._json(400, None, "Parameter verification failed.", missing)
        username = params["username"]
        if not username.endswith(("@pam", "@pmg")) and "@" not in username:
            username += "@" + params.get("realm", "quarantine")
        if username == "root@pmg":
            username = "root@pam"
        user = fake.state.users.get(username)
        if user is None or not secrets.compare_digest(user.password.encode(),
                                                      params["password"].encode()):
            return self._json(401, None, "authentication failure\n")
        stamp = f"{int(time.time()):08X}"
        sig = base64.b64encode(secrets.token_bytes(32)).decode()
        csrf = f"{stamp}:{base64.b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"
        if user.tfa:
            ticket = f"PMG:!tfa!{secrets.token_hex(8)}:{stamp}::{sig}"
            with fake.lock:
                fake.tickets[ticket] = ("", "tfa")
            return self._json(200, {"username": username, "ticket": ticket,
                                    "CSRFPreventionToken": csrf, "role": user.role,
                                    "NeedTFA": 1})
        ticket = f"PMG:{username}:{stamp}::{sig}"
        with fake.lock:
            fake.tickets[ticket] = (username, user.role)
            fake.csrf[username] = csrf
        return self._json(200, {"username": username, "ticket": ticket,
                                "CSRFPreventionToken": csrf, "role": user.role})

    def _authenticate(self, method: str) -> tuple[str, str] | None:
        fake = self.server.fake
        ticket = None
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "PMGAuthCookie" and value:
                ticket = unquote(value)
        if ticket is None and "PMGAPIToken" in (self.headers.get("Authorization") or ""):
            self._bare(401, "API tokens not implemented")
            return None
        entry = fake.tickets.get(ticket or "")
        if entry is None or entry[1] == "tfa":
            self._bare(401, "No ticket")
            return None
        user, role = entry
        if method != "GET" and self.headers.get("CSRFPreventionToken") != fake.csrf.get(user):
            self._bare(401, "Permission denied - invalid csrf token")
            return None
        return user, role

    # the API --------------------------------------------------------------------------------
    def _allowed(self, user: str, role: str, roles: tuple[str, ...]) -> bool:
        if user == "root@pam" or role in roles:
            return True
        if role == "helpdesk" and ("audit" in roles or "qmanager" in roles):
            return True
        self._json(403, None, "Permission check failed\n")
        return False

    def _api(self, method: str, rel: str, user: str, role: str, body: bytes) -> None:
        st = self.server.fake.state
        lists = {"/config/domains": st.relay_domains, "/config/dkim/domains": st.dkim_domains}
        if rel in lists and method == "GET":
            if self._allowed(user, role, ("admin", "audit")):
                table = lists[rel]
                self._json(200, [{"domain": d, "comment": table[d]} for d in sorted(table)])
            return
        if rel in lists and method == "POST":
            if self._allowed(user, role, ("admin",)):
                params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                domain = params.get("domain", "")
                if domain in lists[rel]:
                    return self._json(500, None, f"Domain '{domain}' already exists\n")
                lists[rel][domain] = params.get("comment", "")
                self._json(200, None)
            return
        if rel == "/config/dkim/selector" and method == "GET":
            if not self._allowed(user, role, ("admin",)):
                return
            if st.selector is None:
                return self._json(200, {})
            if st.key_unreadable or st.public_key is None:
                return self._json(200, {"selector": st.selector})
            return self._json(200, {"selector": st.selector, "keysize": st.keysize,
                                    "record": st.record_text or pmg_record(st.selector,
                                                                           st.public_key)})
        if rel == "/config/dkim/selectors" and method == "GET":
            if self._allowed(user, role, ("admin",)):
                self._json(200, [{"selector": st.selector}] if st.selector else [])
            return
        self._json(501, None, f"Method '{method} {rel}' not implemented")


class FakePmg:
    """The fake gateway: start(), url, state, requests, stop()."""

    def __init__(self, certs: Certs, state: PmgState | None = None) -> None:
        self.certs = certs
        self.state = state or PmgState()
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(str(certs.cert_file), str(certs.key_file))
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.tickets: dict[str, tuple[str, str]] = {}
        self.csrf: dict[str, str] = {}
        self.handshakes = 0
        self.tls_failures = 0
        self.closed = 0
        self.errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakePmg:
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.05}, name="fake-pmg", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_closed(self, connections: int, timeout: float = 5) -> bool:
        """Wait until `connections` connections were handled to their end (or failed TLS)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.closed + self.tls_failures >= connections:
                    return True
            time.sleep(0.02)
        return False


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
