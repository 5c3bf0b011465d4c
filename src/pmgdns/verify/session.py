"""What the verify checkers that talk to servers share: a `Finding`, network data escaped for
one line of a terminal, `--resolve` mappings, TLS contexts and a session deadline.

Nothing here resolves a name on its own initiative: every connection goes to the address the caller
gives (a `--resolve NAME:PORT:ADDRESS:PORT` mapping, or the address the spec publishes), while the
TLS server name (SNI), the certificate checks and the HTTP Host header stay the real name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..core.errors import TransportError

OK, WARN, FAIL = "OK", "WARN", "FAIL"

MAX_SHOWN = 160  # characters of network data quoted in one message

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


def escape(text: str | bytes, limit: int = MAX_SHOWN) -> str:
    """Network data made safe for one line of a terminal: every character that is not printable
    (control characters, bidi overrides, newlines) and the backslash are written as Python escapes;
    long values are cut."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    cut = len(text) > limit
    text = text[:limit]
    out = "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
    return out + "…" if cut else out


def quote(text: str | bytes, limit: int = MAX_SHOWN) -> str:
    return f"'{escape(text, limit)}'"


def norm_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- --resolve ---------------------------------------------------------------------------------

_RESOLVE = re.compile(r"([^:\[\]]+):([0-9]+):(?:\[([^\]]+)\]|([^:\[\]]+)):([0-9]+)")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _port(text: str, entry: str, which: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise TransportError(f"--resolve {quote(entry)}: {which} {port} is not a port (1-65535)")
    return port


def parse_resolve(entries: Sequence[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """curl-like `NAME:PORT:ADDRESS:PORT` mappings: connections for NAME:PORT go to ADDRESS:PORT
    (an IP address; IPv6 in [brackets]). Names are lower-cased, a trailing dot is dropped."""
    out: dict[tuple[str, int], tuple[str, int]] = {}
    for entry in entries:
        m = _RESOLVE.fullmatch(entry.strip())
        if m is None:
            raise TransportError(
                f"--resolve {quote(entry)}: expected NAME:PORT:ADDRESS:PORT, e.g. "
                "mx1.example.com:25:192.0.2.25:25 (an IPv6 address in [brackets])"
            )
        name = norm_name(m.group(1))
        if _HOSTNAME.fullmatch(name) is None:
            raise TransportError(f"--resolve {quote(entry)}: {quote(m.group(1))} "
                                 "is not a host name")
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
                f"--resolve {quote(entry)}: {quote(raw)} is not an IP address "
                "(IPv4, or IPv6 in [brackets])"
            ) from None
        if (name, port) in out and out[(name, port)] != (address, to_port):
            raise TransportError(f"--resolve {quote(entry)}: {name}:{port} is mapped twice")
        out[(name, port)] = (address, to_port)
    return out


def connect_address(name: str, port: int, default: str, resolve: ResolveMap) -> tuple[str, int]:
    """Where a connection for name:port goes: the --resolve mapping if there is one, else
    (default, port)."""
    return resolve.get((norm_name(name), port), (default, port))


# --- TLS contexts ------------------------------------------------------------------------------

def trust_store(ca_file: str | None) -> str:
    return "the system's trust store" if ca_file is None else f"--ca-file {ca_file}"


def verifying_context(ca_file: str | None, *, check_hostname: bool) -> ssl.SSLContext:
    """Certificate verification against the system's trust store, or only ca_file when given."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ValueError) as e:
        raise TransportError(f"--ca-file {ca_file}: cannot load it as PEM certificates: "
                             f"{escape(str(e))}") from None
    context.check_hostname = check_hostname
    return context


def reporting_context() -> ssl.SSLContext:
    """No verification at all: used ONLY to read the certificate a node presents so that the name,
    TLSA and expiry checks can report on it after the verified handshake failed. Nothing learnt over
    such a connection is trusted."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Failed(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding

SESSION_FACTOR = 3  # a whole SMTP session or policy fetch may take this many --timeouts


class Deadline:
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

