"""DANE for SMTP (RFC 7672, spec-v1 §6.2): `_25._tcp.node TLSA 3 1 1 <sha256 of the
certificate's SubjectPublicKeyInfo>`, one per entry of the node's `tlsa:` list (a PEM certificate
or public key as `cert_file`, or the digest as `spki_sha256`; two entries during a key rollover).

`_25._tcp.node` TLSA is owned whole in the node's zone when the node has `tlsa:` (`tlsa: []`
switches it off: a TLSA record for a key the node no longer has makes DANE senders refuse to
deliver, so the set goes); without `tlsa:` pmgdns leaves the name alone.
TLSA is honoured only in DNSSEC-signed zones; verify warns when the node's zone is not signed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.errors import TransportError
from ..spec.certs import spki_sha256
from ..spec.model import Domain, Gateway, RecordSpec, Site, in_zone, relative, zone_of
from .base import WHOLE, Claim, Family, Key, Path, Slot, ZoneContext
from .checking import APPLY, FAIL, OK, WARN, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_CERT = 1024 * 1024  # bytes


def _parse(c: Checker, value: Any, path: Path, inherited: Any) -> tuple[str, ...] | None:

    if value is None:
        return None
    if not isinstance(value, list):
        raise c.fail(path, "must be a list of {cert_file: PEM} or {spki_sha256: HEX} entries")
    out: list[str] = []
    for i, entry in enumerate(value):
        p = (*path, str(i))
        e = c.mapping(entry, p, ("cert_file", "spki_sha256"))
        if len(e) != 1:
            raise c.fail(p, "give exactly one of cert_file or spki_sha256")
        if "spki_sha256" in e:
            digest = c.string(e["spki_sha256"], (*p, "spki_sha256")).replace(":", "")
            if not _HEX64.match(digest):
                raise c.fail((*p, "spki_sha256"), "must be 64 hex digits (the SHA-256 of the "
                                                  "certificate's SubjectPublicKeyInfo)")
            digest = digest.lower()
        else:
            data = c.read_input(e["cert_file"], (*p, "cert_file"), MAX_CERT, "the certificate")
            try:
                digest = spki_sha256(data)
            except TransportError as exc:
                raise c.fail((*p, "cert_file"), str(exc)) from None
        if digest not in out:
            out.append(digest)
    return tuple(out)


def name_of(node: str) -> str:
    return f"_25._tcp.{node.rstrip('.')}"


class TlsaFamily(Family):
    name = "tlsa"
    node_keys = (Key("tlsa", None, _parse),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        for node in site.gateways:
            digests: tuple[str, ...] | None = node.options.get("tlsa")
            if digests and site.node_zone(node) == domain.name:
                yield RecordSpec(domain.zone, relative(name_of(node.hostname), domain.zone),
                                 "TLSA", domain.ttl, tuple(f"3 1 1 {d}" for d in digests))

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"nodes": [n.fqdn for n in site.gateways if n.options.get("tlsa") is not None]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        out: dict[Slot, Claim] = {}
        for node in options.get("nodes", []):
            if in_zone(node, ctx.zone) and node != ctx.zone:
                out[(relative(f"{name_of(node)}.", ctx.zone), "TLSA")] = WHOLE
        return out

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:

        digests: tuple[str, ...] | None = node.options.get("tlsa")
        if not digests:
            return []
        name = f"{name_of(node.hostname)}."
        have = sorted(f"{r.usage} {r.selector} {r.mtype} {r.cert.hex()}"
                      for r in probe.rrset(name, "TLSA"))
        want = sorted(f"3 1 1 {d}" for d in digests)
        observed = " | ".join(have) or "nothing"
        ok = have == want
        out = [Check(node.fqdn, self.name, "TLSA", OK if ok else FAIL,
                     f"{name} TLSA {observed}" + ("" if ok else
                                                  f"; the spec says {' | '.join(want)}"),
                     "" if ok else APPLY, observed=observed, expected=" | ".join(want))]
        zone = zone_of(node.hostname, probe.site.domains) or ".".join(
            node.hostname.split(".")[-2:])
        if not probe.rrset(f"{zone}.", "DNSKEY"):
            out.append(Check(node.fqdn, self.name, "DNSSEC", WARN,
                             f"{zone} is not DNSSEC-signed (no DNSKEY), so senders ignore the "
                             "TLSA records (RFC 7672)",
                             f"sign {zone} with DNSSEC at its DNS provider for DANE to take "
                             "effect", observed="no DNSKEY", expected="a signed zone"))
        return out


FAMILY = TlsaFamily()
