"""What a plan takes away (spec-v1 §7.1): the senders an SPF value it replaces or deletes
authorised and the new value does not, the DMARC report destinations and policy strength a
replaced DMARC value loses, and the mail flow a replaced MX moves away from a host that is not a
gateway node.

Computed from the plan's changes alone (updates and deletes of TXT at a domain's apex or
`_dmarc`, and of MX at the apex), so planning many domains costs one pass over the changes.
`apply` refuses while a taken SPF sender is neither kept nor in the domain's `spf.drop`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import PmgdnsError
from ..core.text import visible
from ..families.base import DMARC, SPF, Change
from ..families.delegate import delegate_of
from ..families.spf import is_domain_name, is_sender, sender_key, spf_of
from ..spec.model import Domain, Site

SPF_SENDER = "spf-sender"
DMARC_REPORT = "dmarc-report"
DMARC_POLICY = "dmarc-policy"
MAIL_FLOW = "mail-flow"
KINDS = (SPF_SENDER, DMARC_REPORT, DMARC_POLICY, MAIL_FLOW)
_STRENGTH = {"none": 0, "quarantine": 1, "reject": 2}


class TakesAwayError(PmgdnsError):
    """apply would remove SPF senders the spec neither keeps nor lets go (exit code 1)."""


@dataclass
class Taken:
    """One thing a plan takes away, at every target where it does."""

    zone: str
    name: str
    type: str
    kind: str  # spf-sender | dmarc-report | dmarc-policy | mail-flow
    value: str
    fix: str
    domain: str  # the key path of the domain in the spec, e.g. domains.example.com
    refused: bool = False  # an SPF sender apply refuses to remove
    targets: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"zone": self.zone, "name": self.name, "type": self.type, "kind": self.kind,
                "value": self.value, "fix": self.fix, "targets": list(self.targets),
                "refused": self.refused}


def watched(c: Change) -> bool:
    """Whether `c` may take something away: only updates and deletes of TXT and MX can."""
    return c.action != "create" and c.type in ("TXT", "MX")


class TakesAway:
    """What a plan takes away, read from its changes as they arrive (a batch at a time)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._found: dict[tuple[str, str, str, str, str], Taken] = {}

    def add(self, changes: Iterable[Change]) -> None:
        for c in changes:
            if not watched(c):
                continue
            domain = self.site.domains.get(c.zone[:-1])
            if domain is None:
                continue
            if c.type == "TXT" and c.name == c.zone:
                items = _spf(self.site, domain, c)
            elif c.type == "TXT" and c.name == f"_dmarc.{c.zone}" and c.action == "update":
                items = _dmarc(domain, c)
            elif c.type == "MX" and c.name == c.zone:
                items = _mx(self.site, domain, c)
            else:
                continue
            for item in items:
                key = (item.zone, item.name, item.type, item.kind, item.value)
                seen = self._found.setdefault(key, item)
                if c.target not in seen.targets:
                    seen.targets.append(c.target)

    def result(self) -> list[Taken]:
        """One item per thing (its targets listed), zone by zone in the order of the changes,
        the SPF senders (which apply may refuse) first."""
        zones: dict[str, int] = {}
        for t in self._found.values():
            zones.setdefault(t.zone, len(zones))
        return sorted(self._found.values(), key=lambda t: (zones[t.zone], KINDS.index(t.kind)))


def takes_away(site: Site, changes: Iterable[Change]) -> list[Taken]:
    """What `changes` take away, one item per thing (its targets listed), zone by zone."""
    taking = TakesAway(site)
    taking.add(changes)
    return taking.result()


def _path(domain: Domain) -> str:
    return ".".join(domain.path)


def _senders(value: str) -> dict[str, str]:
    """The sender terms of an SPF value: {compared form: as written}."""
    out: dict[str, str] = {}
    for term in value.split()[1:]:
        if is_sender(term):
            out.setdefault(sender_key(term), term.lstrip("+"))
    return out


def _node_terms(site: Site) -> frozenset[str]:
    key = "takes_away.node_terms"
    terms: frozenset[str] | None = site.memo.get(key)
    if terms is None:
        terms = frozenset(sender_key(f"ip{ipaddress.ip_address(a).version}:{a}")
                          for g in site.gateways for a in g.addresses)
        site.memo[key] = terms
    return terms


def spf_fix(path: str, term: str) -> str:
    """The spec lines that keep a sender term or let it go."""
    kind, _, arg = term.lower().partition(":")
    if kind in ("include", "ip4", "ip6") and (kind != "include" or is_domain_name(arg)):
        keep = f"add {arg} to {path}.spf.{kind}"
    else:
        keep = f"write {path}.spf as the whole record (a string) that holds {term}"
    return f"keep it: {keep}; or let it go: add {term} to {path}.spf.drop"


