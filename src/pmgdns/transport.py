"""Transport checks that are not DNS: STARTTLS and the certificate an MX node presents on port 25,
the MTA-STS policy served over HTTPS, and DANE TLSA digests (`3 1 1`, RFC 7672).

Nothing here resolves a name on its own initiative: every connection goes to the address the caller
gives (a `--resolve NAME:PORT:ADDRESS:PORT` mapping, or the address the spec publishes), while the
TLS server name (SNI), the certificate checks and the HTTP Host header stay the real name.

Everything that came from the network is escaped before it lands in a message (`_esc`), so a hostile
server cannot write terminal control sequences or extra lines into a report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from checkdmarc.mta_sts import (
    MTASTSPolicySyntaxError,
    mx_in_mta_sts_patterns,
    parse_mta_sts_policy,
)
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from .errors import TransportError

OK, WARN, FAIL = "OK", "WARN", "FAIL"

POLICY_PATH = "/.well-known/mta-sts.txt"
POLICY_MAX_BYTES = 64 * 1024  # RFC 8461 §3.3 lets senders cap the body; 64 KiB is the usual cap
_MAX_SHOWN = 160  # characters of network data quoted in one message

ResolveMap = Mapping[tuple[str, int], tuple[str, int]]


@dataclass(frozen=True)
class Finding:
    """One check result. Network data in `message`, `observed` and `expected` is escaped."""

    status: str  # OK | WARN | FAIL
    check: str  # e.g. "STARTTLS", "certificate name", "MTA-STS policy"
    message: str
    fix: str = ""
    observed: str = ""
    expected: str = ""


def _esc(text: str | bytes, limit: int = _MAX_SHOWN) -> str:
    """Network data made safe for one line of a terminal: every character that is not printable
    (control characters, bidi overrides, newlines) and the backslash are written as Python escapes;
    long values are cut."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    cut = len(text) > limit
    text = text[:limit]
    out = "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
    return out + "…" if cut else out


def _q(text: str | bytes, limit: int = _MAX_SHOWN) -> str:
    return f"'{_esc(text, limit)}'"


def _norm_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- DANE TLSA: the SubjectPublicKeyInfo digest ----------------------------------------------

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)
_PRIVATE = (
    "this is a private key: give the certificate or the public key instead "
    "(the private key never needs to leave the gateway)"
)
_NOT_A_KEY = "not a certificate or public key (PEM or DER)"


def _der_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The DER elements between start and end: (tag, offset of the element, offset after it)."""
    i = start
    while i < end:
        if i + 2 > end:
            raise ValueError("truncated DER")
        tag, length, head = data[i], data[i + 1], i + 2
        if tag & 0x1F == 0x1F:
            raise ValueError("high-tag-number form")
        if length & 0x80:
            n = length & 0x7F
            if not 1 <= n <= 4 or head + n > end:
                raise ValueError("bad DER length")
            length = int.from_bytes(data[head:head + n], "big")
            head += n
        if head + length > end:
            raise ValueError("truncated DER")
        yield tag, i, head + length
        i = head + length


def _der_contents(data: bytes, start: int, end: int) -> tuple[int, int]:
    """Start and end of the contents of the single constructed element data[start:end]."""
    length = data[start + 1]
    head = start + 2 + (length & 0x7F if length & 0x80 else 0)
    return head, end


def _cert_spki(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo exactly as encoded in it (not re-encoded: TLSA hashes
    the bytes on the wire)."""
    tbs = cert.tbs_certificate_bytes
    [(tag, start, end)] = list(_der_children(tbs, 0, len(tbs)))
    if tag != 0x30:
        raise ValueError("TBSCertificate is not a SEQUENCE")
    fields = list(_der_children(tbs, *_der_contents(tbs, start, end)))
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    tag, start, end = fields[5]
    if tag != 0x30:
        raise ValueError("subjectPublicKeyInfo is not a SEQUENCE")
    return tbs[start:end]


def _is_spki(der: bytes) -> bool:
    """Whether der is one SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }."""
    try:
        [(tag, start, end)] = list(_der_children(der, 0, len(der)))
        if tag != 0x30 or end != len(der):
            return False
        inner = [t for t, _, _ in _der_children(der, *_der_contents(der, start, end))]
    except ValueError:
        return False
    return inner == [0x30, 0x03]


