"""Hostile input: every spec value pmgdns takes, YAML oddities, and hostile TXT values already at
the target, driven through `validate`, `render`, `plan`, `apply --yes` and a re-plan, each run a
real `python -m pmgdns` process under a time and memory budget (tests/hostile.py).

What every run keeps, whatever the input (`hostile.assert_sane`): it finishes within its budget,
exits 0 or 1, shows no traceback and no "internal error", writes no raw control character, ESC
or bidi override to stdout or stderr, and an exit-1 error is one `Error:` paragraph that names
the spec file and a key path. A spec `validate` accepts applies on the local target, converges
(a second `plan --detailed-exitcode` exits 0) and gives zone files `named-checkzone` accepts.
Foreign TXT values at the target survive byte for byte.

Each known kind of defect has a deterministic case below (so each failure is reported on its
own); the Hypothesis tests explore around them with a fixed seed. The hostile values of each spec
key, and the commands that take values of their own (`verify --dnsbl`, `customer-ticket`), are in
tests/test_adversarial_keys.py; both drive the pipeline below.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.zone
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pmgdns.families.base import DMARC, SPF

from .conftest import Keys
from .hostile import (
    Run,
    assert_no_raw_controls,
    assert_sane,
    assert_spec_error,
    checkzone,
    leftovers,
    local_zone_text,
    pmgdns,
    unshown,
)
from .servers import BindServer, zone_text

SPEC = "config/site.yaml"
ZONES = ("example.com", "example.org")

HYPOTHESIS = settings(
    deadline=None, derandomize=True, database=None, print_blob=False,
    # each example runs several pmgdns processes: no shrinking (it would multiply the run time);
    # the failing example is printed as generated
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# -- driving one spec through the pipeline --------------------------------------------------

def base_spec(keys: Keys) -> dict[str, Any]:
    return {
        "version": 1,
        "gateway": {"hostname": "mx1.example.com", "ipv4": "198.51.100.25",
                    "ipv6": "2001:db8::25"},
        "dkim": {"selector": "pmg2026", "public_key": keys.b64()},
        "domains": {"example.com": {}, "example.org": {}},
    }


def dump(spec: dict[str, Any]) -> str:
    return str(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1 << 30))


def write_project(root: Path, spec: str | bytes, files: dict[str, bytes] | None = None) -> None:
    (root / "config").mkdir(parents=True, exist_ok=True)
    data = spec.encode("utf-8") if isinstance(spec, str) else spec
    (root / SPEC).write_bytes(data)
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def let_taken_senders_go(root: Path, spec: dict[str, Any],
                         env: dict[str, str] | None = None) -> None:
    """A reviewer's answer to the plan's "Takes away" (spec-v1 §7.1): every SPF sender it takes
    goes (`spf.drop`), so apply may replace the seeded SPF values."""
    p = pmgdns(root, "plan", "--format", "json", env=env, timeout=30)
    if p.code != 0:
        return
    refused = [t for t in json.loads(p.out).get("takes_away", []) if t.get("refused")]
    if not refused:
        return
    for t in refused:
        entry = spec["domains"].setdefault(t["zone"].rstrip("."), {})
        spf = entry.get("spf", {})
        spf = {"value": spf} if isinstance(spf, str) else spf
        spf.setdefault("drop", []).append(t["value"])
        entry["spf"] = spf
    write_project(root, dump(spec))


def zone_files(root: Path) -> list[Path]:
    d = root / "build" / "zones"
    return sorted(d.glob("*.zone")) if d.is_dir() else []


def drive(root: Path, extra_env: dict[str, str] | None = None) -> Run | None:
    """validate; on an error, apply must refuse the same way and write nothing (customer-ticket
    answers sanely). Otherwise render, plan, apply --yes, then plan --detailed-exitcode must
    find nothing to do, customer-ticket must answer and named-checkzone must accept every zone
    file. Returns the apply run (None when the spec was refused)."""
    env = extra_env or {}
    v = pmgdns(root, "validate", env=env)
    assert_sane(v)
    if v.code == 1:
        assert_spec_error(v, SPEC)
        a = pmgdns(root, "apply", "--yes", env=env)
        assert_spec_error(a, SPEC)
        assert not zone_files(root), f"a refused spec wrote zone files\n{a}"
        # customer-ticket reads the spec, not the providers' classes or octoDNS's checks
        assert_sane(pmgdns(root, "customer-ticket", env=env))
        return None
    before = {p.name: _all_values(p) for p in zone_files(root)}
    runs = {}
    for label, args in (("render", ("render",)), ("plan", ("-v", "plan")),
                        ("apply", ("apply", "--yes"))):
        r = runs[label] = pmgdns(root, *args, env=env)
        assert_sane(r)
        assert r.code == 0, f"`validate` accepted the spec, but `{' '.join(args)}` fails\n{r}"
    again = pmgdns(root, "plan", "--detailed-exitcode", env=env)
    assert_sane(again)
    assert again.code == 0, f"no convergence: a second plan still has changes\n{again}"
    # the request for a customer's DNS host carries the same values (spec-v1 §7.2)
    ticket = pmgdns(root, "customer-ticket", env=env)
    assert_sane(ticket)
    assert ticket.code == 0 or "no `customer` zone" in ticket.err, (
        f"`validate` accepted the spec, but customer-ticket fails\n{ticket}")
    for path in zone_files(root):
        zone = path.name[: -len(".zone")]
        checkzone(zone, path)
        # what is published is what the reviewer saw: a control character in a value shows
        # escaped in the plan, it is not dropped or passed raw
        for value in _all_values(path) - before.get(path.name, set()):
            missing = unshown(runs["plan"].out, value.decode("utf-8", "replace"))
            assert not missing, (f"the plan (-v: whole values) does not show {missing} of the "
                                 f"published value {value!r}\n{runs['plan']}")
    assert not leftovers(root / "zones", root / "build", root / "build" / "zones")
    return runs["apply"]


def _all_values(path: Path) -> set[bytes]:
    """Every TXT value in a zone file (the values pmgdns published, after an apply)."""
    zone = path.name[: -len(".zone")]
    return {v for values in txt_values(path, zone).values() for v in values}


SHOWN_WHOLE = 30  # bytes: values this short are shown whole in every plan format


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    def make() -> Path:
        return tmp_path_factory.mktemp("hostile")
    return make


# -- YAML oddities --------------------------------------------------------------------------

def yaml_base(keys: Keys) -> str:
    return (f"version: 1\n"
            f"gateway:\n  hostname: mx1.example.com\n  ipv4: 198.51.100.25\n"
            f"  ipv6: 2001:db8::25\n"
            f"dkim:\n  selector: pmg2026\n  public_key: {keys.b64()}\n"
            f"domains:\n  example.com: {{}}\n  example.org: {{}}\n")


def _bomb(levels: int, width: int) -> str:
    lines = ["lol0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


YAML_CASES: list[tuple[str, Callable[[str], str | bytes]]] = [
    ("anchors and aliases (legitimate)", lambda b: b.replace(
        "domains:\n", "defaults: &d\n  ttl: 600\ndomains:\n").replace(
        "example.org: {}", "example.org: {ttl: 300}")),
    ("alias to a domain block", lambda b: b.replace(
        "example.com: {}", "example.com: &blk {ttl: 300}").replace(
        "example.org: {}", "example.org: *blk")),
    ("alias to an undefined anchor", lambda b: b.replace("example.org: {}",
                                                         "example.org: *nope")),
    ("merge key", lambda b: b.replace("example.com: {}", "example.com: &m {ttl: 300}").replace(
        "example.org: {}", "example.org: {<<: *m}")),
    ("merge key at the top", lambda b: "base: &b {version: 1}\n<<: *b\n" + b),
    ("duplicate top-level key", lambda b: b + "domains:\n  example.net: {}\n"),
    ("duplicate domain", lambda b: b + "  example.com: {ttl: 5}\n"),
    ("same domain in two spellings", lambda b: b + "  EXAMPLE.com.: {}\n"),
    ("duplicate dmarc tag", lambda b: b.replace("example.org: {}",
                                                "example.org: {dmarc: {p: none, p: reject}}")),
    ("python/object/apply tag", lambda b: b.replace(
        "example.org: {}", 'example.org: !!python/object/apply:os.system ["touch pwned"]')),
    ("python/name tag", lambda b: b.replace("ipv4: 198.51.100.25",
                                            "ipv4: !!python/name:os.system")),
    ("python tag on a key", lambda b: b.replace("example.org: {}",
                                                "!!python/object:object example.org: {}")),
    ("binary where a string goes", lambda b: b.replace("selector: pmg2026",
                                                       "selector: !!binary cG1nMjAyNg==")),
    ("set as domains", lambda b: b.replace(
        "domains:\n  example.com: {}\n  example.org: {}\n",
        "domains: !!set {example.com, example.org}\n")),
    ("omap as dkim", lambda b: re.sub(r"dkim:\n  selector: pmg2026\n  public_key: (\S+)\n",
                                      r"dkim: !!omap [selector: pmg2026, public_key: \1]\n", b)),
    ("local tag", lambda b: b.replace("ipv4: 198.51.100.25", "ipv4: !ip 198.51.100.25")),
    ("timestamp where an address goes", lambda b: b.replace("ipv4: 198.51.100.25",
                                                            "ipv4: 2001-01-01")),
    ("5000-digit version", lambda b: b.replace("version: 1", "version: " + "9" * 5000)),
    ("5000-digit ttl", lambda b: b.replace("example.org: {}", "example.org: {ttl: "
                                           + "1" * 5000 + "}")),
    ("5000-digit key", lambda b: b.replace("example.org: {}", "9" * 5000 + ": {}")),
    ("30-digit ttl", lambda b: b.replace("example.org: {}", "example.org: {ttl: " + "9" * 30
                                         + "}")),
    ("hex and octal ttl", lambda b: b.replace("example.org: {}",
                                              "example.org: {ttl: 0xE10, mx_priority: 0o12}")),
    ("ttl 1e400", lambda b: b.replace("example.org: {}", "example.org: {ttl: 1e400}")),
    ("ttl .nan", lambda b: b.replace("example.org: {}", "example.org: {ttl: .nan}")),
    ("booleans where strings go", lambda b: b.replace("selector: pmg2026", "selector: on")),
    ("boolean as a domain name", lambda b: b.replace("example.org: {}", "yes: {}")),
    ("null as a domain name", lambda b: b.replace("example.org: {}", "~: {}")),
    ("boolean as a hostname", lambda b: b.replace("hostname: mx1.example.com", "hostname: no")),
    ("list as a hostname", lambda b: b.replace("hostname: mx1.example.com",
                                               "hostname: [mx1.example.com]")),
    ("null sections", lambda b: b.replace("example.org: {}", "example.org:") + "defaults:\n"),
    ("empty document", lambda b: ""),
    ("comments only", lambda b: "# nothing\n"),
    ("document end only", lambda b: "...\n"),
    ("two documents", lambda b: b + "---\nversion: 1\n"),
    ("a YAML directive", lambda b: "%YAML 1.1\n---\n" + b),
    ("a TAG directive", lambda b: "%TAG !x! tag:yaml.org,2002:python/\n---\n" + b),
    ("byte-order mark", lambda b: "\ufeff" + b),
    ("CRLF line ends", lambda b: b.replace("\n", "\r\n")),
    ("CR line ends", lambda b: b.replace("\n", "\r")),
    ("tab indentation", lambda b: b.replace("  hostname", "\thostname")),
    ("raw NUL in the file", lambda b: b.replace("example.org", "exa\x00mple.org")),
    ("raw ESC in the file", lambda b: b.replace("example.org", "exa\x1b[2Jmple.org")),
    ("raw DEL in a comment", lambda b: b + "# \x7f\n"),
    ("raw bidi override in a comment", lambda b: b + "# \u202e}\n"),
    ("line separator in a key", lambda b: b.replace("example.org: {}",
                                                    '"exa\u2028mple.org": {}')),
    ("latin-1 bytes", lambda b: b.replace("example.org", "b\xfccher.example").encode("latin-1")),
    ("UTF-16 with BOM", lambda b: b.encode("utf-16")),
    ("a 2 MB value", lambda b: b.replace("example.org: {}",
                                         "example.org: {spf: v=spf1 " + "a" * 2_000_000 + "}")),
    ("billion laughs", lambda b: b + _bomb(9, 10)),
    ("recursive alias (list)", lambda b: b + "r: &r [*r]\n"),
    ("recursive alias (mapping)", lambda b: b + "r: &r\n  k: *r\n"),
    ("5000 nested lists", lambda b: b + "x: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("5000 nested mappings", lambda b: b + "x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
    ("complex key", lambda b: b + "? [a, b]\n: 1\n"),
    ("anchor on a key", lambda b: b.replace("example.org: {}", "&k example.org: {}")),
]


@pytest.mark.parametrize("make", [m for _, m in YAML_CASES], ids=[n for n, _ in YAML_CASES])
def test_yaml_oddity(make: Callable[[str], str | bytes], keys: Keys,
                     fresh: Callable[[], Path]) -> None:
    root = fresh()
    write_project(root, make(yaml_base(keys)))
    drive(root)
    assert not (root / "pwned").exists(), "a YAML tag ran code"


# -- foreign TXT values at the local target -------------------------------------------------

FOREIGN_FRAGMENTS = [b"\x00", b"\x1b", b"\x1b[2J", b"\x1b]0;pwned\x07", b"\x7f", b"\r", b"\n",
                     b"\t", b"\\", b"\\\\", b'"', b";", b" ", b"()", b"$ORIGIN x.", b"@",
                     b"\xc3\xa9", b"\xe2\x80\xae", b"\xc2\x9b", b"google-site-verification=",
                     b"MS=ms", b"v=spf", b"v=DMARC", b"\\065", b"\\\"", b"<!--", b"`"]
foreign_value = st.one_of(
    st.lists(st.sampled_from(FOREIGN_FRAGMENTS), min_size=1, max_size=8).map(b"".join),
    st.lists(st.sampled_from(FOREIGN_FRAGMENTS), max_size=5).map(lambda p: b"".join(p) + b"\\"),
    st.builds(lambda n, tail: b"x" * n + tail, st.integers(240, 600),
              st.sampled_from([b"\\", b"\x1b", b'"', b""])),
    st.just(b""),
    st.binary(min_size=1, max_size=24),
)
FOREIGN_NAMES = ["", "_dmarc", "*", "mx1", "www", "pmg2026._domainkey"]
SHARED_NAMES = ("", "_dmarc", "*", "mx1", "pmg2026._domainkey")


def owned_kind(name: str, value: bytes) -> bool:
    """Would pmgdns own this value (so it may replace it) at `name`? (spec-v1 §3)"""
    text = value.decode("utf-8", "replace")
    if name == "pmg2026._domainkey":
        return True
    if name in ("", "*", "mx1"):
        return SPF.matches(text)
    if name == "_dmarc":
        return DMARC.matches(text)
    return False


def txt_values(path: Path, zone: str) -> dict[str, list[bytes]]:
    z = dns.zone.from_file(str(path), f"{zone}.", relativize=True, check_origin=False)
    out: dict[str, list[bytes]] = {}
    for name, rdataset in z.iterate_rdatasets(dns.rdatatype.TXT):
        rel = "" if name == dns.name.empty else name.to_text()
        out[rel] = sorted(b"".join(r.strings) for r in rdataset)
    return out


def foreign_survives(root: Path, seeded: list[tuple[str, bytes]], keys: Keys) -> None:
    """Seed the local zone file with `seeded`, then the pipeline: apply must finish, keep each
    foreign value byte for byte, and print it escaped."""
    spec = base_spec(keys)
    write_project(root, dump(spec))
    zone_path = root / "build" / "zones" / "example.com.zone"
    zone_path.parent.mkdir(parents=True)
    zone_path.write_text(local_zone_text("example.com", seeded))
    for fmt in ("text", "markdown"):
        p = pmgdns(root, "-v", "plan", "--format", fmt)
        assert_sane(p)
        assert p.code == 0, f"a foreign TXT value at the target stops the plan\n{p}"
        assert_shown_escaped(p, fmt, seeded)
    let_taken_senders_go(root, spec)
    applied = pmgdns(root, "apply", "--yes")
    assert_sane(applied)
    assert applied.code == 0, f"a foreign TXT value at the target stops apply\n{applied}"
    again = pmgdns(root, "plan", "--detailed-exitcode")
    assert_sane(again)
    assert again.code == 0, f"no convergence beside foreign TXT values\n{again}"
    for path in zone_files(root):
        checkzone(path.name[: -len(".zone")], path)
    assert not leftovers(root / "build" / "zones")
    after = txt_values(zone_path, "example.com")
    for name, value in seeded:
        if owned_kind(name, value):
            continue
        assert value in after.get(name, []), (
            f"the foreign TXT value {value!r} at {name or '@'} did not survive byte for byte: "
            f"{after.get(name)!r}")


def assert_shown_escaped(p: Run, fmt: str, seeded: list[tuple[str, bytes]]) -> None:
    """pmgdns changes the TXT set at the shared names, so the plan lists every value there:
    each control character, bidi override and backslash must show escaped."""
    for name, value in seeded:
        text = value.decode("utf-8", "replace")
        if name in SHARED_NAMES and (fmt == "text" or len(value) <= SHOWN_WHOLE):
            missing = unshown(p.out, text)
            assert not missing, (f"the {fmt} plan does not show {missing} of the value "
                                 f"{value!r} at {name or '@'} escaped\n{p}")
            if fmt == "text" and "\\" in text and text.isprintable() and '"' not in text:
                # `"token\"` reads as an escaped quote: a backslash must show escaped too
                shown = [text.replace("\\", r) for r in ("\\\\", "\\092", "\\x5c")]
                assert any(v in p.out for v in shown), (
                    f"the plan shows the foreign value {value!r} at {name or '@'} with its "
                    f"backslash unescaped (ambiguous)\n{p}")


@given(seeded=st.lists(st.tuples(st.sampled_from(FOREIGN_NAMES), foreign_value), min_size=1,
                       max_size=4, unique=True))
@settings(HYPOTHESIS, max_examples=10)
def test_foreign_txt_at_the_local_target(seeded: list[tuple[str, bytes]], keys: Keys,
                                         fresh: Callable[[], Path]) -> None:
    foreign_survives(fresh(), seeded, keys)


FOREIGN_CASES: list[tuple[str, list[tuple[str, bytes]]]] = [
    ("ending in a backslash", [("", b"token\\")]),
    ("only a backslash", [("", b"\\")]),
    ("long, ending in a backslash", [("", b"x" * 300 + b"\\")]),
    ("quotes, semicolons, backslashes", [("", b'a "b"; c\\d \\"e'), ("_dmarc", b"x;y")]),
    ("ESC sequences", [("", b"\x1b[2J\x1b]0;pwned\x07tok"), ("*", b"\x1b[31mred")]),
    ("NUL, CR, LF, DEL", [("", b"a\x00b\rc\nd\x7f")]),
    ("a bidi override", [("", b"\xe2\x80\xaeverification=1")]),
    ("a C1 control (CSI)", [("", b"a\xc2\x9b2Jb")]),
    ("not UTF-8", [("", b"\xff\xfe raw bytes")]),
    ("empty", [("", b"")]),
    ("empty, at a name pmgdns does not touch", [("www", b""), ("www", b"x")]),
    ("beside the gateway's SPF", [("mx1", b"helo\\")]),
    ("a name pmgdns does not touch", [("www", b"\x1b[2Jwww\\")]),
]


@pytest.mark.parametrize("seeded", [s for _, s in FOREIGN_CASES],
                         ids=[n for n, _ in FOREIGN_CASES])
def test_foreign_txt_case(seeded: list[tuple[str, bytes]], keys: Keys,
                          fresh: Callable[[], Path]) -> None:
    foreign_survives(fresh(), seeded, keys)


def code_spans(line: str) -> list[str]:
    """The contents of the CommonMark code spans in `line` (a backtick string opens a span that
    the next backtick string of the same length closes), GFM's `\\|` read as `|`."""
    spans = []
    i = 0
    while i < len(line):
        if line[i] != "`":
            i += 1
            continue
        j = i
        while j < len(line) and line[j] == "`":
            j += 1
        fence = line[i:j]
        k = j
        while True:
            k = line.find(fence, k)
            if k < 0:
                break
            end = k + len(fence)
            if (k == 0 or line[k - 1] != "`") and (end == len(line) or line[end] != "`"):
                break
            k = end
        if k < 0:
            i = j
            continue
        content = line[j:k]
        if content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        spans.append(content.replace("\\|", "|"))
        i = k + len(fence)
    return spans


