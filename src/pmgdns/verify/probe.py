"""The `Probe` of a verify run: one dnspython resolver asked for every (name, type) once, and the
SMTP and MTA-STS policy checkers behind the families' transport checks."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.resolver

from ..core.errors import UsageError
from ..families.checking import Check, Delegation, VerifyOptions
from ..spec.model import Domain, Gateway, Site, zone_of
from ..spec.values import shown
from ..zones.records import domain_records
from .delegation import delegation, parent_zone
from .policy import mta_sts_checks
from .prefetch import prefetch
from .session import Finding, connect_address
from .smtp import smtp_checks


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
    # domain, checkdmarc asks again what pmgdns asked); answers live for their TTL. Bounded:
    # a fleet's answers pass through it a batch of domains at a time (`DnsProbe.prefetch`),
    # and each answer keeps its whole message (about 3 KiB)
    resolver.cache = dns.resolver.LRUCache(CACHED_ANSWERS)
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
        raise UsageError(f"--nameserver {shown(text)}: give an IP address, optionally with :PORT "
                         "(e.g. 127.0.0.1:5353 or [::1]:53)") from None
    if not 0 < port < 65536:
        raise UsageError(f"--nameserver {shown(text)}: the port must be 1-65535")
    scope = host.partition("%")[2]
    if scope and not scope.isdigit():  # a zone index names a network interface of this host
        try:
            socket.if_nametoindex(scope)
        except OSError:
            raise UsageError(f"--nameserver {shown(text)}: this host has no network interface "
                             f"`{shown(scope)}` (the zone index, after %); name one of its "
                             "interfaces (`ip link`), e.g. fe80::1%eth0") from None
    return host, port


CACHED_ANSWERS = 8_000  # a batch's answers (`BATCH` domains, ~5 to 10 each) and the shared ones
BATCH = 500  # domains whose questions are asked together, then checked, then forgotten
CNAME_HOPS = 8  # a receiver gives up on longer chains, and so does verify


@dataclass
class DnsProbe:
    """The DNS as verify sees it, the spec it checks against, and what else it may do."""

    site: Site
    resolver: dns.resolver.Resolver
    options: VerifyOptions = field(default_factory=VerifyOptions)
    # answers of this run, empty ones included (the resolver's cache keeps positive ones)
    _seen: dict[tuple[str, str], list[Any]] = field(default_factory=dict, repr=False)
    # per spec zone: the random label whose answers are the wildcard's
    _labels: dict[str, str] = field(default_factory=dict, repr=False)
    # names whose answer the wildcard synthesised: name -> what to say
    _placed: dict[str, str] = field(default_factory=dict, repr=False)
    # zones seen from their parents, and the parents that could not be asked
    _views: dict[str, Delegation | None] = field(default_factory=dict, repr=False)
    _parents: dict[str, str | None] = field(default_factory=dict, repr=False)
    unasked: set[str] = field(default_factory=set, repr=False)

    def _lookup(self, name: str, rtype: str) -> list[Any]:
        """The rdatas at (name, type), CNAMEs followed as a receiver follows them, also when
        the server answers only the first link (an authoritative server, a chain into another
        zone)."""
        key = (name.lower(), rtype)
        if key in self._seen:
            return self._seen[key]
        found: list[Any] = []
        qname = name
        for _ in range(CNAME_HOPS):
            try:
                answer = self.resolver.resolve(qname, rtype, raise_on_no_answer=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
                break
            if answer.rrset is not None:
                found = list(answer.rrset)
                break
            end = answer.canonical_name
            if rtype == "CNAME" or end == answer.qname:
                break
            qname = end.to_text()
        self._seen[key] = found
        return found

    def _label(self, zone: str) -> str:
        return self._labels.setdefault(zone, f"pmgdns-{secrets.token_hex(5)}")

    def _synthesised(self, name: str, rtype: str, found: list[Any]) -> str | None:
        """The spec zone whose wildcard answered `name` in place of a missing record: a random
        name below the zone answers the same, and so does one beside `name` (RFC 4592: the
        wildcard at the closest encloser speaks for every name that does not exist)."""
        fqdn = name.rstrip(".").lower()
        zone = zone_of(fqdn, self.site.domains)
        if zone is None or fqdn == zone or fqdn.startswith("*."):
            return None
        label = self._label(zone)
        first, parent = fqdn.split(".", 1)
        if first == label:
            return None
        values = {r.to_text() for r in found}
        if {r.to_text() for r in self._lookup(f"{label}.{zone}.", rtype)} != values:
            return None
        if parent != zone and {r.to_text() for r in
                               self._lookup(f"{label}.{parent}.", rtype)} != values:
            return None
        return zone

    def rrset(self, name: str, rtype: str, published: bool = True) -> list[Any]:
        found = self._lookup(name, rtype)
        if found and published:
            zone = self._synthesised(name, rtype, found)
            if zone is not None:
                shown = " | ".join(sorted(_text(r) for r in found))
                self._placed[name.rstrip(".").lower()] = (
                    f"; the wildcard *.{zone} answers in its place ({rtype} {shown})")
                return []
        return found

    def prefetch(self, domains: Sequence[Domain]) -> int:
        """Ask, all at once, what the checks of `domains` will ask first: every (name, type)
        the spec publishes in their zones and the wildcard's answer below each zone. The answers
        wait in the resolver's cache; the checks ask as they always do."""
        questions: list[tuple[str, str]] = []
        for domain in domains:
            zone = domain.zone
            label = self._label(zone.rstrip(".").lower())
            questions.append((f"{label}.{zone}", "TXT"))
            for record in domain_records(self.site, domain):
                name = record.fqdn
                if name.startswith("*."):
                    name = f"{label}.{name[2:]}"
                questions.append((name, record.type))
        return prefetch(self.resolver, questions)

    def forget(self, domains: Sequence[Domain]) -> None:
        """Drop what this run learnt inside the zones of `domains` (their checks are done), so
        a fleet's run holds a batch's answers at a time, not every answer of the run."""
        zones = {d.zone.lower() for d in domains}
        names = {z.rstrip(".") for z in zones}

        def inside(name: str) -> bool:
            fqdn = name if name.endswith(".") else f"{name}."
            while fqdn:
                if fqdn in zones:
                    return True
                fqdn = fqdn.split(".", 1)[1] if "." in fqdn else ""
            return False

        for key in [k for k in self._seen if inside(k[0])]:
            del self._seen[key]
        for name in [n for n in self._placed if inside(n)]:
            del self._placed[name]
        for zone in names:
            self._labels.pop(zone, None)
        for zone in zones:
            self._views.pop(zone, None)

    def in_its_place(self, name: str) -> str:
        return self._placed.get(name.rstrip(".").lower(), "")

    def wildcard(self, zone: str) -> tuple[str, list[str]]:
        zone = zone.rstrip(".").lower()
        name = f"{self._label(zone)}.{zone}."
        return name, sorted(_text(r) for r in self._lookup(name, "TXT"))

    def txt(self, name: str) -> list[str]:
        return sorted(_text(r) for r in self.rrset(name, "TXT"))

    def addresses(self, name: str, published: bool = True) -> set[str]:
        return {r.address for t in ("A", "AAAA") for r in self.rrset(name, t, published)}

    def cname(self, name: str) -> str | None:
        found = self.rrset(name, "CNAME")
        return str(found[0].target) if found else None

    def delegation(self, domain: Domain) -> Delegation | None:
        zone = domain.zone
        if zone in self._views:
            return self._views[zone]
        above = zone.split(".", 1)[1] or "."
        if above not in self._parents:
            self._parents[above] = parent_zone(self.resolver, zone)
        parent = self._parents[above]
        view = None if parent is None else delegation(self.resolver, self.site, domain, parent)
        if view is None:
            self.unasked.add(parent or above)
        self._views[zone] = view
        return view

    def smtp_checks(self, family: str, node: Gateway, tlsa: Sequence[str]) -> list[Check]:
        out: list[Check] = []
        for address in node.addresses:
            host, port = connect_address(node.hostname, 25, address, self.options.resolve)
            found = smtp_checks(node.hostname, host, port, ca_file=self.options.ca_file,
                                tlsa=tlsa, now=datetime.now(UTC), timeout=self.resolver.lifetime)
            out.extend(_checks(node.fqdn, family, found))
            if (node.hostname, 25) in self.options.resolve:
                break  # one mapped destination: the same server for every address
        return out

    def policy_checks(self, family: str, domain: Domain, rendered: str,
                      address: str | None) -> list[Check]:
        nodes = [n.hostname for n in self.site.nodes_for(domain)]
        found = mta_sts_checks(domain.name, rendered, nodes, resolve=self.options.resolve,
                               ca_file=self.options.ca_file, default_address=address,
                               timeout=self.resolver.lifetime)
        return _checks(domain.name, family, found)


def _text(rdata: Any) -> str:
    """A TXT value with its strings joined; any other rdata as DNS presents it."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata.to_text())


def _checks(subject: str, family: str, findings: Sequence[Finding]) -> list[Check]:
    return [Check(subject, family, f.check, f.status, f.message, f.fix, f.observed, f.expected)
            for f in findings]
