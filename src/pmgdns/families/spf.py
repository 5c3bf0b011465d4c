"""SPF at the domain (spec-v1 §2, §7.1): `D TXT "v=spf1 mx -all"` (`spf`). pmgdns owns the
`v=spf1` value at the apex and keeps every other TXT value; a name ends with exactly one `v=spf1`
value.

`spf` is the whole value (a string) or its parts (`include`, `ip4`, `ip6`, `all`, and `drop`, the
senders an existing record authorised that may go), merged key by key over `defaults:`. The
published value authorises every gateway node: `v=spf1 mx`, the addresses of the nodes that do not
serve the domain's MX (any node may relay its outbound mail), the `ip4`, `ip6` and `include` parts,
then `all`. A string that contains `mx` gets those node addresses the same way.

Also `spf_checks`, which the other families use for the SPF at their names: one `v=spf1`
value, RFC 7208's lookup limits (counted by checkdmarc), and the gateway nodes pass it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import idna

from ..core.libraries import quiet_import
from ..core.text import plural
from ..spec.model import Domain, Gateway, RecordSpec, Site
from ..spec.values import shown
from .base import SPF, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, WARN, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

DEFAULT = "v=spf1 mx -all"
MAX_LOOKUPS = 10  # RFC 7208 §4.6.4
MAX_VOID = 2
MAX_LENGTH = 450  # characters (RFC 7208 §3.4)
PARTS = ("value", "include", "ip4", "ip6", "all", "drop")
_LOOKUP = re.compile(r"^[+~?-]?(include:|a\b|a:|a/|mx\b|mx:|mx/|ptr|exists:|redirect=)", re.I)
# a term that authorises senders (RFC 7208 §5, §6.1), without a qualifier or with `+`
SENDER = re.compile(r"^\+?(include:\S+|a|a[:/]\S+|mx|mx[:/]\S+|ptr|ptr:\S+|ip4:\S+|ip6:\S+"
                    r"|exists:\S+|redirect=\S+)$", re.I)
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Spf:
    """A domain's `spf`: the whole value (`value`) or its parts, and the senders that may go."""

    value: str | None = None  # the string form; None: composed from the parts
    include: tuple[str, ...] = ()
    ip4: tuple[str, ...] = ()
    ip6: tuple[str, ...] = ()
    all: str = "-all"
    drop: tuple[str, ...] = ()

    def terms(self, extra: Sequence[str] = ()) -> list[str]:
        """The published terms after `v=spf1`, with `extra` (the addresses of the nodes outside
        the domain's MX, as `ip4:`/`ip6:` terms) where spec-v1 §7.1 puts them."""
        if self.value is not None:
            terms = self.value.split()[1:]
            lowered = [t.lower() for t in terms]
            at = next((i for i, t in enumerate(lowered) if t in ("mx", "+mx")), None)
            if at is None or not extra:
                return terms
            have = {sender_key(t) for t in terms}
            missing = [t for t in extra if sender_key(t) not in have]
            return [*terms[: at + 1], *missing, *terms[at + 1:]]
        out = ["mx", *extra]
        seen = {sender_key(t) for t in out}
        for term in (*(f"ip4:{a}" for a in self.ip4), *(f"ip6:{a}" for a in self.ip6),
                     *(f"include:{d}" for d in self.include)):
            if sender_key(term) not in seen:
                seen.add(sender_key(term))
                out.append(term)
        return [*out, self.all]

    def lookups(self) -> int:
        """The DNS-querying terms of the value as written (includes not followed)."""
        if self.value is not None:
            return sum(1 for t in self.value.split()[1:] if _LOOKUP.match(t))
        return 1 + len(self.include)

    def dropped(self) -> frozenset[str]:
        return frozenset(sender_key(t) for t in self.drop)


def is_sender(term: str) -> bool:
    """Is `term` a sender term (spec-v1 §7.1), an `ip4:`/`ip6:` one with a valid network?"""
    if not SENDER.match(term):
        return False
    kind, _, arg = term.lower().lstrip("+").partition(":")
    if kind in ("ip4", "ip6"):
        try:
            return ipaddress.ip_network(arg, strict=False).version == int(kind[2])
        except ValueError:
            return False
    return True


def sender_key(term: str) -> str:
    """A sender term as compared: lower case, no `+`, an address or network in its canonical
    form (`ip4:192.0.2.10/32` is `ip4:192.0.2.10`)."""
    t = term.strip().lower().lstrip("+")
    kind, sep, arg = t.partition(":")
    if sep and kind in ("ip4", "ip6"):
        try:
            net = ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return t
        full = 32 if net.version == 4 else 128
        address = ipaddress.ip_address(arg.split("/")[0])
        return f"{kind}:{address}" if net.prefixlen == full else f"{kind}:{address}/{net.prefixlen}"
    if sep or "=" in t:
        return t.rstrip(".")
    return t