@pytest.mark.parametrize("value", [
    b"x` **bold** [a link](https://evil.example) `y", b"`", b"a``b", b"<!-- pmgdns-plan -->`",
], ids=["markdown after a backtick", "a lone backtick", "two backticks", "the comment marker"])
def test_markdown_plan_keeps_a_value_in_its_code_span(value: bytes, keys: Keys,
                                                      fresh: Callable[[], Path]) -> None:
    """The markdown plan becomes a pull-request comment: a value (here a foreign TXT value in
    the set pmgdns updates) stays inside its code span; a backtick in it must not close the
    span and let the rest render as markdown (bold text, links, images)."""
    root = fresh()
    spec = base_spec(keys)
    write_project(root, dump(spec))
    zone_path = root / "build" / "zones" / "example.com.zone"
    zone_path.parent.mkdir(parents=True)
    zone_path.write_text(local_zone_text("example.com", [("", value)]))
    p = pmgdns(root, "plan", "--format", "markdown")
    assert_sane(p)
    text = value.decode()
    rows = [line for line in p.out.splitlines() if line.startswith("| ~ update | `example.com.`")]
    assert rows, str(p)
    assert any(text == span for span in code_spans(rows[0])), (
        f"the value {text!r} does not stay in one code span: {code_spans(rows[0])!r}\n{p}")

