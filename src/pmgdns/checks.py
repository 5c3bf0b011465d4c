"""What the record families' `verify` checks are made of: a `Check` result, and a `Probe` that
asks the DNS (one resolver, answers turned into plain values)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.resolver

from .errors import UsageError
from .model import Site

OK, WARN, FAIL = "OK", "WARN", "FAIL"
APPLY = "run `pmgdns apply`"


@dataclass(frozen=True)
class Check:
    """One verify result. `subject` is a domain or a gateway node (FQDN); `family` the record
    family that checked; `observed`/`expected` what the DNS answered and what the spec wants."""

    subject: str
    family: str
    check: str
    status: str
    message: str
    fix: str = ""
    observed: str = ""
    expected: str = ""

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "family": self.family, "check": self.check,
                "status": self.status, "message": self.message, "fix": self.fix,
                "observed": self.observed, "expected": self.expected}


def make_resolver(nameserver: str | None, timeout: float = 5.0) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only HOST[:PORT] (IPv6 as [addr]:port)."""
    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = split_hostport(nameserver)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    # one verify run asks each (name, type) once (the gateway's addresses are asked for every
    # domain, checkdmarc asks again what pmgdns asked); answers live for their TTL
    resolver.cache = dns.resolver.LRUCache(200_000)
    return resolver


def split_hostport(text: str) -> tuple[str, int]:
    host, port_text = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise UsageError(f"--nameserver {text}: give an IP address, optionally with :PORT "
                         "(e.g. 127.0.0.1:5353 or [::1]:53)") from None
    if not 0 < port < 65536:
        raise UsageError(f"--nameserver {text}: the port must be 1-65535")
    return host, port


@dataclass(frozen=True)
class VerifyOptions:
    """What verify does beyond DNS: `smtp` connects to each node on port 25; `resolve` maps
    (name, port) to the (address, port) to connect to instead; `ca_file` replaces the system's
    trust store for SMTP and HTTPS."""

    smtp: bool = False
    resolve: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    ca_file: str | None = None


@dataclass
class Probe:
    """The DNS as verify sees it, the spec it checks against, and what else it may do."""

    site: Site
    resolver: dns.resolver.Resolver
    options: VerifyOptions = field(default_factory=VerifyOptions)
    # answers of this run, empty ones included (the resolver's cache keeps positive ones)
    _seen: dict[tuple[str, str], list[Any]] = field(default_factory=dict, repr=False)

    def rrset(self, name: str, rtype: str) -> list[Any]:
        key = (name.lower(), rtype)
        if key in self._seen:
            return self._seen[key]
        try:
            answer = self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            self._seen[key] = []
            return []
        rrset = answer.rrset
        # a CNAME chain answers for another name; callers that care check CNAME themselves
        found = [] if rrset is None else list(rrset)
        self._seen[key] = found
        return found

    def txt(self, name: str) -> list[str]:
        return sorted(b"".join(r.strings).decode("utf-8", "replace")
                      for r in self.rrset(name, "TXT"))

    def addresses(self, name: str) -> set[str]:
        return {r.address for t in ("A", "AAAA") for r in self.rrset(name, t)}

    def cname(self, name: str) -> str | None:
        found = self.rrset(name, "CNAME")
        return str(found[0].target) if found else None