def spf_of(domain: Domain) -> Spf:
    spf: Spf = domain.options.get("spf") or Spf()
    return spf


def spf_value(site: Site, domain: Domain) -> str:
    """The SPF value pmgdns publishes at `domain` (spec-v1 §7.1)."""
    spf = spf_of(domain)
    serving = site.nodes_for(domain)
    extra: list[str] = []
    if len(serving) != len(site.gateways):
        for node in site.gateways:
            if node not in serving:
                extra.append(f"ip4:{node.ipv4}")
                if node.ipv6:
                    extra.append(f"ip6:{node.ipv6}")
    if spf.value is not None:
        head, *rest = spf.value.split()
        terms = spf.terms(extra)
        return spf.value if terms == rest else " ".join([head, *terms])
    return " ".join(["v=spf1", *spf.terms(extra)])


def check_spf(c: Checker, value: Any, path: Path, inherited: Any = None) -> str:
    """The string form: one SPF record as text."""
    raw = c.string(value, path)
    bad = [ch for ch in raw if not (" " <= ch <= "~") or ch in '\\"']
    if bad:
        raise c.fail(path, f"holds {shown(bad[0])!s}; an SPF record is visible ASCII (RFC 7208 "
                           "§3) and pmgdns publishes no backslash or double quote in it: write "
                           "the terms plainly, e.g. v=spf1 mx -all")
    text = " ".join(raw.split())
    if not re.match(r"^v=spf1( |$)", text, re.I):
        raise c.fail(path, f"`{shown(text)}` is not an SPF record; it must start with `v=spf1`")
    if len(text) > MAX_LENGTH:
        raise c.fail(path, "must be at most 450 characters")
    terms = text.split()[1:]
    lookups = sum(1 for t in terms if _LOOKUP.match(t))
    if lookups > MAX_LOOKUPS:
        raise c.fail(path, f"has {lookups} DNS-querying terms; RFC 7208 allows at most 10")
    if any(t.lower() in ("+all", "all") for t in terms):
        raise c.fail(path, "`+all` authorises every host on the internet; end with -all or ~all")
    if not any(t.lower() in ("-all", "~all") for t in terms) and not any(
        t.lower().startswith("redirect=") for t in terms
    ):
        c.warn(path, "does not end with -all or ~all, so it does not deny other senders")
    return text


def _list(c: Checker, value: Any, path: Path, example: str) -> list[tuple[Path, str]]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise c.fail(path, f"must be a list, e.g. {example}")
    out = []
    for i, v in enumerate(value):
        p = (*path, str(i))
        if not isinstance(v, str) or not v.strip():
            raise c.fail(p, f"must be a non-empty string, e.g. {example}")
        out.append((p, v.strip()))
    return out


def is_domain_name(text: str) -> bool:
    """A domain name as `include` takes it: labels of letters, digits, `-` and `_`."""
    labels = text.rstrip(".").split(".")
    return len(labels) >= 2 and len(text) <= 254 and labels[-1].isdigit() is False and all(
        _DOMAIN_LABEL.match(x) for x in labels)


def _include(c: Checker, path: Path, text: str) -> str:
    name = text.rstrip(".").lower()
    if not name.isascii():  # an SPF record is ASCII: a Unicode name goes in as its A-labels
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise c.fail(path, f"`{shown(text)}` is not a valid internationalised domain name: "
                               f"{shown(str(exc))}") from None
    if not is_domain_name(name):
        raise c.fail(path, f"`{shown(text)}` is not a domain name; `include` takes the domain "
                           "whose SPF record to include, e.g. spf.protection.outlook.com")
    for label in name.split("."):
        c.a_label(label, path)
    return name


def _network(c: Checker, path: Path, text: str, version: int) -> str:
    kind, other = (f"ip{version}", f"ip{10 - version}")
    try:
        net = ipaddress.ip_network(text, strict=False)
        address = ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        example = "192.0.2.10 or 192.0.2.0/24" if version == 4 else "2001:db8::10 or 2001:db8::/48"
        raise c.fail(path, f"`{shown(text)}` is not an IPv{version} address or CIDR; write "
                           f"e.g. {example}") from None
    if net.version != version:
        raise c.fail(path, f"`{shown(text)}` is an IPv{net.version} address; put it under "
                           f"`{other}`, not `{kind}`")
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise c.fail(path, f"`{shown(text)}` has a zone index (the part after %), which SPF "
                           f"does not know; write {str(address).split('%', 1)[0]}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise c.fail(path, f"`{shown(text)}` is an IPv4-mapped IPv6 address; put the IPv4 "
                           f"address {address.ipv4_mapped} under `ip4`")
    if net.prefixlen == 0:
        raise c.fail(path, f"`{shown(text)}` authorises every IPv{version} host on the "
                           "internet (like +all); list your senders' own addresses or networks")
    full = 32 if version == 4 else 128
    return str(address) if net.prefixlen == full else f"{address}/{net.prefixlen}"


