"""The octoDNS processor that makes spec-v1 §3 true: pmgdns owns only its own records.

Referenced from `build/octodns.yaml`, so `octodns-sync` with that file behaves as `pmgdns plan`.

octoDNS plans whole (name, type) sets and deletes whatever the source lacks. Before it compares,
this processor asks every record family which slots it claims in the zone (`Family.claims`):
a whole (name, type) set, or the TXT values of its kinds. Then it rebuilds the desired zone:

- every existing set nobody claims is foreign: copied into `desired` unchanged, so it is never
  created, changed or deleted, and octoDNS's safety thresholds count the whole zone;
- in a claimed TXT set, the existing values of other kinds stay byte for byte and the values of
  the claimed kinds are replaced by the desired ones (none, when nothing is desired there);
- a set claimed whole is replaced by the desired one, or deleted when nothing is desired;
- a CNAME at a name pmgdns publishes is a conflict (`OwnershipConflict` names it);
- a desired record no family claims is a pmgdns bug, reported as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from octodns.processor.base import BaseProcessor, ProcessorException
from octodns.zone import Zone

from ..core.errors import OwnershipConflict
from ..families import FAMILIES
from ..families.base import Claim, Slot, ZoneContext


def _same(record: Any, zone: Zone) -> Any:
    """`record` in `zone`, unchanged. octoDNS's `copy` drops empty TXT values (`""`), which
    would then be planned for deletion: TXT values are passed on explicitly."""
    if record._type in ("TXT", "SPF"):
        return record.copy(zone=zone, values=list(record.values))
    return record.copy(zone=zone)


def raw_text(value: Any) -> str:
    """A record value as DNS answers it (TXT unescaped)."""
    to_raw = getattr(value, "to_raw_text", None)
    return str(to_raw()) if to_raw is not None else str(value)


class OwnershipProcessor(BaseProcessor):  # type: ignore[misc]
    """Restrict octoDNS to the slots pmgdns owns (see the module docstring).

    Options (written by `pmgdns render`): `absent_zones` (zones, trailing dot, whose pmgdns
    records are removed) and `families` ({family name: its ownership options}).
    """

    def __init__(self, id: str, absent_zones: Iterable[str] = (),
                 families: Mapping[str, Mapping[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self.absent_zones = frozenset(z if z.endswith(".") else f"{z}." for z in absent_zones)
        options = families or {}
        self.families = [(f, options.get(f.name, {})) for f in FAMILIES]

    def claims(self, zone: str, desired: Iterable[Slot], names: Iterable[str]
               ) -> dict[Slot, Claim]:
        ctx = ZoneContext(zone, zone in self.absent_zones, frozenset(desired), frozenset(names))
        out: dict[Slot, Claim] = {}
        for family, options in self.families:
            for slot, claim in family.claims(options, ctx).items():
                out[slot] = out[slot].merge(claim) if slot in out else claim
        return out

    def process_source_and_target_zones(self, desired: Zone, existing: Zone, target: Any,
                                        lenient: bool = False) -> tuple[Zone, Zone]:
        ours = {(r.name, r._type): r for r in desired.records}
        names = {r.name for r in existing.records} | {name for name, _ in ours}
        claims = self.claims(desired.name, ours, names)
        unclaimed = sorted(s for s in ours if s not in claims)
        if unclaimed:
            listed = ", ".join(f"{n or '@'} {t}" for n, t in unclaimed)
            raise ProcessorException(
                f"pmgdns publishes {listed} in "
                f"{desired.name} but no record family claims it: this is a pmgdns bug, please "
                "report it. Nothing was applied.")

        published = {name for name, _ in ours}
        for record in existing.records:
            if record._type == "CNAME" and record.name in published \
                    and (record.name, "CNAME") not in claims:
                raise OwnershipConflict(
                    f"CNAME conflict: {record.fqdn} is a CNAME to {record.value} at "
                    f"{target.id}, but pmgdns must publish "
                    f"{', '.join(sorted(t for n, t in ours if n == record.name))} there; remove "
                    "the CNAME or move the gateway/records to another name. Nothing was applied."
                )

        cnames = {name for name, rtype in ours if rtype == "CNAME"}
        for record in existing.records:
            if record.name in cnames and record._type != "CNAME" \
                    and (record.name, record._type) not in claims:
                raise OwnershipConflict(
                    f"CNAME conflict: pmgdns must publish a CNAME at {record.fqdn}, where "
                    f"{target.id} holds a {record._type} record that is not pmgdns's; a CNAME "
                    "stands alone: remove that record or give mta_sts.web an address instead. "
                    "Nothing was applied.")

        for record in existing.records:
            slot = (record.name, record._type)
            claim = claims.get(slot)
            if claim is None:
                # foreign: keep exactly as the target has it
                desired.add_record(_same(record, desired), replace=True, lenient=True)
                continue
            if claim.whole:
                continue  # the desired set (or its absence) wins
            foreign = [v for v in record.values if not claim.owns(raw_text(v))]
            if not foreign:
                continue
            mine = ours.get(slot)
            if mine is None:
                merged = record.copy(zone=desired, values=foreign)
            else:
                values = foreign + [v for v in mine.values if v not in foreign]
                merged = mine.copy(zone=desired, values=values)
            desired.add_record(merged, replace=True, lenient=True)
        return desired, existing
