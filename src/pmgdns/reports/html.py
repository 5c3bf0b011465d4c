"""HTML reports people look at: `verify` as a fleet grid, `plan` as tables per zone and target.

Both renderers take the JSON documents (`verify --format json`, `plan --format json`), not
pmgdns's internals. Each page is self-contained: inline CSS and a few lines of inline script,
allowed by a Content-Security-Policy that lists their hashes and nothing else, so the page works
offline (a CI artifact) and never loads anything. Without script every row is shown and every
finding expands (`<details>`); the script adds filtering and sorting.

Every value in the documents comes from the DNS or from a spec and is treated as hostile: it is
HTML-escaped (attributes included), and control and bidi-override characters are shown as
escapes. Status is shown by colour *and* by symbol and word (✓ OK, ! WARN, ✗ FAIL).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import __version__
from ..core.text import plural

__all__ = ["verify_html", "plan_html", "FAMILY_LABELS", "esc", "page"]

OK, WARN, FAIL = "OK", "WARN", "FAIL"
RANK = {OK: 0, WARN: 1, FAIL: 2}
CLS = {OK: "k", WARN: "w", FAIL: "f"}  # short class names: a 10,000-subject grid stays small
SYM = {OK: "✓", WARN: "!", FAIL: "✗"}

# Column order and labels for the families pmgdns knows (tests/test_report.py holds every
# registered family to a label here); any other family gets a column after these, in order of
# first appearance, labelled from its key (`new_family` -> "New family").
FAMILY_LABELS: dict[str, str] = {
    "gateway": "Gateway", "ptr": "PTR", "smtp": "SMTP", "dnsbl": "Blocklists",
    "delegation": "Delegation", "dnssec": "DNSSEC", "mx": "MX", "spf": "SPF",
    "wildcard_spf": "Wildcard SPF", "dmarc": "DMARC", "dmarc_reports": "DMARC reports",
    "dkim": "DKIM", "mta_sts": "MTA-STS", "tls_rpt": "TLS-RPT", "tlsa": "TLSA", "caa": "CAA",
    "parked": "Parked", "firewall": "Firewall", "delegate": "Delegated records",
}

# C0/C1 controls (tab and newline kept), lone surrogates, and bidi controls that could make a
# hostile value read differently from what it is
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"
                     r"\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def esc(value: object) -> str:
    """Text or attribute value, escaped for HTML; unsafe characters shown as escapes."""
    return html.escape(_UNSAFE.sub(_visible, str(value)), quote=True)


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


_BASE_CSS = """
:root{--ok:#d6eaf8;--okb:#0072b2;--warn:#fde5a6;--warnb:#a66a00;--fail:#f7c6b4;--failb:#b53d00;
--line:#c8ccd0;--muted:#555;color-scheme:light}
[hidden]{display:none!important}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:1rem 1.5rem;color:#1b1f23;background:#fff}
h1{font-size:1.4rem;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
code{font:12px/1.35 ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere;
white-space:pre-wrap}h2 code{font-size:.95em}
table{border-collapse:collapse}th,td{border:1px solid var(--line);padding:3px 6px;
text-align:left;vertical-align:top}
thead th{background:#eef0f2;position:sticky;top:0;z-index:1}
.k{background:var(--ok)}.w{background:var(--warn)}.f{background:var(--fail)}
.muted,.meta{color:var(--muted)}.meta{font-size:12px;margin-top:1.5rem}
.alert{border-left:4px solid var(--failb);background:var(--fail);padding:.4rem .6rem;
margin:.4rem 0}
.note{border-left:4px solid var(--okb);background:#eef5fb;padding:.4rem .6rem;margin:.4rem 0}
.alert,.note,#made{overflow-wrap:anywhere}
"""

_VERIFY_CSS = _BASE_CSS + """
.overview{display:flex;gap:1.5rem;flex-wrap:wrap;align-items:flex-start;margin:.3rem 0 .6rem}
.totals{display:flex;flex-direction:column;gap:.3rem}
.totals div{border:1px solid var(--line);border-radius:4px;padding:.2rem .7rem;min-width:14rem}
.totals b{font-size:1.3rem;margin-right:.3rem}
.fam caption{text-align:left;font-weight:bold;padding-bottom:.2rem}
.fam td{text-align:right;min-width:2.5rem}.fam tbody th{text-align:left;white-space:nowrap}
#ctl{margin:.8rem 0 .5rem;display:flex;gap:1rem;align-items:center}
#ctl input[type=search]{width:18rem;padding:3px 6px}
#grid td{text-align:center;min-width:4.5rem}
#grid tbody th{font-weight:normal;max-width:22rem;overflow-wrap:anywhere}
#grid th button{font:inherit;font-weight:bold;border:0;background:none;padding:0;cursor:pointer}
#grid th[aria-sort=ascending] button::after{content:" \\25B2"}
#grid th[aria-sort=descending] button::after{content:" \\25BC"}
summary{cursor:pointer;font-weight:bold;white-space:nowrap}
#grid td.w,#grid td.f{position:relative}
.c{position:absolute;z-index:2;left:0;top:100%;width:34rem;max-width:80vw;margin:0;
padding:.5rem .7rem;list-style:none;text-align:left;background:#fff;border:2px solid var(--failb);
border-radius:4px;box-shadow:0 3px 10px rgba(0,0,0,.25);overflow-wrap:anywhere}
.w .c{border-color:var(--warnb)}.r .c{left:auto;right:0}
.c li{margin:0 0 .5rem}.c dl{margin:.15rem 0 0 1rem;display:grid;
grid-template-columns:auto minmax(0,1fr);gap:0 .5rem}.c dt{font-weight:bold}
.c dd{margin:0;min-width:0}
.legend span{display:inline-block;padding:0 .4rem;margin-right:.4rem;border:1px solid var(--line)}
"""

# sorting and filtering; state kept in the URL's fragment (#q=d07&problems=1&sort=dmarc&desc=1),
# so a filtered view can be linked to (and is tested in a real browser through it)
_VERIFY_JS = """
(function(){
var t=document.getElementById("grid"),b=t.tBodies[0],rows=[].slice.call(b.rows),
q=document.getElementById("q"),p=document.getElementById("problems"),
n=document.getElementById("shown"),hs=[].slice.call(t.tHead.rows[0].cells),
R={f:0,w:1,k:2},sk="",sd=false;
rows.forEach(function(r,i){r.i=i;});
function save(){var s=new URLSearchParams();if(q.value)s.set("q",q.value);
if(p.checked)s.set("problems","1");if(sk){s.set("sort",sk);if(sd)s.set("desc","1");}
try{history.replaceState(null,"",s.toString()?"#"+s:location.pathname+location.search);}
catch(e){}}
function filter(){var s=q.value.trim().toLowerCase(),o=p.checked,k=0;
rows.forEach(function(r){var v=(!o||r.classList.contains("p"))&&
(!s||r.cells[0].textContent.toLowerCase().indexOf(s)>=0);r.hidden=!v;if(v)k++;});
n.textContent=k+" of "+rows.length+" subjects shown";save();}
function sort(key,desc){var h=hs.filter(function(x){return x.dataset.k===key;})[0];if(!h)return;
var c=h.cellIndex;sk=key;sd=desc;
hs.forEach(function(x){x.removeAttribute("aria-sort");});
h.setAttribute("aria-sort",desc?"descending":"ascending");
function v(r){if(!c)return r.cells[0].textContent;var x=r.cells[c].classList[0];
return x in R?R[x]:3;}
rows.sort(function(a,z){var x=v(a),y=v(z),d=x<y?-1:x>y?1:0;return (desc?-d:d)||a.i-z.i;});
var f=document.createDocumentFragment();rows.forEach(function(r){f.appendChild(r);});
b.appendChild(f);save();}
hs.forEach(function(h){var u=document.createElement("button");u.type="button";
while(h.firstChild)u.appendChild(h.firstChild);h.appendChild(u);
u.addEventListener("click",function(){sort(h.dataset.k,sk===h.dataset.k&&!sd);});});
var s=new URLSearchParams(location.hash.slice(1));q.value=s.get("q")||"";
p.checked=s.get("problems")==="1";q.addEventListener("input",filter);
p.addEventListener("change",filter);document.getElementById("ctl").hidden=false;
if(s.get("sort"))sort(s.get("sort"),s.get("desc")==="1");filter();
})();
"""

_PLAN_CSS = _BASE_CSS + """
.changes{width:100%;max-width:110rem}.changes td:nth-child(5),.changes td:nth-child(6){width:40%}
.changes td:nth-child(n+5) code{overflow-wrap:anywhere}
.create .a{background:var(--ok)}.update .a{background:var(--warn)}.delete .a{background:var(--fail)}
.a{white-space:nowrap}ins,del{text-decoration:none;display:block}
ins::before{content:"+ ";font-weight:bold}del::before{content:"\\2212  ";font-weight:bold}
ins{background:#e3f1fa}del{background:#fbe3da}.v{display:block}
.groups td:nth-child(n+3){text-align:right}
"""

_HEAD = ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
         '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
         '<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
         '<meta name="referrer" content="no-referrer">\n'
         '<meta name="generator" content="pmgdns {version}">\n'
         '<title>{title}</title>\n<style>{css}</style>\n</head>\n<body>\n')


def _csp(css: str, js: str | None) -> str:
    script = _hash(js) if js is not None else "'none'"
    return (f"default-src 'none'; style-src {_hash(css)}; script-src {script}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'")


def _page(title: str, css: str, body: Iterable[str], js: str | None = None) -> str:
    head = _HEAD.format(csp=_csp(css, js), version=esc(__version__), title=esc(title), css=css)
    tail = f"<script>{js}</script>\n" if js is not None else ""
    return head + "".join(body) + tail + "</body>\n</html>\n"


def page(title: str, body: Iterable[str]) -> str:
    """A self-contained page in the plan report's style (tickets use it)."""
    return _page(title, _PLAN_CSS, body)


# -- verify -----------------------------------------------------------------------------------


def _status(check: Mapping[str, Any]) -> str:
    status = check.get("status")
    if status not in RANK:
        raise ValueError(f"check status {status!r} is not OK, WARN or FAIL")
    return str(status)


def _worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=RANK.__getitem__, default=OK)


def _label(family: str) -> str:
    return FAMILY_LABELS.get(family) or family.replace("_", " ").capitalize()


def _made(doc: Mapping[str, Any]) -> str:
    """When the run was made and which name servers answered, as the document says."""
    parts = []
    made = str(doc.get("made") or "")
    if made:
        parts.append(f'Made <time datetime="{esc(made)}">'
                     f"{esc(made.replace('T', ' ').replace('Z', ' UTC'))}</time>")
    resolver = doc.get("resolver")
    if isinstance(resolver, Mapping) and resolver.get("nameservers"):
        servers = ", ".join(f"<code>{esc(s)}</code>" for s in resolver["nameservers"])
        parts.append(f"answers from the system's resolver ({servers})" if resolver.get("system")
                     else f"answers from {servers} (<code>--nameserver</code>)")
    return f'<p id="made" class="muted">{"; ".join(parts)}.</p>\n' if parts else ""


def _families(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = dict.fromkeys(str(c["family"]) for c in checks)
    known = [f for f in FAMILY_LABELS if f in seen]
    return known + [f for f in seen if f not in FAMILY_LABELS]


def _finding(check: Mapping[str, Any]) -> str:
    status = _status(check)
    parts = [f"<li><b>{SYM[status]} {status}</b> {esc(check.get('check', ''))}: "
             f"{esc(check.get('message', ''))}<dl>"]
    for key in ("observed", "expected"):
        value = check.get(key) or ""
        if value:
            parts.append(f"<dt>{key.capitalize()}</dt><dd><code>{esc(value)}</code></dd>")
    if check.get("fix"):
        parts.append(f"<dt>Fix</dt><dd>{esc(check['fix'])}</dd>")
    parts.append("</dl></li>")
    return "".join(parts)


def _cell(checks: Sequence[Mapping[str, Any]], right: bool = False) -> str:
    if not checks:
        return "<td></td>"
    status = _worst(_status(c) for c in checks)
    if status == OK:
        return '<td class="k">✓</td>'
    findings = "".join(_finding(c) for c in checks)
    # the findings open over the rows below (the grid keeps its shape), to the left when the
    # column is in the right half of the table
    cls = CLS[status] + (" r" if right else "")
    return (f'<td class="{cls}"><details><summary>{SYM[status]} {status}</summary>'
            f'<ul class="c">{findings}</ul></details></td>')


def verify_html(doc: Mapping[str, Any], title: str = "pmgdns verify") -> str:
    """The fleet report of a `verify --format json` document (version 1): subjects (domains
    and gateway nodes) as rows, check families as columns, each cell the worst status of that
    subject's checks in that family, problems expandable to every finding."""
    if doc.get("version") != 1:
        raise ValueError(f"verify document version {doc.get('version')!r}: only 1 is known")
    checks: list[Mapping[str, Any]] = list(doc.get("checks", []))
    families = _families(checks)
    grid: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for c in checks:
        grid.setdefault(str(c["subject"]), {}).setdefault(str(c["family"]), []).append(c)
    worst = {s: _worst(_status(c) for cs in fams.values() for c in cs)
             for s, fams in grid.items()}
    by_status = {st: sum(1 for w in worst.values() if w == st) for st in RANK}
    totals = {st: sum(1 for c in checks if _status(c) == st) for st in RANK}

    out = [f"<h1>{esc(title)}</h1>\n", _made(doc)]
    n = len(grid)
    out.append(f'<p id="headline"><b>{plural(n, "subject")}</b>: '
               f'<span class="f">{SYM[FAIL]} {by_status[FAIL]} FAIL</span>, '
               f'<span class="w">{SYM[WARN]} {by_status[WARN]} WARN</span>, '
               f'<span class="k">{SYM[OK]} {by_status[OK]} OK</span> '
               f'<span class="muted">(each subject counted by its worst check; '
               f'{plural(len(checks), "check")}: {totals[FAIL]} failed, '
               f'{plural(totals[WARN], "warning")}, {totals[OK]} ok)</span></p>\n')
    out.append('<div class="overview"><div class="totals" id="totals">')
    for st, word in ((FAIL, "failing"), (WARN, "with warnings"), (OK, "ok")):
        out.append(f'<div class="{CLS[st]}" data-status="{st}"><b>{by_status[st]}</b> '
                   f"{SYM[st]} {st}: subjects {word}</div>")
    out.append("</div>\n")
    # per family: how many subjects are FAIL/WARN/OK there (a subject counts once per family)
    cells = {f: [_worst(_status(c) for c in fams[f]) for fams in grid.values() if f in fams]
             for f in families}
    out.append('<table class="fam" id="families"><caption>Subjects by check family</caption>'
               '<thead><tr><th></th>'
               + "".join(f'<th data-family="{esc(f)}">{esc(_label(f))}</th>' for f in families)
               + "</tr></thead><tbody>\n")
    for st in (FAIL, WARN, OK):
        counts = [sum(1 for w in cells[f] if w == st) for f in families]
        out.append(f'<tr data-status="{st}"><th>{SYM[st]} {st}</th>'
                   + "".join(f'<td class="{CLS[st]}">{n}</td>' if n else "<td>0</td>"
                             for n in counts) + "</tr>\n")
    out.append('<tr data-status="checked"><th>checked</th>'
               + "".join(f"<td>{len(cells[f])}</td>" for f in families) + "</tr>\n")
    out.append("</tbody></table></div>\n")
    for note in doc.get("notes", []):
        out.append(f'<p class="note">Note: {esc(note)}</p>\n')

    out.append('<h2>Subjects</h2>\n<p class="legend muted">'
               '<span class="f">✗ FAIL</span><span class="w">! WARN</span>'
               '<span class="k">✓ OK</span><span>empty: not checked there</span> '
               "Open a FAIL or WARN cell for the findings, what was observed and expected, "
               "and the fix.</p>\n")
    out.append('<div id="ctl" hidden><label>Filter subjects <input type="search" id="q" '
               'placeholder="e.g. example.com" autocomplete="off"></label>'
               '<label><input type="checkbox" id="problems"> only problems</label>'
               '<span id="shown" class="muted" aria-live="polite"></span></div>\n')
    out.append('<table id="grid"><thead><tr><th data-k="subject">Subject</th>'
               '<th data-k="status">Status</th>'
               + "".join(f'<th data-k="{esc(f)}">{esc(_label(f))}</th>' for f in families)
               + "</tr></thead>\n<tbody>\n")
    half = (len(families) + 1) // 2
    # problems first (FAIL, then WARN), each group in the document's order: the red cells are
    # at the top of the page
    order = sorted(grid, key=lambda s: -RANK[worst[s]])
    for subject in order:
        fams = grid[subject]
        w = worst[subject]
        row = '<tr class="p">' if w != OK else "<tr>"
        out.append(f'{row}<th scope="row">{esc(subject)}</th>'
                   f'<td class="{CLS[w]}">{SYM[w]} {w}</td>'
                   + "".join(_cell(fams.get(f, []), i >= half)
                             for i, f in enumerate(families)) + "</tr>\n")
    out.append("</tbody></table>\n")
    out.append('<p class="meta">Rows are domains and gateway nodes (names ending in a dot); '
               "columns are check families. <code>pmgdns verify --format json</code> has every "
               "check, OK ones included. Written by pmgdns "
               f"{esc(__version__)}.</p>\n")
    return _page(title, _VERIFY_CSS, out, _VERIFY_JS)


# -- plan -------------------------------------------------------------------------------------

_ACTION = {"create": ("+", "create"), "update": ("~", "update"), "delete": ("\u2212", "delete")}


def _values(values: Sequence[str], other: Sequence[str], mark: str) -> str:
    out = []
    others = set(other)
    for v in values:
        if v in others:
            out.append(f'<code class="v">{esc(v)}</code>')
        else:
            out.append(f"<{mark}><code>{esc(v)}</code></{mark}>")
    return "".join(out)


def _change_row(c: Mapping[str, Any]) -> str:
    action = str(c.get("action", ""))
    if action not in _ACTION:
        raise ValueError(f"change action {action!r} is not create, update or delete")
    sym, word = _ACTION[action]
    before: list[str] = list(c.get("previous", []))
    after: list[str] = list(c.get("values", []))
    return (f'<tr class="{action}"><td class="a">{sym} {word}</td>'
            f"<td><code>{esc(c.get('name', ''))}</code></td><td>{esc(c.get('type', ''))}</td>"
            f"<td>{esc(c.get('ttl', ''))}</td><td>{_values(before, after, 'del')}</td>"
            f"<td>{_values(after, before, 'ins')}</td></tr>\n")


def _takes_away(taken: Sequence[Mapping[str, Any]]) -> list[str]:
    """The "Takes away" section (spec-v1 §7.1), first in the plan."""
    if not taken:
        return []
    out = [f'<section id="takes-away"><h2>Takes away ({len(taken)})</h2>\n'
           '<table class="changes"><thead><tr><th></th><th>kind</th><th>value</th><th>name</th>'
           "<th>type</th><th>targets</th><th>fix</th></tr></thead><tbody>\n"]
    for t in taken:
        flag = ('<b class="refused">refused by apply</b>' if t.get("refused") else "shown")
        targets = ", ".join(str(x) for x in t.get("targets", []))
        out.append(f'<tr class="delete"><td>{flag}</td><td>{esc(t.get("kind", ""))}</td>'
                   f'<td><code>{esc(t.get("value", ""))}</code></td>'
                   f'<td><code>{esc(t.get("name", ""))}</code></td><td>{esc(t.get("type", ""))}'
                   f"</td><td>{esc(targets)}</td><td>{esc(t.get('fix', ''))}</td></tr>\n")
    out.append("</tbody></table></section>\n")
    return out


def plan_html(doc: Mapping[str, Any], title: str = "pmgdns plan") -> str:
    """The plan of a `plan --format json` document (version 1): a summary line, one table per
    zone and target (after octoDNS's PlanHtml), the manual PTR steps, notes and warnings."""
    if doc.get("version") != 1:
        raise ValueError(f"plan document version {doc.get('version')!r}: only 1 is known")
    changes: list[Mapping[str, Any]] = list(doc.get("changes", []))
    s = {a: sum(1 for c in changes if c.get("action") == a) for a in _ACTION}
    out = [f"<h1>{esc(title)}</h1>\n", *_takes_away(doc.get("takes_away", []))]
    if changes:
        out.append(f'<p id="headline"><b>Plan: {s["create"]} to add, {s["update"]} to change, '
                   f'{s["delete"]} to destroy.</b></p>\n')
    else:
        out.append('<p id="headline"><b>No changes.</b> The DNS matches the spec.</p>\n')
    for u in doc.get("unsafe", []):
        out.append(f'<p class="alert" role="alert"><b>⚠ Warning:</b> {esc(u)} '
                   "(apply needs <code>--force</code>)</p>\n")
    for note in doc.get("notes", []):
        out.append(f'<p class="note">Note: {esc(note)}</p>\n')

    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for c in changes:
        groups.setdefault((str(c.get("zone", "")), str(c.get("target", ""))), []).append(c)
    if len(groups) > 1:
        out.append('<h2>Zones</h2>\n<table class="groups"><thead><tr><th>zone</th><th>target</th>'
                   "<th>+ add</th><th>~ change</th><th>\u2212 destroy</th></tr></thead><tbody>\n")
        for i, ((zone, target), cs) in enumerate(groups.items(), 1):
            n = [sum(1 for c in cs if c.get("action") == a) for a in _ACTION]
            out.append(f'<tr><td><a href="#g{i}"><code>{esc(zone)}</code></a></td>'
                       f"<td>{esc(target)}</td>" + "".join(f"<td>{x}</td>" for x in n)
                       + "</tr>\n")
        out.append("</tbody></table>\n")
    for i, ((zone, target), cs) in enumerate(groups.items(), 1):
        out.append(f'<section id="g{i}"><h2><code>{esc(zone)}</code> at '
                   f"<code>{esc(target)}</code></h2>\n"
                   '<table class="changes"><thead><tr><th>action</th><th>name</th><th>type</th>'
                   "<th>TTL</th><th>before</th><th>after</th></tr></thead><tbody>\n")
        out.extend(_change_row(c) for c in cs)
        out.append("</tbody></table></section>\n")

    everything = list(doc.get("manual", []))
    manual = [m for m in everything if isinstance(m, dict) and m.get("kind", "ptr") == "ptr"]
    customer = [m for m in everything if isinstance(m, dict) and m.get("kind") == "customer"]
    if customer:
        out.append('<h2>Customer zones</h2>\n<p id="customer">Applied nowhere: the customer\'s '
                   "DNS host sets these; <code>pmgdns customer-ticket</code> writes the "
                   'request.</p>\n<table class="changes"><thead><tr><th>name</th><th>TTL</th>'
                   "<th>type</th><th>value</th></tr></thead><tbody>\n")
        for m in customer:
            out.append(f"<tr><td><code>{esc(m.get('name', ''))}</code></td>"
                       f"<td>{esc(m.get('ttl', ''))}</td><td>{esc(m.get('type', ''))}</td>"
                       f"<td><code>{esc(m.get('value', ''))}</code></td></tr>\n")
        out.append("</tbody></table>\n")
    if manual:
        out.append('<h2>Manual step</h2>\n<p id="manual">Only the hoster can set reverse DNS; '
                   "<code>pmgdns ptr-ticket</code> writes the request.</p>\n<ul>\n")
        for m in manual:
            out.append(f"<li>PTR <code>{esc(m.get('address', ''))}</code> → "
                       f"<code>{esc(m.get('name', ''))}</code></li>\n")
        out.append("</ul>\n")
    checksum = doc.get("checksum")
    out.append('<p class="meta">'
               + (f"octoDNS plan checksum <code>{esc(checksum)}</code>. " if checksum else "")
               + f"Written by pmgdns {esc(__version__)}.</p>\n")
    return _page(title, _PLAN_CSS, out)
