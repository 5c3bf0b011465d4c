"""Delegation into a zone the MSP holds (spec-v1 §7.2): `delegate:` and a domain's `delegated`.

The delegate zone (one of the spec's domains, applied through its own targets) holds what changes
over time: `_spf.ZONE TXT "v=spf1 ip4:… ip6:… -all"` (every node address), the DKIM keys at the
`delegate.dkim` selector names (published there by the DKIM family: the current key at
`dkim.selector`, the next at `dkim.next.selector`, nothing at the others), the MTA-STS id of the
one policy the delegated domains share and their one TLS-RPT record. A delegated domain D
publishes in their place, once and for good:

- `D TXT "v=spf1 include:_spf.ZONE -all"` (plus its §7.1 parts; a string `spf` has its `mx`
  replaced by the include);
- `S._domainkey.D CNAME S._domainkey.ZONE.` for each S in `delegate.dkim`;
- `_mta-sts.D CNAME _mta-sts.ZONE.` when MTA-STS is on, `_smtp._tls.D CNAME _smtp._tls.ZONE.`
  when TLS-RPT is on.

MX, DMARC, the wildcard SPF and `mta-sts.D` stay direct at D. A rotation, a new node or a new
policy then changes only the delegate zone. `delegated` defaults to true for `customer` zones
when `delegate:` is given; a parked or absent domain is never delegated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..spec.model import Domain, RecordSpec, Site
from ..spec.values import shown
from .base import SPF, WHOLE, Claim, Family, Key, Path, Slot, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe
from .delegation import CUSTOMER
from .dkim import check_selector
from .mta_sts import STS, MtaSts, policy_id, policy_text
from .spf import Spf, check_length, sender_key, spf_checks, spf_of
from .tls_rpt import TLSRPT, record_value

if TYPE_CHECKING:
    from ..spec.values import Checker

KEYS = ("zone", "spf", "dkim")
MAX_NAME = 253  # characters of a DNS name, without the final dot
PENDING = ("the customer's record is pending: send them the ticket (`pmgdns customer-ticket "
           "{domain}`) and ask their DNS host to set it")


@dataclass(frozen=True)
class Delegate:
    """`delegate:`: the zone the MSP holds, the label of its SPF record, the DKIM names."""

    zone: str  # no trailing dot
    spf: str  # relative label(s), e.g. `_spf`
    dkim: tuple[str, ...]

    @property
    def spf_name(self) -> str:
        return f"{self.spf}.{self.zone}"


def delegate_of(site: Site) -> Delegate | None:
    found: Delegate | None = site.sections.get("delegate")
    return found


def is_delegated(site: Site, domain: Domain) -> bool:
    """Does `domain` publish the delegation records (CNAMEs and the SPF include)?"""
    dg = delegate_of(site)
    if dg is None or domain.absent or domain.options.get("parked") or domain.name == dg.zone:
        return False
    said = domain.options.get("delegated")
    return bool(said) if said is not None else CUSTOMER in domain.targets


def _mta_sts(domain: Domain) -> MtaSts | None:
    conf = domain.options.get("mta_sts")
    return conf if isinstance(conf, MtaSts) and not domain.options.get("parked") else None


def _tls_rpt(domain: Domain) -> tuple[str, ...] | None:
    rua = domain.options.get("tls_rpt")
    return rua if isinstance(rua, tuple) and not domain.options.get("parked") else None


def delegated_spf(spf: Spf, include: str) -> str:
    """The SPF value of a delegated domain: `v=spf1 include:_spf.ZONE` + its §7.1 parts + all;
    a string value has its `mx` replaced by the include (or the include put first)."""
    term = f"include:{include}"
    if spf.value is not None:
        terms = spf.value.split()[1:]
        if any(sender_key(t) == term for t in terms):
            return spf.value
        at = next((i for i, t in enumerate(terms) if sender_key(t) == "mx"), None)
        if at is None:
            return " ".join(["v=spf1", term, *terms])
        return " ".join(["v=spf1", *terms[:at], term, *terms[at + 1:]])
    out = [term]
    seen = {term}
    for t in (*(f"ip4:{a}" for a in spf.ip4), *(f"ip6:{a}" for a in spf.ip6),
              *(f"include:{d}" for d in spf.include)):
        if sender_key(t) not in seen:
            seen.add(sender_key(t))
            out.append(t)
    return " ".join(["v=spf1", *out, spf.all])


def node_spf(site: Site) -> str:
    """`_spf.ZONE`: every node address, then -all."""
    v4 = [f"ip4:{n.ipv4}" for n in site.gateways]
    v6 = [f"ip6:{n.ipv6}" for n in site.gateways if n.ipv6]
    return " ".join(["v=spf1", *v4, *v6, "-all"])


def shared_policy(site: Site) -> tuple[str, str] | None:
    """(domain, policy text) of the MTA-STS policy the delegated domains share, if any."""
    memo = site.memo.get("delegate.policy")
    if memo is None:
        found = [(d.name, policy_text(site, d)) for d in site.domains.values()
                 if is_delegated(site, d) and _mta_sts(d) is not None]
        memo = site.memo["delegate.policy"] = (found[0],) if found else ()
    return memo[0] if memo else None


def shared_tls_rpt(site: Site) -> tuple[str, ...] | None:
    found = next((r for d in site.domains.values() if is_delegated(site, d)
                  for r in [_tls_rpt(d)] if r), None)
    return found


def _flag(c: Checker, value: Any, path: Path, inherited: Any = None) -> bool | None:
    return None if value is None else c.boolean(value, path)


def _label(c: Checker, value: Any, path: Path) -> str:
    text = c.string(value, path).lower().rstrip(".")
    labels = text.split(".")
    if not text or not all(0 < len(x) <= 63 and x.replace("_", "a").replace("-", "a").isalnum()
                           and x.isascii() for x in labels):
        raise c.fail(path, f"`{shown(text)}` is not a name inside the delegate zone; write a "
                           "label such as _spf")
    return text


class DelegateFamily(Family):
    name = "delegate"
    top_keys = ("delegate",)
    domain_keys = (Key("delegated", None, _flag),)

    # -- the spec ---------------------------------------------------------------------------------

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Delegate | None:
        if top.get("delegate") is None:
            return None
        path: Path = ("delegate",)
        d = c.mapping(top["delegate"], path, KEYS)
        if "zone" not in d:
            raise c.fail((*path, "zone"), "is missing: name the spec's domain that holds the "
                                          "delegated records, e.g. msp-example.net")
        zone = c.hostname(d["zone"], (*path, "zone"), "domain name")
        spf = _label(c, d.get("spf", "_spf"), (*path, "spf"))
        if len(f"{spf}.{zone}") > MAX_NAME:
            raise c.fail((*path, "spf"), f"`{shown(spf)}.{zone}` is longer than {MAX_NAME} "
                                         "characters, the most a DNS name holds; keep the "
                                         "default _spf")
        raw = d.get("dkim")
        if not isinstance(raw, list) or not raw:
            raise c.fail((*path, "dkim"), "must list the selector names PMG alternates between, "
                                          "e.g. [pmga, pmgb]")
        names: list[str] = []
        for i, v in enumerate(raw):
            sel = check_selector(c, v, (*path, "dkim", str(i)))
            if sel not in names:
                names.append(sel)
        return Delegate(zone, spf, tuple(names))

    def check_site(self, c: Checker, site: Site) -> None:
        dg = delegate_of(site)
        if dg is None:
            for d in site.domains.values():
                if d.options.get("delegated"):
                    raise c.fail((*d.path, "delegated"),
                                 "needs a top-level `delegate:` (the zone that holds the "
                                 "delegated records); add it or remove `delegated`")
            direct = [d for d in site.domains.values() if CUSTOMER in d.targets
                      and not d.absent and not d.options.get("parked")
                      and d.options.get("delegated") is None]
            if direct:
                c.warn(direct[0].path, f"{len(direct)} customer zone(s) hold the DKIM key "
                                       "themselves: every key rotation (and a new node or "
                                       "policy, with MTA-STS) needs a new ticket for each; add "
                                       "`delegate:` so those changes need nothing from the "
                                       "customers, or set `delegated: false` to keep them direct")
            return
        zone = site.domains.get(dg.zone)
        zpath: Path = ("delegate", "zone")
        if zone is None:
            raise c.fail(zpath, f"`{dg.zone}` is not one of the spec's domains; the delegate "
                                "zone must be a domain you hold: add it under `domains:`")
        if CUSTOMER in zone.targets:
            raise c.fail(zpath, f"`{dg.zone}` is a `customer` zone; the delegate zone must be "
                                "one you hold (give it your own targets) or pick another")
        if zone.options.get("delegated"):
            raise c.fail((*zone.path, "delegated"), "the delegate zone cannot itself be "
                                                    "delegated; remove `delegated: true`")
        if zone.absent or zone.options.get("parked"):
            what = "absent" if zone.absent else "parked"
            raise c.fail(zpath, f"`{dg.zone}` is {what}, so it cannot hold the delegated "
                                "records; pick a zone that publishes them")
        if dg.spf_name in {n.hostname for n in site.gateways} or dg.spf == "*":
            raise c.fail(("delegate", "spf"), f"`{dg.spf}.{dg.zone}` has an SPF record of its own "
                                              "(a gateway node's name, or the wildcard); a name "
                                              "holds one SPF record: keep the default _spf")
        for key, sel in (("selector", site.dkim.selector),
                         ("next", site.dkim.next_selector)):
            if sel is not None and sel not in dg.dkim:
                p: Path = ("dkim", "selector") if key == "selector" else ("dkim", "next",
                                                                          "selector")
                raise c.fail(p, f"`{sel}` is not in delegate.dkim ({', '.join(dg.dkim)}): the "
                                "customers' CNAMEs point only there; add it to delegate.dkim "
                                "(customers then need one more CNAME) or use one of those "
                                "names")
        self._names_fit(c, site, dg)
        self._shared(c, site, dg)

    def _names_fit(self, c: Checker, site: Site, dg: Delegate) -> None:
        """Every CNAME a delegated domain publishes, and its target, is a name DNS can hold;
        the delegated SPF value stays within RFC 7208's 450 characters."""
        delegated = [d for d in site.domains.values() if is_delegated(site, d)]
        longest = max([dg.zone, *(d.name for d in delegated)], key=len)
        for i, sel in enumerate(dg.dkim):
            if len(f"{sel}._domainkey.{longest}") > MAX_NAME:
                raise c.fail(("delegate", "dkim", str(i)),
                             f"`{shown(sel)}._domainkey.{longest}` is longer than {MAX_NAME} "
                             "characters, the most a DNS name holds; use a shorter selector "
                             "name")
        checked: set[Spf] = set()
        for d in delegated:
            spf = spf_of(d)
            if spf not in checked:
                checked.add(spf)
                check_length(c, (*d.path, "spf"), delegated_spf(spf, dg.spf_name))

    def _shared(self, c: Checker, site: Site, dg: Delegate) -> None:
        """One MTA-STS policy and one TLS-RPT record for every delegated domain (and the
        delegate zone, when it publishes its own)."""
        delegated = [d for d in site.domains.values() if is_delegated(site, d)]
        own = site.domains[dg.zone]
        policies = [(d, policy_text(site, d)) for d in delegated if _mta_sts(d) is not None]
        if policies and _mta_sts(own) is not None:
            policies.insert(0, (own, policy_text(site, own)))
        for d, text in policies[1:]:
            first, want = policies[0]
            if text != want:
                raise c.fail((*d.path, "mta_sts"),
                             f"the MTA-STS policy of {d.name} differs from that of {first.name}; "
                             "delegated domains share one policy (one id at _mta-sts."
                             f"{dg.zone}): give both the same mta_sts and gateways, or set "
                             f"`delegated: false` for {d.name}")
        reports = [(d, _tls_rpt(d)) for d in delegated if _tls_rpt(d)]
        if reports and _tls_rpt(own):
            reports.insert(0, (own, _tls_rpt(own)))
        for d, rua in reports[1:]:
            first, wanted = reports[0]
            if rua != wanted:
                raise c.fail((*d.path, "tls_rpt"),
                             f"the TLS-RPT record of {d.name} differs from that of {first.name};"
                             f" delegated domains share one record at _smtp._tls.{dg.zone}: give "
                             f"both the same tls_rpt, or set `delegated: false` for {d.name}")

    # -- records ----------------------------------------------------------------------------------

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        dg = delegate_of(site)
        if dg is None:
            return
        z, ttl = domain.zone, domain.ttl
        if domain.name == dg.zone:
            yield RecordSpec(z, dg.spf, "TXT", ttl, (node_spf(site),))
            policy = shared_policy(site)
            if policy is not None and _mta_sts(domain) is None:
                yield RecordSpec(z, "_mta-sts", "TXT", ttl,
                                 (f"v=STSv1; id={policy_id(policy[1])}",))
            rua = shared_tls_rpt(site)
            if rua and not _tls_rpt(domain):
                yield RecordSpec(z, "_smtp._tls", "TXT", ttl, (record_value(rua),))
            return
        if not is_delegated(site, domain):
            return
        yield RecordSpec(z, "", "TXT", ttl, (delegated_spf(spf_of(domain), dg.spf_name),))
        for sel in dg.dkim:
            yield RecordSpec(z, f"{sel}._domainkey", "CNAME", ttl,
                             (f"{sel}._domainkey.{dg.zone}.",))
        if _mta_sts(domain) is not None:
            yield RecordSpec(z, "_mta-sts", "CNAME", ttl, (f"_mta-sts.{dg.zone}.",))
        if _tls_rpt(domain):
            yield RecordSpec(z, "_smtp._tls", "CNAME", ttl, (f"_smtp._tls.{dg.zone}.",))

    def displaces(self, site: Site, domain: Domain) -> frozenset[Slot]:
        dg = delegate_of(site)
        if dg is None or not is_delegated(site, domain):
            return frozenset()
        selectors = {*dg.dkim, *(s for s, _ in site.dkim.published())}
        return frozenset({("", "TXT"), ("_mta-sts", "TXT"), ("_smtp._tls", "TXT"),
                          *((f"{s}._domainkey", "TXT") for s in selectors)})

    # -- ownership --------------------------------------------------------------------------------

    def ownership_options(self, site: Site) -> dict[str, Any]:
        dg = delegate_of(site)
        if dg is None:
            return {}
        return {"zone": f"{dg.zone}.", "spf": dg.spf, "dkim": list(dg.dkim),
                "delegated": [d.zone for d in site.domains.values() if is_delegated(site, d)]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        if not options:
            return {}
        out: dict[Slot, Claim] = {}
        if ctx.zone == options["zone"]:
            out[(options["spf"], "TXT")] = txt(SPF)
            out.update(ctx.claim_desired({("_mta-sts", "TXT"): txt(STS),
                                          ("_smtp._tls", "TXT"): txt(TLSRPT)}))
            return out
        names = [f"{s}._domainkey" for s in options["dkim"]] + ["_mta-sts", "_smtp._tls"]
        if ctx.zone in options["delegated"]:
            out[("", "TXT")] = txt(SPF)
            out.update({(n, "CNAME"): WHOLE for n in names[:-2]})
            out.update(ctx.claim_desired({(n, "CNAME"): WHOLE for n in names[-2:]}))
        else:  # a domain no longer delegated: its CNAMEs give way to the records themselves
            out.update({(n, "CNAME"): WHOLE for n in names[:-2]})
            out.update({(n, "CNAME"): WHOLE for n in names[-2:] if (n, "TXT") in ctx.desired})
        return out

    # -- verify -----------------------------------------------------------------------------------

    def checks_instead_of(self, site: Site, domain: Domain) -> frozenset[str]:
        return frozenset({"spf"}) if is_delegated(site, domain) else frozenset()

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        site = probe.site
        dg = delegate_of(site)
        if dg is None:
            return []
        if domain.name == dg.zone:
            return spf_checks(probe, domain.name, self.name, f"{dg.spf_name}.", node_spf(site),
                              "SPF delegation", site.gateways)
        if not is_delegated(site, domain):
            return []
        fix = PENDING.format(domain=domain.name) if CUSTOMER in domain.targets else APPLY
        want = delegated_spf(spf_of(domain), dg.spf_name)
        out = []
        for c in spf_checks(probe, domain.name, self.name, domain.zone, want, "SPF",
                            site.gateways):
            if c.status != OK and c.observed == want:  # D is right: the include is not
                c = Check(c.subject, c.family, c.check, c.status, c.message,
                          f"{APPLY}: {dg.spf_name} lists every node address", c.observed,
                          c.expected)
            elif c.status != OK and APPLY in c.fix:
                c = Check(c.subject, c.family, c.check, c.status, c.message, fix, c.observed,
                          c.expected)
            out.append(c)
        signing = {s for s, _ in site.dkim.published()}
        wanted = [(f"{s}._domainkey", "DKIM", s in signing) for s in dg.dkim]
        if _mta_sts(domain) is not None:
            wanted.append(("_mta-sts", "MTA-STS", True))
        if _tls_rpt(domain):
            wanted.append(("_smtp._tls", "TLS-RPT", True))
        for label, what, live in wanted:
            name, target = f"{label}.{domain.zone}", f"{label}.{dg.zone}."
            have = probe.cname(name)
            check = f"{what} delegation"
            if have is not None and have.lower() == target:
                note = "" if live else (f" (nothing there until dkim.next names "
                                        f"{label.split('.')[0]}: expected)")
                out.append(Check(domain.name, self.name, check, OK,
                                 f"{name} CNAME {target}{note}", observed=have, expected=target))
            else:
                seen = f"CNAME {have}" if have else "nothing"
                out.append(Check(domain.name, self.name, check, FAIL,
                                 f"{name} has {seen}, the delegation needs CNAME {target}",
                                 fix, observed=seen, expected=target))
        return out


FAMILY = DelegateFamily()
