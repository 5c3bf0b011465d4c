"""DMARC at `_dmarc.D` (spec-v1 §2, RFC 9989): `v=DMARC1; p=quarantine; aspf=s; adkim=s;`,
tags in the order v, p, sp, np, t, rua, ruf, fo, aspf, adkim, each followed by `;`. `dmarc:` is
merged key by key over `defaults:`; a tag set to null removes the inherited tag. pmgdns owns the
`v=DMARC1` value at `_dmarc.D`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.libraries import quiet_import
from ..spec.model import Domain, RecordSpec, Site
from ..spec.values import shown
from .base import DMARC, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

POLICIES = ("none", "quarantine", "reject")
KEYS = ("p", "sp", "np", "t", "rua", "ruf", "fo", "aspf", "adkim", "pct", "rf", "ri")
REMOVED = ("pct", "rf", "ri")
BUILTIN: dict[str, Any] = {"p": "quarantine", "aspf": "s", "adkim": "s"}
# RFC 9989 §4.7 / RFC 6068: a mailto: URI with an optional `!size`; the local part as RFC 5322's
# dot-atom (no `,` `;` `!`, which the DMARC record reserves), the domain as a host name
MAILTO = re.compile(r"^mailto:([A-Za-z0-9.#$%&'*+/=?^_`{|}~-]+)@([A-Za-z0-9._-]+)"
                    r"(![0-9]+[kmgt]?)?$", re.I)


@dataclass(frozen=True)
class Dmarc:
    """The effective DMARC policy of one domain (RFC 9989 tags)."""

    p: str
    sp: str | None = None
    np: str | None = None
    t: str | None = None
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str | None = None
    aspf: str | None = None
    adkim: str | None = None

    @property
    def txt_value(self) -> str:
        """`v=DMARC1; p=...;` with the tags in spec-v1 order, each followed by `;`."""
        parts = [("v", "DMARC1"), ("p", self.p)]
        for tag in ("sp", "np", "t"):
            if getattr(self, tag) is not None:
                parts.append((tag, getattr(self, tag)))
        if self.rua:
            parts.append(("rua", ",".join(self.rua)))
        if self.ruf:
            parts.append(("ruf", ",".join(self.ruf)))
        for tag in ("fo", "aspf", "adkim"):
            if getattr(self, tag) is not None:
                parts.append((tag, getattr(self, tag)))
        return " ".join(f"{k}={v};" for k, v in parts)

    def report_domains(self) -> list[str]:
        """The domains of the rua/ruf addresses, in order, without repeats."""
        out: list[str] = []
        for uri in (*self.rua, *self.ruf):
            m = MAILTO.match(uri)
            if m:
                d = m.group(2).lower().rstrip(".")
                if d not in out:
                    out.append(d)
        return out


def _fields(c: Checker, value: Any, path: Path, inherited: Any) -> dict[str, Any]:

    d = c.mapping(value, path, KEYS)
    out: dict[str, Any] = dict(inherited or {})
    for key, val in d.items():
        p = (*path, key)
        if val is None:
            out[key] = None
            continue
        if key in REMOVED:
            c.warn(p, f"`{key}` was removed from DMARC by RFC 9989 and is not published")
            continue
        if key in ("p", "sp", "np"):
            if val not in POLICIES:
                raise c.fail(p, f"must be one of none, quarantine, reject, not {shown(val)}")
        elif key in ("aspf", "adkim"):
            if val not in ("r", "s"):
                raise c.fail(p, f"must be r (relaxed) or s (strict), not {shown(val)}")
        elif key == "t":
            val = "y" if val is True else "n" if val is False else val
            if val not in ("y", "n"):
                raise c.fail(p, f"must be y or n, not {shown(val)}")
        elif key in ("rua", "ruf"):
            if isinstance(val, str):
                val = [val]
            if not isinstance(val, list) or not val:
                raise c.fail(p, "must be a list of mailto: URIs, e.g. [mailto:dmarc@example.com]")
            uris = []
            for i, uri in enumerate(val):
                m = MAILTO.match(uri) if isinstance(uri, str) else None
                if not m:
                    raise c.fail((*p, str(i)), f"`{shown(uri)}` is not a mailto: URI; write "
                                               "mailto:address@domain")
                c.hostname(m.group(2), (*p, str(i)), "mail domain")
                uris.append(uri.strip())
            val = tuple(uris)
        elif key == "fo":
            val = str(val)
            if not all(part in ("0", "1", "d", "s") for part in val.split(":")):
                raise c.fail(p, f"must be 0, 1, d or s joined by `:`, not {shown(val)}")
        out[key] = val
    return out


def _finish(c: Checker, path: Path, value: Any) -> Dmarc:
    if value.get("p") is None:
        raise c.fail((*path, "p"), "the effective DMARC policy needs p (none, quarantine or "
                                   "reject)")
    # a report list set to null removes the inherited one: no addresses
    tags: dict[str, Any] = {k: () if v is None and k in ("rua", "ruf") else v
                            for k, v in value.items() if k not in REMOVED}
    return Dmarc(**tags)


class DmarcFamily(Family):
    name = "dmarc"
    domain_keys = (Key("dmarc", BUILTIN, _fields, _finish),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if not domain.options.get("parked"):
            yield RecordSpec(domain.zone, "_dmarc", "TXT", domain.ttl, (domain.dmarc.txt_value,))

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        return ctx.claim_desired({("_dmarc", "TXT"): txt(DMARC)})

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        if domain.options.get("parked"):
            return []
        return dmarc_checks(probe, domain, self.name, domain.dmarc)


def dmarc_checks(probe: Probe, d: Domain, family: str, want: Dmarc) -> list[Check]:
    """The DMARC record at `_dmarc.D`: exactly one, parsed by checkdmarc, tags as `want`."""
    # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
    with quiet_import("checkdmarc"):
        from checkdmarc.dmarc import DMARCError, parse_dmarc_record


    name = f"_dmarc.{d.zone}"
    expected = want.txt_value
    values = [v for v in probe.txt(name) if DMARC.matches(v)]
    if not values:
        return [Check(d.name, family, "DMARC", FAIL,
                      f"no DMARC record at {name}{probe.in_its_place(name)}", APPLY,
                      observed="nothing", expected=expected)]
    if len(values) > 1:
        return [Check(d.name, family, "DMARC", FAIL, f"{len(values)} DMARC records at {name}; "
                                                     "receivers then ignore DMARC", APPLY,
                      observed=" | ".join(values), expected=expected)]
    try:
        parsed = parse_dmarc_record(values[0], d.name, resolver=probe.resolver,
                                    timeout=probe.resolver.lifetime)
    except DMARCError as exc:
        return [Check(d.name, family, "DMARC", FAIL, f"{name} does not parse: {exc}", APPLY,
                      observed=values[0], expected=expected)]
    del parsed  # it parses; now every tag, rua and ruf included, must be the spec's
    have, wanted = _tags(values[0]), _tags(expected)
    out = []
    order = {t: i for i, t in enumerate(TAG_ORDER)}
    for tag in sorted(set(have) | set(wanted), key=lambda t: (order.get(t, len(order)), t)):
        if have.get(tag) != wanted.get(tag):
            seen = f"{tag}={have[tag]}" if tag in have else f"no {tag}"
            said = f"{tag}={wanted[tag]}" if tag in wanted else f"no {tag}"
            out.append(Check(d.name, family, "DMARC", FAIL,
                             f"{seen} at {name}, the spec says {said}", APPLY,
                             observed=values[0], expected=expected))
    return out or [Check(d.name, family, "DMARC", OK, values[0], observed=values[0],
                         expected=expected)]


TAG_ORDER = ["v", "p", "sp", "np", "t", "rua", "ruf", "fo", "aspf", "adkim"]


def _tags(record: str) -> dict[str, str]:
    """A DMARC record's tags, normalised for comparison (case of names and keywords, white
    space, the order of report URIs)."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or name.strip().lower() == "v":
            continue
        tag, text = name.strip().lower(), value.strip()
        if tag in ("rua", "ruf"):
            text = ",".join(sorted(u.strip().lower() for u in text.split(",")))
        elif tag in ("p", "sp", "np", "t", "fo", "aspf", "adkim"):
            text = text.lower()
        out[tag] = text
    return out


FAMILY = DmarcFamily()
