"""`pmgdns verify`: check what the DNS answers against the spec, reverse DNS included.

Each check is OK, WARN or FAIL with a one-line fix. SPF and DMARC records are parsed and checked
by checkdmarc (RFC 7208 lookup limits, RFC 9989 tags, RFC 9990 report authorisation); DKIM keys by
pmgdns's own key reader (cryptography). Queries for different domains run concurrently.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from . import dkim as dkimlib
from .errors import PmgdnsError
from .records import HELO_SPF, NULL_SPF, txt_kind
from .spec import Domain, Site

OK, WARN, FAIL = "OK", "WARN", "FAIL"
APPLY = "run `pmgdns apply`"


@dataclass(frozen=True)
class Check:
    subject: str  # the domain, or the gateway's name
    check: str
    status: str
    message: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "check": self.check, "status": self.status,
                "message": self.message, "fix": self.fix}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def summary(self) -> dict[str, int]:
        out = {OK: 0, WARN: 0, FAIL: 0}
        for c in self.checks:
            out[c.status] += 1
        return out


def make_resolver(nameserver: str | None, timeout: float = 5.0) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks only HOST[:PORT] (IPv6 as [addr]:port)."""
    if nameserver is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = _split_hostport(nameserver)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


def _split_hostport(text: str) -> tuple[str, int]:
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise PmgdnsError(f"--nameserver {text}: give an IP address, optionally with :PORT "
                          "(e.g. 127.0.0.1:5353 or [::1]:53)") from None
    if not 0 < port < 65536:
        raise PmgdnsError(f"--nameserver {text}: the port must be 1-65535")
    return host, port