# -- against a real BIND: hostile spec values and foreign TXT values ------------------------

@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    s = BindServer({z: zone_text(z, "") for z in ZONES}).start()
    try:
        yield s
    finally:
        s.stop()


def _reset(server: BindServer, zone: str, seeded: list[tuple[str, bytes]]) -> None:
    origin = dns.name.from_text(f"{zone}.")
    upd = server.update(zone)
    for name, rdataset in server.axfr(zone).iterate_rdatasets():
        if name == origin and rdataset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
            continue
        if name == dns.name.from_text(f"ns1.{zone}."):
            continue
        upd.delete(name, rdataset.rdtype)
    for rel, value in seeded:
        chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]
        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)
        upd.add(dns.name.from_text(rel, origin) if rel else origin, 300, rdata)
    server.send(upd)


def _bind_txt(server: BindServer, zone: str) -> dict[str, list[bytes]]:
    origin = dns.name.from_text(f"{zone}.")
    out: dict[str, list[bytes]] = {}
    for name, rdataset in server.axfr(zone).iterate_rdatasets():
        if rdataset.rdtype == dns.rdatatype.TXT:
            rel = name.relativize(origin)
            key = "" if rel == dns.name.empty else rel.to_text()
            out[key] = sorted(b"".join(r.strings) for r in rdataset)
    return out


