"""SMTP TLS reporting (RFC 8460, spec-v1 §6.2): `_smtp._tls.D TXT "v=TLSRPTv1; rua=<uri>[,<uri>]"`
(`tls_rpt.rua`: mailto: or https: URIs; `tls_rpt: false` switches it off). Where a domain has
`tls_rpt` (or `tls_rpt: false`), pmgdns owns the `v=TLSRPTv1` values at `_smtp._tls.D`; they go
when the domain is absent, parked or switched off. Elsewhere pmgdns leaves the name alone."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.libraries import quiet_import
from ..spec.model import Domain, RecordSpec, Site
from ..spec.values import shown
from .base import Claim, Family, Key, Path, Slot, TxtKind, ZoneContext, txt
from .checking import APPLY, FAIL, OK, Check, Probe
from .dmarc import MAILTO

if TYPE_CHECKING:
    from ..spec.values import Checker

TLSRPT = TxtKind("v=TLSRPTv1")
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&'()*+=%-]+$")


def _uri(c: Checker, value: Any, path: Path) -> str:

    text = c.string(value, path)
    if text.lower().startswith("mailto:"):
        m = MAILTO.match(text)
        if m is None or m.group(3):
            raise c.fail(path, f"`{shown(text)}` is not a mailto: URI; write "
                               "mailto:address@domain")
        c.hostname(m.group(2), path, "mail domain")
        return text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or not _URL_SAFE.match(text) \
            or "," in text or ";" in text:
        raise c.fail(path, f"`{shown(text)}` is neither a mailto: URI nor an https: URL (RFC "
                           "8460 §3): write mailto:tls-reports@example.com or "
                           "https://reports.example.com/tlsrpt")
    c.hostname(parts.hostname, path, "host name")
    return text


def _parse(c: Checker, value: Any, path: Path, inherited: Any) -> tuple[str, ...] | bool | None:
    if value is None:
        return None
    if value is False:
        return False  # switched off: what pmgdns published goes
    d = c.mapping(value, path, ("rua",))
    if "rua" not in d:
        raise c.fail((*path, "rua"), "is missing: where should receivers send TLS reports?")
    raw = d["rua"] if isinstance(d["rua"], list) else [d["rua"]]
    if not raw:
        raise c.fail((*path, "rua"), "must list at least one URI")
    return tuple(_uri(c, v, (*path, "rua", str(i))) for i, v in enumerate(raw))


def record_value(rua: tuple[str, ...]) -> str:
    return f"v=TLSRPTv1; rua={','.join(rua)}"


def _active(domain: Domain) -> tuple[str, ...] | None:
    rua = domain.options.get("tls_rpt")
    return rua if isinstance(rua, tuple) and not domain.options.get("parked") else None


class TlsRptFamily(Family):
    name = "tls_rpt"
    domain_keys = (Key("tls_rpt", None, _parse),)

    def records(self, site: Site, domain: Domain) -> Iterable[RecordSpec]:
        rua = _active(domain)
        if rua:
            yield RecordSpec(domain.zone, "_smtp._tls", "TXT", domain.ttl, (record_value(rua),))

    def ownership_options(self, site: Site) -> dict[str, Any]:
        return {"zones": [d.zone for d in site.domains.values()
                          if d.options.get("tls_rpt") is not None]}

    def claims(self, options: Mapping[str, Any], ctx: ZoneContext) -> dict[Slot, Claim]:
        if ctx.zone in options.get("zones", ()):
            return {("_smtp._tls", "TXT"): txt(TLSRPT)}
        return {}

    def domain_checks(self, probe: Probe, domain: Domain) -> list[Check]:


        # start-up time: checkdmarc loads in ~0.4 s; only verify needs it
        with quiet_import("checkdmarc"):
            from checkdmarc.smtp_tls_reporting import (
                SMTPTLSReportingError,
                parse_smtp_tls_reporting_record,
            )
        rua = _active(domain)
        if not rua:
            return []
        d = domain
        name = f"_smtp._tls.{d.zone}"
        want = record_value(rua)
        values = [v for v in probe.txt(name) if TLSRPT.matches(v)]
        observed = " | ".join(values) or "nothing"
        if len(values) != 1:
            return [Check(d.name, self.name, "TLS-RPT", FAIL,
                          f"{len(values) or 'no'} TLS-RPT record{'s' if values else ''} at {name}"
                          + ("" if values else probe.in_its_place(name)),
                          APPLY, observed=observed, expected=want)]
        try:
            tags = parse_smtp_tls_reporting_record(values[0])["tags"]
        except SMTPTLSReportingError as exc:
            return [Check(d.name, self.name, "TLS-RPT", FAIL, f"{name} does not parse: {exc}",
                          APPLY, observed=observed, expected=want)]
        have = tags.get("rua", {}).get("value", [])
        have_list = have if isinstance(have, list) else [str(have)]
        if sorted(str(h) for h in have_list) != sorted(rua):
            return [Check(d.name, self.name, "TLS-RPT", FAIL,
                          f"{name} sends reports to {', '.join(map(str, have_list))}, the spec "
                          f"to {', '.join(rua)}", APPLY, observed=observed, expected=want)]
        return [Check(d.name, self.name, "TLS-RPT", OK, values[0], observed=observed,
                      expected=want)]


FAMILY = TlsRptFamily()