class _Dns:
    """Small wrappers that turn DNS answers into plain values."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def rrset(self, name: str, rtype: str) -> list[Any]:
        try:
            answer = self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return []
        rrset = answer.rrset
        if rrset is None:
            return []
        # a CNAME chain answers for another name; callers that care check CNAME themselves
        return list(rrset)

    def txt(self, name: str) -> list[str]:
        return sorted(b"".join(r.strings).decode("utf-8", "replace")
                      for r in self.rrset(name, "TXT"))

    def addresses(self, name: str) -> set[str]:
        return {r.address for t in ("A", "AAAA") for r in self.rrset(name, t)}

    def cname(self, name: str) -> str | None:
        try:
            answer = self.resolver.resolve(name, "CNAME", raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        if answer.rrset is None:
            return None
        return str(answer.rrset[0].target)


def _spf_passes(parsed: dict[str, Any], address: str, dnsq: _Dns, domain: str,
                depth: int = 0) -> bool | None:
    """Does `address` pass the SPF record checkdmarc parsed? None when it cannot be decided
    without macros, `exists` or `ptr`."""
    ip = ipaddress.ip_address(address)
    if depth > 10:
        return None
    for m in parsed.get("mechanisms", []):
        kind, value = m.get("mechanism"), str(m.get("value", ""))
        matched: bool | None
        if kind in ("ip4", "ip6"):
            try:
                matched = ip in ipaddress.ip_network(value, strict=False)
            except ValueError:
                matched = False
        elif kind == "a":
            host = value.split("/")[0] or domain
            matched = address in dnsq.addresses(host)
        elif kind == "mx":
            hosts = [h.get("hostname", "") for h in m.get("hosts", [])]
            matched = any(address in dnsq.addresses(h) for h in hosts)
        elif kind == "include" and isinstance(m.get("parsed"), dict):
            matched = _spf_passes(m["parsed"], address, dnsq, value, depth + 1)
        else:
            return None
        if matched:
            return m.get("action", "pass") == "pass"
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict) and isinstance(redirect.get("parsed"), dict):
        return _spf_passes(redirect["parsed"], address, dnsq, domain, depth + 1)
    return False if parsed.get("all") in ("fail", "softfail", "neutral", None) else True


class Verifier:
    def __init__(self, site: Site, resolver: dns.resolver.Resolver) -> None:
        self.site = site
        self.resolver = resolver
        self.dns = _Dns(resolver)
        self.g = site.gateway.fqdn

    # -- SPF (checkdmarc) -----------------------------------------------------------------------

    def _spf(self, subject: str, name: str, expected: str | None, check: str) -> list[Check]:
        from checkdmarc.spf import check_spf

        values = [v for v in self.dns.txt(name) if txt_kind(v) == "v=spf1"]
        if not values:
            return [Check(subject, check, FAIL, f"no SPF record at {name}",
                          f"publish \"{expected or HELO_SPF}\" there ({APPLY})")]
        if len(values) > 1:
            return [Check(subject, check, FAIL,
                          f"{len(values)} v=spf1 values at {name}: a permerror (RFC 7208)",
                          f"keep only \"{expected}\" ({APPLY})")]
        out = []
        if expected is not None and values[0] != expected:
            out.append(Check(subject, check, FAIL, f"{name} has \"{values[0]}\", the spec "
                                                   f"publishes \"{expected}\"", APPLY))
        result = check_spf(name.rstrip("."), resolver=self.resolver,
                           timeout=self.resolver.lifetime)
        if not result.get("valid"):
            out.append(Check(subject, check, FAIL, f"{name}: {result.get('error')}",
                             "stay within 10 DNS-querying terms and 2 void lookups"))
            return out
        parsed = result.get("parsed") or {}
        for address in self.site.gateway.addresses:
            verdict = _spf_passes(parsed, address, self.dns, name.rstrip("."))
            if verdict is False:
                out.append(Check(subject, check, FAIL,
                                 f"the gateway's {address} does not pass SPF at {name}",
                                 "authorise it (e.g. `mx` or `a`) in the SPF record"))
            elif verdict is None:
                out.append(Check(subject, check, WARN,
                                 f"cannot tell whether {address} passes SPF at {name} "
                                 "(macros, exists or ptr)", "check it with a mail test"))
        if not out:
            out.append(Check(subject, check, OK,
                             f"\"{values[0]}\" ({result.get('dns_lookups')} lookups, "
                             f"{result.get('void_dns_lookups')} void)"))
        return out

    # -- gateway ----------------------------------------------------------------------------------

    def gateway_checks(self) -> list[Check]:
        g, gw = self.g, self.site.gateway
        out = []
        cname = self.dns.cname(g)
        if cname:
            out.append(Check(g, "gateway", FAIL, f"{g} is a CNAME to {cname}; MX targets must "
                                                 "not be CNAMEs (RFC 2181 §10.3)",
                             "replace the CNAME by A/AAAA records"))
            return out
        managed = self.site.gateway_zone() is not None
        fix = APPLY if managed else "publish it where the gateway's zone is hosted"
        for rtype, want in (("A", gw.ipv4), ("AAAA", gw.ipv6)):
            have = {r.address for r in self.dns.rrset(g, rtype)}
            if want is None:
                if have:
                    out.append(Check(g, rtype, WARN, f"{g} has {rtype} {', '.join(sorted(have))}"
                                                     " but the spec gives no IPv6 address",
                                     "add gateway.ipv6 to the spec, or remove the record"))
                continue
            if have == {want}:
                out.append(Check(g, rtype, OK, f"{g} {rtype} {want}"))
            else:
                got = ", ".join(sorted(have)) or "nothing"
                out.append(Check(g, rtype, FAIL, f"{g} {rtype} is {got}, the spec says {want}",
                                 fix))
        out += self._spf(g, g, HELO_SPF if managed else None, "gateway SPF")
        for address in gw.addresses:
            out.append(self._ptr(address))
        return out

    def _ptr(self, address: str) -> Check:
        g = self.g
        reverse = dns.reversename.from_address(address).to_text()
        names = [str(r.target) for r in self.dns.rrset(reverse, "PTR")]
        hint = "send the hoster the request from `pmgdns ptr-ticket`"
        if not names:
            return Check(g, "PTR", FAIL, f"{address} has no PTR record ({reverse})", hint)
        if [n.lower() for n in names] != [g.lower()]:
            return Check(g, "PTR", FAIL, f"the PTR of {address} is {', '.join(names)}, not {g}",
                         hint)
        if address not in self.dns.addresses(g):
            return Check(g, "PTR", FAIL, f"{address} -> {g}, but {g} does not resolve back to "
                                         f"{address} (forward-confirmed reverse DNS fails)",
                         APPLY)
        return Check(g, "PTR", OK, f"{address} -> {g} -> {address} (forward-confirmed)")

    # -- one domain -------------------------------------------------------------------------------

    def domain_checks(self, d: Domain) -> list[Check]:
        if d.absent:
            return []
        return (self._mx(d) + self._spf(d.name, d.zone, d.spf, "SPF") + self._wildcard(d)
                + self._dmarc(d) + self._dkim(d))

    def _mx(self, d: Domain) -> list[Check]:
        mx = sorted((r.preference, str(r.exchange)) for r in self.dns.rrset(d.zone, "MX"))
        want = [(d.mx_priority, self.g)]
        if not mx:
            return [Check(d.name, "MX", FAIL, f"{d.zone} has no MX record", APPLY)]
        out = []
        if mx != want:
            got = ", ".join(f"{p} {h}" for p, h in mx)
            out.append(Check(d.name, "MX", FAIL, f"{d.zone} MX is {got}; the spec wants "
                                                 f"{d.mx_priority} {self.g} only", APPLY))
        for _, host in mx:
            if self.dns.cname(host):
                out.append(Check(d.name, "MX", FAIL, f"the MX target {host} is a CNAME",
                                 "point the MX at a name with A/AAAA records"))
            elif not self.dns.addresses(host):
                out.append(Check(d.name, "MX", FAIL, f"the MX target {host} does not resolve",
                                 "publish its A/AAAA records"))
        return out or [Check(d.name, "MX", OK, f"{d.mx_priority} {self.g}")]

    def _wildcard(self, d: Domain) -> list[Check]:
        if not d.wildcard_spf:
            return []
        probe = f"pmgdns-{secrets.token_hex(5)}.{d.zone}"
        values = [v for v in self.dns.txt(probe) if txt_kind(v) == "v=spf1"]
        if values == [NULL_SPF]:
            return [Check(d.name, "wildcard SPF", OK, f"{probe} answers \"{NULL_SPF}\"")]
        got = ", ".join(f'"{v}"' for v in values) or "no SPF"
        return [Check(d.name, "wildcard SPF", FAIL, f"a random name ({probe}) answers {got}",
                      f"publish *.{d.zone} TXT \"{NULL_SPF}\" ({APPLY})")]

    def _dmarc(self, d: Domain) -> list[Check]:
        from checkdmarc.dmarc import (
            DMARCError,
            UnverifiedDMARCURIDestination,
            parse_dmarc_record,
            verify_dmarc_report_destination,
        )

        name = f"_dmarc.{d.zone}"
        values = [v for v in self.dns.txt(name) if txt_kind(v) == "v=DMARC1"]
        if not values:
            return [Check(d.name, "DMARC", FAIL, f"no DMARC record at {name}", APPLY)]
        if len(values) > 1:
            return [Check(d.name, "DMARC", FAIL, f"{len(values)} DMARC records at {name}; "
                                                 "receivers then ignore DMARC", APPLY)]
        out = []
        try:
            parsed = parse_dmarc_record(values[0], d.name, resolver=self.resolver,
                                        timeout=self.resolver.lifetime)
        except DMARCError as exc:
            return [Check(d.name, "DMARC", FAIL, f"{name} does not parse: {exc}", APPLY)]
        tags = parsed.get("tags", {})
        want = d.dmarc
        for tag in ("p", "sp", "np", "t", "fo", "aspf", "adkim"):
            expected = getattr(want, tag)
            entry = tags.get(tag, {})
            have = entry.get("value") if entry.get("explicit") else None
            if expected is not None and str(have) != str(expected):
                out.append(Check(d.name, "DMARC", FAIL, f"{tag}={have} at {name}, the spec "
                                                        f"says {tag}={expected}", APPLY))
        for rd in want.report_domains():
            if rd == d.name or rd.endswith("." + d.name):
                continue
            try:
                verify_dmarc_report_destination(d.name, rd, resolver=self.resolver,
                                                timeout=self.resolver.lifetime)
            except UnverifiedDMARCURIDestination:
                out.append(Check(d.name, "DMARC", FAIL,
                                 f"{rd} does not authorise reports for {d.name}",
                                 f"publish {d.name}._report._dmarc.{rd}. TXT \"v=DMARC1\""))
        return out or [Check(d.name, "DMARC", OK, values[0])]

    def _dkim(self, d: Domain) -> list[Check]:
        name = f"{self.site.dkim.selector}._domainkey.{d.zone}"
        values = [v for v in self.dns.txt(name) if txt_kind(v) == "v=DKIM1"]
        if len(values) != 1:
            what = "no DKIM key" if not values else f"{len(values)} DKIM keys"
            return [Check(d.name, "DKIM", FAIL, f"{what} at {name}", APPLY)]
        try:
            key = dkimlib.from_record_text(values[0])
        except dkimlib.DkimKeyError as exc:
            return [Check(d.name, "DKIM", FAIL, f"{name}: {exc}", APPLY)]
        if key.p != self.site.dkim.key.p:
            return [Check(d.name, "DKIM", FAIL, f"the key at {name} is not the spec's key "
                                                "(PMG would sign with a key receivers cannot "
                                                "verify)", APPLY)]
        problem = dkimlib.strength_problem(key)
        if problem:
            status = FAIL if problem[0] == "error" else WARN
            return [Check(d.name, "DKIM", status, problem[1], "generate a 2048-bit key in PMG")]
        return [Check(d.name, "DKIM", OK, f"{name} ({key.algorithm}, {key.bits} bits)")]


def verify(site: Site, domains: Iterable[str], resolver: dns.resolver.Resolver,
           workers: int = 16, progress: Callable[[int, int], None] | None = None) -> Report:
    """Run every check; the domains' checks concurrently."""
    v = Verifier(site, resolver)
    chosen = [site.domains[d] for d in domains]
    report = Report()
    if site.gateway_zone() is None:
        report.notes.append(f"{site.gateway.hostname} lies in none of the spec's domains: pmgdns "
                            "does not publish its A/AAAA and SPF; they were checked all the same")
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            gateway = pool.submit(v.gateway_checks)
            futures = [pool.submit(v.domain_checks, d) for d in chosen]
            report.checks.extend(gateway.result())
            for i, f in enumerate(futures, 1):
                report.checks.extend(f.result())
                if progress:
                    progress(i, len(futures))
    except dns.exception.Timeout:
        raise PmgdnsError("DNS queries timed out: check --nameserver and that it answers for "
                          "the spec's domains") from None
    return report


