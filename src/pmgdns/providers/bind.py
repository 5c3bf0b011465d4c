"""What pmgdns's BIND-style providers share: reading a dnspython zone into octoDNS records, and
turning octoDNS records into dnspython rdatas, without octoDNS's deprecated `Rr`/`rrs` API.

TXT values never pass through presentation-format text on the way out: each value is encoded
as UTF-8 and cut into 255-byte character-strings, so a backslash, a quote or a `;` in a value
(pmgdns's or a foreign one at the target) is published as the very bytes it is, and nothing can
loop (octoDNS's legacy chunking loops forever on a value ending in a backslash).
"""

from __future__ import annotations

from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.zone
from octodns.record import Record
from octodns.record.rr import Rrset

TXT_TYPES = ("TXT", "SPF")


def _direct_data(rtype: str, rdataset: Any) -> dict[str, Any] | None:
    """octoDNS data for the common types straight from dnspython's rdatas, without a round
    trip through presentation text (what `Record.from_rrsets` would parse again); None for the
    other types."""
    if rtype in TXT_TYPES:
        # bytes that are not UTF-8 travel as surrogates and go back out as the same bytes
        values: list[Any] = [b"".join(r.strings).decode("utf-8", "surrogateescape")
                             .replace(";", "\\;") for r in rdataset]
    elif rtype in ("A", "AAAA"):
        values = [r.address for r in rdataset]
    elif rtype == "MX":
        values = [{"preference": r.preference, "exchange": r.exchange.to_text()}
                  for r in rdataset]
    else:
        return None
    return {"type": rtype, "ttl": rdataset.ttl, "values": values}


def populate_from(zone: Any, z: dns.zone.Zone | None, supported: set[str] | frozenset[str],
                  lenient: bool) -> int:
    """Add the records of `z` to the octoDNS `zone`; the number added."""
    if z is None:
        return 0
    others: list[Rrset] = []
    count = 0
    for name, rdataset in z.iterate_rdatasets():
        rtype = dns.rdatatype.to_text(rdataset.rdtype)
        if rtype not in supported:
            continue
        data = _direct_data(rtype, rdataset)
        if data is None:
            others.append(Rrset(name.to_text(), rtype, rdataset.ttl,
                                [r.to_text() for r in rdataset]))
            continue
        record = Record.new(zone, zone.hostname_from_fqdn(name.to_text()), data,
                            lenient=lenient)
        zone.add_record(record, lenient=lenient)
        count += 1
    for record in Record.from_rrsets(zone, others, lenient=lenient):
        zone.add_record(record, lenient=lenient)
        count += 1
    return count


def character_strings(text: str) -> list[bytes]:
    """A TXT value (as DNS answers it) as the 255-byte character-strings of its RDATA."""
    data = text.encode("utf-8", "surrogateescape")
    return [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]


def txt_presentation(value: Any) -> str:
    """One TXT/SPF value of an octoDNS record in presentation format (`"..." "..."`), escaped
    by dnspython: for providers whose APIs take that text (Cloudflare, Route53)."""
    rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT,
                                    character_strings(value.to_raw_text()))
    return str(rdata.to_text())


def rdatas_of(record: Any) -> list[dns.rdata.Rdata]:
    """The dnspython rdatas of an octoDNS record."""
    rdtype = dns.rdatatype.from_text(record._type)
    values = record.values if hasattr(record, "values") else [record.value]
    out: list[dns.rdata.Rdata] = []
    for value in values:
        if record._type in TXT_TYPES:
            out.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, rdtype,
                                               character_strings(value.to_raw_text())))
        else:
            out.append(dns.rdata.from_text(dns.rdataclass.IN, rdtype, value.to_rdata_text(),
                                           origin=dns.name.root, relativize=False))
    return out