def _public_key_spki(der: bytes) -> bytes:
    """DER of a public key (SubjectPublicKeyInfo, or PKCS#1 RSA) -> its SubjectPublicKeyInfo."""
    if _is_spki(der):
        try:
            serialization.load_der_public_key(der)
        except UnsupportedAlgorithm:
            pass  # a well-formed SPKI of an algorithm cryptography lacks still has a digest
        return der  # hashed as given, like the SPKI inside a certificate
    key = serialization.load_der_public_key(der)  # ValueError when it is no public key
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_der_private_key(der: bytes) -> bool:
    try:
        serialization.load_der_private_key(der, password=None)
    except TypeError:
        return True  # encrypted: cryptography asks for the password, so it is a private key
    except Exception:  # noqa: BLE001 - any other failure means "not a private key"
        return False
    return True


def spki_sha256(pem_or_der: bytes) -> str:
    """The TLSA `3 1 1` value of a certificate or public key: the lowercase hex SHA-256 of its DER
    SubjectPublicKeyInfo. Takes PEM (the first certificate of a chain file is the leaf) or DER.
    Private keys are refused and the input is never repeated in an error."""
    data = bytes(pem_or_der)
    if b"-----BEGIN " in data:
        blocks = [(m.group(1).decode("ascii"), m.group(2)) for m in _PEM_BLOCK.finditer(data)]
        if b"PRIVATE KEY-----" in data or any("PRIVATE" in label for label, _ in blocks):
            raise TransportError(_PRIVATE)
        for label, body in blocks:
            if label not in ("CERTIFICATE", "X509 CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"):
                continue
            try:
                der = base64.b64decode(b"".join(body.split()), validate=True)
                if label.endswith("CERTIFICATE"):
                    spki = _cert_spki(x509.load_der_x509_certificate(der))
                else:
                    spki = _public_key_spki(der)
            except (ValueError, binascii.Error, UnsupportedAlgorithm):
                raise TransportError(f"{_NOT_A_KEY}: its {label} block does not decode") from None
            return hashlib.sha256(spki).hexdigest()
        raise TransportError(f"{_NOT_A_KEY}: no CERTIFICATE or PUBLIC KEY block")
    try:
        return hashlib.sha256(_cert_spki(x509.load_der_x509_certificate(data))).hexdigest()
    except ValueError:
        pass
    try:
        return hashlib.sha256(_public_key_spki(data)).hexdigest()
    except (ValueError, UnsupportedAlgorithm):
        pass
    if _is_der_private_key(data):
        raise TransportError(_PRIVATE)
    raise TransportError(_NOT_A_KEY)


@dataclass(frozen=True)
class _Tlsa:
    usage: int
    selector: int
    mtype: int
    data: str  # lowercase hex

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data}"


_HEX = re.compile(r"[0-9a-f]+")


def _parse_tlsa(value: str) -> _Tlsa:
    """`3 1 1 <hex>` (TLSA presentation text, hex may be split by spaces) or a bare 64-hex SPKI
    SHA-256 digest (as the spec's `spki_sha256:` gives it)."""
    parts = value.split()
    if len(parts) == 1:
        parts = ["3", "1", "1", *parts]
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        raise TransportError(f"TLSA value {_q(value)}: expected `3 1 1 <hex>` or 64 hex digits")
    data = "".join(parts[3:]).lower()
    usage, selector, mtype = (int(p) for p in parts[:3])
    want = {1: 64, 2: 128}.get(mtype)
    if _HEX.fullmatch(data) is None or len(data) % 2 or (want is not None and len(data) != want):
        raise TransportError(f"TLSA value {_q(value)}: the data is not the hex digest it should be")
    return _Tlsa(usage, selector, mtype, data)


def _tlsa_data(cert_der: bytes, spki: bytes, selector: int, mtype: int) -> str | None:
    """What the certificate offers for a TLSA selector and matching type (None: unknown ones)."""
    material = {0: cert_der, 1: spki}.get(selector)
    if material is None:
        return None
    if mtype == 0:
        return material.hex()
    if mtype == 1:
        return hashlib.sha256(material).hexdigest()
    if mtype == 2:
        return hashlib.sha512(material).hexdigest()
    return None


# --- --resolve ---------------------------------------------------------------------------------

