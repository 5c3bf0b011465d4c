"""The reverse-DNS (PTR) request for the hoster: the one record pmgdns cannot set itself."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .model import Site
from .records import HELO_SPF


def ptr_requests(site: Site) -> list[dict[str, str]]:
    """Each gateway address, its reverse name and the PTR value wanted."""
    out = []
    for address in site.gateway.addresses:
        ip = ipaddress.ip_address(address)
        out.append({"address": str(ip), "reverse_name": f"{ip.reverse_pointer}.",
                    "ptr": site.gateway.fqdn})
    return out


def forward_records(site: Site) -> list[dict[str, str]]:
    g = site.gateway
    out = [{"name": g.fqdn, "type": "A", "value": g.ipv4}]
    if g.ipv6:
        out.append({"name": g.fqdn, "type": "AAAA", "value": g.ipv6})
    out.append({"name": g.fqdn, "type": "TXT", "value": HELO_SPF})
    return out


def manual_steps(site: Site) -> list[dict[str, str]]:
    """The `manual` entries of a plan (spec-v1 §5)."""
    return [{"kind": "ptr", "address": r["address"], "name": r["ptr"]}
            for r in ptr_requests(site)]


def _forward_note(site: Site) -> str:
    zone = site.gateway_zone()
    if zone is None or site.domains[zone].absent:
        return ("These forward records must exist too; they are in a zone this tool does not "
                "manage, so please check them:")
    return "The forward records are published (pmgdns manages them in the zone " + zone + "):"


def ticket_text(site: Site) -> str:
    g = site.gateway.fqdn
    host = site.gateway.hostname
    reqs = ptr_requests(site)
    width = max(len(r["address"]) for r in reqs)
    rwidth = max(len(r["reverse_name"]) for r in reqs)
    lines = [
        f"Subject: Reverse DNS (PTR) for our mail gateway {g}",
        "",
        "Hello,",
        "",
        f"please set the reverse DNS (PTR) record{'s' if len(reqs) > 1 else ''} of our mail "
        "gateway as follows:",
        "",
    ]
    for r in reqs:
        lines.append(f"  {r['address']:<{width}}  {r['reverse_name']:<{rwidth}}  PTR  {r['ptr']}")
    lines += [
        "",
        f"Why: the server sends mail as {host}. Receiving mail servers look up the PTR of the "
        "connecting address and require that it names the host and that the host resolves back "
        "to the same address (forward-confirmed reverse DNS); without it, many of them reject or "
        "junk our mail.",
        "",
        _forward_note(site),
    ]
    for f in forward_records(site):
        value = f'"{f["value"]}"' if f["type"] == "TXT" else f["value"]
        lines.append(f"  {f['name']}  {f['type']}  {value}")
    lines += ["", "Thank you.", ""]
    return "\n".join(lines)


def ticket_markdown(site: Site) -> str:
    g = site.gateway.fqdn
    lines = [
        f"### Reverse DNS (PTR) for our mail gateway `{g}`",
        "",
        "Please set these PTR records:",
        "",
        "| Address | Reverse name | PTR value |",
        "|---|---|---|",
    ]
    for r in ptr_requests(site):
        lines.append(f"| `{r['address']}` | `{r['reverse_name']}` | `{r['ptr']}` |")
    lines += [
        "",
        "**Why:** receiving mail servers require forward-confirmed reverse DNS: the PTR of the "
        f"connecting address must name `{g}`, and `{g}` must resolve back to that address. "
        "Without it, much of our mail is rejected or junked.",
        "",
        _forward_note(site),
        "",
        "| Name | Type | Value |",
        "|---|---|---|",
    ]
    for f in forward_records(site):
        lines.append(f"| `{f['name']}` | {f['type']} | `{f['value']}` |")
    return "\n".join(lines) + "\n"


def ticket_json(site: Site) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "gateway": site.gateway.fqdn,
        "ptr": ptr_requests(site),
        "forward": forward_records(site),
        "forward_managed": site.gateway_zone() is not None,
    }
    return json.dumps(data, indent=2) + "\n"