def report_text(report: Report, style: Callable[[str, str], str]) -> str:
    colour = {OK: "green", WARN: "yellow", FAIL: "red"}
    lines: list[str] = []
    subject = None
    for c in report.checks:
        if c.subject != subject:
            subject = c.subject
            lines.append(style(subject, "bold"))
        fix = f" -> {c.fix}" if c.fix and c.status != OK else ""
        lines.append(f"  {style(f'{c.status:<4}', colour[c.status])}  {c.check}: {c.message}{fix}")
    for n in report.notes:
        lines.append(f"Note: {n}")
    s = report.summary()
    lines.append(f"Verify: {s[OK]} ok, {s[WARN]} warnings, {s[FAIL]} failed.")
    return "\n".join(lines) + "\n"


def report_markdown(report: Report) -> str:
    s = report.summary()
    lines = ["<!-- pmgdns-verify -->", "### pmgdns verify", "",
             f"**{s[OK]} ok, {s[WARN]} warnings, {s[FAIL]} failed.**", "",
             "| Status | Subject | Check | Finding | Fix |", "|---|---|---|---|---|"]
    for c in report.checks:
        cells = [c.status, f"`{c.subject}`", c.check, c.message, c.fix]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    for n in report.notes:
        lines += ["", f"> **Note:** {n}"]
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> str:
    return json.dumps({"version": 1, "checks": [c.to_json() for c in report.checks],
                       "summary": report.summary(), "notes": report.notes}, indent=2) + "\n"
