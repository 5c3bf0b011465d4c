"""The request for a customer's DNS host (spec-v1 §7.2): `pmgdns customer-ticket`.

For each chosen `customer` zone: the records to set (name, type, TTL, value, ready to paste)
and, with a resolver (`--live`, `--nameserver`), what the DNS holds there today: each record
`done` or `pending`, what to replace or delete (the values of pmgdns's kinds that are not the
spec's, a CNAME where records must stand, records where a CNAME must stand alone), and the
*takes away* list of §7.1 for the change from today's records to the ticket's.

What pmgdns owns at each name is what the record families claim (`zones/ownership.py`), so the
ticket replaces exactly what `apply` would replace at a target pmgdns holds, and keeps the rest.
The formats are in `customer_formats.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dns.exception

from ..core.errors import UsageError, VerifyError
from ..families import FAMILIES
from ..families.base import ZoneContext
from ..families.delegate import delegate_of, is_delegated
from ..families.loader import CUSTOMER
from ..plan.engine import Change, select_domains
from ..plan.takes_away import Taken, takes_away
from ..spec.model import Domain, RecordSpec, Site, relative
from ..zones.records import domain_records
from ..zones.render import processor_config

if TYPE_CHECKING:
    from ..families.base import Claim, Slot
    from ..verify.probe import DnsProbe

DONE, PENDING = "done", "pending"


@dataclass(frozen=True)
class Row:
    """One value to set: `name` (FQDN), `host` (relative to the zone, `@` for the apex)."""

    name: str
    host: str
    type: str
    ttl: int
    value: str
    status: str | None = None  # done | pending, with a resolver

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "host": self.host, "type": self.type,
                               "ttl": self.ttl, "value": self.value}
        if self.status is not None:
            out["status"] = self.status
        return out


@dataclass(frozen=True)
class Removal:
    """A value the DNS holds today that must go (replaced by a row, or deleted)."""

    name: str
    type: str
    value: str
    why: str
    action: str = "delete"  # replace | delete

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "value": self.value,
                "action": self.action, "why": self.why}


@dataclass
class Ticket:
    """The request for one customer zone."""

    domain: str
    rows: list[Row]
    delegated: bool = False
    delegate_zone: str | None = None
    absent: bool = False  # the domain is `absent: true`: the rows are to be deleted
    live: bool = False
    checked: str = ""  # with a resolver: when the DNS was asked, UTC
    removals: list[Removal] = field(default_factory=list)
    taken: list[Taken] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return sum(1 for r in self.rows if r.status == PENDING) + len(self.removals)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"domain": self.domain, "delegated": self.delegated,
                               "delegate_zone": self.delegate_zone, "absent": self.absent,
                               "records": [r.to_json() for r in self.rows]}
        if self.live:
            out["checked"] = self.checked
            out["remove"] = [r.to_json() for r in self.removals]
            out["takes_away"] = [t.to_json() for t in self.taken]
            out["done"] = self.pending == 0
        return out


NAMED = 5  # domains an error names before it counts the rest


def customer_targets(site: Site, patterns: Sequence[str]) -> list[Domain]:
    """The chosen customer zones (all of them without `patterns`); a chosen domain the MSP
    holds is an error naming it."""
    if not patterns:
        chosen = [d for d in site.domains.values() if CUSTOMER in d.targets]
        if not chosen:
            raise UsageError(f"{site.file} has no `customer` zone: give a domain `targets: "
                             "[customer]` when the customer's own DNS host holds its zone")
        return chosen
    out = [site.domains[n] for n in select_domains(site, patterns)]
    held = [d.name for d in out if CUSTOMER not in d.targets]
    if held:
        named = ", ".join(held[:NAMED]) + (f" and {len(held) - NAMED} more" if len(held) > NAMED
                                           else "")
        raise UsageError(f"{named} {'is' if len(held) == 1 else 'are'} not held by a "
                         "customer (its targets do not include `customer`): `pmgdns apply` sets "
                         "its records; a customer ticket is for `targets: [customer]` zones")
    return out


def _records(site: Site, domain: Domain) -> list[RecordSpec]:
    if domain.absent:  # what it would publish is what goes
        return domain_records(site, dataclasses.replace(domain, absent=False))
    return domain_records(site, domain)


def _rows(records: Iterable[RecordSpec]) -> list[Row]:
    return [Row(r.fqdn, relative(r.fqdn, r.zone) or "@", r.type, r.ttl, v)
            for r in records for v in r.values]


def tickets(site: Site, patterns: Sequence[str] = (),
            probe: DnsProbe | None = None) -> list[Ticket]:
    """One ticket per chosen customer zone; compared with the DNS through `probe` when given."""
    dg = delegate_of(site)
    out = []
    for d in customer_targets(site, patterns):
        records = _records(site, d)
        delegated = is_delegated(site, d) or (d.absent and is_delegated(
            site, dataclasses.replace(d, absent=False)))
        t = Ticket(d.name, _rows(records), delegated, dg.zone if dg and delegated else None,
                   d.absent)
        if probe is not None:
            try:
                _compare(site, d, records, t, probe)
            except dns.exception.Timeout:
                raise VerifyError("DNS queries timed out: check --nameserver and that it "
                                  "answers for the customer zones") from None
        out.append(t)
    return out


# -- today's DNS ---------------------------------------------------------------------------------

def _claims(site: Site, domain: Domain, desired: Iterable[Slot]) -> dict[Slot, Claim]:
    """What pmgdns owns in the zone: the families' claims, merged as the ownership processor
    (`zones/ownership.py`) merges them."""
    key = "customer_ticket.options"
    conf = site.memo.get(key)
    if conf is None:
        conf = site.memo[key] = processor_config(site)
    slots = frozenset(desired)
    ctx = ZoneContext(domain.zone, domain.zone in conf["absent_zones"], slots,
                      frozenset(n for n, _ in slots))
    out: dict[Slot, Claim] = {}
    for family in FAMILIES:
        for slot, claim in family.claims(conf["families"].get(family.name, {}), ctx).items():
            out[slot] = out[slot].merge(claim) if slot in out else claim
    return out


def _same(rtype: str, a: str, b: str) -> bool:
    if rtype in ("TXT", "CAA", "TLSA"):
        return a == b
    return a.lower().rstrip(".") == b.lower().rstrip(".")


def _live(probe: DnsProbe, name: str, rtype: str) -> list[str]:
    """The values at (name, type) as the name itself holds them (a CNAME's target not
    followed)."""
    if rtype == "CNAME":
        target = probe.cname(name)
        return [target] if target else []
    if probe.cname(name):
        return []
    if rtype == "TXT":
        return probe.txt(name)
    return sorted(str(r.to_text()) for r in probe.rrset(name, rtype))


def _compare(site: Site, domain: Domain, records: list[RecordSpec], t: Ticket,
             probe: DnsProbe) -> None:
    t.live = True
    t.checked = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    published = {(r.name, r.type): r for r in records}
    desired = {} if domain.absent else published
    claims = _claims(site, domain, desired)
    removals: dict[tuple[str, str, str], Removal] = {}

    def remove(name: str, rtype: str, value: str, why: str, action: str = "delete") -> None:
        removals.setdefault((name, rtype, value), Removal(name, rtype, value, why, action))

    status: dict[tuple[str, str, str], str] = {}
    changes: list[Change] = []
    slots = dict.fromkeys([*desired, *claims, *((r.name, r.type) for r in records)])
    for slot in slots:
        rel, rtype = slot
        name = f"{rel}.{domain.zone}" if rel else domain.zone
        mine = desired.get(slot)
        cname = probe.cname(name)
        if rtype != "CNAME" and cname and (rel, "CNAME") not in published:
            if mine is not None:
                remove(name, "CNAME", cname, f"a CNAME stands where the {rtype} records must "
                                             "be: delete it first")
            continue  # what answers through it is not this zone's
        live = _live(probe, name, rtype)
        claim = claims.get(slot)
        owned = [v for v in live if claim is None or claim.owns(v)]
        want = list(mine.values) if mine is not None else []
        for v in want:
            status[(name, rtype, v)] = DONE if any(_same(rtype, v, h) for h in live) else PENDING
        for v in owned:
            if any(_same(rtype, v, w) for w in want):
                continue
            if mine is not None:
                remove(name, rtype, v, f"not the spec's {rtype}: the record above takes its "
                                       "place", "replace")
            else:
                remove(name, rtype, v, "pmgdns's record here goes" + (
                    " (the domain is absent from the spec)" if domain.absent else ""))
        gone = published.get(slot) if domain.absent else None
        for v in gone.values if gone is not None else ():
            for h in live:
                if _same(rtype, v, h):
                    remove(name, rtype, h, "the domain is absent from the spec")
        if rtype == "CNAME" and mine is not None and not cname:
            for v in probe.txt(name):
                remove(name, "TXT", v, "a CNAME stands alone: delete this record first")
        if live or want:
            foreign = [v for v in live if v not in owned]
            after = tuple(foreign + [v for v in want if v not in foreign])
            if tuple(sorted(live)) != tuple(sorted(after)):
                action = "create" if not live else "update" if after else "delete"
                changes.append(Change(domain.zone, CUSTOMER, action,
                                      name, rtype, mine.ttl if mine else domain.ttl, after,
                                      tuple(live)))
    t.rows = [dataclasses.replace(r, status=status.get((r.name, r.type, r.value), PENDING))
              if not domain.absent else dataclasses.replace(
                  r, status=DONE if not any(x.name == r.name and x.type == r.type
                                            and _same(r.type, x.value, r.value)
                                            for x in removals.values()) else PENDING)
              for r in t.rows]
    t.removals = list(removals.values())
    t.taken = takes_away(site, changes)


__all__ = ["DONE", "PENDING", "Removal", "Row", "Ticket", "customer_targets", "tickets"]
