"""SPF at the domain (spec-v1 §2): `D TXT "v=spf1 mx -all"` (`spf`). pmgdns owns the `v=spf1`
value at the apex and keeps every other TXT value; a name ends with exactly one `v=spf1` value.

Also `spf_checks`, which the other families use for the SPF at their names: one `v=spf1`
value, RFC 7208's lookup limits (checked by checkdmarc), and the gateway nodes pass it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, Gateway, RecordSpec, Site
from ..spec.values import shown
from .base import SPF, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, WARN, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

DEFAULT = "v=spf1 mx -all"
_LOOKUP = re.compile(r"^[+~?-]?(include:|a\b|a:|a/|mx\b|mx:|mx/|ptr|exists:|redirect=)", re.I)


def check_spf(c: Checker, value: Any, path: Path, inherited: Any = None) -> str:

    raw = c.string(value, path)
    bad = [ch for ch in raw if not (" " <= ch <= "~") or ch in '\\"']
    if bad:
        raise c.fail(path, f"holds {shown(bad[0])!s}; an SPF record is visible ASCII (RFC 7208 "
                           "§3) and pmgdns publishes no backslash or double quote in it: write "
                           "the terms plainly, e.g. v=spf1 mx -all")
    text = " ".join(raw.split())
    if not re.match(r"^v=spf1( |$)", text, re.I):
        raise c.fail(path, f"`{shown(text)}` is not an SPF record; it must start with `v=spf1`")
    if len(text) > 450:
        raise c.fail(path, "must be at most 450 characters")
    terms = text.split()[1:]
    lookups = sum(1 for t in terms if _LOOKUP.match(t))
    if lookups > 10:
        raise c.fail(path, f"has {lookups} DNS-querying terms; RFC 7208 allows at most 10")
    if any(t.lower() in ("+all", "all") for t in terms):
        raise c.fail(path, "`+all` authorises every host on the internet; end with -all or ~all")
    if not any(t.lower() in ("-all", "~all") for t in terms) and not any(
        t.lower().startswith("redirect=") for t in terms
    ):
        c.warn(path, "does not end with -all or ~all, so it does not deny other senders")
    return text


class SpfFamily(Family):
    name = "spf"
    domain_keys = (Key("spf", DEFAULT, check_spf),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if not domain.options.get("parked"):
            yield RecordSpec(domain.zone, "", "TXT", domain.ttl, (domain.spf,))

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return ctx.claim_desired({("", "TXT"): txt(SPF)})

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        if domain.options.get("parked"):
            return []
        return spf_checks(probe, domain.name, self.name, domain.zone, domain.spf, "SPF",
                          probe.site.nodes_for(domain))


def spf_checks(probe: Probe, subject: str, family: str, name: str, expected: str | None,
               check: str, nodes: Sequence[Gateway]) -> list[Check]:
    """The SPF at `name`: exactly one `v=spf1` value, `expected` (when given), within RFC 7208's
    limits, and every address of `nodes` passes it."""
    # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
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
                         f"\"{values[0]}\" ({result.get('dns_lookups')} lookups, "
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
