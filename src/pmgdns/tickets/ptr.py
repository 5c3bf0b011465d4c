"""The reverse-DNS (PTR) request for the hoster: the one record pmgdns cannot set itself.

One request lists every address of every gateway node (spec-v1 §6.1).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ..families.gateway import HELO_SPF
from ..spec.model import Gateway, Site


def ptr_requests(site: Site) -> list[dict[str, str]]:
    """Each address of each node, its reverse name and the PTR value wanted."""
    out = []
    for node in site.gateways:
        for address in node.addresses:
            ip = ipaddress.ip_address(address)
            out.append({"address": str(ip), "reverse_name": f"{ip.reverse_pointer}.",
                        "ptr": node.fqdn})
    return out


def forward_records(site: Site) -> list[dict[str, str]]:
    out = []
    for g in site.gateways:
        out.append({"name": g.fqdn, "type": "A", "value": g.ipv4})
        if g.ipv6:
            out.append({"name": g.fqdn, "type": "AAAA", "value": g.ipv6})
        out.append({"name": g.fqdn, "type": "TXT", "value": HELO_SPF})
    return out


def _managed(site: Site, node: Gateway) -> str | None:
    zone = site.node_zone(node)
    return None if zone is None or site.domains[zone].absent else zone


def _forward_note(site: Site) -> str:
    zones = [_managed(site, g) for g in site.gateways]
    if all(z is None for z in zones):
        return ("These forward records must exist too; they are in a zone this tool does not "
                "manage, so please check them:")
    if all(z is not None for z in zones):
        names = sorted({z for z in zones if z})
        return ("The forward records are published (pmgdns manages them in the zone"
                f"{'s' if len(names) > 1 else ''} {', '.join(names)}):")
    return ("These forward records must exist too; pmgdns publishes those in the zones it "
            "manages, please check the others:")


def _names(site: Site) -> str:
    names = [g.fqdn for g in site.gateways]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def ticket_text(site: Site) -> str:
    many = len(site.gateways) > 1
    hosts = ", ".join(g.hostname for g in site.gateways)
    reqs = ptr_requests(site)
    width = max(len(r["address"]) for r in reqs)
    rwidth = max(len(r["reverse_name"]) for r in reqs)
    lines = [
        f"Subject: Reverse DNS (PTR) for our mail gateway{'s' if many else ''} {_names(site)}",
        "",
        "Hello,",
        "",
        f"please set the reverse DNS (PTR) record{'s' if len(reqs) > 1 else ''} of our mail "
        f"gateway{'s' if many else ''} as follows:",
        "",
    ]
    for r in reqs:
        lines.append(f"  {r['address']:<{width}}  {r['reverse_name']:<{rwidth}}  PTR  {r['ptr']}")
    lines += [
        "",
        f"Why: the server{'s send' if many else ' sends'} mail as {hosts}. Receiving mail "
        "servers look up the PTR of the connecting address and require that it names the host "
        "and that the host resolves back to the same address (forward-confirmed reverse DNS); "
        "without it, many of them reject or junk our mail.",
        "",
        _forward_note(site),
    ]
    for f in forward_records(site):
        value = f'"{f["value"]}"' if f["type"] == "TXT" else f["value"]
        lines.append(f"  {f['name']}  {f['type']}  {value}")
    lines += ["", "Thank you.", ""]
    return "\n".join(lines)


def ticket_markdown(site: Site) -> str:
    many = len(site.gateways) > 1
    names = ", ".join(f"`{g.fqdn}`" for g in site.gateways)
    lines = [
        f"### Reverse DNS (PTR) for our mail gateway{'s' if many else ''} {names}",
        "",
        "Please set these PTR records:",
        "",
        "| Address | Reverse name | PTR value |",
        "|---|---|---|",
    ]
    for r in ptr_requests(site):
        lines.append(f"| `{r['address']}` | `{r['reverse_name']}` | `{r['ptr']}` |")
    g = site.gateway.fqdn if not many else "the host"
    back = f"`{g}`" if not many else "the host"
    lines += [
        "",
        "**Why:** receiving mail servers require forward-confirmed reverse DNS: the PTR of the "
        f"connecting address must name {f'`{g}`' if not many else 'the host'}, and {back} must "
        "resolve back to that address. Without it, much of our mail is rejected or junked.",
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
        "gateways": [g.fqdn for g in site.gateways],
        "ptr": ptr_requests(site),
        "forward": forward_records(site),
        "forward_managed": all(_managed(site, g) is not None for g in site.gateways),
    }
    return json.dumps(data, indent=2) + "\n"
