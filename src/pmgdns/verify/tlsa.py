"""DANE TLSA (RFC 7672) against the certificate a node presents: the published records parsed,
and whether one of them matches (usage 3, DANE-EE)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import TransportError
from .session import FAIL, OK, WARN, Finding, quote


@dataclass(frozen=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: str  # lowercase hex

    def __str__(self) -> str:
        return f"{self.usage} {self.selector} {self.mtype} {self.data}"


_HEX = re.compile(r"[0-9a-f]+")


def parse_tlsa(value: str) -> Tlsa:
    """`3 1 1 <hex>` (TLSA presentation text, hex may be split by spaces) or a bare 64-hex SPKI
    SHA-256 digest (as the spec's `spki_sha256:` gives it)."""
    parts = value.split()
    if len(parts) == 1:
        parts = ["3", "1", "1", *parts]
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        raise TransportError(f"TLSA value {quote(value)}: expected `3 1 1 <hex>` or 64 hex digits")
    data = "".join(parts[3:]).lower()
    usage, selector, mtype = (int(p) for p in parts[:3])
    want = {1: 64, 2: 128}.get(mtype)
    if _HEX.fullmatch(data) is None or len(data) % 2 or (want is not None and len(data) != want):
        raise TransportError(f"TLSA value {quote(value)}: "
                             "the data is not the hex digest it should be")
    return Tlsa(usage, selector, mtype, data)


def tlsa_data(cert_der: bytes, spki: bytes, selector: int, mtype: int) -> str | None:
    """What the certificate offers for a TLSA selector and matching type (None: unknown ones)."""
    material = {0: cert_der, 1: spki}.get(selector)
    if material is None:
        return None
    if mtype == 0:
        return material.hex()
    if mtype == 1:
        return hashlib.sha256(material).hexdigest()
    if mtype == 2:
        return hashlib.sha512(material).hexdigest()
    return None


def tlsa_finding(leaf: bytes, spki: bytes, tlsa: Sequence[Tlsa]) -> Finding:
    have = hashlib.sha256(spki).hexdigest()
    published = ", ".join(str(t) for t in tlsa)
    usable = [t for t in tlsa if t.usage == 3]
    for t in usable:
        if tlsa_data(leaf, spki, t.selector, t.mtype) == t.data:
            return Finding(OK, "TLSA match", f"the certificate matches TLSA {t}",
                           observed=f"3 1 1 {have}", expected=published)
    if not usable:
        return Finding(
            WARN, "TLSA match", f"no DANE-EE (usage 3) TLSA record to check ({published}); "
            f"the certificate's key is 3 1 1 {have}",
            "publish TLSA 3 1 1 records (gateways[].tlsa in the spec)",
            observed=f"3 1 1 {have}", expected=published)
    return Finding(
        FAIL, "TLSA match",
        f"the certificate's key is 3 1 1 {have}, which no published TLSA record matches "
        f"({published}); DANE senders will not deliver",
        "publish the key's digest (gateways[].tlsa: cert_file or spki_sha256) and apply before "
        "switching keys; or switch the MTA back to the key the TLSA records name",
        observed=f"3 1 1 {have}", expected=published)