def _drop(c: Checker, path: Path, text: str) -> str:
    term = text.strip()
    if not is_sender(term):
        raise c.fail(path, f"`{shown(term)}` is not a sender term; `drop` lists terms of the "
                           "existing record that may go, as written there, e.g. "
                           "include:_spf.oldhost.example, ip4:192.0.2.10, a:mail.example.com")
    return sender_key(term)


def parse_spf(c: Checker, value: Any, path: Path, inherited: Any = None) -> Spf:
    """`spf`: the whole value (a string) or its parts, merged over the inherited `spf`. A string
    replaces the inherited parts; parts replace an inherited string; `drop` stays unless given."""
    base: Spf = inherited if isinstance(inherited, Spf) else Spf()
    if isinstance(value, str):
        return Spf(value=check_spf(c, value, path), drop=base.drop)
    if not isinstance(value, dict):
        raise c.fail(path, "must be an SPF record (e.g. `v=spf1 mx -all`) or its parts (include, "
                           "ip4, ip6, all, drop)")
    d = c.mapping(value, path, PARTS)
    given = [k for k in ("include", "ip4", "ip6", "all") if k in d]
    if "value" in d and given:
        raise c.fail((*path, given[0]), "stands beside `value`: give either the whole SPF "
                                        "record as `value` (or `spf: v=spf1 ...`) or its parts "
                                        "(include, ip4, ip6, all), not both in one place")
    out = base
    if "value" in d:
        out = Spf(value=check_spf(c, d["value"], (*path, "value")), drop=base.drop)
    elif given and base.value is not None:
        out = Spf(drop=base.drop)
    if "include" in d:
        out = replace(out, include=tuple(dict.fromkeys(
            _include(c, p, t) for p, t in _list(c, d["include"], (*path, "include"),
                                                "[spf.protection.outlook.com]"))))
    if "ip4" in d:
        out = replace(out, ip4=tuple(dict.fromkeys(
            _network(c, p, t, 4) for p, t in _list(c, d["ip4"], (*path, "ip4"),
                                                   "[192.0.2.10, 192.0.2.0/24]"))))
    if "ip6" in d:
        out = replace(out, ip6=tuple(dict.fromkeys(
            _network(c, p, t, 6) for p, t in _list(c, d["ip6"], (*path, "ip6"),
                                                   "[2001:db8::10]"))))
    if "all" in d:
        if d["all"] not in ("-all", "~all"):
            raise c.fail((*path, "all"), f"must be -all or ~all, not {shown(d['all'])}: pmgdns "
                                         "publishes no record that lets every host send")
        out = replace(out, all=d["all"])
    if "drop" in d:
        out = replace(out, drop=tuple(dict.fromkeys(
            _drop(c, p, t) for p, t in _list(c, d["drop"], (*path, "drop"),
                                             "[include:_spf.oldhost.example]"))))
    if out.value is None and out.lookups() > MAX_LOOKUPS:
        raise c.fail((*path, "include"), f"makes {out.lookups()} DNS-querying terms with `mx`; "
                                         "RFC 7208 allows at most 10: include fewer domains")
    return out


def check_length(c: Checker, path: Path, value: str) -> None:
    """The published SPF value is at most 450 characters (RFC 7208 §3.4)."""
    if len(value) > MAX_LENGTH:
        raise c.fail(path, f"composes an SPF record of {len(value)} characters (with the "
                           "gateway nodes' addresses); RFC 7208 keeps it within 450 so that it "
                           "fits one DNS answer: list networks (CIDR) instead of single "
                           "addresses, or move senders into an included domain")


class SpfFamily(Family):
    name = "spf"
    domain_keys = (Key("spf", Spf(), parse_spf),)

    def check_site(self, c: Checker, site: Site) -> None:
        """The value composed from the parts and the gateway nodes stays within RFC 7208's
        450 characters (§3.4: a larger answer may not fit a DNS packet over UDP)."""
        every = [t for n in site.gateways
                 for t in (f"ip4:{n.ipv4}", *((f"ip6:{n.ipv6}",) if n.ipv6 else ()))]
        longer: dict[Spf, bool] = {}  # could the value be too long, with every node added?
        for domain in site.domains.values():
            if domain.absent or domain.options.get("parked"):
                continue
            spf = spf_of(domain)
            if spf not in longer:
                longer[spf] = len(" ".join(["v=spf1", *spf.terms(every)])) > MAX_LENGTH
            if longer[spf]:
                check_length(c, (*domain.path, "spf"), spf_value(site, domain))

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if not domain.options.get("parked"):
            yield RecordSpec(domain.zone, "", "TXT", domain.ttl, (spf_value(site, domain),))

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return ctx.claim_desired({("", "TXT"): txt(SPF)})

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        if domain.options.get("parked"):
            return []
        # every node passes: a node outside the domain's MX may relay its outbound mail
        return spf_checks(probe, domain.name, self.name, domain.zone,
                          spf_value(probe.site, domain), "SPF", probe.site.gateways)


