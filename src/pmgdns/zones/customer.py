"""Zones the customer's own DNS host holds (the built-in `customer` target, spec-v1 §7.2).

pmgdns never applies at `customer`: a plan lists the records of each such zone in its `manual`
list (kind `customer`, one entry per value: zone, name, type, TTL, value as DNS answers it), and
`pmgdns customer-ticket` writes them as the request for the customer's DNS host.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..families.loader import CUSTOMER
from ..spec.model import Domain, RecordSpec, Site
from .records import domain_records

KIND = "customer"


def is_customer(domain: Domain) -> bool:
    """Does the customer's DNS host hold `domain`'s zone?"""
    return CUSTOMER in domain.targets


def customer_domains(site: Site, chosen: Iterable[str] | None = None) -> list[Domain]:
    """The (chosen) domains held by customers, absent ones included (their records go)."""
    names = list(site.domains) if chosen is None else list(chosen)
    return [site.domains[n] for n in names if is_customer(site.domains[n])]


def manual_entries(records: Iterable[RecordSpec]) -> list[dict[str, str]]:
    """The plan's `manual` entries for a customer zone's records: one per value."""
    return [{"kind": KIND, "zone": r.zone, "name": r.fqdn, "type": r.type, "ttl": str(r.ttl),
             "value": v} for r in records for v in r.values]


def customer_manual(site: Site, chosen: Iterable[str] | None = None) -> list[dict[str, str]]:
    """The `manual` entries of every (chosen) customer zone."""
    out: list[dict[str, str]] = []
    for d in customer_domains(site, chosen):
        if not d.absent:
            out.extend(manual_entries(domain_records(site, d)))
    return out


__all__ = ["KIND", "customer_domains", "customer_manual", "is_customer", "manual_entries"]
