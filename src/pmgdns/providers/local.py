"""The built-in `local` target: RFC 1035 zone files in `build/zones/`, no account, no network.

octodns-bind's ZoneFileProvider rewrites whole files from the plan's changes and, as a target,
assumes the file is empty. This provider reads the file in target mode too, and applies the plan's
changes to the records already in it (keeping SOA, NS and anything else someone put there), bumps
the SOA serial, and writes the file atomically. `named-checkzone` accepts what it writes.
A zone file is read as data only: `$INCLUDE` is refused, and so is anything but a regular file
of a sane size.
"""

from __future__ import annotations

import os
import stat
import tempfile
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
from octodns.record import Delete
from octodns_bind import ZoneFileProvider, ZoneFileSourceLoadFailure

from ..core.errors import FileProblem
from .bind import populate_from, rdatas_of

MAX_ZONE_FILE = 256 * 1024 * 1024  # bytes; a zone file larger than this is refused


class LocalZoneFileProvider(ZoneFileProvider):  # type: ignore[misc]
    """Zone files `DIRECTORY/ZONE.zone` that keep what they hold across applies.

    Options: `directory` (default ./build/zones), `file_extension` (default .zone),
    `nameserver` (the apex NS written into a new file, default `ns.invalid.`, a reserved name
    that resolves nowhere), and the SOA options of octodns-bind's ZoneFileProvider.
    """

    SUPPORTS_ROOT_NS = False  # the apex NS is file scaffolding here, like the SOA

    def __init__(self, id: str, directory: str = "./build/zones", file_extension: str = ".zone",
                 nameserver: str = "ns.invalid.", **kwargs: Any) -> None:
        kwargs.setdefault("check_origin", False)
        super().__init__(id, directory, file_extension=file_extension, **kwargs)
        self.nameserver = nameserver

    def _path(self, zone_name: str) -> str:
        return os.path.join(self.directory, f"{zone_name[:-1]}{self.file_extension}")

    def list_zones(self) -> list[str]:
        if not os.path.isdir(self.directory):
            return []
        return list(super().list_zones())

    def _load(self, zone_name: str) -> dns.zone.Zone | None:
        path = self._path(zone_name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise ZoneFileSourceLoadFailure(f"{path} is not a regular file")
        if st.st_size > MAX_ZONE_FILE:
            raise ZoneFileSourceLoadFailure(f"{path} is larger than {MAX_ZONE_FILE} bytes")
        try:
            return dns.zone.from_file(path, zone_name, relativize=False, check_origin=False,
                                      allow_include=False)
        except (dns.exception.DNSException, UnicodeDecodeError, ValueError) as exc:
            raise ZoneFileSourceLoadFailure(f"{path}: {exc}") from None

    def zone_exists(self, zone: Any, target: bool = False) -> bool:
        return os.path.exists(self._path(zone.name))

    def populate(self, zone: Any, target: bool = False, lenient: bool = False) -> bool:
        # read the file in target mode too (octodns-bind assumes an empty zone there), and always
        # afresh: a plan after an apply in the same process must see the new file
        found = populate_from(zone, self._load(zone.name), self.SUPPORTS, lenient)
        self.log.info("populate:   found %s records", found)
        return self.zone_exists(zone, target)

    def _new_zone(self, name: str) -> dns.zone.Zone:
        origin = dns.name.from_text(name)
        z = dns.zone.Zone(origin, relativize=False)
        soa = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.SOA,
            f"{self.nameserver} {self._hostmaster_email(name)} 0 {self.refresh} {self.retry} "
            f"{self.expire} {self.nxdomain}", origin=dns.name.root, relativize=False,
        )
        z.find_rdataset(origin, dns.rdatatype.SOA, create=True).add(soa, self.default_ttl)
        ns = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, self.nameserver,
                                 origin=dns.name.root, relativize=False)
        z.find_rdataset(origin, dns.rdatatype.NS, create=True).add(ns, self.default_ttl)
        return z

    def _apply(self, plan: Any) -> bool:
        name = plan.desired.name
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise FileProblem(f"cannot create the zone directory {self.directory}: "
                              f"{exc.strerror}") from None
        z = self._load(name) or self._new_zone(name)
        for change in plan.changes:
            record = change.record
            owner = dns.name.from_text(record.fqdn)
            rdtype = dns.rdatatype.from_text(record._type)
            z.delete_rdataset(owner, rdtype)
            if isinstance(change, Delete):
                continue
            rdataset = z.find_rdataset(owner, rdtype, create=True)
            for rdata in rdatas_of(record):
                rdataset.add(rdata, record.ttl)
        self._bump_serial(z)
        path = self._path(name)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        except OSError as exc:
            raise FileProblem(f"cannot write the zone file {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"; {name} written by pmgdns (local target)\n")
                z.to_file(fh, sorted=True, relativize=True, want_origin=True)
            os.replace(tmp, path)
        except OSError as exc:
            os.unlink(tmp)
            raise FileProblem(f"cannot write the zone file {path}: {exc.strerror}") from None
        except BaseException:
            os.unlink(tmp)
            raise
        self.log.debug("_apply: zone=%s, num_changes=%d", name, len(plan.changes))
        return True

    def _bump_serial(self, z: dns.zone.Zone) -> None:
        assert z.origin is not None
        rdataset = z.find_rdataset(z.origin, dns.rdatatype.SOA)
        soa = rdataset[0]
        today = int(datetime.now(UTC).strftime("%Y%m%d00"))
        serial = max(soa.serial + 1, today) % 4294967296
        ttl = rdataset.ttl
        rdataset.clear()  # type: ignore[no-untyped-call]
        rdataset.add(soa.replace(serial=serial), ttl)
