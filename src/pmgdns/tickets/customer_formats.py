"""The customer ticket as text, Markdown, JSON and HTML: what an MSP mails to a customer (or
pastes into their DNS host's support form). Values are data: escaped for the terminal, for
Markdown and for HTML."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..core.text import plural, visible
from ..reports.html import esc, page
from ..reports.plan_report import KIND_LABEL, md_code, presented
from .customer import PENDING, Row, Ticket

MARKDOWN_MARKER = "<!-- pmgdns-customer-ticket -->"
TEXT_MARKER = "Subject: DNS records for "
JSON_MARKER = '"customer_tickets": ['


def zone_line(r: Row) -> str:
    """The row as a zone-file line: TXT values quoted, split into 255-byte strings."""
    if r.type == "TXT":
        raw = r.value.encode()
        parts = [raw[i:i + 255].decode("utf-8", "replace") for i in range(0, len(raw), 255)]
        value = " ".join(f'"{presented(p)}"' for p in parts or [""])
    else:
        value = visible(r.value)
    return f"{visible(r.name)} {r.ttl} IN {r.type} {value}"


def _intro(t: Ticket) -> list[str]:
    if t.absent:
        return [f"We no longer handle mail for {t.domain}. Please delete these DNS records "
                f"from the zone {t.domain} (keep every other record as it is):"]
    return [f"We now handle mail for {t.domain}. Please set these DNS records in the zone "
            f"{t.domain} at your DNS host, exactly as listed, and keep every other record of "
            "the zone as it is. The value column is what a web form takes; the zone-file lines "
            "below are the same records for a zone file."]


def _after(t: Ticket) -> list[str]:
    if t.absent:
        return []
    if t.delegated:
        return [f"These records are set once: key rotations, new gateway addresses and policy "
                f"changes happen in our zone {t.delegate_zone}, which the CNAME and include "
                "records point to. Only the MX records change, when we add or remove a mail "
                "gateway."]
    return ["These records change when we rotate the DKIM key, add a gateway or change a "
            "policy; we will send you the new values then."]


def _status_note(t: Ticket) -> str:
    if not t.live:
        return ""
    n = t.pending
    when = f"Checked against the DNS on {t.checked}"
    if n == 0:
        return f"{when}: every record is in place. Nothing to do."
    return f"{when}: {plural(n, 'item')} to do (marked pending)."


def ticket_text(tickets: Sequence[Ticket]) -> str:
    out: list[str] = []
    for t in tickets:
        width = max((len(visible(r.host)) for r in t.rows), default=4)
        out += [f"{TEXT_MARKER}{visible(t.domain)}", "", "Hello,", "", *_intro(t), ""]
        for r in t.rows:
            mark = f"[{r.status}] " if r.status else ""
            value = f'"{presented(r.value)}"' if r.type == "TXT" else visible(r.value)
            out.append(f"  {mark}{visible(r.host):<{width}}  {r.type:<5}  {r.ttl:<6}  {value}")
        out += ["", "As zone-file lines:", ""]
        out += [f"  {zone_line(r)}" for r in t.rows]
        if t.live:
            out += ["", _status_note(t)]
            if t.removals:
                out += ["", "Replace or delete these records the zone holds today:"]
                for x in t.removals:
                    value = f'"{presented(x.value)}"' if x.type == "TXT" else visible(x.value)
                    out.append(f"  {x.action}: {visible(x.name)} {x.type} {value} ({x.why})")
            if t.taken:
                out += ["", "What the change takes away (check before you set it):"]
                for k in t.taken:
                    out.append(f"  {KIND_LABEL.get(k.kind, k.kind)} {visible(k.value)} at "
                               f"{visible(k.name)} {k.type}: {visible(k.fix)}")
        after = _after(t)
        if after:
            out += ["", *after]
        out += ["", "Thank you.", "", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def ticket_markdown(tickets: Sequence[Ticket]) -> str:
    out = [MARKDOWN_MARKER]
    for t in tickets:
        out += [f"### DNS records for `{visible(t.domain)}`", "", *_intro(t), ""]
        live = any(r.status for r in t.rows)
        out.append("| Host | Type | TTL | Value |" + (" Status |" if live else ""))
        out.append("|---|---|---|---|" + ("---|" if live else ""))
        for r in t.rows:
            status = f" **{r.status}** |" if r.status == PENDING else (
                f" {r.status} |" if r.status else "")
            out.append(f"| {md_code(r.host)} | {r.type} | {r.ttl} | {md_code(r.value)} |"
                       + status)
        out += ["", "Zone-file lines:", "", "```"]
        out += [zone_line(r).replace("```", "\\`\\`\\`") for r in t.rows]
        out += ["```"]
        if t.live:
            out += ["", _status_note(t)]
            if t.removals:
                out += ["", "**Replace or delete** these records the zone holds today:", "",
                        "| Action | Name | Type | Value | Why |", "|---|---|---|---|---|"]
                for x in t.removals:
                    out.append(f"| {x.action} | {md_code(x.name)} | {x.type} | "
                               f"{md_code(x.value)} | {md_code(x.why)} |")
            if t.taken:
                out += ["", "**What the change takes away:**", ""]
                for k in t.taken:
                    out.append(f"- {KIND_LABEL.get(k.kind, k.kind)} {md_code(k.value)} at "
                               f"{md_code(k.name)} {k.type}: {md_code(k.fix)}")
        after = _after(t)
        if after:
            out += ["", *after]
        out.append("")
    return "\n".join(out)


def ticket_json(tickets: Sequence[Ticket]) -> str:
    doc = {"version": 1, "customer_tickets": [t.to_json() for t in tickets]}
    return json.dumps(doc, indent=2) + "\n"


def ticket_html(tickets: Sequence[Ticket]) -> str:
    title = "DNS records for " + ", ".join(t.domain for t in tickets)
    body: list[str] = []
    for t in tickets:
        live = any(r.status for r in t.rows)
        body.append(f"<section><h1>DNS records for <code>{esc(t.domain)}</code></h1>\n")
        body.append(f"<p>{esc(' '.join(_intro(t)))}</p>\n")
        body.append('<table class="changes"><thead><tr><th>host</th><th>type</th><th>TTL</th>'
                    "<th>value</th>" + ("<th>status</th>" if live else "")
                    + "</tr></thead><tbody>\n")
        for r in t.rows:
            body.append(f"<tr><td><code>{esc(r.host)}</code></td><td>{esc(r.type)}</td>"
                        f"<td>{r.ttl}</td><td><code>{esc(r.value)}</code></td>"
                        + (f"<td>{esc(r.status)}</td>" if live else "") + "</tr>\n")
        body.append("</tbody></table>\n<p>Zone-file lines:</p>\n<pre>"
                    + "\n".join(esc(zone_line(r)) for r in t.rows) + "</pre>\n")
        if t.live:
            body.append(f"<p>{esc(_status_note(t))}</p>\n")
            if t.removals:
                body.append("<h2>Replace or delete</h2>\n<ul>\n")
                body += [f"<li>{esc(x.action)} <code>{esc(x.name)}</code> {esc(x.type)} "
                         f"<code>{esc(x.value)}</code>: {esc(x.why)}</li>\n" for x in t.removals]
                body.append("</ul>\n")
            if t.taken:
                body.append("<h2>What the change takes away</h2>\n<ul>\n")
                body += [f"<li>{esc(KIND_LABEL.get(k.kind, k.kind))} <code>{esc(k.value)}</code>"
                         f" at <code>{esc(k.name)}</code>: {esc(k.fix)}</li>\n" for k in t.taken]
                body.append("</ul>\n")
        after = _after(t)
        if after:
            body.append(f"<p>{esc(' '.join(after))}</p>\n")
        body.append("</section>\n")
    return page(title, body)


FORMATS = {"text": ticket_text, "markdown": ticket_markdown, "json": ticket_json,
           "html": ticket_html}
EXTENSIONS = {"text": "txt", "markdown": "md", "json": "json", "html": "html"}
MARKERS = {"text": TEXT_MARKER, "markdown": MARKDOWN_MARKER, "json": JSON_MARKER,
           "html": '<meta name="generator" content="pmgdns'}

__all__ = ["EXTENSIONS", "FORMATS", "MARKERS", "ticket_html", "ticket_json",
           "ticket_markdown", "ticket_text", "zone_line"]
