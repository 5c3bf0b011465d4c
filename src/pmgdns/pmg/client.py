"""`pmgdns pmg pull`: read the gateway's relay domains and DKIM selector/key from PMG's API and
bring the spec in line (spec-v1 §6.4).

PMG's API has no tokens: `POST /api2/json/access/ticket` with username and password answers a
ticket (sent back as the cookie `PMGAuthCookie`) and a CSRF token (the header
`CSRFPreventionToken`, needed on writes only; pmg pull only reads). Every answer is wrapped in
`{"data": …}`; an error carries its message in the HTTP reason phrase and in `"message"`.

TLS, and why this module does not go through proxmoxer. The certificate is checked against the
system's trust store (OpenSSL's default paths, not certifi's bundle), against `ca_file` alone,
or against a pinned SHA-256 fingerprint, and with none of them matching nothing at all is sent,
not even the login. proxmoxer cannot do that: its `ProxmoxHTTPAuth` posts the login with the
module-level `requests.post(verify=…)`, outside any Session, so no adapter can be mounted on it,
and `verify` takes only a boolean or a CA path (no fingerprint). It also answers a TFA challenge by
posting a second login with the OTP `None`, which counts as a failed second factor against the
user's TFA lockout, and it turns urllib3's TLS warnings off process-wide on import. So the four
calls pull needs are made with one requests Session whose HTTPAdapter holds the whole TLS policy:
urllib3's own `ssl_context` and `assert_fingerprint` pool options. urllib3 checks the fingerprint
right after the handshake, in `connect()`, before the first byte of the request is written.

Secrets. The password is used for the login request only and appears in no message, exception,
log record or file; errors from requests/urllib3 are turned into one-paragraph messages made
here (never their text), raised outside the `except` block so no exception chain holds the
failed request (whose body has the password). The ticket is not logged either.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import ssl
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3

from ..core.errors import (
    FileProblem,
    Interrupted,
    PmgAuthError,
    PmgConnectionError,
    PmgdnsError,
    PmgError,
    PmgTlsError,
    SpecEditError,
    SpecError,
)
from ..core.files import read_bytes
from ..core.redact import MASK, Redactor, forms
from ..core.text import visible
from ..families.loader import MAX_SPEC
from .specedit import EditResult, GatewayState, apply_state
from .transport import Deadline, TlsPolicyAdapter
from .yamltext import parse

__all__ = [
    "GatewayState", "PmgAuthError", "PmgConnectionError", "PmgError", "PmgTlsError",
    "PullResult", "SpecEditError", "fetch_state", "parse_fingerprint", "pull",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8006
MIN_PASSWORD = 8  # shorter passwords cannot be masked without masking ordinary text
API = "/api2/json"
FINGERPRINT_HELP = (
    "Read the fingerprint in PMG's GUI (Configuration → Certificates, the API certificate "
    "pmg-api.pem: View Certificate → Fingerprint) or on the gateway with `openssl x509 -in "
    "/etc/pmg/pmg-api.pem -noout -fingerprint -sha256`")


# ---------------------------------------------------------------------------------------------
# inputs


def parse_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits.

    Accepts PMG's shown form `AA:BB:…` (32 colon-separated pairs) and plain hex, in any case,
    optionally after `sha256:` / `SHA256 Fingerprint=` as openssl prints it."""
    s = text.strip()
    s = re.sub(r"^(?:sha-?256)(?:\s*fingerprint)?\s*[=:]\s*(?=[0-9A-Fa-f]{2}(?::|[0-9A-Fa-f]))",
               "", s, flags=re.IGNORECASE)
    shown = ("--fingerprint must be the SHA-256 fingerprint of PMG's certificate, as 32 pairs of "
             "hex digits separated by colons (AA:BB:…:FF) or as 64 hex digits")
    if ":" in s:
        pairs = s.split(":")
        bad = [p for p in pairs if not re.fullmatch(r"[0-9A-Fa-f]{2}", p)]
        if bad:
            raise PmgError(f"{shown}; `{bad[0][:8]}` is not a pair of hex digits. "
                           f"{FINGERPRINT_HELP}")
        if len(pairs) != 32:
            what = " (that is a SHA-1 fingerprint)" if len(pairs) == 20 else ""
            raise PmgError(f"{shown}; this one has {len(pairs)} pairs{what}. {FINGERPRINT_HELP}")
        return "".join(pairs).lower()
    if not re.fullmatch(r"[0-9A-Fa-f]+", s):
        raise PmgError(f"{shown}; this one holds characters that are not hex digits. "
                       f"{FINGERPRINT_HELP}")
    if len(s) != 64:
        raise PmgError(f"{shown}; this one has {len(s)} hex digits. {FINGERPRINT_HELP}")
    return s.lower()


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i:i + 2] for i in range(0, len(hexdigest), 2)).upper()