# values pmgdns accepts today that are still hostile to what shows or stores them
bind_spf = st.sampled_from([
    "v=spf1 mx -all", 'v=spf1 a:"q".example mx -all', "v=spf1 mx a:back\\slash.example -all",
    "v=spf1 mx a:semi;colon.example -all", "v=spf1 mx a:x\x1b[2J.example -all",
    "v=spf1 mx " + "a:" + "x" * 200 + ".example -all",
])
bind_rua = st.sampled_from([[], ["mailto:d@example.org"], ['mailto:a"b@example.org'],
                            ["mailto:a\\b@example.org"], ["mailto:dmarc@example.com!10m"]])


def _bind_run(server: BindServer, root: Path, seeded: list[tuple[str, bytes]], spf: str,
              rua: list[str], keys: Keys) -> None:
    _reset(server, "example.com", seeded)
    _reset(server, "example.org", [])
    spec = base_spec(keys)
    spec["defaults"] = {"targets": ["bind"], "spf": spf, "ttl": 300}
    if rua:
        spec["defaults"]["dmarc"] = {"rua": rua}
    spec["providers"] = {"bind": server.provider_config()}
    write_project(root, dump(spec))
    env = {"PMGDNS_TSIG_SECRET": server.secret}
    ns = f"127.0.0.1:{server.port}"
    before = pmgdns(root, "verify", "--nameserver", ns, env=env, timeout=30)
    _assert_report(before)
    v = pmgdns(root, "validate", env=env)
    assert_sane(v)
    if v.code == 1:
        assert_spec_error(v, SPEC)
        return
    for fmt in ("text", "markdown"):
        p = pmgdns(root, "-v", "plan", "--format", fmt, env=env, timeout=20)
        assert_sane(p)
        assert p.code == 0, f"a foreign TXT value at BIND stops the plan\n{p}"
        assert_shown_escaped(p, fmt, [*seeded, ("", spf.encode())])
    let_taken_senders_go(root, spec, env)
    a = pmgdns(root, "apply", "--yes", "--force", env=env, timeout=20)
    assert_sane(a)
    assert a.code == 0, f"`validate` accepted the spec, but apply at BIND fails\n{a}"
    after = _bind_txt(server, "example.com")
    for name, value in seeded:
        if not owned_kind(name, value):
            assert value in after.get(name, []), (
                f"the foreign TXT value {value!r} at {name or '@'} did not survive: "
                f"{after.get(name)!r}")
    assert after.get("") and spf.encode() in after[""], after.get("")
    again = pmgdns(root, "plan", "--detailed-exitcode", env=env, timeout=20)
    assert_sane(again)
    assert again.code == 0, f"no convergence at BIND\n{again}"
    _assert_report(pmgdns(root, "verify", "--nameserver", ns, env=env, timeout=30))