def _spf(site: Site, domain: Domain, c: Change) -> list[Taken]:
    old = [v for v in c.previous if SPF.matches(v)]
    kept = [v for v in c.values if SPF.matches(v)]
    if not old or all(v in kept for v in old):  # e.g. only the TTL or a foreign value changed
        return []
    new: dict[str, str] = {}
    for v in kept:
        new.update(_senders(v))
    spf = spf_of(domain)
    dropped = spf.dropped()
    parked = bool(domain.options.get("parked"))
    nodes = _node_terms(site)
    dg = delegate_of(site)
    if dg is not None:  # the delegate's _spf follows the nodes: never taken (spec-v1 §7.1)
        nodes = nodes | {f"include:{dg.spf_name}"}
    path = _path(domain)
    out = []
    for value in old:
        for key, term in _senders(value).items():
            if key in new or key == "mx" or key in nodes:
                continue
            if parked:
                fix = f"{path} is parked: it sends no mail, so every sender goes"
            else:
                fix = spf_fix(path, term)
            out.append(Taken(c.zone, c.name, c.type, SPF_SENDER, term, fix, path,
                             refused=not parked and key not in dropped))
    return out


def _tags(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        tag, sep, val = part.partition("=")
        if sep:
            out.setdefault(tag.strip().lower(), val.strip())
    return out


def _destinations(tags: dict[str, str], tag: str) -> dict[str, str]:
    """{compared form: as written} of the URIs in a rua/ruf tag (a `!size` ignored)."""
    out: dict[str, str] = {}
    for uri in tags.get(tag, "").split(","):
        uri = uri.strip()
        if uri:
            out.setdefault(uri.split("!")[0].lower(), uri)
    return out


def _dmarc(domain: Domain, c: Change) -> list[Taken]:
    old = next((v for v in c.previous if DMARC.matches(v)), None)
    new = next((v for v in c.values if DMARC.matches(v)), None)
    if old is None or new is None:
        return []
    before, after = _tags(old), _tags(new)
    path = _path(domain)
    out = []
    for tag in ("rua", "ruf"):
        kept = _destinations(after, tag)
        for key, uri in _destinations(before, tag).items():
            if key not in kept:
                out.append(Taken(c.zone, c.name, c.type, DMARC_REPORT, f"{tag}={uri}",
                                 f"keep it: add {uri.split('!')[0]} to {path}.dmarc.{tag}; "
                                 "or let it go: nothing to do (apply removes it)", path))
    p_old, p_new = before.get("p", "").lower(), after.get("p", "").lower()
    policies = [("p", p_old, p_new),
                ("sp", before.get("sp", p_old).lower(), after.get("sp", p_new).lower())]
    for tag, was, now in policies:
        if tag == "sp" and "sp" not in before and "sp" not in after:
            continue  # sp follows p, which is reported
        if was in _STRENGTH and now in _STRENGTH and _STRENGTH[now] < _STRENGTH[was]:
            out.append(Taken(c.zone, c.name, c.type, DMARC_POLICY, f"{tag}={was} -> {tag}={now}",
                             f"keep it: set {path}.dmarc.{tag}: {was}; or let it go: nothing "
                             "to do (apply weakens it)", path))
    return out


def _exchange(value: str) -> str:
    parts = value.split()
    return parts[-1].lower().rstrip(".") if parts else ""


def _mx(site: Site, domain: Domain, c: Change) -> list[Taken]:
    nodes = {g.hostname for g in site.gateways} | set(site.retired_gateways)
    now = {_exchange(v) for v in c.values}
    path = _path(domain)
    out = []
    for value in c.previous:
        host = _exchange(value)
        if not host or host in nodes or host in now:
            continue
        out.append(Taken(c.zone, c.name, c.type, MAIL_FLOW, value,
                         f"mail for {domain.name} goes to the gateway nodes instead of {host}: "
                         f"to keep {host} receiving it, make it PMG's transport for "
                         f"{domain.name} (or take {path} out of the spec); or let it go: "
                         "nothing to do", path))
    return out


def refusal(taken: Sequence[Taken]) -> str | None:
    """The message with which apply refuses, or None when nothing is refused."""
    refused = [t for t in taken if t.refused]
    if not refused:
        return None
    lines = []
    for t in refused:
        lines.append(f"{visible(t.zone[:-1])} loses the SPF sender `{visible(t.value)}` (at "
                     f"{', '.join(t.targets)}): {visible(t.fix)}")
    return ("apply would take SPF senders away that the spec neither keeps nor lets go, so mail "
            "they send would fail SPF: " + "; ".join(lines) + ". Nothing was applied at any "
            "target; change the spec, plan again and review \"Takes away\".")


def check(taken: Sequence[Taken]) -> None:
    """Refuse (TakesAwayError) while a taken SPF sender is neither kept nor dropped."""
    message = refusal(taken)
    if message is not None:
        raise TakesAwayError(message)


__all__ = ["KINDS", "TakesAway", "Taken", "TakesAwayError", "check", "refusal", "spf_fix",
           "takes_away", "watched"]