@dataclass(frozen=True)
class _Target:
    host: str          # as it goes into a URL ([v6] in brackets)
    port: int

    @property
    def base(self) -> str:
        return f"https://{self.host}:{self.port}{API}"

    @property
    def shown(self) -> str:
        return f"{self.host}:{self.port}"


def _parse_url(url: str) -> _Target:
    text = url.strip()
    if "://" not in text:
        raise PmgError("--url must be PMG's address with https://, e.g. https://pmg.example.com:8006")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise PmgError("--url is not a valid URL; give https://HOST:8006") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PmgError("--url must not hold a user name or password: give the user with --user "
                       "and the password in PMG_PASSWORD")
    if parts.scheme.lower() != "https":
        raise PmgError("--url must start with https://: PMG's API (port 8006) speaks only HTTPS")
    if not parts.hostname:
        raise PmgError("--url has no host name; give https://HOST:8006")
    if parts.path.rstrip("/") not in ("", API) or parts.query or parts.fragment:
        raise PmgError("--url must be just https://HOST[:PORT] (no path), e.g. "
                       "https://pmg.example.com:8006")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return _Target(host, port or DEFAULT_PORT)


def _check_user(user: str) -> None:
    if not user or any(ch.isspace() or ord(ch) < 32 for ch in user):
        raise PmgError("--user must be a PMG user with its realm, e.g. root@pam")
    if "@" not in user:
        raise PmgError(f"--user {user} has no realm; write it as {user}@pam (a system user) or "
                       f"{user}@pmg (a PMG user): without one PMG treats it as a quarantine user")


# ---------------------------------------------------------------------------------------------
# transport


def _tls_context(fingerprint: str | None, ca_file: str | None) -> tuple[ssl.SSLContext, str | None]:
    if fingerprint is not None and ca_file is not None:
        raise PmgError("give either --fingerprint or --ca-file, not both")
    if fingerprint is not None:
        pin = parse_fingerprint(fingerprint)
        # The pin replaces chain and name checks: it names the one certificate to accept.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context, pin
    if ca_file is not None:
        path = Path(ca_file)
        if not path.is_file():
            raise PmgError(f"--ca-file {ca_file}: no such file")
        try:
            context = ssl.create_default_context(cafile=str(path))
        except (ssl.SSLError, OSError, ValueError):
            raise PmgError(f"--ca-file {ca_file} holds no readable PEM certificate; give the CA "
                           "that issued PMG's certificate, in PEM") from None
        return context, None
    return ssl.create_default_context(), None


MAX_ANSWER = 32 * 2**20  # bytes: ten thousand relay domains with comments are ~1 MiB
ANSWER_FACTOR = 6  # one request (connection, headers and body) may take this many --timeouts
PULL_FACTOR = 8  # all requests of one pull together may take this many --timeouts


@dataclass(frozen=True)
class _Reply:
    """One answer of PMG's API, read in full (and bounded)."""

    status_code: int
    reason: str
    method: str
    path: str
    body: bytes
    secrets: frozenset[str] = frozenset()  # every form of the password (core/redact.forms)

    def json(self) -> Any:
        """The body as JSON; ValueError when it is none."""
        return json.loads(self.body)

    def hide(self, text: str) -> str:
        """`text` with every form of the password masked (before any truncation)."""
        for form in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(form, MASK)
        return text


