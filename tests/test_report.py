"""The HTML reports (verify fleet grid, plan tables) rendered in a real browser (headless
Chromium), and the JSON Schema of `verify --format json`."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pmgdns.reports.html import plan_html, verify_html

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "src" / "pmgdns" / "schemas" / "verify.schema.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
SPOOF = "'\u202e\x1b[31m"  # a quote, a bidi override, a terminal escape
SCREENSHOT_SIZE = (1280, 900)

# -- a 50-domain fleet with two gateway nodes and three known breaks ---------------------------

GATEWAYS = ["mx1.example.net.", "mx2.example.net."]
DOMAINS = [f"d{i:02d}.example.net" for i in range(1, 51)]
BREAKS = {  # (subject, family) -> status
    ("d07.example.net", "dmarc"): "FAIL",
    ("d23.example.net", "dkim"): "FAIL",
    ("d41.example.net", "mx"): "WARN",
}
DMARC = "v=DMARC1; p=reject; aspf=s; adkim=s;"


def _check(subject: str, family: str, check: str, status: str, message: str, fix: str = "",
           observed: str = "", expected: str = "") -> dict[str, str]:
    c = {"subject": subject, "family": family, "check": check, "status": status,
         "message": message, "fix": fix}
    if observed or expected:
        c.update(observed=observed, expected=expected)
    return c


def fleet_doc() -> dict[str, Any]:
    """`verify --format json` for 50 domains and 2 gateway nodes: DMARC FAILs on d07, DKIM
    FAILs on d23 (with a hostile TXT value), MX WARNs on d41. Every 3rd domain has MTA-STS."""
    checks: list[dict[str, str]] = []
    for g in GATEWAYS:
        n = g.split(".")[0][-1]
        checks += [
            _check(g, "gateway", "A", "OK", f"{g} A 198.51.100.2{n}"),
            _check(g, "gateway", "AAAA", "OK", f"{g} AAAA 2001:db8::2{n}"),
            _check(g, "gateway", "gateway SPF", "OK", '"v=spf1 a -all" (1 lookup, 0 void)'),
            _check(g, "ptr", "PTR", "OK", f"198.51.100.2{n} -> {g} -> 198.51.100.2{n}"),
            _check(g, "smtp", "STARTTLS", "OK", f"{g}:25 offers STARTTLS (TLSv1.3)"),
        ]
    for i, d in enumerate(DOMAINS, 1):
        mx = _check(d, "mx", "MX", "OK", "10 mx1.example.net.")
        if (d, "mx") in BREAKS:
            mx = _check(d, "mx", "MX", "WARN", f"{d}. has a second MX 20 backup.example.org.",
                        "remove it, or add it to the spec", "10 mx1.example.net., "
                        "20 backup.example.org.", "10 mx1.example.net.")
        dmarc = _check(d, "dmarc", "DMARC", "OK", DMARC)
        if (d, "dmarc") in BREAKS:
            dmarc = _check(d, "dmarc", "DMARC", "FAIL",
                           f"p=none at _dmarc.{d}., the spec says p=reject",
                           "run `pmgdns apply`", "v=DMARC1; p=none", DMARC)
        dkim = [_check(d, "dkim", "DKIM", "OK", f"pmg2026._domainkey.{d}. (rsa, 2048 bits)")]
        if (d, "dkim") in BREAKS:
            dkim = [_check(d, "dkim", "DKIM", "FAIL",
                           f"pmg2026._domainkey.{d}.: the TXT is not a DKIM key",
                           "run `pmgdns apply`", HOSTILE, "v=DKIM1; h=sha256; k=rsa; p=MIIB…"),
                    _check(d, "dkim", "DKIM retired", "OK", "pmg2025 is gone")]
        checks += [mx, _check(d, "spf", "SPF", "OK", '"v=spf1 mx -all" (1 lookup, 0 void)'),
                   _check(d, "wildcard_spf", "wildcard SPF", "OK", '"v=spf1 -all"'),
                   dmarc, *dkim, _check(d, "tls_rpt", "TLS-RPT", "OK", "v=TLSRPTv1")]
        if i % 3 == 0:
            checks.append(_check(d, "mta_sts", "MTA-STS", "OK", "policy mode enforce"))
    summary = {s: sum(1 for c in checks if c["status"] == s) for s in ("OK", "WARN", "FAIL")}
    return {"version": 1, "checks": checks, "summary": summary,
            "notes": ["mx2.example.net. is checked as a gateway node but lies in no domain of "
                      "the spec"]}


def plan_doc() -> dict[str, Any]:
    """`plan --format json` with creates, updates and deletes, and a hostile TXT value."""
    def ch(zone: str, target: str, action: str, name: str, type_: str, values: list[str],
           previous: list[str], ttl: int = 3600) -> dict[str, Any]:
        return {"zone": zone, "target": target, "action": action, "name": name, "type": type_,
                "ttl": ttl, "values": values, "previous": previous}

    return {
        "version": 1,
        "changes": [
            ch("example.com.", "local", "create", "_dmarc.example.com.", "TXT", [DMARC], []),
            ch("example.com.", "local", "create", "example.com.", "MX",
               ["10 mx1.example.com."], []),
            ch("example.com.", "local", "update", "example.com.", "TXT",
               ["google-site-verification=abc", "v=spf1 mx -all"],
               ["google-site-verification=abc", "v=spf1 a mx ~all"]),
            ch("example.org.", "cloudflare", "update", "x.example.org.", "TXT",
               [HOSTILE], ["v=spf1 -all"]),
            ch("example.org.", "cloudflare", "delete", "pmg2025._domainkey.example.org.", "TXT",
               [], ["v=DKIM1; h=sha256; k=rsa; p=MIIBold"]),
        ],
        "summary": {"create": 2, "update": 2, "delete": 1},
        "manual": [{"kind": "ptr", "address": "198.51.100.25", "name": "mx1.example.com."}],
        "checksum": "0" * 64,
        "notes": ["mx1.example.com has no AAAA <b>note</b>"],
        "unsafe": ["example.org. at cloudflare: 50 % of the zone's records change"],
    }


# -- headless Chromium -------------------------------------------------------------------------


def chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile, offline-friendly flags and a timeout."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="pmgdns-chromium-") as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dump_dom(path: Path, fragment: str = "") -> Node:
    url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    return parse(chromium("--dump-dom", url).stdout)


def screenshot(page: Path, png: Path, size: tuple[int, int] = SCREENSHOT_SIZE,
               fragment: str = "") -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    url = page.resolve().as_uri() + (f"#{fragment}" if fragment else "")
    chromium(f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", url)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# -- a small DOM from Chromium's serialisation (no HTML library in the test dependencies) ------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def all(self, tag: str | None = None) -> list[Node]:
        out: list[Node] = []
        for c in self.children:
            if isinstance(c, Node):
                if tag is None or c.tag == tag:
                    out.append(c)
                out.extend(c.all(tag))
        return out

    def kids(self, tag: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]

    def by_id(self, id_: str) -> Node:
        found = [n for n in self.all() if n.attrs.get("id") == id_]
        assert len(found) == 1, f"#{id_}: {len(found)} elements"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(markup: str) -> Node:
    b = _Builder()
    b.feed(markup)
    b.close()
    return b.root


def grid(dom: Node) -> tuple[list[str], list[tuple[str, list[str], bool]]]:
    """The fleet table: column keys, and per row (subject, cell statuses, hidden); a cell's
    status is its first class (k, w, f; empty: not checked)."""
    table = dom.by_id("grid")
    keys = [th.attrs["data-k"] for th in table.kids("thead")[0].all("th")]
    rows = []
    for tr in table.kids("tbody")[0].kids("tr"):
        subject = tr.kids("th")[0].text
        rows.append((subject, [td.attrs.get("class", " ").split(" ")[0] for td in tr.kids("td")],
                     "hidden" in tr.attrs))
    return keys, rows


def problems(dom: Node) -> dict[tuple[str, str], str]:
    """(subject, family) -> status of every FAIL/WARN cell of the grid."""
    keys, rows = grid(dom)
    families = keys[2:]
    status = {"f": "FAIL", "w": "WARN"}
    return {(s, families[i]): status[cls] for s, cells, _ in rows
            for i, cls in enumerate(cells[1:]) if cls in status}


# -- verify ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("report") / "verify.html"
    page.write_text(verify_html(fleet_doc()), encoding="utf-8")
    return page


def test_verify_report_in_browser(fleet_page: Path) -> None:
    t0 = time.monotonic()
    dom = dump_dom(fleet_page)
    print(f"\nverify report (52 subjects): {fleet_page.stat().st_size} bytes, "
          f"dump-dom {time.monotonic() - t0:.2f} s")
    # the summary: subjects by their worst check, and every check
    totals = {d.attrs["data-status"]: int(d.kids("b")[0].text)
              for d in dom.by_id("totals").kids("div")}
    assert totals == {"FAIL": 2, "WARN": 1, "OK": 49}
    doc = fleet_doc()
    n = len(doc["checks"])
    headline = " ".join(dom.by_id("headline").text.split())
    assert headline.startswith("52 subjects: ✗ 2 FAIL, ! 1 WARN, ✓ 49 OK")
    assert f"{n} checks: 2 failed, 1 warning, {n - 3} ok" in headline
    table = dom.by_id("families")
    columns = [th.attrs["data-family"] for th in table.kids("thead")[0].all("th")[1:]]
    counts = {tr.attrs["data-status"]: [int(td.text) for td in tr.kids("td")]
              for tr in table.kids("tbody")[0].kids("tr")}
    families = {f: [counts[st][i] for st in ("FAIL", "WARN", "OK", "checked")]
                for i, f in enumerate(columns)}
    assert families == {  # subjects: FAIL, WARN, OK, checked
        "gateway": [0, 0, 2, 2], "ptr": [0, 0, 2, 2], "smtp": [0, 0, 2, 2],
        "mx": [0, 1, 49, 50], "spf": [0, 0, 50, 50], "wildcard_spf": [0, 0, 50, 50],
        "dmarc": [1, 0, 49, 50], "dkim": [1, 0, 49, 50], "mta_sts": [0, 0, 16, 16],
        "tls_rpt": [0, 0, 50, 50]}
    assert [p.text for p in dom.all("p") if p.attrs.get("class") == "note"] == [
        f"Note: {doc['notes'][0]}"]

    # the grid: exactly the three breaks, empty cells where a family does not apply
    keys, rows = grid(dom)
    assert keys == ["subject", "status", "gateway", "ptr", "smtp", "mx", "spf", "wildcard_spf",
                    "dmarc", "dkim", "mta_sts", "tls_rpt"]
    # problems first (FAIL, WARN), then the rest, each in the document's order
    broken = ["d07.example.net", "d23.example.net", "d41.example.net"]
    assert [s for s, _, _ in rows][:3] == broken
    assert [s for s, _, _ in rows][3:] == [s for s in GATEWAYS + DOMAINS if s not in broken]
    assert problems(dom) == {(s, f): st for (s, f), st in BREAKS.items()}
    assert all(not hidden for _, _, hidden in rows)  # script ran, nothing filtered
    cells = dict((s, c) for s, c, _ in rows)
    assert cells["mx1.example.net."][1:] == ["k"] * 3 + [""] * 7
    assert cells["d03.example.net"][1:] == [""] * 3 + ["k"] * 7
    assert cells["d04.example.net"][1:] == [""] * 3 + ["k"] * 5 + ["", "k"]
    assert [c[0] for c in cells.values()].count("f") == 2

    # the details of a problem cell: message, observed, expected, fix, in a <details>
    tr = next(tr for tr in dom.by_id("grid").all("tr") if tr.text.startswith("d07.example.net"))
    details = tr.all("details")
    assert len(details) == 1
    assert details[0].kids("summary")[0].text == "✗ FAIL"
    text = " ".join(details[0].text.split())
    assert "FAIL DMARC: p=none at _dmarc.d07.example.net., the spec says p=reject" in text
    dl = {dt.text: dd.text for dt, dd in zip(details[0].all("dt"), details[0].all("dd"),
                                             strict=True)}
    assert dl == {"Observed": "v=DMARC1; p=none", "Expected": DMARC,
                  "Fix": "run `pmgdns apply`"}
    warn = next(tr for tr in dom.by_id("grid").all("tr") if tr.text.startswith("d41."))
    assert warn.all("summary")[0].text == "! WARN"
    assert "20 backup.example.org." in warn.all("dd")[0].text

    # the hostile TXT value is text: no element was injected, the DOM holds the characters
    d23 = next(tr for tr in dom.by_id("grid").all("tr") if tr.text.startswith("d23."))
    observed = d23.all("dd")[0]
    assert observed.text == HOSTILE
    assert [n.tag for n in observed.all()] == ["code"]
    assert dom.all("img") == []
    assert len(dom.all("script")) == 1
    assert "alert(1)" not in dom.all("script")[0].text
    # colour is never the only signal: every coloured grid cell carries a symbol
    for td in dom.by_id("grid").all("td"):
        cls = td.attrs.get("class", " ").split(" ")[0]
        if cls:
            assert td.text.strip()[0] == {"k": "✓", "w": "!", "f": "✗"}[cls]
    # the script (allowed by its CSP hash) showed the controls and counted the rows
    ctl = dom.by_id("ctl")
    assert "hidden" not in ctl.attrs
    assert dom.by_id("shown").text == "52 of 52 subjects shown"


def test_every_column_has_a_human_label_and_the_page_says_when_and_whom_it_asked(
        tmp_path: Path) -> None:
    from pmgdns.families import FAMILIES
    from pmgdns.reports.html import FAMILY_LABELS

    for family in [f.name for f in FAMILIES] + ["ptr"]:
        label = FAMILY_LABELS.get(family, "")
        assert label and "_" not in label and label[0].isupper(), family
    doc = fleet_doc()
    doc["checks"].append(_check("d01.example.net", "dmarc_reports", "DMARC reports", "OK",
                                "dmarc.example.com accepts the reports"))
    doc["checks"].append(_check("d01.example.net", "new_family", "new", "OK", "fine"))
    doc["made"] = "2026-12-07T01:02:03Z"
    doc["resolver"] = {"nameservers": ["127.0.0.1:5353", "[::1]:53"], "system": False}
    page = tmp_path / "verify.html"
    page.write_text(verify_html(doc), encoding="utf-8")
    dom = dump_dom(page)
    headers = [th.text for th in dom.by_id("grid").kids("thead")[0].all("th")]
    assert headers == ["Subject", "Status", "Gateway", "PTR", "SMTP", "MX", "SPF",
                       "Wildcard SPF", "DMARC", "DMARC reports", "DKIM", "MTA-STS", "TLS-RPT",
                       "New family"]
    assert [th.text for th in dom.by_id("families").all("th")][1:len(headers) - 1] == headers[2:]
    made = " ".join(dom.by_id("made").text.split())
    assert made == ("Made 2026-12-07 01:02:03 UTC; answers from 127.0.0.1:5353, [::1]:53 "
                    "(--nameserver).")
    doc["resolver"] = {"nameservers": ["10.0.0.53:53"], "system": True}
    assert "answers from the system's resolver (<code>10.0.0.53:53</code>)" in verify_html(doc)


LONG = "p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 60  # 2,600 characters, no space
_MEASURE = """<script>
[].forEach.call(document.querySelectorAll("details"),function(d){d.open=true;});
var e=document.documentElement,out={page:e.scrollWidth-e.clientWidth,boxes:[]};
[].forEach.call(document.querySelectorAll(".c,#grid th,#grid td,code,.note"),function(b){
var r=b.getBoundingClientRect();
var over=b.scrollWidth>b.clientWidth+1&&!b.querySelector("details");  // a popover overlays
if(over||r.right>window.innerWidth+1)
out.boxes.push(b.tagName+"."+b.className+" "+b.scrollWidth+">"+b.clientWidth+" right "+r.right);
});
var m=document.createElement("pre");m.id="m";m.textContent=JSON.stringify(out);
document.body.appendChild(m);
</script>"""


def test_long_values_wrap_without_horizontal_scrolling(tmp_path: Path) -> None:
    """A DKIM key, a long name and a long note wrap inside their cell or popover: with every
    finding open, nothing sticks out and the page does not scroll sideways (Chromium measures
    the laid-out page; the measuring script replaces the page's CSP for the test)."""
    long_name = ".".join(["a" * 60] * 4) + ".example.net"
    doc = fleet_doc()
    doc["checks"] = [
        _check(long_name, "dkim", "DKIM", "FAIL", f"the key at pmg2026._domainkey.{long_name} "
               "is not the spec's key", "run `pmgdns apply`", LONG, LONG[::-1]),
        _check(long_name, "tls_rpt", "TLS-RPT", "WARN", LONG, "x", LONG, LONG),
        *doc["checks"]]
    doc["notes"].append(LONG)
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", verify_html(doc))
    path = tmp_path / "wide.html"
    path.write_text(page.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    width = SCREENSHOT_SIZE[0]  # the grid of 12 families itself needs about 1,100 px
    dom = parse(chromium("--dump-dom", f"--window-size={width},900",
                         path.resolve().as_uri()).stdout)
    measured = json.loads(dom.by_id("m").text)
    assert measured == {"page": 0, "boxes": []}, (width, measured)


def test_verify_report_filter_and_sort(fleet_page: Path) -> None:
    """The inline script's filter, problems toggle and sort, driven by the URL fragment."""
    dom = dump_dom(fleet_page, "problems=1")
    _, rows = grid(dom)
    assert [s for s, _, hidden in rows if not hidden] == [
        "d07.example.net", "d23.example.net", "d41.example.net"]
    assert dom.by_id("shown").text == "3 of 52 subjects shown"

    dom = dump_dom(fleet_page, "q=D2")
    _, rows = grid(dom)
    assert sorted(s for s, _, hidden in rows if not hidden) == [f"d2{i}.example.net"
                                                                for i in range(10)]

    dom = dump_dom(fleet_page, "sort=dkim")
    _, rows = grid(dom)
    assert rows[0][0] == "d23.example.net"  # FAIL first, then OK, then not checked
    assert [s for s, _, _ in rows[-2:]] == GATEWAYS
    th = [t for t in dom.by_id("grid").all("th") if t.attrs.get("data-k") == "dkim"][0]
    assert th.attrs["aria-sort"] == "ascending" and th.kids("button")

    dom = dump_dom(fleet_page, "sort=subject&desc=1&q=mx")
    _, rows = grid(dom)
    assert [s for s, _, hidden in rows if not hidden] == GATEWAYS[::-1]

    dom = dump_dom(fleet_page, "sort=status")
    _, rows = grid(dom)
    assert [s for s, _, _ in rows[:3]] == ["d07.example.net", "d23.example.net",
                                           "d41.example.net"]


def test_verify_report_without_script(tmp_path: Path) -> None:
    """With script blocked every row is shown, problems still expand, the controls are hidden.
    (The page's own CSP blocks it here: --dump-dom needs script enabled in the browser.)"""
    markup = verify_html(fleet_doc())
    blocked = re.sub(r"script-src '[^']+'", "script-src 'none'", markup)
    assert blocked != markup
    page = tmp_path / "verify.html"
    page.write_text(blocked, encoding="utf-8")
    dom = dump_dom(page, "problems=1&sort=dkim")
    _, rows = grid(dom)
    assert sorted(s for s, _, _ in rows) == sorted(GATEWAYS + DOMAINS)
    assert not any(hidden for _, _, hidden in rows)
    assert "hidden" in dom.by_id("ctl").attrs
    assert len(dom.by_id("grid").all("details")) == 3
    assert not any(th.kids("button") for th in dom.by_id("grid").all("th"))


def test_csp_blocks_injected_script(tmp_path: Path) -> None:
    """Defence in depth: a script that escaped escaping would not run under the page's CSP."""
    markup = verify_html(fleet_doc())
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', markup)
    assert csp is not None
    assert "default-src 'none'" in csp.group(1) and "unsafe-inline" not in csp.group(1)
    page = tmp_path / "injected.html"
    injected = '<script>document.body.setAttribute("data-pwned", "1")</script>'
    page.write_text(markup.replace("<h1>", injected + "<h1>", 1), encoding="utf-8")
    dom = dump_dom(page)
    assert "data-pwned" not in dom.all("body")[0].attrs
    assert "hidden" not in dom.by_id("ctl").attrs  # while the page's own script ran


def test_screenshot(fleet_page: Path) -> None:
    """The CI artifact: build/report-screenshot.png at the repository root (git-ignored)."""
    png = ROOT / "build" / "report-screenshot.png"
    screenshot(fleet_page, png)
    assert png_size(png) == SCREENSHOT_SIZE
    print(f"\nscreenshot {png}: {png.stat().st_size} bytes")
    docs = ROOT / "docs" / "report.png"
    if docs.exists():
        assert png_size(docs)[0] <= 1280 and docs.stat().st_size < 150_000


def test_every_value_is_escaped() -> None:
    """Hostile text in every string of both documents never leaves the text context."""
    bad = HOSTILE + SPOOF
    doc = fleet_doc()
    for c in doc["checks"]:
        for k in ("subject", "family", "check", "message", "fix", "observed", "expected"):
            c[k] = c.get(k, "") + bad
    doc["notes"] = [bad]
    pdoc = plan_doc()
    for c in pdoc["changes"]:
        for k in ("zone", "target", "name", "type"):
            c[k] += bad
        c["values"] = [v + bad for v in c["values"]]
        c["previous"] = [v + bad for v in c["previous"]]
    pdoc["manual"] = [{"kind": "ptr", "address": bad, "name": bad}]
    pdoc["notes"] = pdoc["unsafe"] = [bad]
    pdoc["checksum"] = bad
    for page in (verify_html(doc, title=bad), plan_html(pdoc, title=bad)):
        assert "<img" not in page and "alert(1)</script>" not in page
        assert page.count("<script") <= 1
        assert "\u202e" not in page and "\x1b" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in page
        assert "&#x27;\\u202e\\x1b[31m" in page
        # no attribute value holds a raw quote or angle bracket from the data
        attrs = re.findall(r'="([^"]*)"', page)
        assert attrs and all(not re.search("[<>']", a) for a in attrs
                             if not a.startswith("default-src 'none';"))


def test_unknown_status_and_version_are_refused() -> None:
    doc = fleet_doc()
    doc["checks"][0]["status"] = "MAYBE"
    with pytest.raises(ValueError, match="MAYBE"):
        verify_html(doc)
    with pytest.raises(ValueError, match="version"):
        verify_html({"version": 2, "checks": []})
    with pytest.raises(ValueError, match="version"):
        plan_html({"version": 2, "changes": []})


def test_large_fleet(tmp_path: Path) -> None:
    """10,000 subjects: a few bytes per cell; Chromium loads the page and the script filters
    and sorts it."""
    checks = []
    for i in range(10_000):
        d = f"domain{i:05d}.example"
        for fam in ("mx", "spf", "wildcard_spf", "dmarc", "dkim", "mta_sts", "tls_rpt"):
            status = "FAIL" if (fam == "dmarc" and i % 100 == 0) else "OK"
            checks.append(_check(d, fam, fam.upper(), status, f"{fam} at {d}",
                                 "run `pmgdns apply`" if status == "FAIL" else ""))
    doc = {"version": 1, "checks": checks, "summary": {}, "notes": []}
    t0 = time.monotonic()
    markup = verify_html(doc)
    elapsed = time.monotonic() - t0
    size = len(markup.encode())
    print(f"\nverify report, 10,000 subjects x 7 families ({len(checks)} checks): {size:,} bytes "
          f"({size / 10_000:.0f} bytes per subject), rendered in {elapsed:.2f} s")
    assert size < 3_000_000
    page = tmp_path / "large.html"
    page.write_text(markup, encoding="utf-8")
    t0 = time.monotonic()
    dom = dump_dom(page, "problems=1&sort=dmarc")
    print(f"Chromium: loaded, filtered and sorted, DOM dumped and parsed in "
          f"{time.monotonic() - t0:.1f} s")
    _, rows = grid(dom)
    assert len(rows) == 10_000
    shown = [s for s, _, hidden in rows if not hidden]
    assert shown == [f"domain{i:05d}.example" for i in range(0, 10_000, 100)]
    assert [s for s, _, _ in rows[:100]] == shown  # FAIL first
    assert dom.by_id("shown").text == "100 of 10000 subjects shown"


def test_empty_report() -> None:
    page = verify_html({"version": 1, "checks": [], "summary": {"OK": 0, "WARN": 0, "FAIL": 0},
                        "notes": []})
    assert "0 subjects" in page
    assert "No changes." in plan_html({"version": 1, "changes": [], "manual": [], "notes": [],
                                       "unsafe": [], "checksum": "0" * 64,
                                       "summary": {"create": 0, "update": 0, "delete": 0}})


# -- plan --------------------------------------------------------------------------------------


def test_plan_report_in_browser(tmp_path: Path) -> None:
    page = tmp_path / "plan.html"
    page.write_text(plan_html(plan_doc()), encoding="utf-8")
    dom = dump_dom(page)
    assert " ".join(dom.by_id("headline").text.split()) == \
        "Plan: 2 to add, 2 to change, 1 to destroy."
    alerts = [p for p in dom.all("p") if p.attrs.get("role") == "alert"]
    assert len(alerts) == 1 and "50 % of the zone's records change" in alerts[0].text
    assert "--force" in alerts[0].text
    assert any(p.text == "Note: mx1.example.com has no AAAA <b>note</b>" for p in dom.all("p"))
    assert dom.all("b") and not any(b.text == "note" for b in dom.all("b"))

    sections = [s for s in dom.all("section")]
    assert [s.kids("h2")[0].text for s in sections] == ["example.com. at local",
                                                        "example.org. at cloudflare"]
    rows = [[td.text for td in tr.kids("td")] for tr in sections[0].all("tbody")[0].kids("tr")]
    assert rows[0] == ["+ create", "_dmarc.example.com.", "TXT", "3600", "", DMARC]
    assert rows[1][:4] == ["+ create", "example.com.", "MX", "3600"]
    assert rows[2][:3] == ["~ update", "example.com.", "TXT"]
    update = sections[0].all("tbody")[0].kids("tr")[2]
    before, after = update.kids("td")[4:6]
    assert [d.text for d in before.all("del")] == ["v=spf1 a mx ~all"]
    assert [i.text for i in after.all("ins")] == ["v=spf1 mx -all"]
    assert [c.text for c in after.all("code") if c.attrs.get("class") == "v"] == [
        "google-site-verification=abc"]
    rows = [[td.text for td in tr.kids("td")] for tr in sections[1].all("tbody")[0].kids("tr")]
    assert rows[0] == ["~ update", "x.example.org.", "TXT", "3600", "v=spf1 -all", HOSTILE]
    assert rows[1] == ["\u2212 delete", "pmg2025._domainkey.example.org.", "TXT", "3600",
                       "v=DKIM1; h=sha256; k=rsa; p=MIIBold", ""]
    # the overview of zones links to each section
    links = [a.attrs["href"] for a in dom.all("a")]
    assert links == ["#g1", "#g2"]
    # the hostile value is text; the plan page runs no script at all
    assert dom.all("img") == [] and dom.all("script") == []
    assert "198.51.100.25 → mx1.example.com." in " ".join(dom.all("ul")[-1].text.split())
    assert "0" * 64 in dom.all("p")[-1].text


# -- the schema of verify --format json --------------------------------------------------------


def test_verify_schema() -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    doc = fleet_doc()
    validator.validate(doc)
    validator.validate({"version": 1, "checks": [], "summary": {"OK": 0, "WARN": 0, "FAIL": 0},
                        "notes": []})

    def invalid(d: dict[str, Any]) -> None:
        assert not validator.is_valid(d), d

    bad = json.loads(json.dumps(doc))
    bad["checks"][0]["status"] = "ERROR"
    invalid(bad)
    for key in ("subject", "family", "check", "status", "message", "fix"):
        bad = json.loads(json.dumps(doc))
        del bad["checks"][0][key]
        invalid(bad)
    bad = json.loads(json.dumps(doc))
    bad["checks"][0]["observed"] = None
    invalid(bad)
    bad = json.loads(json.dumps(doc))
    bad["checks"][0]["family"] = "DMARC"  # family keys are lower-case identifiers
    invalid(bad)
    bad = json.loads(json.dumps(doc))
    bad["summary"]["ERROR"] = 1
    invalid(bad)
    invalid({**doc, "version": 2})


def test_verify_schema_matches_the_report() -> None:
    """verify's JSON document validates against the shipped schema."""
    import jsonschema

    from pmgdns.verify.run import Check, Report

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    report = Report([Check("example.com", "dmarc", "DMARC", "FAIL", "no DMARC record",
                           "run apply", observed="nothing", expected="v=DMARC1; p=reject;")])
    jsonschema.validate(report.to_json(), schema, cls=jsonschema.Draft202012Validator)
    report.made, report.nameservers = "2026-12-07T01:02:03Z", ["[::1]:5353"]
    jsonschema.validate(report.to_json(), schema, cls=jsonschema.Draft202012Validator)
    for bad in ({"made": "yesterday"}, {"resolver": {"nameservers": ["::1"]}}):
        assert not jsonschema.Draft202012Validator(schema).is_valid({**report.to_json(), **bad})
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["pmgdns"]
