"""What the record families' `verify` checks are made of: a `Check` result, the options of a
run, and the `Probe` protocol: what a check may ask of the world (DNS answers as plain values, an
SMTP session with a node, the MTA-STS policy a domain serves). `pmgdns.verify.probe` implements
it; the families never talk to the network themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..spec.model import Domain, Gateway, Site

if TYPE_CHECKING:  # start-up time: dnspython's resolver stack loads only for verify
    import dns.resolver

OK, WARN, FAIL = "OK", "WARN", "FAIL"
APPLY = "run `pmgdns apply`"


@dataclass(frozen=True, slots=True)
class Check:
    """One verify result. `subject` is a domain or a gateway node (FQDN); `family` the record
    family that checked; `observed`/`expected` what the DNS answered and what the spec wants."""

    subject: str
    family: str
    check: str
    status: str
    message: str
    fix: str = ""
    observed: str = ""
    expected: str = ""

    def fields(self) -> tuple[str, str, str, str, str, str, str, str]:
        return (self.subject, self.family, self.check, self.status, self.message, self.fix,
                self.observed, self.expected)

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "family": self.family, "check": self.check,
                "status": self.status, "message": self.message, "fix": self.fix,
                "observed": self.observed, "expected": self.expected}


@dataclass(frozen=True)
class VerifyOptions:
    """What verify does beyond DNS: `smtp` connects to each node on port 25; `resolve` maps
    (name, port) to the (address, port) to connect to instead; `ca_file` replaces the system's
    trust store for SMTP and HTTPS; `dnsbl` the DNS blocklists to look the node addresses up in
    (beside the spec's `verify: {dnsbl: [...]}`)."""

    smtp: bool = False
    resolve: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    ca_file: str | None = None
    dnsbl: tuple[str, ...] = ()


@dataclass
class Delegation:
    """A zone seen from its parent (spec-v1 §7.3): `registered` False when the parent answers
    NXDOMAIN or holds no delegation; the NS names the parent delegates to, those of them that do
    not answer for the zone (name, why), the NS sets the zone's target (`target_ns`, None: not
    asked) and its delegated servers (`served_ns`) serve, the parent's DS rdatas, and the zone's
    DNSKEY/SOA rrsets with their RRSIG rrsets (dnspython objects; None: none answered)."""

    parent: str
    registered: bool
    target: str  # where pmgdns applies the zone: the target's name (and address)
    parent_ns: tuple[str, ...] = ()
    lame: tuple[tuple[str, str], ...] = ()
    ds: tuple[Any, ...] = ()
    target_ns: tuple[str, ...] | None = None
    served_ns: tuple[str, ...] | None = None
    nxdomain: bool = True  # not registered: NXDOMAIN, or (False) an answer without delegation
    dnskey: Any = None
    dnskey_sigs: Any = None
    soa: Any = None
    soa_sigs: Any = None


class Probe(Protocol):
    """The DNS as verify sees it, the spec it checks against, and what else it may do."""

    site: Site
    resolver: dns.resolver.Resolver  # for checkdmarc's parsers, which resolve on their own
    options: VerifyOptions

    def rrset(self, name: str, rtype: str, published: bool = True) -> list[Any]:
        """The rdatas at (name, type) as a receiver resolves them: CNAMEs followed (also into
        other zones); [] for no answer, NXDOMAIN, and, at a name pmgdns publishes
        (`published`), an answer the wildcard `*.D` of the name's spec zone synthesised in
        place of the missing record (see `in_its_place`)."""

    def txt(self, name: str) -> list[str]:
        """Every TXT value at name, its strings joined, sorted."""

    def addresses(self, name: str, published: bool = True) -> set[str]:
        """Every A and AAAA address at name (`published` as for `rrset`)."""

    def cname(self, name: str) -> str | None:
        """The CNAME target at name, if any."""

    def wildcard(self, zone: str) -> tuple[str, list[str]]:
        """A random name directly below `zone` and the TXT values it answers: what the wildcard
        `*.zone` says at every name that does not exist (asked once per zone and run)."""

    def in_its_place(self, name: str) -> str:
        """Why `name` answered nothing although something answered it: '' when nothing did, or
        `; the wildcard *.D answers in its place (...)` when the answer was synthesised by the
        wildcard (RFC 4592) and so is reported as that name missing, never as a wrong value."""

    def delegation(self, domain: Domain) -> Delegation | None:
        """`domain`'s zone seen from its parent, asked once per zone; None when the parent
        cannot be asked (the name server refuses or does not answer for it)."""

    def smtp_checks(self, family: str, node: Gateway, tlsa: Sequence[str]) -> list[Check]:
        """A sender's session with the node on port 25 (STARTTLS, certificate, TLSA match)."""

    def policy_checks(self, family: str, domain: Domain, rendered: str,
                      address: str | None) -> list[Check]:
        """The MTA-STS policy served at https://mta-sts.D/ against the rendered one; `address`
        is where to connect (None: a --resolve mapping says)."""