class _Client:
    """The few PMG API calls pmg pull makes, through one session with the TLS policy."""

    def __init__(self, target: _Target, context: ssl.SSLContext, pin: str | None,
                 timeout: float, verified_by: str) -> None:
        self.target = target
        self.pin = pin
        self.timeout = timeout
        self.verified_by = verified_by
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies, .netrc or REQUESTS_CA_BUNDLE from the env
        self.deadline = Deadline()
        self.adapter = TlsPolicyAdapter(context, pin, self.deadline)
        self.session.mount("https://", self.adapter)
        self.end = time.monotonic() + PULL_FACTOR * timeout  # the whole pull's deadline
        self.session.headers["Accept-Encoding"] = "identity"  # bodies are read bounded, as sent
        self.ticket: str | None = None
        self.user = ""
        self.secrets: frozenset[str] = frozenset()

    def close(self) -> None:
        self.session.close()

    # one request, with every transport failure turned into a message of ours ----------------
    def _send(self, method: str, path: str, **kwargs: Any) -> _Reply:
        failure: PmgError | None = None
        log.debug("%s %s%s", method, API, path)
        seconds = min(ANSWER_FACTOR * self.timeout, self.end - time.monotonic())
        if seconds <= 0:  # the whole pull's deadline has passed: send nothing more
            raise self._late(method, path, PULL_FACTOR * self.timeout)
        self.deadline.start(seconds)
        try:
            response = self.session.request(method, self.target.base + path, timeout=(
                self.timeout, self.timeout), allow_redirects=False, stream=True, **kwargs)
            with response:
                body = self._body(response, method, path)
            if self.deadline.expired:  # the body was cut off at the deadline
                raise self._late(method, path, seconds)
            log.debug("%s %s%s -> HTTP %s", method, API, path, response.status_code)
            return _Reply(response.status_code, response.reason or "", method, path, body,
                          self.secrets)
        except requests.exceptions.SSLError as exc:
            failure = (self._late(method, path, seconds) if self.deadline.expired
                       else self._tls_failure(str(exc)))
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout):
            failure = self._late(method, path, seconds) if self.deadline.expired else (
                PmgConnectionError(
                    f"PMG at {self.target.shown} did not answer within {self.timeout:g} seconds: "
                    "check the URL, that this host may reach port "
                    f"{self.target.port}/tcp (the firewall's admin_sources), and that pmgproxy "
                    "runs on the gateway (`systemctl status pmgproxy`)"))
        except requests.exceptions.ConnectionError as exc:
            failure = self._late(method, path, seconds) if self.deadline.expired else (
                PmgConnectionError(
                    f"cannot reach PMG at {self.target.shown} ({_reason(exc)}): check the URL "
                    f"and port, that this host may reach {self.target.port}/tcp (the firewall's "
                    "admin_sources), and that pmgproxy runs on the gateway "
                    "(`systemctl status pmgproxy`)"))
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            failure = self._late(method, path, seconds) if self.deadline.expired else (
                PmgConnectionError(f"the request to PMG at {self.target.shown} failed "
                                   f"({type(exc).__name__})"))
        finally:
            # one connection per request: none outlives the deadline that watches it
            self.adapter.poolmanager.clear()
            self.deadline.stop()
        assert failure is not None
        raise failure  # outside the handler: no exception chain keeps the failed request

    def _late(self, method: str, path: str, seconds: float) -> PmgConnectionError:
        return PmgConnectionError(
            f"PMG at {self.target.shown} did not finish answering {method} {API}{path} within "
            f"{max(seconds, 0):g} seconds (the deadline: each request {ANSWER_FACTOR} and the "
            f"whole pull {PULL_FACTOR} times --timeout {self.timeout:g}); it sends too slowly or "
            "is not PMG's API. Nothing was written")

    def _body(self, response: requests.Response, method: str, path: str) -> bytes:
        """The answer's body: at most MAX_ANSWER bytes (the request's deadline bounds a server
        that trickles)."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise PmgError(f"PMG at {self.target.shown} answered {method} {API}{path} "
                           f"compressed ({visible(encoding[:40])}) though pmgdns asked for none")
        chunks: list[bytes] = []
        size = 0
        while not self.deadline.expired and (chunk := response.raw.read1(64 * 1024)):
            size += len(chunk)
            if size > MAX_ANSWER:
                raise PmgError(f"PMG at {self.target.shown} answered {method} {API}{path} with "
                               f"over {MAX_ANSWER // 2**20} MiB; is this a Proxmox Mail Gateway?")
            chunks.append(chunk)
        return b"".join(chunks)

    def _tls_failure(self, text: str) -> PmgTlsError:
        shown = self.target.shown
        m = re.search(r'Fingerprints did not match.*got "([0-9a-fA-F]{64})"', text)
        if self.pin is not None and m:
            seen = _colons(m.group(1))
            return PmgTlsError(
                f"the certificate of {shown} does not match --fingerprint, so nothing was sent "
                f"to it: it has the SHA-256 fingerprint {seen}, --fingerprint expects "
                f"{_colons(self.pin)}. If PMG's certificate was renewed, compare the new "
                f"fingerprint with PMG's own before pinning it; anything else may be an "
                f"interception. {FINGERPRINT_HELP}")
        if self.pin is not None:
            return PmgTlsError(
                f"the TLS handshake with {shown} failed before its certificate could be compared "
                "with --fingerprint, so nothing was sent to it: check that the URL names PMG's "
                "API port (8006)")
        m = re.search(r"certificate verify failed: ([^(]+)", text)
        why = m.group(1).strip() if m else ("Hostname mismatch" if "Hostname mismatch" in text
                                           else "the TLS handshake failed")
        return PmgTlsError(
            f"the certificate of {shown} could not be verified against {self.verified_by} "
            f"({why}), so nothing was sent to it. PMG's own certificate is self-signed: pin it "
            f"with --fingerprint, or give the CA that issued it with --ca-file. "
            f"{FINGERPRINT_HELP}")

    def _http_failure(self, method: str, path: str, response: _Reply) -> PmgError:
        message = _pmg_message(response)
        code = response.status_code
        detail = f": {message}" if message else ""
        return PmgError(f"PMG at {self.target.shown} answered {method} {API}{path} with HTTP "
                        f"{code}{detail}")

    # the calls ------------------------------------------------------------------------------
    def login(self, user: str, password: str) -> None:
        self.user = user
        self.secrets = frozenset(forms(password)) | {password}
        response = self._send("POST", "/access/ticket",
                              data={"username": user, "password": password})
        if response.status_code == 401:
            raise PmgAuthError(f"PMG refused the login for {user}: check PMG_PASSWORD and --user")
        if response.status_code != 200:
            raise self._http_failure("POST", "/access/ticket", response)
        data = _data(response)
        if not isinstance(data, dict) or not isinstance(data.get("ticket"), str):
            raise PmgError(f"PMG at {self.target.shown} answered the login without a ticket; is "
                           "this a Proxmox Mail Gateway?")
        if data.get("NeedTFA"):
            raise PmgAuthError(
                f"{user} has two-factor authentication, and PMG's API gives such a user only a "
                "TFA challenge (PMG has no API tokens): pmgdns cannot use it. Create a PMG user "
                "without TFA for pmgdns (role admin, a long random password) and give it with "
                "--user and PMG_PASSWORD")
        ticket = data["ticket"]
        if not ticket.startswith("PMG:"):
            raise PmgAuthError(f"PMG logged {user} in as a quarantine user, not an administrator: "
                               "give an admin user such as root@pam")
        self.ticket = ticket

    def get(self, path: str) -> _Reply:
        assert self.ticket is not None
        return self._send("GET", path, headers={
            "Cookie": "PMGAuthCookie=" + quote(self.ticket, safe=""),
            "Accept": "application/json",
        })

    def read(self, path: str, what: str) -> Any:
        response = self.get(path)
        if response.status_code == 403:
            raise PmgAuthError(f"{self.user} may not read {what} ({API}{path}, HTTP 403: "
                               f"{_pmg_message(response) or 'permission denied'}): give a user "
                               "with the admin role, such as root@pam")
        if response.status_code != 200:
            raise self._http_failure("GET", path, response)
        return _data(response)


def _holding(value: Any, secrets: frozenset[str], where: str = "data") -> str | None:
    """The place (`data[2].comment`) of the first string in a JSON value that holds a form of
    the password, or None."""
    if isinstance(value, str):
        return where if any(s in value for s in secrets) else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _holding(item, secrets, f"{where}[{i}]")) is not None:
                return found
    if isinstance(value, dict):
        for i, (key, item) in enumerate(value.items()):
            name = key if isinstance(key, str) and re.fullmatch(r"[A-Za-z_-]{1,40}", key) and \
                _holding(key, secrets) is None else f"<key {i + 1}>"
            if _holding(key, secrets) is not None:
                return f"{where}.{name}"
            if (found := _holding(item, secrets, f"{where}.{name}")) is not None:
                return found
    return None


def _data(response: _Reply) -> Any:
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = ValueError
    if body is ValueError:
        raise PmgError(f"PMG answered {response.method} {API}{response.path} with something "
                       "that is not JSON; is this a Proxmox Mail Gateway?")
    if not isinstance(body, dict) or "data" not in body:
        raise PmgError("PMG's answer is not wrapped in {\"data\": …}; is this a Proxmox Mail "
                       "Gateway?")
    found = _holding(body["data"], response.secrets)
    if found is not None:
        raise PmgError(
            f"PMG's answer to {response.method} {API}{response.path} holds the password of the "
            f"PMG user (PMG_PASSWORD) in {found} (e.g. a relay domain's comment or a note in the "
            "DKIM record); pmgdns refuses it and shows nothing of that value. Nothing was "
            "written. Remove the password from that value in PMG and change the password")
    return body["data"]


def _pmg_message(response: _Reply) -> str:
    """PMG's error text: the JSON body's "message", else the HTTP reason phrase."""
    message = ""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        if isinstance(body, dict) and isinstance(body.get("errors"), dict) and body["errors"]:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in body["errors"].items()) + ")"
    except ValueError:
        pass
    if not message.strip():
        message = response.reason or ""
    return response.hide(" ".join(response.hide(str(message)).split()))[:300]


def _reason(exc: BaseException) -> str:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused: nothing listens on that port"
        if isinstance(e, ConnectionResetError):
            return "the connection was reset"
        if isinstance(e, OSError) and e.errno is not None and e.strerror:
            return e.strerror.lower()
        for nxt in (e.__cause__, e.__context__, getattr(e, "reason", None),
                    *(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    text = str(exc)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "the host name does not resolve"
    if "Connection refused" in text:
        return "connection refused: nothing listens on that port"
    return "the connection failed"


# PMG's own format for relay and DKIM domains: a domain name, or `.DOMAIN` for its subdomains.
_PMG_DOMAIN = re.compile(r"\.?(?=.{1,253}\Z)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                         r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?", re.ASCII)


def _domain_list(data: Any, what: str) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(
            isinstance(d, dict) and isinstance(d.get("domain"), str) for d in data):
        raise PmgError(f"PMG's list of {what} is not a list of {{domain, comment}} entries")
    names = tuple(d["domain"] for d in data)
    for name in names:
        if not _PMG_DOMAIN.fullmatch(name):
            shown = visible(name[:80]) + ("…" if len(name) > 80 else "")
            raise PmgError(f"PMG's list of {what} holds {shown!r}, which is not a domain name "
                           "(nor `.DOMAIN` for its subdomains); nothing was written. Correct the "
                           "entry in PMG and pull again.")
    return names


# ---------------------------------------------------------------------------------------------
# public API


def fetch_state(url: str, user: str, password: str, *, fingerprint: str | None = None,
                ca_file: str | None = None, timeout: float = 10) -> GatewayState:
    """Log in to PMG and read its relay domains, DKIM domains and DKIM selector/key.

    Raises PmgError (PmgTlsError, PmgAuthError, PmgConnectionError) with a one-paragraph message.
    """
    target = _parse_url(url)
    _check_user(user)
    if not password:
        raise PmgAuthError("PMG_PASSWORD is empty or not set: put the password of --user in the "
                           "environment variable PMG_PASSWORD")
    if password != password.strip() or not password.isprintable():
        raise PmgAuthError("PMG_PASSWORD begins or ends with white space or holds a control "
                           "character (a stray newline?); export it without (the value is not "
                           "shown)")
    if len(password) < MIN_PASSWORD:
        raise PmgAuthError(
            f"PMG_PASSWORD has fewer than {MIN_PASSWORD} characters: pmgdns cannot keep a "
            "password that short out of its output, where it would match ordinary text. Give "
            "the PMG user pmgdns logs in as a long random password")
    context, pin = _tls_context(fingerprint, ca_file)
    verified_by = ("the pinned fingerprint" if pin else f"--ca-file {ca_file}" if ca_file
                   else "the system's trust store")
    client = _Client(target, context, pin, timeout, verified_by)
    try:
        client.login(user, password)
        relay = _domain_list(client.read("/config/domains", "the relay domains"),
                             "relay domains")
        dkim_domains = _domain_list(client.read("/config/dkim/domains", "the DKIM domains"),
                                    "DKIM domains")
        response = client.get("/config/dkim/selector")
        where = f"PMG at {target.shown}"
        if response.status_code == 403:
            return GatewayState(
                relay, dkim_domains, where=where,
                dkim_unreadable=(
                    f"{user} may not read PMG's DKIM selector and key (HTTP 403: "
                    f"{_pmg_message(response) or 'permission denied'}); PMG shows them only to "
                    "the admin role and root@pam, not to audit users. Pull as an admin user to "
                    "check DKIM"))
        if response.status_code != 200:
            raise client._http_failure("GET", "/config/dkim/selector", response)
        info = _data(response)
        if info is None:
            info = {}
        if not isinstance(info, dict):
            raise PmgError("PMG's DKIM selector answer is not a {selector, keysize, record} object")
        selector = info.get("selector")
        record = info.get("record")
        keysize = info.get("keysize")
        unreadable = None
        if isinstance(selector, str) and selector and not isinstance(record, str):
            unreadable = (f"PMG shows the selector {selector} but not its key: it answers so when "
                          f"the user may see the selector only (an audit user) or when it cannot "
                          f"read /etc/pmg/dkim/{selector}.private. Check the key on the gateway "
                          "(`pmgconfig dkim_record`) or pull as an admin user")
        return GatewayState(
            relay_domains=relay, dkim_domains=dkim_domains,
            selector=selector if isinstance(selector, str) and selector else None,
            keysize=keysize if isinstance(keysize, int) else None,
            record=record if isinstance(record, str) else None,
            dkim_unreadable=unreadable, where=where)
    finally:
        client.close()


@dataclass(frozen=True)
class PullResult:
    """What `pmg pull` found and did.

    `changes`: one line per edit of the spec (what, and why); `warnings`: drift it did not fix
    and things to know. `differs`: the spec and the gateway disagree. `complete`: everything
    could be compared (false e.g. for an audit user, who cannot read the DKIM key). `written`:
    the spec file was rewritten. `exit_code`: what the CLI exits with.
    """

    spec_path: str
    changes: tuple[str, ...]
    warnings: tuple[str, ...]
    differs: bool
    complete: bool
    written: bool
    checked: bool
    summary: str

    @property
    def exit_code(self) -> int:
        """1 with --check when the spec differs from the gateway or could not be fully
        compared (a drift gate fails closed); else 0."""
        return 1 if self.checked and (self.differs or not self.complete) else 0


def _read_spec(path: Path) -> str:

    try:
        raw = read_bytes(str(path), MAX_SPEC, "the spec")
    except FileNotFoundError:
        raise SpecError(str(path), "", "does not exist; give the spec with -c/--config") from None
    except FileProblem as exc:
        raise SpecError(str(path), "", str(exc).replace(f"the spec {path} ", "")) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(str(path), "", "is not UTF-8 text") from None


def _write_atomic(path: Path, text: str, expected_old: str, written_to: list[str]) -> None:
    """Replace `path` with `text` through a temporary file in the same directory (os.replace),
    keeping the file mode; the target of a symlink is replaced, not the link."""
    real = Path(os.path.realpath(path))
    current = _read_spec(real)
    if current != expected_old:
        raise PmgError(f"{path} changed while pmg pull was reading PMG; nothing was written: "
                       "run pmg pull again")
    mode = stat.S_IMODE(real.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
        written_to.append(str(path))
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _pull(spec_path: str, url: str, user: str, password: str, fingerprint: str | None,
          ca_file: str | None, check: bool, timeout: float, written_to: list[str]
          ) -> PullResult:
    path = Path(spec_path)
    text = _read_spec(path)
    parse(text, str(path))                     # a broken spec fails before PMG is asked
    state = fetch_state(url, user, password, fingerprint=fingerprint, ca_file=ca_file,
                        timeout=timeout)
    edit: EditResult = apply_state(text, state, Path.cwd(), file=str(path))
    changed = edit.new_text != text
    written = False
    if changed and not check:
        _write_atomic(path, edit.new_text, text, written_to)
        written = True
    n = len(edit.changes)
    plural = "change" if n == 1 else "changes"
    if not edit.differs and edit.complete:
        summary = f"{path}: already in sync with {state.where}; nothing to change."
    elif not edit.differs:
        summary = (f"{path}: in sync with {state.where} as far as it could be compared "
                   "(see the warnings).")
    elif check and changed:
        summary = f"{path} differs from {state.where}: {n} {plural} to pull; --check wrote nothing."
    elif check:
        summary = f"{path} differs from {state.where} (see the warnings); --check wrote nothing."
    elif written:
        summary = f"{path}: {n} {plural} pulled from {state.where}."
    else:
        summary = (f"{path} differs from {state.where} in ways pmg pull does not change (see the "
                   "warnings); nothing was written.")
    return PullResult(str(path), edit.changes, edit.warnings, edit.differs, edit.complete,
                      written, check, summary)


def pull(spec_path: str, url: str, user: str, password: str, *, fingerprint: str | None,
         ca_file: str | None, check: bool, timeout: float = 10) -> PullResult:
    """Read the gateway's state and bring the spec at `spec_path` in line with it (spec-v1 §6.4).

    Writes the spec (atomically, keeping its mode) only when something changes and `check` is
    false. Raises PmgdnsError (PmgError, SpecError, SpecEditError) with a one-paragraph message
    that never contains the password; any other failure is reported the same way.
    """
    redact = Redactor([password])
    outcome: PullResult | PmgdnsError
    written: list[str] = []
    try:
        outcome = _pull(spec_path, url, user, password, fingerprint, ca_file, check, timeout,
                        written)
    except KeyboardInterrupt:
        outcome = Interrupted(
            f"interrupted; {spec_path} was " + (
                "already rewritten with what was pulled (the file is whole)" if written else
                "not changed (nothing was written, no temporary file is left)")
            + ". Run pmg pull again.")
    except PmgdnsError as exc:
        outcome = exc
    except Exception as exc:  # a bug: one paragraph, still without secrets or a traceback
        outcome = PmgError(f"pmg pull failed unexpectedly ({type(exc).__name__}: "
                           f"{redact(str(exc))[:200]}); nothing was written. Please report this")
    if isinstance(outcome, PmgdnsError):
        if password and password in str(outcome):
            outcome = PmgError(redact(str(outcome)).replace(password, "[redacted]"))
        outcome.__context__ = None
        outcome.__cause__ = None
        raise outcome.with_traceback(None)
    return PullResult(
        outcome.spec_path,
        tuple(redact(c) for c in outcome.changes),
        tuple(redact(w) for w in outcome.warnings),
        outcome.differs, outcome.complete, outcome.written, outcome.checked,
        redact(outcome.summary))

