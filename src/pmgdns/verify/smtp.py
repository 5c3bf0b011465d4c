"""What a sending server sees on port 25: STARTTLS offered, and the certificate the node presents
covers its name, chains to a trusted root, matches a published TLSA record and is not about to
expire."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from ..core.text import plural
from ..spec.certs import cert_spki
from .session import (
    FAIL,
    OK,
    SESSION_FACTOR,
    WARN,
    Deadline,
    Failed,
    Finding,
    escape,
    hostport,
    norm_name,
    quote,
    reporting_context,
    trust_store,
    verifying_context,
)
from .tlsa import Tlsa, parse_tlsa, tlsa_finding

# --- SMTP --------------------------------------------------------------------------------------

class _Greeting(Exception):
    """The server answered the connection with something other than a 220 greeting."""

    def __init__(self, first_bytes: bytes, code: int) -> None:
        super().__init__(code)
        self.first_bytes = first_bytes
        self.code = code

REPLY_MAX_BYTES = 64 * 1024  # all SMTP replies of one session together (a large EHLO is ~1 KiB)


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
                 deadline: Deadline) -> None:
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


def _connect_fail(where: str, what: str, fix: str) -> Failed:
    return Failed(Finding(FAIL, "SMTP connection", f"{where}: {what}", fix, observed=what))


_CONNECT_FIX = ("check that the node's MTA listens on that port and address and that no firewall "
                "blocks 25/tcp from here (or correct the --resolve mapping)")


def _starttls(node: str, address: str, port: int, context: ssl.SSLContext,
              timeout: float) -> _Handshake:
    """Greeting, EHLO, STARTTLS and the TLS handshake with SNI = node, within SESSION_FACTOR
    timeouts in all. Raises Failed with the one finding that ends the check, or
    ssl.SSLCertVerificationError when `context` rejects the chain."""
    deadline = Deadline(SESSION_FACTOR * timeout)
    try:
        return _session(node, address, port, context, timeout, deadline)
    except (Failed, ssl.SSLError):
        if not deadline.expired:
            raise
        raise _connect_fail(f"{node} at {hostport(address, port)}",
                            f"did not finish greeting, EHLO and STARTTLS within "
                            f"{deadline.seconds:g} s (it answers too slowly)",
                            _CONNECT_FIX) from None
    finally:
        deadline.release()


def _session(node: str, address: str, port: int, context: ssl.SSLContext, timeout: float,
             deadline: Deadline) -> _Handshake:
    where = f"{node} at {hostport(address, port)}"
    try:
        smtp = _NodeSMTP(node, port, (address, port), timeout, deadline)
    except ConnectionRefusedError:
        raise _connect_fail(where, "connection refused", _CONNECT_FIX) from None
    except TimeoutError:
        raise _connect_fail(where, f"no greeting within {timeout:g} s (timed out)",
                            _CONNECT_FIX) from None
    except _Greeting as g:
        first = g.first_bytes.split(b"\n", 1)[0].rstrip(b"\r")
        what = (f"does not greet like an SMTP server (it sent {quote(first)})" if g.code < 100 else
                f"greets with {quote(first)}, not 220 (the server refuses this session)")
        raise _connect_fail(where, what, "check that this address:port is the node's SMTP "
                            "service (port 25), not another service") from None
    except smtplib.SMTPServerDisconnected:
        raise _connect_fail(where, "closed the connection without an SMTP greeting",
                            _CONNECT_FIX) from None
    except (OSError, smtplib.SMTPException) as e:
        raise _connect_fail(where, f"cannot connect: {escape(str(e))}", _CONNECT_FIX) from None
    try:
        code, reply = smtp.ehlo()
        if code != 250:
            raise Failed(Finding(FAIL, "STARTTLS", f"{where} refuses EHLO: {code} {quote(reply)}",
                                  "check the MTA's smtpd restrictions for EHLO"))
        if not smtp.has_extn("starttls"):
            raise Failed(Finding(
                FAIL, "STARTTLS", f"no STARTTLS offered by {where}",
                "enable TLS for incoming mail (PMG: Mail Proxy → TLS; plain Postfix: "
                "smtpd_tls_security_level = may) with a certificate for the node's name",
                observed="no STARTTLS in the EHLO reply", expected="STARTTLS"))
        try:
            smtp.starttls(context=context)
        except smtplib.SMTPResponseException as e:
            raise Failed(Finding(
                FAIL, "STARTTLS", f"{where} offers STARTTLS but answers it with {e.smtp_code} "
                f"{quote(e.smtp_error)}", "check the MTA's TLS certificate and key settings")
            ) from None
        sock = smtp.sock
        leaf = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        if not isinstance(sock, ssl.SSLSocket) or not leaf:
            raise Failed(Finding(FAIL, "STARTTLS", f"{where} presents no certificate",
                                  "configure a certificate for the node's name in the MTA"))
        return _Handshake(leaf, f"{sock.version()} {(sock.cipher() or ('?',))[0]}")
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as e:
        raise Failed(Finding(FAIL, "STARTTLS", f"TLS handshake with {where} failed: "
                              f"{escape(e.reason or str(e))}",
                              "check the MTA's TLS settings (protocols, ciphers, certificate)")
                      ) from None
    except TimeoutError:
        raise Failed(Finding(FAIL, "STARTTLS", f"{where} stopped answering (timed out after "
                              f"{timeout:g} s)", _CONNECT_FIX)) from None
    except (OSError, smtplib.SMTPException) as e:
        raise Failed(Finding(FAIL, "STARTTLS", f"the SMTP session with {where} broke: "
                              f"{escape(str(e))}", _CONNECT_FIX)) from None
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
    pattern, name = norm_name(pattern), norm_name(name)
    if pattern.startswith("*."):
        rest = pattern[2:]
        label, dot, tail = name.partition(".")
        return bool(label) and bool(dot) and "." in rest and tail == rest
    return pattern == name


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _chain_finding(chain_error: str | None, ca_file: str | None) -> Finding:
    if chain_error is None:
        return Finding(OK, "certificate chain", f"chains to a root in {trust_store(ca_file)}")
    return Finding(
        FAIL, "certificate chain",
        f"does not verify against {trust_store(ca_file)}: {escape(chain_error)}",
        "serve the full chain (certificate and intermediates) from a CA that senders trust, "
        "e.g. Let's Encrypt through PMG's ACME; for a private CA pass --ca-file",
        observed=escape(chain_error))


def _certificate_findings(node: str, leaf: bytes, chain_error: str | None, ca_file: str | None,
                          tlsa: Sequence[Tlsa], now: datetime, warn_days: int) -> list[Finding]:
    try:
        cert = x509.load_der_x509_certificate(leaf)
        names = _cert_names(cert)
        spki = cert_spki(cert)
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        return [Finding(FAIL, "certificate", f"the certificate {node} presents does not parse: "
                        f"{escape(str(e))}", "install a valid certificate for the node")]
    out: list[Finding] = []
    shown = ", ".join(escape(n) for n in names) or "no names"
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
        out.append(tlsa_finding(leaf, spki, tlsa))
    out.append(_expiry_finding(not_before, not_after, now, warn_days))
    return out


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
                       f"expired on {_when(not_after)} ({plural(days, 'day')} ago)", fix,
                       observed=_when(not_after))
    left = not_after - now
    if left < timedelta(days=warn_days):
        return Finding(WARN, "certificate expiry",
                       f"expires on {_when(not_after)}, in {plural(left.days, 'day')} "
                       f"(under {warn_days})",
                       fix, observed=_when(not_after), expected=f"more than {warn_days} days")
    return Finding(OK, "certificate expiry",
                   f"valid until {_when(not_after)} ({plural(left.days, 'day')})",
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
    node = norm_name(node)
    records = [parse_tlsa(t) for t in tlsa]
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    verifying = verifying_context(ca_file, check_hostname=False)  # the name is checked below
    chain_error: str | None = None
    try:
        try:
            shake = _starttls(node, address, port, verifying, timeout)
        except ssl.SSLCertVerificationError as e:
            chain_error = e.verify_message or str(e)
            shake = _starttls(node, address, port, reporting_context(), timeout)
    except Failed as f:
        out = [f.finding]
        if chain_error is not None:  # the verified session got as far as the certificate
            out.insert(0, Finding(OK, "STARTTLS", f"offered by {node} at "
                                  f"{hostport(address, port)}"))
            out.append(_chain_finding(chain_error, ca_file))
        return out
    start = Finding(OK, "STARTTLS", f"offered by {node} at {hostport(address, port)} "
                    f"({escape(shake.tls)})", observed=escape(shake.tls))
    return [start, *_certificate_findings(node, shake.leaf, chain_error, ca_file, records, now,
                                          warn_days)]

