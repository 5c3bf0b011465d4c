"""MTA-STS (RFC 8461, spec-v1 §6.2): `_mta-sts.D TXT "v=STSv1; id=<id>"`, the policy file
`build/mta-sts/D/.well-known/mta-sts.txt` (one `mx:` per node serving D, CRLF line ends), and
the optional `mta-sts.D` web record (`mta_sts.web`: a CNAME, or A/AAAA).

`mta_sts:` is merged key by key over `defaults:`; `mta_sts: false` switches it off. The id is
derived from the policy text, so it changes exactly when the policy changes. Where a domain has
`mta_sts` (or `mta_sts: false`), pmgdns owns the `v=STSv1` values at `_mta-sts.D` (they go when
the domain is absent, parked or switched off), and `mta-sts.D` whole while `web` is given;
where the spec says nothing about MTA-STS, pmgdns leaves those names alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.libraries import quiet_import
from ..spec.model import Domain, RecordSpec, Site
from .base import WHOLE, Claim, Family, Key, Path, Slot, TxtKind, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe
from .gateway import check_ip

if TYPE_CHECKING:
    from ..spec.values import Checker

STS = TxtKind("v=STSv1")
MODES = ("enforce", "testing", "none")
KEYS = ("mode", "max_age", "web")
DEFAULTS: dict[str, Any] = {"mode": "enforce", "max_age": 604800}
POLICY_DIR = os.path.join("build", "mta-sts")
WEB = "the web server of https://mta-sts.DOMAIN/"


@dataclass(frozen=True)
class MtaSts:
    mode: str
    max_age: int
    cname: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None


def policy_text(site: Site, domain: Domain) -> str:
    """The policy file of `domain` (RFC 8461 §3.2), CRLF line ends."""
    conf: MtaSts = domain.mta_sts
    lines = ["version: STSv1", f"mode: {conf.mode}"]
    lines += [f"mx: {n.hostname}" for n in site.nodes_for(domain)]
    lines.append(f"max_age: {conf.max_age}")
    return "".join(f"{line}\r\n" for line in lines)


def policy_id(text: str) -> str:
    """1-32 letters and digits that change exactly when the policy changes."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def policy_path(domain: str) -> str:
    return os.path.join(POLICY_DIR, domain, ".well-known", "mta-sts.txt")


def _parse(c: Checker, value: Any, path: Path, inherited: Any) -> dict[str, Any] | bool | None:

    if value is None:
        return None
    if value is False:
        return False  # switched off: what pmgdns published goes
    base = inherited if isinstance(inherited, dict) else DEFAULTS
    if value is True:
        return dict(base)
    d = c.mapping(value, path, KEYS)
    out: dict[str, Any] = dict(base)
    if "mode" in d:
        if d["mode"] not in MODES:
            raise c.fail((*path, "mode"), "must be enforce, testing or none")
        out["mode"] = d["mode"]
    if "max_age" in d:
        out["max_age"] = c.integer(d["max_age"], (*path, "max_age"), 86400, 31557600)
    if "web" in d:
        wpath = (*path, "web")
        web = c.mapping(d["web"], wpath, ("cname", "ipv4", "ipv6"))
        if not web:
            raise c.fail(wpath, "give cname, or ipv4 (and ipv6), of what serves "
                                "https://mta-sts.DOMAIN/")
        if "cname" in web and ("ipv4" in web or "ipv6" in web):
            raise c.fail(wpath, "give either cname or ipv4/ipv6, not both (a CNAME stands alone)")
        out["web"] = {
            "cname": c.hostname(web["cname"], (*wpath, "cname")) if "cname" in web else None,
            "ipv4": check_ip(c, web["ipv4"], (*wpath, "ipv4"), 4, WEB) if "ipv4" in web
            else None,
            "ipv6": check_ip(c, web["ipv6"], (*wpath, "ipv6"), 6, WEB) if "ipv6" in web
            else None,
        }
    return out


def _finish(c: Checker, path: Path, value: Any) -> MtaSts | bool | None:
    if value is None or value is False:
        return value
    web = value.get("web") or {}
    return MtaSts(value["mode"], value["max_age"], web.get("cname"), web.get("ipv4"),
                  web.get("ipv6"))


def _active(domain: Domain) -> MtaSts | None:
    conf = domain.options.get("mta_sts")
    return conf if isinstance(conf, MtaSts) and not domain.options.get("parked") else None


