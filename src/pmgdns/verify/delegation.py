"""The DNS around a zone, asked from its parent down (spec-v1 §7.3): which name servers the parent
delegates the zone to (and its DS), whether they answer for it, the NS set the zone's target
serves, and the zone's keys and signatures as its servers give them.

Asked once per zone. The parent's and the child's servers are asked directly (no recursion, port
53), as a resolver finds them; their names and addresses through verify's resolver. Addresses
reserved for documentation (RFC 5737, RFC 3849), where no server can be, are never asked.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from ..families.checking import Delegation
from ..spec.model import Domain, Site

TARGET_CLASSES = ("Rfc2136Provider",)  # targets that are a name server pmgdns can ask


def parent_zone(resolver: dns.resolver.Resolver, zone: str) -> str | None:
    """The zone above `zone` as verify's resolver sees it; None when the resolver refuses or does
    not answer for it (an authoritative-only server, a resolver cut off)."""
    name = dns.name.from_text(zone)
    if len(name) <= 1:
        return None
    try:
        return str(dns.resolver.zone_for_name(name.parent(), resolver=resolver,
                                              lifetime=resolver.lifetime))
    except (dns.exception.DNSException, OSError):
        return None


DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


def askable(address: str) -> bool:
    """Can a name server be at `address`? Not in the documentation ranges, not unspecified,
    multicast or reserved."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    return not (ip.is_unspecified or ip.is_multicast or ip.is_reserved
                or any(ip in net for net in DOCUMENTATION if net.version == ip.version))


def _addresses(resolver: dns.resolver.Resolver, host: str,
               glue: dict[str, list[str]]) -> list[str]:
    found = list(glue.get(host.lower(), []))
    if not found:
        for rtype in ("A", "AAAA"):
            try:
                answer = resolver.resolve(host, rtype, raise_on_no_answer=False)
            except dns.exception.DNSException:
                continue
            found += [r.address for r in answer.rrset or []]
    return [a for a in found if askable(a)]


def _ask(address: str, name: str, rtype: str, timeout: float, port: int = 53,
         dnssec: bool = False) -> dns.message.Message | None:
    """One question without recursion; None when the server does not answer."""
    query = dns.message.make_query(name, rtype, want_dnssec=dnssec)
    query.flags &= ~dns.flags.RD
    try:
        response = dns.query.udp(query, address, port=port, timeout=timeout)
        if response.flags & dns.flags.TC:
            response = dns.query.tcp(query, address, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError, ValueError):
        return None
    return response


def _find(response: dns.message.Message, section: Any, name: str, rtype: str,
          covers: str | None = None) -> Any:
    try:
        return response.find_rrset(section, dns.name.from_text(name), dns.rdataclass.IN,
                                   dns.rdatatype.from_text("RRSIG" if covers else rtype),
                                   dns.rdatatype.from_text(covers) if covers
                                   else dns.rdatatype.NONE)
    except KeyError:
        return None


def _names(rrset: Any) -> tuple[str, ...]:
    return tuple(sorted({str(r.target).lower() for r in rrset})) if rrset is not None else ()


def target_server(site: Site, domain: Domain) -> tuple[str, str, int] | None:
    """(target name, address, port) of the first target of `domain` that is a name server
    pmgdns updates (RFC 2136), when its address is given literally."""
    for target in domain.targets:
        conf = site.providers.get(target) or {}
        if not str(conf.get("class", "")).endswith(TARGET_CLASSES):
            continue
        host, port = str(conf.get("host", "")), conf.get("port", 53)
        try:
            ipaddress.ip_address(host)
            return target, host, int(port)
        except (ValueError, TypeError):
            continue
    return None


def delegation(resolver: dns.resolver.Resolver, site: Site, domain: Domain,
               parent: str) -> Delegation | None:
    """The zone of `domain` seen from `parent`; None when no server of the parent answers."""
    zone = domain.zone
    timeout = min(resolver.timeout, 3.0)
    try:
        parent_ns = _names(resolver.resolve(parent, "NS").rrset)
    except dns.exception.DNSException:
        return None
    referral = asked = None
    for host in parent_ns:
        for address in _addresses(resolver, host, {}):
            response = _ask(address, zone, "NS", timeout)
            if response is not None and response.rcode() in (dns.rcode.NOERROR,
                                                              dns.rcode.NXDOMAIN):
                referral, asked = response, address
                break
        if referral is not None:
            break
    if referral is None or asked is None:
        return None
    target = target_server(site, domain)
    where = f"{target[0]} ({target[1]}:{target[2]})" if target else ", ".join(domain.targets)
    if referral.rcode() == dns.rcode.NXDOMAIN:
        return Delegation(parent, registered=False, target=where)
    ns = (_find(referral, referral.authority, zone, "NS")
          or _find(referral, referral.answer, zone, "NS"))
    if ns is None:
        return Delegation(parent, registered=False, target=where, nxdomain=False)
    glue: dict[str, list[str]] = {}
    for rrset in referral.additional:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            glue.setdefault(str(rrset.name).lower(), []).extend(r.address for r in rrset)
    ds_response = _ask(asked, zone, "DS", timeout, dnssec=True)
    ds = _find(ds_response, ds_response.answer, zone, "DS") if ds_response else None
    delegated = _names(ns)
    lame: list[tuple[str, str]] = []
    first: str | None = None
    soa: dns.message.Message | None = None  # the first authoritative answer, RRSIGs included
    for host in delegated:
        addresses = _addresses(resolver, host, glue)
        if not addresses:
            lame.append((host, "has no address"))
            continue
        why = ""
        for address in addresses:
            answer = _ask(address, zone, "SOA", timeout, dnssec=True)
            if answer is None:
                why = f"{address} does not answer"
            elif answer.rcode() != dns.rcode.NOERROR:
                why = f"{address} answers {dns.rcode.to_text(answer.rcode())}"
            elif not answer.flags & dns.flags.AA or _find(answer, answer.answer, zone,
                                                          "SOA") is None:
                why = f"{address} is not authoritative for it"
            else:
                why = ""
                if first is None:
                    first, soa = address, answer
                break
        if why:
            lame.append((host, why))
    view = Delegation(parent, registered=True, target=where, parent_ns=delegated,
                      lame=tuple(lame), ds=tuple(ds) if ds is not None else ())
    if target is not None:
        response = _ask(target[1], zone, "NS", timeout, port=target[2])
        if response is not None and response.rcode() == dns.rcode.NOERROR:
            view.target_ns = _names(_find(response, response.answer, zone, "NS"))
    if first is None or soa is None:
        return view
    if view.target_ns is None:  # compared with what the delegated servers serve instead
        served = _ask(first, zone, "NS", timeout)
        if served is not None:
            view.served_ns = _names(_find(served, served.answer, zone, "NS"))
    keys = _ask(first, zone, "DNSKEY", timeout, dnssec=True)
    if keys is not None:
        view.dnskey = _find(keys, keys.answer, zone, "DNSKEY")
        view.dnskey_sigs = _find(keys, keys.answer, zone, "", covers="DNSKEY")
    view.soa = _find(soa, soa.answer, zone, "SOA")
    view.soa_sigs = _find(soa, soa.answer, zone, "", covers="SOA")
    return view