def spf_checks(probe: Probe, subject: str, family: str, name: str, expected: str | None,
               check: str, nodes: Sequence[Gateway]) -> list[Check]:
    """The SPF at `name`: exactly one `v=spf1` value, `expected` (when given), within RFC 7208's
    limits, and every address of `nodes` passes it."""
    # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
    with quiet_import("checkdmarc"):
        from checkdmarc.spf import SPFError, parse_spf_record


    values = [v for v in probe.txt(name) if SPF.matches(v)]
    want = expected or "v=spf1 a -all"
    if not values:
        return [Check(subject, family, check, FAIL,
                      f"no SPF record at {name}{probe.in_its_place(name)}",
                      f"publish \"{want}\" there ({APPLY})", observed="nothing",
                      expected=want)]
    if len(values) > 1:
        return [Check(subject, family, check, FAIL,
                      f"{len(values)} v=spf1 values at {name}: a permerror (RFC 7208)",
                      f"keep only \"{expected}\" ({APPLY})", observed=" | ".join(values),
                      expected=want)]
    out = []
    if expected is not None and values[0] != expected:
        out.append(Check(subject, family, check, FAIL, f"{name} has \"{values[0]}\", the spec "
                                                       f"publishes \"{expected}\"", APPLY,
                         observed=values[0], expected=expected))
    try:  # checkdmarc parses the value pmgdns has, counting RFC 7208's lookups
        parsed_spf = parse_spf_record(values[0], name.rstrip("."),
                                      ignore_too_many_lookups=True, resolver=probe.resolver,
                                      timeout=probe.resolver.lifetime)
        result = {"valid": "error" not in parsed_spf, "error": parsed_spf.get("error"),
                  "parsed": parsed_spf.get("parsed"),
                  "dns_lookups": parsed_spf.get("dns_lookups"),
                  "void_dns_lookups": parsed_spf.get("void_dns_lookups")}
    except SPFError as exc:
        result = {"valid": False, "error": str(exc.args[0]) if exc.args else str(exc)}
    lookups, void = result.get("dns_lookups") or 0, result.get("void_dns_lookups") or 0
    if result.get("valid") and (lookups > MAX_LOOKUPS or void > MAX_VOID):
        result = {"valid": False, "error": f"{lookups} DNS-querying terms and {void} void "
                                           "lookups counted through its includes (RFC 7208 "
                                           "§4.6.4: at most 10 and 2)"}
    if not result.get("valid"):
        out.append(Check(subject, family, check, FAIL, f"{name}: {result.get('error')}",
                         "stay within 10 DNS-querying terms and 2 void lookups",
                         observed=values[0], expected=want))
        return out
    parsed = result.get("parsed") or {}
    for node in nodes:
        for address in node.addresses:
            verdict = spf_passes(parsed, address, probe, name.rstrip("."))
            if verdict is False:
                out.append(Check(subject, family, check, FAIL,
                                 f"the gateway's {address} does not pass SPF at {name}",
                                 "authorise it (e.g. `mx` or `a`) in the SPF record",
                                 observed=values[0], expected=want))
            elif verdict is None:
                out.append(Check(subject, family, check, WARN,
                                 f"cannot tell whether {address} passes SPF at {name} "
                                 "(macros, exists or ptr)", "check it with a mail test",
                                 observed=values[0]))
    if not out:
        out.append(Check(subject, family, check, OK,
                         f"\"{values[0]}\" "
                         f"({plural(int(result.get('dns_lookups') or 0), 'lookup')}, "
                         f"{result.get('void_dns_lookups')} void)", observed=values[0],
                         expected=values[0] if expected is None else expected))
    return out


def spf_passes(parsed: dict[str, Any], address: str, probe: Probe, domain: str,
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
            matched = address in probe.addresses(host)
        elif kind == "mx":
            hosts = [h.get("hostname", "") for h in m.get("hosts", [])]
            matched = any(address in probe.addresses(h) for h in hosts)
        elif kind == "include" and isinstance(m.get("parsed"), dict):
            matched = spf_passes(m["parsed"], address, probe, value, depth + 1)
        else:
            return None
        if matched:
            return bool(m.get("action", "pass") == "pass")
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict) and isinstance(redirect.get("parsed"), dict):
        return spf_passes(redirect["parsed"], address, probe, domain, depth + 1)
    return False if parsed.get("all") in ("fail", "softfail", "neutral", None) else True


FAMILY = SpfFamily()
