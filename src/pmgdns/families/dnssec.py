"""DNSSEC of each domain's zone, from its parent down (spec-v1 §7.3), with dnspython's
`dns.dnssec`: a zone with DNSKEY records is `secure` when a DS at the parent matches one of its
keys and the signatures made with it validate; `signed, not delegated securely` (WARN) when the
parent has no DS; `bogus` (FAIL) when no DS matches or the RRSIGs do not validate: validating
resolvers then refuse every answer of the zone, and mail to it stops.

Checked once per zone, from the same view of the parent as the delegation check.
"""

from __future__ import annotations

import functools
import threading
import warnings
from typing import Any

import dns.name
import dns.rrset

from ..spec.model import Domain
from .base import Family
from .checking import FAIL, OK, WARN, Check, Delegation, Probe

NOT_APPLY = "apply cannot fix this: the DS is published at the registrar"
RESIGN = "apply cannot fix this: the zone's signer must sign it again"
KSK = 257  # DNSKEY flags of a key-signing (or combined) key: the one a DS names


_IMPORTING = threading.Lock()  # catch_warnings changes process-wide state: one thread at a time


@functools.cache
def _dnssec() -> Any:
    # start-up time: dns.dnssec loads `cryptography`; only verify needs it. Importing it with
    # cryptography >= 44 warns about DSA, which pmgdns never uses.
    with _IMPORTING, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*DSA.*")
        try:
            from cryptography.utils import CryptographyDeprecationWarning
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        except ImportError:  # pragma: no cover - an older cryptography has no such warning
            pass
        import dns.dnssec
    return dns.dnssec


def _ds_texts(dnssec: Any, zone: str, keys: Any) -> list[str]:
    """The DS (SHA-256) of each key-signing key, as the registrar wants it."""
    out = []
    for key in keys:
        if key.flags == KSK:
            out.append(f"{zone} IN DS {dnssec.make_ds(zone, key, 'SHA256').to_text()}")
    return out


def _matching(dnssec: Any, zone: str, keys: Any, ds_set: tuple[Any, ...]) -> list[Any]:
    matched = []
    for key in keys:
        for ds in ds_set:
            try:
                if dnssec.make_ds(zone, key, ds.digest_type) == ds:
                    matched.append(key)
                    break
            except (dnssec.UnsupportedAlgorithm, ValueError):
                continue
    return matched


def dnssec_check(d: Domain, view: Delegation, family: str = "dnssec") -> Check | None:
    """secure / unsigned (OK), signed but not delegated securely (WARN), bogus (FAIL); None when
    no server of the zone answered (the delegation check says why)."""
    if not view.registered or view.soa is None:
        return None
    zone, parent = d.zone, view.parent
    ds_set = view.ds
    tags = ", ".join(str(ds.key_tag) for ds in ds_set)

    def check(status: str, message: str, fix: str = "", expected: str = "") -> Check:
        return Check(d.name, family, "DNSSEC", status, message, fix,
                     observed=f"DS {tags} at {parent}" if ds_set else f"no DS at {parent}",
                     expected=expected)

    keys = view.dnskey
    if keys is None:
        if ds_set:
            return check(FAIL, f"bogus: {parent} has a DS for {zone} (key tag {tags}) but the "
                               "zone serves no DNSKEY: validating resolvers refuse every answer "
                               "of the zone, and mail to it stops",
                         f"remove the DS at the registrar, or sign the zone again with the key "
                         f"it names; {NOT_APPLY}")
        return check(OK, f"{zone} is not signed (no DNSKEY, no DS at {parent})")
    dnssec = _dnssec()
    own = _ds_texts(dnssec, zone, keys)
    key_tags = ", ".join(str(dnssec.key_id(k)) for k in keys)
    if not ds_set:
        return check(WARN, f"signed, not delegated securely: {zone} has DNSKEY records but "
                           f"{parent} has no DS for it, so validating resolvers treat it as "
                           "unsigned and senders ignore its TLSA records",
                     f"publish the DS at the registrar: {' ; '.join(own) or 'of its KSK'}; "
                     f"{NOT_APPLY}",
                     expected=" ; ".join(own))
    matched = _matching(dnssec, zone, keys, ds_set)
    if not matched:
        return check(FAIL, f"bogus: no DS at {parent} (key tag {tags}) matches a key of {zone} "
                           f"(key tags {key_tags}): validating resolvers refuse every answer of "
                           "the zone, and mail to it stops",
                     f"replace the DS at the registrar by {' ; '.join(own) or 'one of its KSK'}"
                     f"; {NOT_APPLY}", expected=" ; ".join(own))
    problems = []
    anchors = dns.rrset.from_rdata_list(zone, keys.ttl, matched)
    for what, rrset, sigs, trusted in (("DNSKEY", keys, view.dnskey_sigs, anchors),
                                       ("SOA", view.soa, view.soa_sigs, keys)):
        if sigs is None:
            problems.append(f"its {what} is not signed")
            continue
        try:
            dnssec.validate(rrset, sigs, {dns.name.from_text(zone): trusted})
        except dnssec.ValidationFailure as exc:
            problems.append(f"the RRSIG over its {what} does not validate ({exc})")
    if problems:
        return check(FAIL, f"bogus: {'; '.join(problems)}: validating resolvers refuse every "
                           "answer of the zone, and mail to it stops",
                     f"re-sign the zone at its target (its signer has stopped or lost its "
                     f"keys); {RESIGN}", expected=" ; ".join(own))
    return check(OK, f"secure: the DS at {parent} matches key "
                     f"{', '.join(str(dnssec.key_id(k)) for k in matched)} of {zone}, and its "
                     "signatures validate", expected=" ; ".join(own))


class DnssecFamily(Family):
    name = "dnssec"

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        view = probe.delegation(domain)
        found = None if view is None else dnssec_check(domain, view, self.name)
        return [] if found is None else [found]


FAMILY = DnssecFamily()
