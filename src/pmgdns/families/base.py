"""What a record family declares, in one place.

A record family (the gateway's own records, MX, SPF, DMARC, DKIM, ...) is one module with one
`Family` subclass. It declares:

- its spec keys: top-level keys (`parse_top`), keys of `defaults:`/`domains:` (`domain_keys`,
  merged over the defaults) and keys of a gateway node (`node_keys`), each with its checks;
- the records it publishes in a domain's zone (`records`), and files beside them (`files`);
- what it owns at each name of a zone (`claims`): a whole (name, type) set, or the TXT values of
  its kinds; and what it removes when nothing is desired there (a domain `absent`, a retired
  selector, a feature switched off). `claims` runs inside the octoDNS processor, from the
  JSON-able `ownership_options` the family writes into `build/octodns.yaml`;
- its `verify` checks, per domain and per gateway node;
- notes and manual steps for the plan.

The registry (`pmgdns.families.FAMILIES`) lists the families; spec, records, render, the
processor, plan and verify loop over it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..spec.model import Domain, Gateway, RecordSpec, Site
from .checking import Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

Path = tuple[str, ...]
Slot = tuple[str, str]  # (name relative to the zone, type)


class Change(Protocol):
    """A planned change as the families read it (`pmgdns.plan.engine.Change` is one)."""

    @property
    def zone(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def action(self) -> str: ...  # create | update | delete
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def values(self) -> tuple[str, ...]: ...
    @property
    def previous(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class TxtKind:
    """A kind of TXT value, told by its version tag (`v=spf1`, `v=DMARC1`, ...).

    RFC 7208 §4.5: an SPF record is `v=spf1` followed by a space or the end. Tag-list records
    (DMARC, DKIM, MTA-STS, TLS-RPT) are the tag followed by `;`, white space or the end.
    Case-insensitive, leading white space ignored."""

    tag: str
    space_only: bool = False

    def matches(self, value: str) -> bool:
        head = value.lstrip()
        n = len(self.tag)
        if head[:n].lower() != self.tag.lower():
            return False
        rest = head[n:]
        if not rest:
            return True
        if self.space_only:
            return rest[0] == " "
        return rest.lstrip(" \t")[:1] in (";", "")


SPF = TxtKind("v=spf1", space_only=True)
DMARC = TxtKind("v=DMARC1")
DKIM = TxtKind("v=DKIM1")


@dataclass(frozen=True)
class Claim:
    """What pmgdns owns in one (name, type) set: all of it (`kinds` empty), or the TXT values
    of `kinds`."""

    kinds: frozenset[TxtKind] = frozenset()

    @property
    def whole(self) -> bool:
        return not self.kinds

    def owns(self, value: str) -> bool:
        return self.whole or any(k.matches(value) for k in self.kinds)

    def merge(self, other: Claim) -> Claim:
        if self.whole or other.whole:
            return WHOLE
        return Claim(self.kinds | other.kinds)


WHOLE = Claim()


def txt(*kinds: TxtKind) -> Claim:
    return Claim(frozenset(kinds))


@dataclass(frozen=True)
class ZoneContext:
    """What a family sees of one zone when it claims slots in the octoDNS processor."""

    zone: str  # with trailing dot
    absent: bool  # the domain is `absent: true`: pmgdns removes what it published there
    desired: frozenset[Slot]  # the slots pmgdns publishes in this zone
    names: frozenset[str]  # every relative name in the desired or the existing zone

    def claim_desired(self, claims: Mapping[Slot, Claim]) -> dict[Slot, Claim]:
        """Those of `claims` that are desired here (or all of them in an absent zone)."""
        return {s: c for s, c in claims.items() if self.absent or s in self.desired}


@dataclass(frozen=True)
class Key:
    """A key in `defaults:`/`domains:` (or in a gateway node).

    `parse(checker, raw, path, inherited)` checks the raw YAML value and returns the new value
    (`inherited` is the value from `defaults:`, for keys merged key by key); `finish(checker,
    path, value)` turns the merged value into what the family reads from `domain.options`."""

    name: str
    default: Any
    parse: Callable[[Checker, Any, Path, Any], Any]
    finish: Callable[[Checker, Path, Any], Any] | None = None


class Family:
    """A record family; subclasses override what they need. See the module docstring."""

    name: ClassVar[str] = ""
    top_keys: ClassVar[tuple[str, ...]] = ()
    domain_keys: ClassVar[tuple[Key, ...]] = ()
    node_keys: ClassVar[tuple[Key, ...]] = ()

    # -- the spec ---------------------------------------------------------------------------------

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Any:
        """Check this family's top-level keys; the result is `site.sections[self.name]`.
        None: the family has no top-level keys."""
        return None

    def check_site(self, c: Checker, site: Site) -> None:
        """Checks across keys and families once the whole spec is read (errors, warnings)."""

    # -- records ----------------------------------------------------------------------------------

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        """The records this family publishes in `domain`'s zone (never called when absent)."""
        return ()

    def displaces(self, site: Site, domain: Domain) -> frozenset[Slot]:
        """Slots where this family publishes in place of the other families in `domain` (a
        delegated domain's CNAMEs stand where its DKIM keys were): their records there are left
        out."""
        return frozenset()

    def files(self, site: Site) -> dict[str, str]:
        """Files `render` writes beside the zones: {path: text}."""
        return {}

    def notes(self, site: Site) -> list[str]:
        """Notes for the plan (e.g. records pmgdns cannot publish)."""
        return []

    def manual(self, site: Site) -> list[dict[str, str]]:
        """Manual steps for the plan's `manual` list (spec-v1 §5)."""
        return []

    def plan_notes(self, site: Site, changes: Sequence[Change],
                   planned: Sequence[str]) -> list[str]:
        """Notes that depend on what the plan changes (e.g. when a next key is safe to use);
        `planned` are the domains the plan covers (all of them, or those chosen)."""
        return []

    # -- ownership (runs inside the octoDNS processor) --------------------------------------------

    def ownership_options(self, site: Site) -> dict[str, Any]:
        """JSON-able options `claims` needs, written into build/octodns.yaml."""
        return {}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        """The slots this family owns in `ctx.zone`: those it publishes, and those it empties
        of its values when nothing is desired there."""
        return {}

    # -- verify -----------------------------------------------------------------------------------

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        return []

    def checks_instead_of(self, site: Site, domain: Domain) -> frozenset[str]:
        """Families whose `domain_checks` this family makes in their place for `domain`."""
        return frozenset()

    def node_checks(self, probe: Probe, node: Gateway) -> list[Check]:
        return []


def report_name(value: str) -> bool:
    """Is `value` a relative name of the form `D._report._dmarc[.sub]`?"""
    return bool(re.search(r"\._report\._dmarc(\.|$)", value))
