"""The checked spec as data: a `Site` of `Domain`s served by gateway nodes, and the records
pmgdns publishes. Plain data with no behaviour beyond lookups; `spec.py` builds it, the record
families (`pmgdns.families`) read it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dkim_keys import Dkim

SOURCE_ID = "pmgdns"  # the octoDNS source provider that reads zones/
ENV_REF = re.compile(r"^env/([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True, order=True)
class RecordSpec:
    """One (name, type) set pmgdns publishes in `zone`. `name` is relative ('' for the apex).
    Values are as DNS answers them: TXT unescaped and unsplit, MX as `10 mx1.example.com.`."""

    zone: str  # with trailing dot
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.zone}" if self.name else self.zone


@dataclass(frozen=True)
class Gateway:
    """One PMG node that receives mail from the internet."""

    hostname: str  # ASCII, lower case, no trailing dot
    ipv4: str
    ipv6: str | None = None
    mx_priority: int | None = None  # None: the domain's mx_priority
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}."

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, self.ipv6) if a]


@dataclass(frozen=True)
class Domain:
    """One mail domain (a DNS zone) with every default resolved.

    The core keys are fields; the keys of the record families (`mx_priority`, `spf`, `dmarc`,
    ...) are in `options` and read as attributes too (`domain.dmarc`)."""

    name: str  # ASCII (IDNA) form, lower case, no trailing dot
    ttl: int
    targets: tuple[str, ...]
    absent: bool = False
    options: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    key: str = field(default="", compare=False)  # the key as the spec writes it

    @property
    def zone(self) -> str:
        return f"{self.name}."

    @property
    def path(self) -> tuple[str, ...]:
        """The key path of this domain in the spec, for messages."""
        return ("domains", self.key or self.name)

    def __getattr__(self, key: str) -> Any:
        if key == "options" or key.startswith("__"):
            raise AttributeError(key)
        try:
            return self.options[key]
        except KeyError:
            raise AttributeError(key) from None


@dataclass
class Site:
    """The whole checked spec.

    `sections` holds what the families parsed from top-level keys (`gateway` -> the nodes,
    `dkim` -> the DKIM keys, `firewall`, ...); `memo` caches what families derive from the site.
    """

    file: str
    domains: dict[str, Domain]
    providers: dict[str, dict[str, Any]]
    digest: str
    sections: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict, repr=False)
    inputs: dict[str, str] = field(default_factory=dict)  # files it names: path -> sha256
    lines: dict[tuple[str, ...], int] = field(default_factory=dict, repr=False)  # key -> line

    # -- the gateway nodes and the DKIM key, which most families need ----------------------------

    @property
    def gateways(self) -> tuple[Gateway, ...]:
        nodes: tuple[Gateway, ...] = self.sections["gateway"].nodes
        return nodes

    @property
    def gateway(self) -> Gateway:
        """The first node (the only one in a single-gateway spec)."""
        return self.gateways[0]

    @property
    def retired_gateways(self) -> tuple[str, ...]:
        retired: tuple[str, ...] = self.sections["gateway"].retired
        return retired

    @property
    def dkim(self) -> Dkim:
        dkim: Dkim = self.sections["dkim"]
        return dkim

    def nodes_for(self, domain: Domain) -> tuple[Gateway, ...]:
        """The nodes that serve `domain`'s MX (all, unless the domain names a subset)."""
        subset: tuple[str, ...] | None = domain.options.get("gateways")
        if not subset:
            return self.gateways
        return tuple(g for g in self.gateways if g.hostname in subset)

    def node_zone(self, node: Gateway) -> str | None:
        """The spec domain whose zone contains the node's name (longest match), if any."""
        return zone_of(node.hostname, self.domains)

    def gateway_zone(self) -> str | None:
        """The zone of the first node (see `node_zone`)."""
        return self.node_zone(self.gateway)

    # -- secrets --------------------------------------------------------------------------------

    def secret_env_vars(self) -> list[str]:
        """Names of the environment variables the providers take secrets from."""
        return sorted({m.group(1) for m in env_refs(self.providers)})

    def secret_values(self) -> list[str]:
        """The current values of those variables, for redaction."""
        return [v for v in (os.environ.get(n) for n in self.secret_env_vars()) if v]


def env_refs(value: Any) -> Iterator[re.Match[str]]:
    """Every `env/VAR` reference in a nested provider configuration."""
    if isinstance(value, str):
        m = ENV_REF.match(value)
        if m:
            yield m
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from env_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from env_refs(v)


def zone_of(name: str, domains: Mapping[str, Any]) -> str | None:
    """The longest domain in `domains` that is `name` or a parent of it."""
    labels = name.rstrip(".").split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in domains:
            return candidate
    return None


def relative(fqdn: str, zone: str) -> str:
    """`mx1.example.com` relative to `example.com.` is `mx1`; the apex is ''."""
    name = fqdn.rstrip(".")
    base = zone.rstrip(".")
    if name == base:
        return ""
    return name[: -len(base) - 1]


def in_zone(fqdn: str, zone: str) -> bool:
    """Is `fqdn` (trailing dot) `zone` (trailing dot) or below it?"""
    return fqdn == zone or fqdn.endswith(f".{zone}")