_RESOLVE = re.compile(r"([^:\[\]]+):([0-9]+):(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]+)")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _port(text: str, entry: str, which: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise TransportError(f"--resolve {_q(entry)}: {which} {port} is not a port (1-65535)")
    return port


def parse_resolve(entries: Sequence[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """curl-like `NAME:PORT:ADDRESS:PORT` mappings: connections for NAME:PORT go to ADDRESS:PORT
    (an IP address; IPv6 in [brackets]). Names are lower-cased, a trailing dot is dropped."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for entry in entries:
        m = _RESOLVE.fullmatch(entry.strip())
        if m is None:
            raise TransportError(
                f"--resolve {_q(entry)}: expected NAME:PORT:ADDRESS:PORT, e.g. "
                "mx1.example.com:25:192.0.2.25:25 (an IPv6 address in [brackets])"
            )
        name = _norm_name(m.group(1))
        if _HOSTNAME.fullmatch(name) is None:
            raise TransportError(f"--resolve {_q(entry)}: {_q(m.group(1))} is not a host name")
        port = _port(m.group(2), entry, "PORT")
        to_port = _port(m.group(5), entry, "the second PORT")
        try:
            if m.group(3) is not None:
                address = str(ipaddress.IPv6Address(m.group(3)))
            else:
                address = str(ipaddress.IPv4Address(m.group(4)))
        except ValueError:
            raw = m.group(3) or m.group(4)
            raise TransportError(
                f"--resolve {_q(entry)}: {_q(raw)} is not an IP address "
                "(IPv4, or IPv6 in [brackets])"
            ) from None
        if (name, port) in out and out[(name, port)] != (address, to_port):
            raise TransportError(f"--resolve {_q(entry)}: {name}:{port} is mapped twice")
        out[(name, port)] = (address, to_port)
    return out


def connect_address(name: str, port: int, default: str, resolve: ResolveMap) -> tuple[str, int]:
    """Where a connection for name:port goes: the --resolve mapping if there is one, else
    (default, port)."""
    return resolve.get((_norm_name(name), port), (default, port))


# --- TLS contexts ------------------------------------------------------------------------------

def _store(ca_file: str | None) -> str:
    return "the system's trust store" if ca_file is None else f"--ca-file {ca_file}"


def _verifying_context(ca_file: str | None, *, check_hostname: bool) -> ssl.SSLContext:
    """Certificate verification against the system's trust store, or only ca_file when given."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as e:
        raise TransportError(f"--ca-file {ca_file}: cannot load it as PEM certificates: "
                             f"{_esc(str(e))}") from None
    context.check_hostname = check_hostname
    return context


def _reporting_context() -> ssl.SSLContext:
    """No verification at all: used ONLY to read the certificate a node presents so that the name,
    TLSA and expiry checks can report on it after the verified handshake failed. Nothing learnt over
    such a connection is trusted."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# --- SMTP --------------------------------------------------------------------------------------

class _Failed(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class _Greeting(Exception):
    """The server answered the connection with something other than a 220 greeting."""

    def __init__(self, first_bytes: bytes, code: int) -> None:
        super().__init__(code)
        self.first_bytes = first_bytes
        self.code = code


SESSION_FACTOR = 3  # a whole SMTP session or policy fetch may take this many --timeouts
REPLY_MAX_BYTES = 64 * 1024  # all SMTP replies of one session together (a large EHLO is ~1 KiB)


class _Deadline:
    """Ends a conversation that outlasts `seconds` in all. A socket timeout bounds each read only,
    so a server that trickles a byte every few seconds could hold a check for hours; at the
    deadline the connection is shut down, which wakes the blocked read.

    It acts on the connection's file descriptor, which stays the same through STARTTLS (the TLS
    socket takes the TCP socket's descriptor), and only until `release`, which the owner calls
    before the descriptor is closed (so a reused descriptor is never touched)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._fd = -1
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._fd = sock.fileno()
            if self.expired:
                self._shut()

    def release(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if not self._done:
                self.expired = True
                self._shut()

    def _shut(self) -> None:
        if self._fd < 0 or self._done:
            return
        view = socket.socket(fileno=self._fd)  # a second handle on the same connection
        try:
            view.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            view.detach()  # never closes the descriptor it does not own


class _CappedReader:
    """The SMTP reply stream, refusing more than REPLY_MAX_BYTES in a session (smtplib caps a
    line, not the number of lines of a reply)."""

    def __init__(self, inner: Any, budget: list[int]) -> None:
        self._inner = inner
        self._budget = budget

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._inner.readline(limit)
        self._budget[0] -= len(line)
        if self._budget[0] < 0:
            raise OSError(f"the server sent over {REPLY_MAX_BYTES // 1024} KiB of replies")
        return line

    def close(self) -> None:
        self._inner.close()


class _NodeSMTP(smtplib.SMTP):
    """An SMTP session with `node` whose TCP connection goes to `address`.

    smtplib takes the TLS server name for STARTTLS (SNI, and the name a certificate is for) from the
    host it connects to. The check must reach the node at an address the caller chose (a --resolve
    mapping, or the address the spec publishes) yet speak TLS as the node's name, so only the socket
    is redirected here; the SMTP dialogue, STARTTLS and TLS stay smtplib's and ssl's.
    """

    def __init__(self, node: str, port: int, address: tuple[str, int], timeout: float,
                 deadline: _Deadline) -> None:
        self._address = address
        self._deadline = deadline
        self._budget = [REPLY_MAX_BYTES]
        self.first_bytes = b""  # what the server sent first, for reporting a non-SMTP greeting
        # local_hostname is given so that smtplib does not call socket.getfqdn() (a DNS lookup);
        # _get_socket replaces it with an address literal of our end (RFC 5321 §4.1.3).
        try:
            super().__init__(node, port, local_hostname="localhost", timeout=timeout)
        except smtplib.SMTPConnectError as e:
            raise _Greeting(self.first_bytes, e.smtp_code) from None

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection(self._address, timeout)
        self._deadline.watch(sock)
        try:
            # Peek (not read) at the greeting so a non-SMTP answer can be shown as sent; smtplib
            # keeps only what follows the first three characters of a line.
            self.first_bytes = sock.recv(512, socket.MSG_PEEK)
        except OSError:
            self._deadline.release()
            sock.close()
            raise
        ip = sock.getsockname()[0]
        self.local_hostname = f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"
        return sock

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _CappedReader(self.sock.makefile("rb"), self._budget)
        return super().getreply()

    def close(self) -> None:
        self._deadline.release()
        super().close()


@dataclass(frozen=True)
class _Handshake:
    leaf: bytes  # DER
    tls: str  # e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"


def _connect_fail(where: str, what: str, fix: str) -> _Failed:
    return _Failed(Finding(FAIL, "SMTP connection", f"{where}: {what}", fix, observed=what))


_CONNECT_FIX = ("check that the node's MTA listens on that port and address and that no firewall "
                "blocks 25/tcp from here (or correct the --resolve mapping)")


def _starttls(node: str, address: str, port: int, context: ssl.SSLContext,
              timeout: float) -> _Handshake:
    """Greeting, EHLO, STARTTLS and the TLS handshake with SNI = node, within SESSION_FACTOR
    timeouts in all. Raises _Failed with the one finding that ends the check, or
    ssl.SSLCertVerificationError when `context` rejects the chain."""
    deadline = _Deadline(SESSION_FACTOR * timeout)
    try:
        return _session(node, address, port, context, timeout, deadline)
    except (_Failed, ssl.SSLError):
        if not deadline.expired:
            raise
        raise _connect_fail(f"{node} at {_hostport(address, port)}",
                            f"did not finish greeting, EHLO and STARTTLS within "
                            f"{deadline.seconds:g} s (it answers too slowly)",
                            _CONNECT_FIX) from None
    finally:
        deadline.release()


def _session(node: str, address: str, port: int, context: ssl.SSLContext, timeout: float,
             deadline: _Deadline) -> _Handshake:
    where = f"{node} at {_hostport(address, port)}"
    try:
        smtp = _NodeSMTP(node, port, (address, port), timeout, deadline)
    except ConnectionRefusedError:
        raise _connect_fail(where, "connection refused", _CONNECT_FIX) from None
    except TimeoutError:
        raise _connect_fail(where, f"no greeting within {timeout:g} s (timed out)",
                            _CONNECT_FIX) from None
    except _Greeting as g:
        first = g.first_bytes.split(b"\n", 1)[0].rstrip(b"\r")
        what = (f"does not greet like an SMTP server (it sent {_q(first)})" if g.code < 100 else
                f"greets with {_q(first)}, not 220 (the server refuses this session)")
        raise _connect_fail(where, what, "check that this address:port is the node's SMTP "
                            "service (port 25), not another service") from None
    except smtplib.SMTPServerDisconnected:
        raise _connect_fail(where, "closed the connection without an SMTP greeting",
                            _CONNECT_FIX) from None
    except (OSError, smtplib.SMTPException) as e:
        raise _connect_fail(where, f"cannot connect: {_esc(str(e))}", _CONNECT_FIX) from None
    try:
        code, reply = smtp.ehlo()
        if code != 250:
            raise _Failed(Finding(FAIL, "STARTTLS", f"{where} refuses EHLO: {code} {_q(reply)}",
                                  "check the MTA's smtpd restrictions for EHLO"))
        if not smtp.has_extn("starttls"):
            raise _Failed(Finding(
                FAIL, "STARTTLS", f"no STARTTLS offered by {where}",
                "enable TLS for incoming mail (PMG: Mail Proxy → TLS; plain Postfix: "
                "smtpd_tls_security_level = may) with a certificate for the node's name",
                observed="no STARTTLS in the EHLO reply", expected="STARTTLS"))
        try:
            smtp.starttls(context=context)
        except smtplib.SMTPResponseException as e:
            raise _Failed(Finding(
                FAIL, "STARTTLS", f"{where} offers STARTTLS but answers it with {e.smtp_code} "
                f"{_q(e.smtp_error)}", "check the MTA's TLS certificate and key settings")
            ) from None
        sock = smtp.sock
        leaf = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if not isinstance(sock, ssl.SSLSocket) or not leaf:
            raise _Failed(Finding(FAIL, "STARTTLS", f"{where} presents no certificate",
                                  "configure a certificate for the node's name in the MTA"))
        return _Handshake(leaf, f"{sock.version()} {(sock.cipher() or ('?',))[0]}")
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as e:
        raise _Failed(Finding(FAIL, "STARTTLS", f"TLS handshake with {where} failed: "
                              f"{_esc(e.reason or str(e))}",
                              "check the MTA's TLS settings (protocols, ciphers, certificate)")
                      ) from None
    except TimeoutError:
        raise _Failed(Finding(FAIL, "STARTTLS", f"{where} stopped answering (timed out after "
                              f"{timeout:g} s)", _CONNECT_FIX)) from None
    except (OSError, smtplib.SMTPException) as e:
        raise _Failed(Finding(FAIL, "STARTTLS", f"the SMTP session with {where} broke: "
                              f"{_esc(str(e))}", _CONNECT_FIX)) from None
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _cert_names(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for: its SAN dNSNames, else (legacy) its subject CN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME)]
    return names


def _name_matches(pattern: str, name: str) -> bool:
    """RFC 6125 §6.4: exact (case-insensitive), or `*.` standing for exactly one left-most label."""
    pattern, name = _norm_name(pattern), _norm_name(name)
    if pattern.startswith("*."):
        rest = pattern[2:]
        label, dot, tail = name.partition(".")
        return bool(label) and bool(dot) and "." in rest and tail == rest
    return pattern == name


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _chain_finding(chain_error: str | None, ca_file: str | None) -> Finding:
    if chain_error is None:
        return Finding(OK, "certificate chain", f"chains to a root in {_store(ca_file)}")
    return Finding(
        FAIL, "certificate chain",
        f"does not verify against {_store(ca_file)}: {_esc(chain_error)}",
        "serve the full chain (certificate and intermediates) from a CA that senders trust, "
        "e.g. Let's Encrypt through PMG's ACME; for a private CA pass --ca-file",
        observed=_esc(chain_error))


def _certificate_findings(node: str, leaf: bytes, chain_error: str | None, ca_file: str | None,
                          tlsa: Sequence[_Tlsa], now: datetime, warn_days: int) -> list[Finding]:
    try:
        cert = x509.load_der_x509_certificate(leaf)
        names = _cert_names(cert)
        spki = _cert_spki(cert)
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        return [Finding(FAIL, "certificate", f"the certificate {node} presents does not parse: "
                        f"{_esc(str(e))}", "install a valid certificate for the node")]
    out: list[Finding] = []
    shown = ", ".join(_esc(n) for n in names) or "no names"
    if any(_name_matches(n, node) for n in names):
        out.append(Finding(OK, "certificate name", f"covers {node}", observed=shown,
                           expected=node))
    else:
        out.append(Finding(
            FAIL, "certificate name", f"the certificate is for {shown}, not {node}",
            f"install an SMTP certificate whose subjectAltName includes {node} (PMG: "
            "`pmgconfig acme cert order smtp` with that name among the ACME domains)",
            observed=shown,
            expected=node))
    out.append(_chain_finding(chain_error, ca_file))
    if tlsa:
        out.append(_tlsa_finding(leaf, spki, tlsa))
    out.append(_expiry_finding(not_before, not_after, now, warn_days))
    return out


def _tlsa_finding(leaf: bytes, spki: bytes, tlsa: Sequence[_Tlsa]) -> Finding:
    have = hashlib.sha256(spki).hexdigest()
    published = ", ".join(str(t) for t in tlsa)
    usable = [t for t in tlsa if t.usage == 3]
    for t in usable:
        if _tlsa_data(leaf, spki, t.selector, t.mtype) == t.data:
            return Finding(OK, "TLSA match", f"the certificate matches TLSA {t}",
                           observed=f"3 1 1 {have}", expected=published)
    if not usable:
        return Finding(
            WARN, "TLSA match", f"no DANE-EE (usage 3) TLSA record to check ({published}); "
            f"the certificate's key is 3 1 1 {have}",
            "publish TLSA 3 1 1 records (gateways[].tlsa in the spec)",
            observed=f"3 1 1 {have}", expected=published)
    return Finding(
        FAIL, "TLSA match",
        f"the certificate's key is 3 1 1 {have}, which no published TLSA record matches "
        f"({published}); DANE senders will not deliver",
        "publish the key's digest (gateways[].tlsa: cert_file or spki_sha256) and apply before "
        "switching keys; or switch the MTA back to the key the TLSA records name",
        observed=f"3 1 1 {have}", expected=published)


def _expiry_finding(not_before: datetime, not_after: datetime, now: datetime,
                    warn_days: int) -> Finding:
    fix = "renew the SMTP certificate (PMG: `pmgconfig acme cert renew smtp`)"
    if now < not_before:
        return Finding(FAIL, "certificate expiry", f"not valid before {_when(not_before)}",
                       "check the clock of the gateway and of this machine, or reissue",
                       observed=_when(not_before))
    if now >= not_after:
        days = (now - not_after).days
        return Finding(FAIL, "certificate expiry",
                       f"expired on {_when(not_after)} ({days} days ago)", fix,
                       observed=_when(not_after))
    left = not_after - now
    if left < timedelta(days=warn_days):
        return Finding(WARN, "certificate expiry",
                       f"expires on {_when(not_after)}, in {left.days} days (under {warn_days})",
                       fix, observed=_when(not_after), expected=f"more than {warn_days} days")
    return Finding(OK, "certificate expiry", f"valid until {_when(not_after)} ({left.days} days)",
                   observed=_when(not_after))


def smtp_checks(node: str, address: str, port: int = 25, *, ca_file: str | None,
                tlsa: Sequence[str], now: datetime, timeout: float = 10,
                warn_days: int = 14) -> list[Finding]:
    """Connect to address:port as a sender would to `node`: greeting, EHLO, STARTTLS (SNI = node),
    then the certificate: name, chain (system store, or only ca_file), TLSA (usage 3, when `tlsa` is
    non-empty: `3 1 1 <hex>` texts or bare SPKI digests) and expiry (WARN under warn_days).

    A session that cannot start gives one FAIL; otherwise every certificate problem is its own
    finding, even when the chain does not verify. Raises TransportError only for bad arguments (an
    unreadable ca_file, a malformed TLSA value)."""
    node = _norm_name(node)
    records = [_parse_tlsa(t) for t in tlsa]
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    verifying = _verifying_context(ca_file, check_hostname=False)  # the name is checked below
    chain_error: str | None = None
    try:
        try:
            shake = _starttls(node, address, port, verifying, timeout)
        except ssl.SSLCertVerificationError as e:
            chain_error = e.verify_message or str(e)
            shake = _starttls(node, address, port, _reporting_context(), timeout)
    except _Failed as f:
        out = [f.finding]
        if chain_error is not None:  # the verified session got as far as the certificate
            out.insert(0, Finding(OK, "STARTTLS", f"offered by {node} at "
                                  f"{_hostport(address, port)}"))
            out.append(_chain_finding(chain_error, ca_file))
        return out
    start = Finding(OK, "STARTTLS", f"offered by {node} at {_hostport(address, port)} "
                    f"({_esc(shake.tls)})", observed=_esc(shake.tls))
    return [start, *_certificate_findings(node, shake.leaf, chain_error, ca_file, records, now,
                                          warn_days)]


# --- MTA-STS policy ----------------------------------------------------------------------------

class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `host` whose TCP connection goes to `address` (like curl's --connect-to): the TLS
    server name, the certificate's name check and the Host header stay `host`."""

    def __init__(self, host: str, address: tuple[str, int], context: ssl.SSLContext,
                 timeout: float, deadline: _Deadline) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._address = address
        self._tls_context = context
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection(self._address, self.timeout)
        self._deadline.watch(sock)
        try:
            self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            self._deadline.release()
            sock.close()
            raise


def _get_policy(conn: _PinnedHTTPSConnection, deadline: _Deadline, url: str, via: str,
                host: str, ca_file: str | None, timeout: float) -> bytes:
    resp: http.client.HTTPResponse | None = None
    try:
        conn.request("GET", POLICY_PATH, headers={"User-Agent": "pmgdns", "Accept": "text/plain"})
        resp = conn.getresponse()
        if resp.status != 200:
            location = resp.getheader("Location")
            more = f" (redirect to {_q(location)}, not followed)" if location else ""
            raise TransportError(
                f"{url}{via}: HTTP {resp.status} {_esc(resp.reason)}{more}; senders accept only "
                "200 and follow no redirects (RFC 8461 §3.3)")
        ctype = resp.getheader("Content-Type")
        media = (ctype or "").split(";", 1)[0].strip().lower()
        if media != "text/plain":
            shown = _q(ctype) if ctype is not None else "none"
            raise TransportError(
                f"{url}{via}: Content-Type is {shown}; senders accept only text/plain "
                "(RFC 8461 §3.2)")
        length = resp.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > POLICY_MAX_BYTES:
            raise TransportError(f"{url}{via}: the policy is {int(length)} bytes, over the "
                                 f"{POLICY_MAX_BYTES // 1024} KiB senders read")
        body = resp.read(POLICY_MAX_BYTES + 1)
        if len(body) > POLICY_MAX_BYTES:
            raise TransportError(f"{url}{via}: the policy is over the {POLICY_MAX_BYTES // 1024} "
                                 "KiB senders read")
    except ssl.SSLCertVerificationError as e:
        raise TransportError(f"{url}{via}: certificate invalid: "
                             f"{_esc(e.verify_message or str(e))} (checked against "
                             f"{_store(ca_file)})") from None
    except ssl.SSLError as e:
        raise TransportError(f"{url}{via}: TLS failed: {_esc(e.reason or str(e))}") from None
    except ConnectionRefusedError:
        raise TransportError(f"{url}{via}: unreachable: connection refused") from None
    except TimeoutError:
        raise TransportError(f"{url}{via}: unreachable: timed out after {timeout:g} s") from None
    except socket.gaierror as e:
        raise TransportError(f"{url}: unreachable: {host} does not resolve "
                             f"({_esc(str(e))})") from None
    except OSError as e:
        raise TransportError(f"{url}{via}: unreachable: {_esc(str(e))}") from None
    except http.client.HTTPException as e:
        raise TransportError(f"{url}{via}: not a valid HTTP answer ({_esc(repr(e))})") from None
    finally:
        # the deadline lets go before the connection closes (the response may hold it open
        # after the HTTPConnection has handed it over)
        deadline.release()
        if resp is not None:
            resp.close()
        conn.close()
    return body


def fetch_policy(domain: str, *, resolve: ResolveMap, ca_file: str | None, timeout: float = 10,
                 default_address: str | None = None) -> str:
    """GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt as RFC 8461 §3.3 senders do: verified
    certificate for mta-sts.DOMAIN (system store, or only ca_file), no redirects, only 200 with
    text/plain, at most 64 KiB. Connects to the --resolve mapping for (mta-sts.DOMAIN, 443), else to
    default_address:443, else to what the system resolves. Raises TransportError."""
    host = f"mta-sts.{_norm_name(domain)}"
    url = f"https://{host}{POLICY_PATH}"
    target = resolve.get((host, 443))
    if target is None:
        target = (default_address, 443) if default_address else (host, 443)
    via = "" if target == (host, 443) else f" (via {_hostport(*target)})"
    context = _verifying_context(ca_file, check_hostname=True)
    deadline = _Deadline(SESSION_FACTOR * timeout)
    conn = _PinnedHTTPSConnection(host, target, context, timeout, deadline)
    slow = TransportError(f"{url}{via}: did not answer within {deadline.seconds:g} s in all "
                          "(it sends too slowly)")
    try:
        body = _get_policy(conn, deadline, url, via, host, ca_file, timeout)
    except TransportError:
        if deadline.expired:
            raise slow from None
        raise
    if deadline.expired:  # a body cut short at the deadline is no policy
        raise slow
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise TransportError(f"{url}{via}: the policy is not UTF-8 text") from None


def _policy_lines(text: str) -> list[tuple[str, str]]:
    """Non-empty lines as (key, value), stripped; mx values lower-cased without a trailing dot."""
    out = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw.strip():
            continue
        key, _, value = raw.partition(":")
        key, value = key.strip(), value.strip()
        if key == "mx":
            value = _norm_name(value)
        out.append((key, value))
    return out


def _policy_diff(served: str, rendered: str) -> list[str]:
    got, want = _policy_lines(served), _policy_lines(rendered)
    diffs: list[str] = []
    single = [k for k, _ in want if k != "mx"]
    for key in dict.fromkeys(single):
        have = [v for k, v in got if k == key]
        need = [v for k, v in want if k == key]
        if have != need:
            shown = ", ".join(_q(v) for v in have) or "missing"
            diffs.append(f"{key} is {shown}, expected {_q(need[0]) if need else 'none'}")
    have_mx = [v for k, v in got if k == "mx"]
    need_mx = [v for k, v in want if k == "mx"]
    missing = [m for m in need_mx if m not in have_mx]
    extra = [m for m in have_mx if m not in need_mx]
    if missing:
        diffs.append("missing mx: " + ", ".join(_esc(m) for m in missing))
    if extra:
        diffs.append("extra mx: " + ", ".join(_esc(m) for m in extra))
    known = {*single, "mx"}
    for key, value in got:
        if key not in known:
            diffs.append(f"extra line {_q(f'{key}: {value}')}")
    return diffs


def policy_checks(domain: str, served: str | None, rendered: str, nodes: Sequence[str], *,
                  fetch_error: str = "") -> list[Finding]:
    """Check the served MTA-STS policy: it parses (checkdmarc), equals the rendered one (normalised
    lines), covers every node (an `mx:` line or a matching `*.` wildcard), and uses CRLF line ends.
    served=None means it could not be fetched; fetch_error says why."""
    domain = _norm_name(domain)
    url = f"https://mta-sts.{domain}{POLICY_PATH}"
    deploy = (f"serve build/mta-sts/{domain}{POLICY_PATH} (written by `pmgdns render`) at "
              f"{url}")
    if served is None:
        why = f": {fetch_error}" if fetch_error else ""
        return [Finding(FAIL, "MTA-STS policy", f"could not fetch {url}{why}", deploy)]
    try:
        parsed = parse_mta_sts_policy(served)["policy"]
    except MTASTSPolicySyntaxError as e:
        return [Finding(FAIL, "MTA-STS policy", f"the served policy does not parse: {_esc(str(e))}",
                        deploy, observed=_esc(served))]
    out: list[Finding] = []
    diffs = _policy_diff(served, rendered)
    if diffs:
        out.append(Finding(FAIL, "MTA-STS policy",
                           "the served policy differs from the rendered one: " + "; ".join(diffs),
                           deploy + "; the _mta-sts id in DNS names the rendered policy",
                           observed=_esc(served), expected=_esc(rendered)))
    else:
        out.append(Finding(OK, "MTA-STS policy",
                           f"served policy equals the rendered one (mode {parsed['mode']}, "
                           f"max_age {parsed['max_age']}, {len(parsed['mx'])} mx)"))
    patterns = [_norm_name(p) for p in parsed["mx"]]
    uncovered = [n for n in (_norm_name(x) for x in nodes)
                 if not mx_in_mta_sts_patterns(n, patterns)]
    if uncovered:
        enforce = parsed["mode"] == "enforce"
        listed = ", ".join(_esc(p) for p in patterns) or "none"
        out.append(Finding(
            FAIL if enforce else WARN, "MTA-STS mx",
            f"the policy's mx lines ({listed}) do not cover {', '.join(uncovered)}"
            + ("; enforcing senders will not deliver to it" if enforce else ""),
            deploy, observed=listed, expected=", ".join(nodes)))
    else:
        out.append(Finding(OK, "MTA-STS mx", f"covers {', '.join(_norm_name(n) for n in nodes)}"))
    if "\n" in served.replace("\r\n", ""):
        out.append(Finding(
            WARN, "MTA-STS line ends",
            "the served policy has LF line ends; RFC 8461 §3.2 says CRLF-separated (most senders "
            "accept LF)", deploy + " unchanged (it has CRLF line ends; upload it in binary mode)"))
    else:
        out.append(Finding(OK, "MTA-STS line ends", "CRLF"))
    return out


def mta_sts_checks(domain: str, rendered: str, nodes: Sequence[str], *, resolve: ResolveMap,
                   ca_file: str | None, timeout: float = 10,
                   default_address: str | None = None) -> list[Finding]:
    """fetch_policy and policy_checks together: a fetch failure becomes one FAIL finding."""
    try:
        served: str | None = fetch_policy(domain, resolve=resolve, ca_file=ca_file,
                                          timeout=timeout, default_address=default_address)
        error = ""
    except TransportError as e:
        served, error = None, str(e)
    return policy_checks(domain, served, rendered, nodes, fetch_error=error)
