"""An octoDNS source that builds zones straight from the checked spec.

`pmgdns plan` and `apply` use it in place of reading `zones/*.yaml` back (the YAML round trip):
the records are the very ones `render` writes there, built with the same data, so the zones are
the same as octoDNS's YamlProvider would load (`render --check` keeps `zones/` equal to them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from octodns.record import Record
from octodns.source.base import BaseSource

from ..spec.model import RecordSpec

TXT_TYPES = ("TXT", "SPF")


def record_data(r: RecordSpec) -> dict[str, Any]:
    """The octoDNS data of one record set, as the zone YAML holds it (values unescaped)."""
    data: dict[str, Any] = {"type": r.type, "ttl": r.ttl}
    values: list[Any] = []
    for v in r.values:
        if r.type == "MX":
            pref, exchange = v.split(" ", 1)
            values.append({"exchange": exchange, "preference": int(pref)})
        elif r.type == "CAA":
            flags, tag, value = v.split(" ", 2)
            values.append({"flags": int(flags), "tag": tag, "value": value.strip('"')})
        elif r.type == "TLSA":
            usage, selector, mtype, digest = v.split(" ", 3)
            values.append({"certificate_usage": int(usage), "selector": int(selector),
                           "matching_type": int(mtype), "certificate_association_data": digest})
        else:
            values.append(v)
    if len(values) == 1:
        data["value"] = values[0]
    else:
        data["values"] = values
    return data


def internal_data(r: RecordSpec) -> dict[str, Any]:
    """`record_data` as octoDNS holds it internally (TXT `;` escaped), which is what its
    YamlProvider makes of the zone YAML with `escaped_semicolons: false`."""
    data = record_data(r)
    if r.type in TXT_TYPES:
        if "value" in data:
            data["value"] = data["value"].replace(";", "\\;")
        else:
            data["values"] = [v.replace(";", "\\;") for v in data["values"]]
    return data


class SiteSource(BaseSource):  # type: ignore[misc]
    """Zones from pmgdns's records: {zone name (trailing dot): records}."""

    SUPPORTS_GEO = False
    SUPPORTS_DYNAMIC = False
    SUPPORTS = frozenset(("A", "AAAA", "CAA", "CNAME", "MX", "TLSA", "TXT"))

    def __init__(self, id: str, records: Mapping[str, Sequence[RecordSpec]]) -> None:
        self.log = logging.getLogger(f"SiteSource[{id}]")
        super().__init__(id)
        self.records = records

    def populate(self, zone: Any, target: bool = False, lenient: bool = False) -> bool:
        for r in self.records.get(zone.name, ()):
            zone.add_record(Record.new(zone, r.name, internal_data(r), source=self,
                                       lenient=lenient), lenient=lenient)
        return True
