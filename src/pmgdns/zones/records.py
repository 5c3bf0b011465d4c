"""Step 2 of the data path: expand a checked `Site` into the records pmgdns publishes (spec-v1
§2, §6), by asking each record family.

Pure functions: no files, no network. Values are as DNS answers them: TXT unescaped and unsplit,
MX as `10 mx1.example.com.`.
"""

from __future__ import annotations

from ..families import FAMILIES
from ..families.base import DKIM, DMARC, SPF
from ..families.gateway import HELO_SPF, node_note
from ..families.wildcard_spf import NULL_SPF
from ..spec.model import Domain, RecordSpec, Site, relative

__all__ = ["HELO_SPF", "NULL_SPF", "RecordSpec", "domain_records", "gateway_note", "relative",
           "site_records", "txt_kind"]

_KINDS = (SPF, DMARC, DKIM)


def txt_kind(value: str) -> str | None:
    """The kind of a TXT value (`v=spf1`, `v=DMARC1`, `v=DKIM1`), or None if of no kind pmgdns
    publishes. Matching follows the RFCs: the version tag, case-insensitive, then a separator or
    the end."""
    for kind in _KINDS:
        if kind.matches(value):
            return kind.tag
    return None


def domain_records(site: Site, domain: Domain) -> list[RecordSpec]:
    """The records pmgdns publishes in `domain`'s own zone (none when the domain is absent)."""
    if domain.absent:
        return []
    out: list[RecordSpec] = []
    displaced = {f.name: f.displaces(site, domain) for f in FAMILIES}
    taken = [slots for slots in displaced.values() if slots]
    for family in FAMILIES:
        records = family.records(site, domain)
        if taken:
            mine = displaced[family.name]
            others = frozenset().union(*(s for s in taken if s is not mine))
            records = [r for r in records if (r.name, r.type) not in others]
        out.extend(records)
    return sorted(out)


def site_records(site: Site) -> dict[str, list[RecordSpec]]:
    """Every zone of the spec (with trailing dot) and the records pmgdns publishes in it."""
    return {d.zone: domain_records(site, d) for d in site.domains.values()}


def gateway_note(site: Site) -> str | None:
    """Why the (first) gateway's own records are not published, when they are not."""
    return node_note(site, site.gateway)
