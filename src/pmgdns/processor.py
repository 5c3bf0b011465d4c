"""The octoDNS processor that makes spec-v1 §3 true: pmgdns owns only its own records.

Referenced from `build/octodns.yaml`, so `octodns-sync` with that file behaves as `pmgdns plan`.

octoDNS plans whole (name, type) sets and deletes whatever the source lacks. Before it compares,
this processor rebuilds the desired zone from the existing one:

- every foreign (name, type) set is copied from the target into `desired` unchanged, so it is
  never created, changed or deleted, and octoDNS's safety thresholds count the whole zone;
- a TXT set pmgdns publishes to is merged: the existing values of other kinds stay byte for byte,
  the values of pmgdns's kind (`v=spf1`, `v=DMARC1`, `v=DKIM1`) are replaced by the desired ones,
  so a name ends with exactly one `v=spf1` value;
- MX at the domain and A/AAAA at the gateway are owned whole: the desired set replaces them;
- a CNAME at a name pmgdns publishes is a conflict (ProcessorException names it);
- explicit deletions (`absent: true`, `dkim.retired_selectors`) remove only pmgdns's values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from octodns.processor.base import BaseProcessor, ProcessorException
from octodns.zone import Zone

from .records import DKIM_KIND, DMARC_KIND, SPF_KIND, relative, txt_kind

Slot = tuple[str, str]  # (relative name, type)


class OwnershipConflict(ProcessorException):
    """A foreign record stands where pmgdns must publish (a CNAME)."""


def _kind(value: Any) -> str | None:
    return txt_kind(str(value).replace("\\;", ";"))


class OwnershipProcessor(BaseProcessor):
    """Restrict octoDNS to the slots pmgdns owns (see the module docstring).

    Options (all written by `pmgdns render`):
      gateway: the gateway's FQDN (trailing dot)
      selector: the current DKIM selector
      retired_selectors: selectors whose `v=DKIM1` values are removed from every zone
      absent_zones: zones (trailing dot) whose pmgdns records are removed
      absent_reports: {absent zone: [domains]} whose `_report._dmarc` authorisations pmgdns
        published in that zone and now removes
    """

    def __init__(self, id: str, gateway: str, selector: str,
                 retired_selectors: Iterable[str] = (), absent_zones: Iterable[str] = (),
                 absent_reports: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(id, **kwargs)
        self.gateway = gateway if gateway.endswith(".") else f"{gateway}."
        self.selector = selector
        self.retired_selectors = tuple(retired_selectors)
        self.absent_zones = frozenset(z if z.endswith(".") else f"{z}." for z in absent_zones)
        self.absent_reports = {z if z.endswith(".") else f"{z}.": list(ds)
                               for z, ds in (absent_reports or {}).items()}

    def _in_zone(self, fqdn: str, zone: str) -> bool:
        return fqdn == zone or fqdn.endswith(f".{zone}")

    def deletion_slots(self, zone: str, existing_names: Iterable[str]) -> dict[Slot, str | None]:
        """Slots to empty of pmgdns's values when nothing is desired there: {slot: kind or None}."""
        slots: dict[Slot, str | None] = {}
        for sel in self.retired_selectors:
            slots[(f"{sel}._domainkey", "TXT")] = DKIM_KIND
        if zone in self.absent_zones:
            slots.update({("", "MX"): None, ("", "TXT"): SPF_KIND, ("*", "TXT"): SPF_KIND,
                          ("_dmarc", "TXT"): DMARC_KIND,
                          (f"{self.selector}._domainkey", "TXT"): DKIM_KIND})
            if self._in_zone(self.gateway, zone) and self.gateway != zone:
                host = relative(self.gateway, zone)
                slots.update({(host, "A"): None, (host, "AAAA"): None, (host, "TXT"): SPF_KIND})
        # `_report._dmarc` authorisations: those for absent domains anywhere, and all that
        # pmgdns published in a zone that is now absent
        reporters = {z.rstrip(".") for z in self.absent_zones if z != zone}
        reporters.update(self.absent_reports.get(zone, []))
        for name in existing_names:
            reporter, marker, rest = name.partition("._report._dmarc")
            if marker and reporter in reporters and (not rest or rest.startswith(".")):
                slots[(name, "TXT")] = DMARC_KIND
        return slots

    def process_source_and_target_zones(self, desired: Zone, existing: Zone, target: Any,
                                        lenient: bool = False) -> tuple[Zone, Zone]:
        ours = {(r.name, r._type): r for r in desired.records}
        kinds: dict[Slot, str | None] = {}
        for slot, record in ours.items():
            kinds[slot] = _kind(record.values[0]) if record._type == "TXT" else None
        for slot, kind in self.deletion_slots(
            desired.name, {r.name for r in existing.records}
        ).items():
            kinds.setdefault(slot, kind)

        published = {name for name, _ in ours}
        for record in existing.records:
            if record._type == "CNAME" and record.name in published:
                raise OwnershipConflict(
                    f"CNAME conflict: {record.fqdn} is a CNAME to {record.value} at "
                    f"{target.id}, but pmgdns must publish "
                    f"{', '.join(sorted(t for n, t in ours if n == record.name))} there; remove "
                    "the CNAME or move the gateway/records to another name. Nothing was applied."
                )

        for record in existing.records:
            slot = (record.name, record._type)
            if slot not in kinds:
                # foreign: keep exactly as the target has it
                desired.add_record(record.copy(zone=desired), replace=True, lenient=True)
                continue
            kind = kinds[slot]
            if kind is None:
                continue  # owned whole: the desired set (or its absence) wins
            foreign = [v for v in record.values if _kind(v) != kind]
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