class MtaStsFamily(Family):
    name = "mta_sts"
    domain_keys = (Key("mta_sts", None, _parse, _finish),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        conf = _active(domain)
        if conf is None:
            return
        z, ttl = domain.zone, domain.ttl
        text = policy_text(site, domain)
        yield RecordSpec(z, "_mta-sts", "TXT", ttl, (f"v=STSv1; id={policy_id(text)}",))
        if conf.cname:
            yield RecordSpec(z, "mta-sts", "CNAME", ttl, (f"{conf.cname}.",))
        if conf.ipv4:
            yield RecordSpec(z, "mta-sts", "A", ttl, (conf.ipv4,))
        if conf.ipv6:
            yield RecordSpec(z, "mta-sts", "AAAA", ttl, (conf.ipv6,))

    def files(self, site: Site) -> dict[str, str]:
        return {policy_path(d.name): policy_text(site, d) for d in site.domains.values()
                if not d.absent and _active(d) is not None}

    def ownership_options(self, site: Site) -> dict[str, Any]:
        said = [d for d in site.domains.values() if d.options.get("mta_sts") is not None]
        return {"zones": [d.zone for d in said],
                "web": [d.zone for d in said if isinstance(d.mta_sts, MtaSts)
                        and (d.mta_sts.cname or d.mta_sts.ipv4 or d.mta_sts.ipv6)]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        out: dict[Slot, Claim] = {}
        if ctx.zone in options.get("zones", ()):
            out[("_mta-sts", "TXT")] = txt(STS)
        web = {("mta-sts", t): WHOLE for t in ("CNAME", "A", "AAAA")}
        out.update({s: c for s, c in web.items() if s in ctx.desired})
        if ctx.absent and ctx.zone in options.get("web", ()):
            out.update(web)
        return out

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:


        # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
        with quiet_import("checkdmarc"):
            from checkdmarc.mta_sts import MTASTSError, parse_mta_sts_record
        conf = _active(domain)
        if conf is None:
            return []
        d = domain
        text = policy_text(probe.site, d)
        want = f"v=STSv1; id={policy_id(text)}"
        name = f"_mta-sts.{d.zone}"
        values = [v for v in probe.txt(name) if STS.matches(v)]
        out: list[Check] = []
        if len(values) != 1:
            out.append(Check(d.name, self.name, "MTA-STS", FAIL,
                             f"{len(values) or 'no'} MTA-STS record{'s' if values else ''} at "
                             f"{name}{probe.in_its_place(name) if not values else ''}", APPLY,
                             observed=" | ".join(values) or "nothing",
                             expected=want))
        else:
            try:
                tag = parse_mta_sts_record(values[0])["tags"].get("id", "")
                seen = str(tag.get("value", "") if isinstance(tag, dict) else tag)
            except MTASTSError as exc:
                seen = ""
                out.append(Check(d.name, self.name, "MTA-STS", FAIL,
                                 f"{name} does not parse: {exc}", APPLY, observed=values[0],
                                 expected=want))
            if seen and seen != policy_id(text):
                out.append(Check(d.name, self.name, "MTA-STS", FAIL,
                                 f"{name} has id={seen}, the rendered policy's id is "
                                 f"{policy_id(text)}: senders keep an old policy",
                                 APPLY, observed=values[0], expected=want))
            elif seen:
                out.append(Check(d.name, self.name, "MTA-STS", OK, values[0],
                                 observed=values[0], expected=want))
        out.extend(self._web(probe, d, conf))
        out.extend(self._policy(probe, d, text, conf))
        return out

    def _web(self, probe: Probe, d: Domain, conf: MtaSts) -> list[Check]:

        host = f"mta-sts.{d.zone}"
        out = []
        if conf.cname:
            have = probe.cname(host)
            ok = have is not None and have.rstrip(".").lower() == conf.cname
            said = "" if ok else f", the spec says {conf.cname}"
            out.append(Check(d.name, self.name, "MTA-STS web", OK if ok else FAIL,
                             f"{host} CNAME {have or 'nothing'}{said}", "" if ok else APPLY,
                             observed=have or "nothing", expected=f"{conf.cname}."))
        for rtype, want in (("A", conf.ipv4), ("AAAA", conf.ipv6)):
            if want is None:
                continue
            have_set = {r.address for r in probe.rrset(host, rtype)}
            ok = have_set == {want}
            got = ", ".join(sorted(have_set)) or "nothing"
            out.append(Check(d.name, self.name, "MTA-STS web", OK if ok else FAIL,
                             f"{host} {rtype} {got}" + ("" if ok else f", the spec says {want}"),
                             "" if ok else APPLY, observed=got, expected=want))
        return out

    def _policy(self, probe: Probe, d: Domain, text: str, conf: MtaSts) -> list[Check]:

        host = f"mta-sts.{d.name}"
        address = None
        if (host, 443) not in probe.options.resolve:
            # without `web`, pmgdns does not publish mta-sts.D: a wildcard may well serve it
            web = bool(conf.cname or conf.ipv4 or conf.ipv6)
            addresses = sorted(probe.addresses(host + ".", published=web),
                               key=lambda a: (":" in a, a))
            if not addresses:
                target = probe.cname(host + ".")
                if target:
                    return [Check(d.name, self.name, "MTA-STS policy", FAIL,
                                  f"{host} is a CNAME to {target}, which has no address, so no "
                                  "sender can fetch the policy",
                                  f"give {target} the web server's A/AAAA records, or point "
                                  "mta_sts.web at a name that has them",
                                  observed=f"CNAME {target}")]
                return [Check(d.name, self.name, "MTA-STS policy", FAIL,
                              f"{host} has no address{probe.in_its_place(host)}, so no sender "
                              "can fetch the policy",
                              "publish mta_sts.web (or the web server's records) and serve "
                              f"{policy_path(d.name)} at https://{host}/.well-known/mta-sts.txt",
                              observed="nothing")]
            address = addresses[0]
        return probe.policy_checks(self.name, d, text, address)


FAMILY = MtaStsFamily()