def _assert_report(run: Run) -> None:
    """verify exits 1 on any FAIL without an `Error:` line (a report); otherwise as always."""
    assert not run.timed_out, f"HANG\n{run}"
    assert run.code in (0, 1), str(run)
    for stream in (run.out, run.err):
        assert "Traceback" not in stream and "internal error" not in stream.lower(), str(run)
    assert_no_raw_controls(run)


@given(seeded=st.lists(st.tuples(st.sampled_from(["", "_dmarc", "*", "mx1", "www"]),
                                 foreign_value), min_size=1, max_size=3, unique=True),
       spf=bind_spf, rua=bind_rua)
@settings(HYPOTHESIS, max_examples=4)
def test_hostile_values_at_bind(seeded: list[tuple[str, bytes]], spf: str, rua: list[str],
                                bind: BindServer, keys: Keys,
                                fresh: Callable[[], Path]) -> None:
    _bind_run(bind, fresh(), seeded, spf, rua, keys)


BIND_CASES: list[tuple[str, list[tuple[str, bytes]], str]] = [
    ("foreign value ending in a backslash", [("", b"token\\"), ("_dmarc", b"x\\")],
     "v=spf1 mx -all"),
    ("foreign ESC sequences and a hostile SPF before apply",
     [("", b"\x1b[2Jtok"), ("", b"v=spf1 a:\x1b]0;pwned\x07.example -all")], "v=spf1 mx -all"),
    ("foreign value that is not UTF-8", [("", b"\xff\xfe raw")], "v=spf1 mx -all"),
    ("spec SPF with quote, backslash and ESC", [("", b"keep=1")],
     'v=spf1 mx a:"q\\x\x1b[2J.example -all'),
]


@pytest.mark.parametrize("seeded,spf", [(s, f) for _, s, f in BIND_CASES],
                         ids=[n for n, _, _ in BIND_CASES])
def test_hostile_case_at_bind(seeded: list[tuple[str, bytes]], spf: str, bind: BindServer,
                              keys: Keys, fresh: Callable[[], Path]) -> None:
    _bind_run(bind, fresh(), seeded, spf, [], keys)


def test_the_key_b64_is_what_the_base_spec_uses(keys: Keys) -> None:
    """A guard for the strategies: the base spec is valid as it stands (every case mutates it)."""
    assert base64.b64decode(keys.b64())
    from pmgdns.families.loader import parse_site

    site = parse_site(dump(base_spec(keys)), SPEC)
    assert sorted(site.domains) == list(ZONES)
