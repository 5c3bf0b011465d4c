"""RFC 2136 targets (BIND, Knot, PowerDNS's RFC 2136 mode, ...), run in place of
`octodns_bind.Rfc2136Provider` with the same options.

octodns-bind 1.1 reads zones through octoDNS's deprecated `Rr` and writes TXT values through its
legacy chunking, which loops forever on a value ending in a backslash and reads a backslash inside
a value as a zone-file escape. This subclass reads the AXFR into `Rrset`s and sends each TXT value
as the bytes it is (`pmgdns.providers.bind`). It uses three private members of octodns-bind's
class for which no public hook exists: `_auth_params()` (the TSIG keyring), `_batch_changes()`
(its `update_batch_size` batching) and the `host`/`port`/`timeout` it was configured with.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.update
import dns.zone
from octodns.record import Create, Update
from octodns_bind import (
    AxfrSourceZoneTransferFailed,
    Rfc2136ProviderUpdateFailed,
)
from octodns_bind import (
    Rfc2136Provider as _Rfc2136Provider,
)

from .bind import populate_from, rdatas_of


class Rfc2136Provider(_Rfc2136Provider):  # type: ignore[misc]
    """octodns-bind's Rfc2136Provider without its deprecated and lossy TXT paths."""

    def _transfer(self, zone_name: str) -> dns.zone.Zone:
        try:
            return dns.zone.from_xfr(
                dns.query.xfr(self.host, zone_name, port=self.port, timeout=self.timeout,
                              lifetime=self.timeout, relativize=False, **self._auth_params()),
                relativize=False)
        except dns.exception.DNSException as err:
            raise AxfrSourceZoneTransferFailed(err) from None

    def populate(self, zone: Any, target: bool = False, lenient: bool = False) -> bool:
        found = populate_from(zone, self._transfer(zone.name), self.SUPPORTS, lenient)
        self.log.info("populate:   found %s records", found)
        return True  # RFC 2136 cannot create zones: the zone exists or the transfer failed

    def _apply(self, plan: Any) -> bool:
        desired = plan.desired
        for batch in self._batch_changes(plan.changes):
            update = dns.update.UpdateMessage(desired.name, **self._auth_params())
            for change in batch:
                record = change.record
                rdatas = rdatas_of(record)
                if isinstance(change, Create):
                    update.add(record.fqdn, record.ttl, *rdatas)
                elif isinstance(change, Update):
                    update.replace(record.fqdn, record.ttl, *rdatas)
                else:
                    update.delete(record.fqdn, *rdatas)
            self.log.debug("_apply: zone=%s, num_records=%d", desired.name, len(batch))
            response: dns.message.Message = dns.query.tcp(update, self.host, port=self.port,
                                                          timeout=self.timeout)
            if response.rcode() != dns.rcode.NOERROR:
                raise Rfc2136ProviderUpdateFailed(dns.rcode.to_text(response.rcode()))
        self.log.debug("_apply: zone=%s, total_changes=%d", desired.name, len(plan.changes))
        return True
