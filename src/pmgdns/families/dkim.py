"""The gateway's DKIM key (spec-v1 §2, §6.2, §6.4): `S._domainkey.D TXT "v=DKIM1; h=sha256;
k=rsa; p=<key>"` in every domain, the `next` key beside it before a rotation, and the removal of
retired selectors' keys.

PMG signs every domain with ONE selector and ONE RSA key. Every TXT value at `S._domainkey.D`
(current, next and retired selectors) is pmgdns's: a key record without `v=DKIM1` is still a
key, and two keys at one selector make receivers pick one at random.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.files import KiB
from ..core.text import plural
from ..spec import dkim_keys as keys
from ..spec.dkim_keys import Dkim
from ..spec.model import Domain, RecordSpec, Site
from ..spec.values import shown
from .base import WHOLE, Change, Claim, Family, Path, Slot, ZoneContext
from .checking import APPLY, FAIL, OK, WARN, Check, Probe

if TYPE_CHECKING:
    from ..spec.values import Checker

KEY_SOURCES = ("public_key", "record", "key_file")
SELECTOR_HELP = "letters, digits, `-`, `_`, dot-separated labels"


def check_selector(c: Checker, value: Any, path: Path) -> str:


    text = c.string(value, path).lower()
    if not all(re.match(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", label) for label in text.split(".")):
        raise c.fail(path, f"`{shown(text)}` is not a valid DKIM selector ({SELECTOR_HELP})")
    return text


def _key(c: Checker, d: Mapping[str, Any], path: Path, selector: str) -> keys.DkimKey:
    """The key given by exactly one of public_key, record or key_file in `d`."""
    sources = [k for k in KEY_SOURCES if d.get(k) is not None]
    if len(sources) != 1:
        raise c.fail(path, "give exactly one of public_key, record or key_file"
                           + (f" (found {', '.join(sources)})" if sources else ""))
    src = sources[0]
    kpath = (*path, src)
    try:
        if src == "public_key":
            key = keys.from_spki_base64(c.string(d[src], kpath))
        elif src == "record":
            key = keys.from_record_text(c.string(d[src], kpath))
        else:
            fname = c.string(d[src], kpath)
            text = c.read_input(fname, kpath, 64 * KiB, "the key file").decode("utf-8", "replace")
            try:
                key = keys.from_file_text(text)
            except keys.DkimKeyError as exc:
                # say what is wrong without any of the file's content (it may be anything)
                private = "PRIVATE key" in str(exc)
                raise c.fail(kpath, f"the file `{shown(fname)}` " + (
                    "holds a PRIVATE key; give the public key (`openssl pkey -pubout`), and keep "
                    "the private key off the repository" if private else
                    "holds no usable DKIM public key (a PEM public key, or the record PMG "
                    "shows: `pmgconfig dkim_record`)")) from None
    except keys.DkimKeyError as exc:
        raise c.fail(kpath, f"{exc}; paste the public key or the record PMG shows "
                            "(`pmgconfig dkim_record`)") from None
    if key.selector_in_record and key.selector_in_record != selector:
        raise c.fail(kpath, f"the record is for selector `{key.selector_in_record}` but "
                            f"{'.'.join(path)}.selector is `{selector}`; make them agree")
    if key.algorithm != "rsa":
        raise c.fail(kpath, f"this is an {key.algorithm} key, but PMG signs with RSA only; "
                            "give the RSA key PMG shows (`pmgconfig dkim_record`)")
    problem = keys.strength_problem(key)
    if problem and problem[0] == "error":
        raise c.fail(kpath, problem[1])
    if problem:
        c.warn(kpath, problem[1])
    return key


class DkimFamily(Family):
    name = "dkim"
    top_keys = ("dkim",)

    def parse_top(self, c: Checker, top: Mapping[str, Any]) -> Dkim:
        path: Path = ("dkim",)
        if "dkim" not in top:
            raise c.fail(path, "is missing; every spec needs version, gateway, dkim and domains")
        d = c.mapping(top["dkim"], path, ("selector", *KEY_SOURCES, "next", "retired_selectors"))
        if "selector" not in d:
            raise c.fail((*path, "selector"), "is missing; give the selector PMG signs with")
        selector = check_selector(c, d["selector"], (*path, "selector"))
        key = _key(c, d, path, selector)
        next_selector = next_key = None
        if d.get("next") is not None:
            npath = (*path, "next")
            n = c.mapping(d["next"], npath, ("selector", *KEY_SOURCES))
            if "selector" not in n:
                raise c.fail((*npath, "selector"), "is missing; give the selector of the next key")
            next_selector = check_selector(c, n["selector"], (*npath, "selector"))
            if next_selector == selector:
                raise c.fail((*npath, "selector"), f"`{next_selector}` is the current selector; "
                                                   "the next key needs a selector of its own")
            next_key = _key(c, n, npath, next_selector)
            if next_key.p == key.p:
                c.warn(npath, "the next key is the current key: nothing would rotate")
        retired_raw = d.get("retired_selectors") or []
        rpath = (*path, "retired_selectors")
        if not isinstance(retired_raw, list):
            raise c.fail(rpath, "must be a list of selectors, e.g. [pmg2025]")
        retired: list[str] = []
        for i, r in enumerate(retired_raw):
            sel = check_selector(c, r, (*rpath, str(i)))
            if sel in (selector, next_selector):
                what = "current" if sel == selector else "next"
                raise c.fail((*rpath, str(i)), f"`{sel}` is the {what} selector; a selector "
                                               f"cannot be both {what} and retired")
            if sel not in retired:
                retired.append(sel)
        return Dkim(selector, key, tuple(retired), next_selector, next_key)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        if domain.options.get("parked"):
            return
        for selector, key in site.dkim.published():
            yield RecordSpec(domain.zone, f"{selector}._domainkey", "TXT", domain.ttl,
                             (key.txt_value,))

    def plan_notes(self, site: Site, changes: Sequence[Change],
                   planned: Sequence[str]) -> list[str]:
        nxt = site.dkim.next_selector
        if not nxt:
            return []
        marker = f"{nxt}._domainkey."
        pending = [c for c in changes if c.name.startswith(marker) and c.action != "delete"]
        signing = [name for name, d in site.domains.items()
                   if not d.absent and not d.options.get("parked")]
        ttl = max((site.domains[n].ttl for n in signing), default=0)
        unseen = len(set(signing) - set(planned))
        if pending:
            when = (datetime.now(UTC) + timedelta(seconds=ttl)).strftime("%Y-%m-%d %H:%M UTC")
            zones = plural(len({c.zone for c in pending}), "zone")
            return [f"the next DKIM key ({nxt}) is published by this plan in {zones}: switch "
                    f"PMG to it no earlier than {ttl} s (the record's TTL) after apply, i.e. not "
                    f"before {when} if you apply now, and once `pmgdns verify` shows it everywhere"]
        if unseen:
            were = "was" if unseen == 1 else "were"
            return [f"the next DKIM key ({nxt}) is published in the domains this plan covers; "
                    f"{plural(unseen, 'other domain')} {were} not planned: run a full "
                    "`pmgdns plan` before PMG switches to it"]
        # PMG's dkim_set requires --keysize; with the key file already in /etc/pmg/dkim it
        # signs with that key, whose size it must match
        bits = site.dkim.next_key.bits if site.dkim.next_key else 2048
        return [f"the next DKIM key ({nxt}) is already published: PMG may switch to it "
                f"(`pmgconfig dkim_set --selector {nxt} --keysize {bits}`) once it has been live "
                f"for {ttl} s (the record's TTL) everywhere; then run `pmgdns pmg pull`"]

    def ownership_options(self, site: Site) -> dict[str, Any]:
        published = [s for s, _ in site.dkim.published()]
        return {"selectors": published, "retired": list(site.dkim.retired_selectors)}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        # every value at these names is pmgdns's, published or not (an absent or parked domain,
        # a retired selector): what is not desired goes
        selectors = [*options.get("selectors", []), *options.get("retired", [])]
        return {(f"{s}._domainkey", "TXT"): WHOLE for s in selectors}

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:
        if domain.options.get("parked"):
            return []
        return [key_check(probe, domain, self.name, s, k)
                for s, k in probe.site.dkim.published()]


def key_check(probe: Probe, d: Domain, family: str, selector: str,
              want: keys.DkimKey) -> Check:
    """The key record at `selector._domainkey.D`: one value, the spec's key, and no tag that
    breaks verification at receivers (RFC 6376 §3.6.1)."""

    name = f"{selector}._domainkey.{d.zone}"
    expected = want.txt_value
    values = probe.txt(name)

    def result(status: str, message: str, fix: str = APPLY) -> Check:
        return Check(d.name, family, "DKIM", status, message, fix if status != OK else "",
                     observed=" | ".join(values) or "nothing", expected=expected)

    if not values:
        return result(FAIL, f"no DKIM key at {name}{probe.in_its_place(name)}")
    if len(values) > 1:
        return result(FAIL, f"{len(values)} TXT values at {name}: receivers pick one at random "
                            "and fail DKIM whenever it is not the key PMG signs with")
    try:
        tags = keys.parse_tags(values[0])
    except keys.DkimKeyError as exc:
        return result(FAIL, f"{name} is not a DKIM key record: {exc}")
    if "v" in tags and tags["v"] != "DKIM1":
        return result(FAIL, f"{name} has v={tags['v'][:20]}; a key record's v= must be DKIM1")
    if tags.get("p") == "":
        return result(FAIL, f"the key at {name} is revoked (empty p=)")
    try:
        key = keys.from_record_text(values[0])
    except keys.DkimKeyError as exc:
        return result(FAIL, f"{name}: {exc}")
    if key.p != want.p:
        return result(FAIL, f"the key at {name} is not the spec's key (PMG would sign with a "
                            "key receivers cannot verify)")
    hashes = [h.strip().lower() for h in tags.get("h", "sha256").split(":")]
    if "sha256" not in hashes:
        return result(FAIL, f"{name} has h={tags['h']}, which excludes sha256, the hash PMG "
                            "signs with: receivers reject every signature")
    services = [s.strip().lower() for s in tags.get("s", "*").split(":")]
    if "*" not in services and "email" not in services:
        return result(FAIL, f"{name} has s={tags['s']}, which excludes email: receivers reject "
                            "every signature")
    flags = [f.strip().lower() for f in tags.get("t", "").split(":") if f.strip()]
    if "s" in flags:
        return result(FAIL, f"{name} has t=s: signatures whose i= is in a subdomain fail, and "
                            "PMG signs its domains' subdomains with this key")
    problem = keys.strength_problem(key)
    if problem:
        status = FAIL if problem[0] == "error" else WARN
        return result(status, problem[1], "generate a 2048-bit key in PMG")
    if "y" in flags:
        return result(WARN, f"{name} has t=y (testing): receivers may treat failures leniently")
    return result(OK, f"{name} ({key.algorithm}, {key.bits} bits)")


FAMILY = DkimFamily()
