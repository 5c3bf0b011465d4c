"""Hostile values in every spec key, and in the commands that take values of their own, driven
through the pipeline of tests/test_adversarial.py (`drive`: validate, render, plan, apply --yes,
a re-plan, customer-ticket), each run a real `python -m pmgdns` process under the time and memory
budget of tests/hostile.py.

The keys of spec-v1 §7 are here beside the older ones: `spf` as parts (include, ip4, ip6, all,
drop, value), `delegate:` and a domain's `delegated`, the built-in `customer` target, `verify:
{dnsbl: [...]}` and `firewall: {ssh_sources: [...]}`. A spec with a `firewall:` block also goes
through `pmgdns firewall` (every format), one with `verify:` or `delegate:` through `pmgdns verify`
against a real BIND on loopback. `verify --dnsbl VALUE` and `customer-ticket` (its domains,
`--format`, `--out`, `--nameserver`) get hostile values of their own. Whatever the value: an
answer within the budget, exit 0 or 1, no traceback, no raw control character, and a refusal is
one `Error:` paragraph naming the key path (or the option).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import Keys
from .hostile import (
    Run,
    assert_sane,
    assert_spec_error,
    error_line,
    error_lines,
    pmgdns,
    unshown,
)
from .servers import BindServer, zone_text
from .test_adversarial import (
    HYPOTHESIS,
    SPEC,
    ZONES,
    _assert_report,
    base_spec,
    drive,
    dump,
    write_project,
    zone_files,
)


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    def make() -> Path:
        return tmp_path_factory.mktemp("hostile")
    return make


@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    """A real BIND on loopback for `verify` and `customer-ticket --live` (every query of these
    tests goes there: the name server is always given)."""
    s = BindServer({z: zone_text(z, "") for z in (*ZONES, "msp.example")}).start()
    try:
        yield s
    finally:
        s.stop()


def firewall_sane(run: Run) -> None:
    """`assert_sane` for `pmgdns firewall`: nftables indents its rules with tabs (its own
    layout); a tab anywhere else is still a raw control character."""
    indent = re.compile(rb"^\t+", re.M)
    assert_sane(dataclasses.replace(run, raw_out=indent.sub(lambda m: b"  " * len(m[0]),
                                                            run.raw_out)))


def drive_all(root: Path, server: BindServer) -> None:
    """`drive`, then the commands that read the §6.3 and §7 keys: `firewall` in every format
    when the spec has a `firewall:` block, `verify` when it has `verify:` or `delegate:`. For a
    spec `validate` refuses, they refuse it the same way or (when what `validate` refused is
    beyond what they read, such as a provider class) answer as always."""
    text = (root / SPEC).read_text(encoding="utf-8", errors="replace")
    accepted = drive(root) is not None
    ns = f"127.0.0.1:{server.port}"
    if re.search(r"^firewall:", text, re.M):
        for fmt in ("nftables", "pve", "markdown"):
            r = pmgdns(root, "firewall", "--format", fmt)
            firewall_sane(r)
            if r.code == 1:
                assert not accepted, f"`validate` accepted the spec, but `firewall` fails\n{r}"
                assert_spec_error(r, SPEC)
    if re.search(r"^(verify|delegate):", text, re.M):
        v = pmgdns(root, "verify", "--nameserver", ns, timeout=20)
        _assert_report(v)
        if error_lines(v):
            assert not accepted, f"`validate` accepted the spec, but `verify` fails\n{v}"
            assert_spec_error(v, SPEC)


# -- hostile values -------------------------------------------------------------------------

FRAGMENTS = [
    "\x00", "\x1b", "\x1b[2J", "\x1b]0;pwned\x07", "\x1b[31m", "\x7f", "\r", "\n", "\r\n", "\t",
    "\x07", "\x08", "\x0b", "\x0c", "\x85", "\x9b", "\u202e", "\u2066", "\u200f", "\u2028",
    "\u2029", "\ufeff", "\u200b", "\u200d", "\\", "\\\\", '"', "'", ";", "`", "$", "${HOME}", "%",
    "{", "}", "[", "]", "#", "&", "*", "!", "|", ">", ":", ": ", " - ", "@", ",", "=", "é", "ü",
    "ß", "İ", "日本", "\U0001f600", "xn--", "..", ".", "-", "_", " ", "\\065", '\\"', "<!--",
    "-->", "<b>", "`id`", "$(id)", "\\x1b", "%n", "{{x}}", "../", "/etc/passwd",
]

# ASCII is what most checks let through (an SPF must be ASCII), so it is drawn most often
ASCII_FRAGMENTS = [f for f in FRAGMENTS if f.isascii()]
hostile_text = st.one_of(
    st.lists(st.sampled_from(ASCII_FRAGMENTS), min_size=1, max_size=5).map("".join),
    st.lists(st.sampled_from(ASCII_FRAGMENTS), min_size=1, max_size=5).map("".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=6).map("".join),
)
long_text = st.builds(lambda c, n: c * n,
                      st.sampled_from(["a", "\\", ";", "é", "\x1b", "x.", "a" * 63 + "."]),
                      st.integers(200, 3000))
odd_values = st.one_of(
    st.booleans(), st.none(), st.integers(-(2**70), 2**70), st.floats(),
    st.lists(st.integers(0, 9), max_size=2), st.dictionaries(st.text(max_size=3),
                                                             st.integers(0, 9), max_size=2),
    st.sampled_from(["", "   ", "yes", "no", "on", "null", "~", "0x10", "1e3", "3600.0"]),
)


@st.composite
def injected(draw: Any, base: str) -> str:
    """`base` with hostile text put at its start, middle or end, or in its place."""
    frag = draw(st.one_of(hostile_text, long_text) if draw(st.integers(0, 5)) == 0
                else hostile_text)
    where = draw(st.sampled_from(["start", "middle", "end", "replace"]))
    if where == "start":
        return frag + base
    if where == "end":
        return base + frag
    if where == "replace":
        return frag
    i = draw(st.integers(0, len(base)))
    return base[:i] + frag + base[i:]


def value_for(base: str) -> st.SearchStrategy[Any]:
    return st.one_of(injected(base), injected(base), odd_values)


Mutation = Callable[[Any, dict[str, Any], dict[str, bytes], Keys], None]


def at(path: tuple[str, ...], strategy: Callable[[Keys], st.SearchStrategy[Any]]) -> Mutation:
    """Set the value at `path` (mappings created on the way) to one drawn from `strategy`."""
    def mutate(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
        node = spec
        for k in path[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[path[-1]] = draw(strategy(keys))
    return mutate


def key_file(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """dkim.key_file, with hostile contents (and sometimes a hostile file name)."""
    name = "keys/dkim.pub"
    if draw(st.integers(0, 3)) == 0:
        name = "keys/" + draw(hostile_text.filter(lambda s: "\x00" not in s and "/" not in s
                                                  and s not in ("", ".", "..")
                                                  and len(s.encode()) < 200)) + ".pub"
    pem = keys.pem()
    record = keys.pmg_record()
    content = draw(st.one_of(
        injected(pem), injected(record), st.just(pem), st.just(record),
        injected("-----BEGIN PUBLIC KEY-----\n"), injected("v=DKIM1; k=rsa; p="),
        hostile_text, st.just("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"),
    ))
    raw = content.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        raw = draw(st.binary(max_size=64)) + raw
    spec["dkim"].pop("public_key", None)
    spec["dkim"]["key_file"] = name
    files[name] = raw


def new_domain(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """A domain whose name (the key) is hostile."""
    name = draw(st.one_of(injected("example.net"), st.sampled_from([
        "EXAMPLE.COM", "example.com.", "bücher.example", "xn--bcher-kva.example", "xn--zz.example",
        "xn--ls8h.example", "a" * 63 + ".example", ".".join(["a" * 60] * 5), "example", "1.2.3.4",
        "_dmarc.example.com", "*.example.net", "ex ample.net", "example..net", "mx1.example.com",
        "localhost", "in-addr.arpa", "example.\u0441om",
    ])))
    spec["domains"][name] = draw(st.one_of(st.just({}), st.just(None), st.just({"absent": True}),
                                           odd_values))


def provider(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """A providers block with hostile names, classes and options, used as a target or not."""
    name = draw(st.one_of(st.sampled_from(["cf", "local", "pmgdns", "bind"]),
                          injected("cf")))
    conf = draw(st.one_of(
        st.fixed_dictionaries({"class": value_for("octodns_cloudflare.CloudflareProvider"),
                               "token": st.one_of(value_for("env/CLOUDFLARE_TOKEN"),
                                                  st.just("literal-secret-token"))}),
        st.fixed_dictionaries({"class": st.just("pmgdns.providers.local.LocalZoneFileProvider"),
                               "directory": st.just("./build/zones"),
                               "file_extension": value_for(".zone")}),
        odd_values,
    ))
    spec.setdefault("providers", {})
    if isinstance(spec["providers"], dict):
        spec["providers"][name] = conf
    if draw(st.booleans()):
        spec.setdefault("defaults", {})["targets"] = [name]


def tags_of(keys: Keys) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional={
        "p": value_for("reject"), "sp": value_for("none"), "np": value_for("quarantine"),
        "t": value_for("y"), "aspf": value_for("r"), "adkim": value_for("s"),
        "fo": value_for("1:d"), "pct": value_for("50"),
        "rua": st.one_of(st.lists(value_for("mailto:dmarc@example.com"), max_size=3),
                         value_for("mailto:dmarc@example.com")),
        "ruf": st.lists(st.one_of(injected("mailto:f@example.org"),
                                  injected("mailto:f@example.org!10m"),
                                  st.builds(lambda s: f"mailto:{s}@example.org", hostile_text)),
                        max_size=2),
    })


def listed(base: str, extra: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """A list of values around `base` (sometimes many, or the one value bare), or an odd one."""
    item = st.one_of(value_for(base), st.sampled_from(extra or [base]))
    return st.one_of(st.lists(item, max_size=3), item,
                     st.builds(lambda n: [base] * n, st.integers(100, 3000)), odd_values)


def spf_parts(keys: Keys) -> st.SearchStrategy[Any]:
    """`spf` as parts (spec-v1 §7.1)."""
    return st.fixed_dictionaries({}, optional={
        "include": listed("spf.protection.outlook.com", [
            "bücher.example", "xn--zz.example", "xn--bcher-kva.example", "_spf.example.net.",
            "%{i}.example", "a" * 64 + ".example", ".".join(["a" * 63] * 5), "example"]),
        "ip4": listed("192.0.2.10", ["192.0.2.0/24", "0.0.0.0/0", "192.0.2.1/33", "2001:db8::1",
                                     "192.0.2.010", " 192.0.2.1 ", "3325256729"]),
        "ip6": listed("2001:db8::10", ["2001:db8::/48", "::/0", "2001:db8::1%eth0",
                                       "::ffff:192.0.2.1", "2001:db8::1%\x1b[2J", "192.0.2.1",
                                       "2001:db8::1/129"]),
        "all": st.one_of(st.sampled_from(["-all", "~all", "+all", "?all", "all"]),
                         value_for("-all")),
        "drop": listed("include:_spf.oldhost.example", [
            "ip4:192.0.2.10", "a:mail.example.com", "mx", "+all", "ip6:2001:db8::1%eth0",
            "include:\x1b[2J.example", "redirect=x.example"]),
        "value": value_for("v=spf1 mx -all"),
    })


def delegate_block(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """`delegate:` (spec-v1 §7.2) with hostile parts, its zone among the domains (or not), and
    example.org held by the customer (or not)."""
    spec["domains"].setdefault("msp.example", {})
    block: dict[str, Any] = {
        "zone": draw(st.one_of(st.just("msp.example"), value_for("msp.example"), st.sampled_from(
            ["MSP.example.", "example.org", "bücher.example", "mx1.example.com"]))),
        "spf": draw(st.one_of(st.just("_spf"), value_for("_spf"), st.sampled_from(
            ["*", "mx1", "_spf.x", ".".join(["_spf"] * 60), "a" * 64, ""]))),
        "dkim": draw(st.one_of(st.just(["pmg2026", "pmgb"]), listed("pmg2026", [
            "pmgb", "s" * 64, ".".join(["s" * 63] * 4), "pmg2026."]))),
    }
    for key in draw(st.lists(st.sampled_from(sorted(block)), max_size=1)):
        del block[key]
    spec["delegate"] = draw(st.one_of(st.just(block), st.just(block), odd_values))
    if draw(st.booleans()):
        spec["domains"]["example.org"] = {"targets": ["customer"]}
    if draw(st.integers(0, 2)) == 0:
        spec["domains"]["example.org"]["delegated"] = draw(st.one_of(st.booleans(),
                                                                     odd_values))


def customer_zone(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """The built-in `customer` target, spelled or combined in hostile ways."""
    where = draw(st.sampled_from([("domains", "example.org"), ("defaults",)]))
    node = spec
    for k in where:
        node = node.setdefault(k, {})
    node["targets"] = draw(st.one_of(
        st.just(["customer"]), listed("customer", ["CUSTOMER", "customer ", "local"]),
        st.sampled_from([["customer", "local"], ["customer", "customer"]])))
    if draw(st.integers(0, 3)) == 0:
        spec["providers"] = {"customer": draw(st.one_of(
            st.just({"class": "pmgdns.providers.customer.CustomerProvider"}), odd_values))}


FIREWALL = {"mail_servers": ["10.0.0.5"], "admin_sources": ["192.0.2.0/24"],
            "dns_servers": ["1.1.1.1"]}


def firewall_block(draw: Any, spec: dict[str, Any], files: dict[str, bytes], keys: Keys) -> None:
    """`firewall:` with hostile `ssh_sources` (spec-v1 §6.3), sometimes thousands of them."""
    many = st.builds(lambda n: [f"10.{i // 256}.{i % 256}.0/24" for i in range(n)],
                     st.integers(500, 5000))
    spec["firewall"] = {**FIREWALL, "ssh_sources": draw(st.one_of(
        listed("192.0.2.0/24", ["0.0.0.0/0", "::/0", "10.0.0.1/8", "2001:db8::1%eth0",
                                "2001:db8::1%\x1b[2J", "::ffff:10.0.0.1", "10.0.0.1",
                                "10.0.0.1/32", "fe80::1"]),
        many, many.map(lambda nets: [*nets, "10.0.0.0/8"])))}


def dnsbl(keys: Keys) -> st.SearchStrategy[Any]:
    """`verify: {dnsbl: [...]}` (spec-v1 §7.3)."""
    return listed("zen.spamhaus.org", [
        "bl.spamcop.net", "bücher.example", "xn--zz.example", "1.2.3.4", "*.example",
        ".".join(["a"] * 120), ".".join(["a" * 63] * 3), "zen.spamhaus.org."])


def settings_mutations(prefix: tuple[str, ...]) -> list[Mutation]:
    return [
        at((*prefix, "ttl"), lambda k: st.one_of(
            st.integers(-(2**40), 2**40), st.sampled_from([0, 1, 2**31 - 1, 2**31, 10**30]),
            odd_values, injected("3600"))),
        at((*prefix, "targets"), lambda k: st.one_of(
            st.lists(value_for("local"), max_size=3), value_for("local"), odd_values)),
        at((*prefix, "mx_priority"), lambda k: st.one_of(
            st.integers(-(2**33), 2**33), st.sampled_from([0, 65535, 65536]), odd_values)),
        at((*prefix, "spf"), lambda k: st.one_of(
            injected("v=spf1 mx -all"), injected("v=spf1 include:_spf.example.net -all"),
            st.builds(lambda s: f"v=spf1 {s} -all", hostile_text), odd_values)),
        at((*prefix, "spf"), spf_parts),
        at((*prefix, "wildcard_spf"), lambda k: st.one_of(st.booleans(), odd_values,
                                                          hostile_text)),
        at((*prefix, "dmarc"), tags_of),
    ]


MUTATIONS: list[Mutation] = [
    at(("gateway", "hostname"), lambda k: st.one_of(
        value_for("mx1.example.com"), st.sampled_from([
            "MX1.Example.COM.", "mx1.bücher.example", "mx1.xn--zz.example", "mx1", "mx1.example",
            "-mx.example.com", "mx1.example.com..", "*.example.com", "_mx.example.com"]))),
    at(("gateway", "ipv4"), lambda k: st.one_of(value_for("198.51.100.25"), st.sampled_from([
        "198.51.100.025", "0xc6.0x33.0x64.0x19", " 198.51.100.25 ", "3325256729", "198.51.100",
        "198.51.100.25/32", "::ffff:198.51.100.25"]), st.integers(0, 2**33))),
    at(("gateway", "ipv6"), lambda k: st.one_of(value_for("2001:db8::25"), st.sampled_from([
        "2001:db8::25%eth0", "2a00:1450:4001::25%\x1b[2J", "::ffff:198.51.100.25",
        "2001:db8::25/64", "[2001:db8::25]", "2001:DB8::0025", "2001:db8:0:0:0:0:0:25"]),
        st.builds(lambda s: f"2001:db8::25%{s}", hostile_text))),
    at(("dkim", "selector"), lambda k: value_for("pmg2026")),
    at(("dkim", "public_key"), lambda k: st.one_of(value_for(k.b64()),
                                                   st.just(k.b64("rsa1024")),
                                                   st.just(k.b64("ed")))),
    lambda draw, spec, files, keys: spec["dkim"].update(
        {"public_key": None, "record": draw(value_for(keys.pmg_record()))}),
    at(("dkim", "retired_selectors"), lambda k: st.one_of(
        st.lists(value_for("pmg2025"), max_size=3), odd_values)),
    key_file,
    *settings_mutations(("defaults",)),
    *settings_mutations(("domains", "example.org")),
    at(("domains", "example.org", "absent"), lambda k: st.one_of(st.booleans(), odd_values)),
    new_domain,
    provider,
    at(("version",), lambda k: st.one_of(st.just(1), odd_values)),
    delegate_block,
    customer_zone,
    firewall_block,
    at(("verify", "dnsbl"), dnsbl),
    at(("verify",), lambda k: odd_values),
]


@st.composite
def hostile_specs(draw: Any, keys: Keys) -> tuple[str, dict[str, bytes]]:
    spec = base_spec(keys)
    files: dict[str, bytes] = {}
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2)):
        mutation(draw, spec, files, keys)
    return dump(spec), files


@given(data=st.data())
@settings(HYPOTHESIS, max_examples=30)
def test_hostile_spec_values(data: st.DataObject, keys: Keys, bind: BindServer,
                             fresh: Callable[[], Path]) -> None:
    text, files = data.draw(hostile_specs(keys))
    root = fresh()
    write_project(root, text, files)
    drive_all(root, bind)


# -- the same, for cases that have each shown a defect (each reported on its own) -----------

def _spec_with(keys: Keys, change: Callable[[dict[str, Any]], None]) -> str:
    spec = base_spec(keys)
    change(spec)
    return dump(spec)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        node = spec
        parts = path.split("|")
        for k in parts[:-1]:
            node = node.setdefault(k, {})
        node[parts[-1]] = value
    return change


def _spf(**parts: Any) -> Callable[[dict[str, Any]], None]:
    return _set("domains|example.org|spf", parts)


def _delegating(**over: Any) -> Callable[[dict[str, Any]], None]:
    """A delegate zone msp.example and example.org at the customer; `over` replaces (or adds
    to) the `delegate:` keys."""
    def change(spec: dict[str, Any]) -> None:
        spec["domains"]["msp.example"] = {}
        spec["domains"]["example.org"] = {"targets": ["customer"]}
        spec["delegate"] = {"zone": "msp.example", "spf": "_spf", "dkim": ["pmg2026", "pmgb"],
                            **over}
    return change


def _ssh(sources: Any) -> Callable[[dict[str, Any]], None]:
    return _set("firewall", {**FIREWALL, "ssh_sources": sources})


VALUE_CASES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("domain key with ESC and BEL", _set("domains|a\x1b]0;pwned\x07b.example", {})),
    ("unknown key with ESC", _set("gateway|h\x1b]0;t\x07x", 1)),
    ("unknown domain key with bidi override", _set("domains|example.org|tt\u202el", 300)),
    ("spf with BEL, quote and backslash",
     _set("defaults|spf", 'v=spf1 ip4:192.0.2.1 "\\ \x07 -all')),
    ("spf with an OSC sequence", _set("defaults|spf", "v=spf1 a:x\x1b]0;t\x07.example -all")),
    ("spf with NUL", _set("defaults|spf", "v=spf1 a\x00 -all")),
    ("spf with DEL and CR", _set("defaults|spf", "v=spf1 a\x7f\r -all")),
    ("spf with a bidi override", _set("defaults|spf", "v=spf1 \u202eall- a -all")),
    ("spf that is 450 characters", _set("defaults|spf", "v=spf1 " + "a" * 437 + " -all")),
    ("spf with quotes and semicolons", _set("domains|example.org|spf",
                                            'v=spf1 a:"x";y\\z.example -all')),
    ("ipv6 with a zone id", _set("gateway|ipv6", "2001:db8::25%eth0")),
    ("ipv6 with an ESC in its zone id", _set("gateway|ipv6", "2a00:1450:4001::25%\x1b[2J")),
    ("domain that is a bad A-label", _set("domains|xn--zz.example", {})),
    ("domain that is an A-label of an emoji", _set("domains|xn--ls8h.example", {})),
    ("gateway in a bad A-label", _set("gateway|hostname", "mx1.xn--zz.example")),
    ("key_file name with NUL", lambda s: s["dkim"].update({"public_key": None,
                                                            "key_file": "keys/a\x00b.pub"})),
    ("version true", _set("version", True)),
    ("version 1.0", _set("version", 1.0)),
    ("dmarc ruf with a huge size", _set("defaults|dmarc", {
        "ruf": ["mailto:f@example.com!99999999999999999999999m"]})),
    ("rua local part with quote and backslash", _set("defaults|dmarc", {
        "rua": ['mailto:a"b\\c@example.com']})),
    ("rua local part with ESC", _set("defaults|dmarc", {"rua": ["mailto:a\x1b[2Jb@example.com"]})),
    ("dmarc t as a list", _set("defaults|dmarc", {"t": [0, 1]})),
    ("dmarc t as a mapping", _set("domains|example.org|dmarc", {"t": {"y": 1}})),
    ("dkim record that is not a tag list, with OSC", lambda s: s["dkim"].update({
        "public_key": None, "record": "\x1b]0;pwned\x07 junk"})),
    ("dkim record with ESC", lambda s: s["dkim"].update({
        "public_key": None, "record": "pmg2026._domainkey IN TXT ( \"v=DKIM1;\x1b[2J p=\" )"})),
    ("provider class os.mkdir (code execution)", lambda s: s.update({
        "providers": {"pwned": {"class": "os.mkdir"}}, "defaults": {"targets": ["pwned"]}})),
    ("provider name with ESC", _set("providers|c\x1bf", {"class": "a.B"})),
    ("provider option with ESC as a literal secret", _set("providers|cf", {
        "class": "octodns_cloudflare.CloudflareProvider", "token": "sec\x1b[2Jret"})),
    ("target name with ESC", _set("defaults|targets", ["lo\x1b[2Jcal"])),
    ("retired selector with bidi", _set("dkim|retired_selectors", ["pmg\u202e2025"])),
    ("ttl 2**31", _set("defaults|ttl", 2**31)),
    ("ttl as a float", _set("defaults|ttl", 3600.0)),
    ("mx_priority as a bool", _set("defaults|mx_priority", True)),
    ("selector 63+ labels", _set("dkim|selector", ".".join(["s"] * 200))),
    ("hostname 253+ characters", _set("gateway|hostname", ".".join(["a" * 63] * 4) + ".com")),
    # spec-v1 §7.1: spf as parts
    ("spf include with ESC", _spf(include=["a\x1b[2J.example"])),
    ("spf include with a bidi override", _spf(include=["spf\u202e.example"])),
    ("spf include in Unicode", _spf(include=["bücher.example"])),
    ("spf include 300 characters", _spf(include=["a" * 300 + ".example"])),
    ("spf include as a mapping", _spf(include={"a": "\x1b[2J"})),
    ("spf 3000 includes", _spf(include=[f"s{i}.example" for i in range(3000)])),
    ("spf ip4 with ESC", _spf(ip4=["192.0.2.1\x1b[2J"])),
    ("spf ip4 with a leading zero", _spf(ip4=["198.051.100.1"])),
    ("spf ip4 as a number", _spf(ip4=[3325256729])),
    ("spf ip6 with an ESC in its zone id", _spf(ip6=["2001:db8::1%\x1b[2J"])),
    ("spf all with ESC", _spf(all="-all\x1b[2J")),
    ("spf all as a mapping with OSC", _spf(all={"x": "\x1b]0;pwned\x07"})),
    ("spf drop with ESC", _spf(drop=["include:x\x1b[2J.example"])),
    ("spf drop 5000 characters", _spf(drop=["include:" + "a" * 5000])),
    ("spf unknown part with ESC", _spf(**{"inc\x1b[2Jlude": ["a.example"]})),
    ("spf parts in defaults", _set("defaults|spf", {"ip4": ["192.0.2.1"], "drop": ["a"]})),
    # spec-v1 §7.2: delegate, delegated, the customer target
    ("delegate zone with ESC", _delegating(zone="msp\x1b[2J.example")),
    ("delegate zone in Unicode, not a domain", _delegating(zone="bücher.example")),
    ("delegate spf with a bidi override", _delegating(spf="_spf\u202e")),
    ("delegate spf as the wildcard", _delegating(spf="*")),
    ("delegate dkim with ESC", _delegating(dkim=["pmg2026", "p\x1b[2J"])),
    ("delegate dkim with 300 names", _delegating(dkim=["pmg2026"] + [f"s{i}" for i in
                                                                     range(300)])),
    ("delegate key with ESC", _delegating(**{"zo\x1bne": 1})),
    ("delegate as a string with ESC", _set("delegate", "msp.example\x1b[2J")),
    ("delegated with ESC", _set("domains|example.org|delegated", "yes\x1b[2J")),
    ("customer target with ESC", _set("domains|example.org|targets", ["customer\x1b[2J"])),
    ("customer beside local", _set("domains|example.org|targets", ["customer", "local"])),
    ("customer as a provider (os.mkdir)", _set("providers|customer", {"class": "os.mkdir"})),
    ("every domain a customer's", _set("defaults|targets", ["customer"])),
    # spec-v1 §7.3: verify.dnsbl
    ("dnsbl with ESC", _set("verify", {"dnsbl": ["zen\x1b[2J.example"]})),
    ("dnsbl in Unicode", _set("verify", {"dnsbl": ["bücher.example"]})),
    ("dnsbl key with ESC", _set("verify", {"dnsb\x1bl": ["zen.example"]})),
    ("dnsbl 5000 zones", _set("verify", {"dnsbl": [f"bl{i}.example" for i in range(5000)]})),
    # spec-v1 §6.3: firewall.ssh_sources
    ("ssh_sources with ESC", _ssh(["192.0.2.1\x1b[2J"])),
    ("ssh_sources as a string with ESC", _ssh("192.0.2.0/24\x1b[2J")),
    ("ssh_sources with an ESC in a zone id", _ssh(["2001:db8::1%\x1b[2J"])),
    ("ssh_sources with a bidi override", _ssh(["10.0.0.1\u202e"])),
    ("ssh_sources the whole internet", _ssh(["0.0.0.0/0", "::/0"])),
    ("ssh_sources a 100,000-digit entry", _ssh(["1" * 100_000])),
]


@pytest.mark.parametrize("change", [c for _, c in VALUE_CASES],
                         ids=[n for n, _ in VALUE_CASES])
def test_hostile_value(change: Callable[[dict[str, Any]], None], keys: Keys,
                       bind: BindServer, fresh: Callable[[], Path]) -> None:
    root = fresh()
    write_project(root, _spec_with(keys, change))
    problems = []
    try:
        drive_all(root, bind)
    except AssertionError as exc:
        problems.append(str(exc))
    # a spec must never make pmgdns run code it names: `os.mkdir` as a provider "class"
    if (root / "pwned").exists():
        problems.insert(0, "the spec made pmgdns call os.mkdir('pwned'): it runs any callable "
                           "a spec names as a provider class")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path,key", [
    ("gateway", "h\x1b[2Jx"), ("domains", "exa\x1b[31mmple.net"), ("defaults", "tt\x1b[0ml"),
    ("domains", "exa\rmple.net"), ("domains", "example.net\u202e"),
], ids=["unknown key with CSI", "domain with SGR", "defaults key with SGR", "domain with CR",
        "domain with bidi"])
def test_error_shows_a_hostile_key_escaped(path: str, key: str, keys: Keys,
                                           fresh: Callable[[], Path]) -> None:
    """The key an error names shows escaped: not raw, and not silently altered (click drops
    CSI sequences such as ESC[2J when it does not print colour, so `h\x1b[2Jx` shows as `hx`)."""
    spec = base_spec(keys)
    spec.setdefault(path, {})[key] = {} if path == "domains" else 1
    root = fresh()
    write_project(root, dump(spec))
    run = pmgdns(root, "validate")
    assert_spec_error(run, SPEC)
    missing = unshown(error_line(run), key)
    assert not missing, f"the error does not show {missing} of the key {key!r}\n{run}"

@pytest.mark.parametrize("value", [True, 1.0, "1", 1.5], ids=["true", "1.0", "'1'", "1.5"])
def test_version_must_be_the_number_1(value: Any, keys: Keys,
                                      fresh: Callable[[], Path]) -> None:
    """`version: true` and `version: 1.0` are not version 1 (YAML 1.1 booleans and floats where
    a whole number goes; `ttl: true` is refused the same way)."""
    spec = base_spec(keys)
    spec["version"] = value
    root = fresh()
    write_project(root, dump(spec))
    run = pmgdns(root, "validate")
    assert_spec_error(run, SPEC)
    assert "version" in error_line(run), str(run)



# -- values that must be refused by their key (each was once accepted, or refused by another) --

def _many_ssh(tail: list[str]) -> Callable[[dict[str, Any]], None]:
    return _ssh([f"10.{i // 256}.{i % 256}.0/24" for i in range(3000)] + tail)


KEY_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    # published as `ip6:2001:db8::1%<ESC>[2J`: a raw ESC in the DNS, and no SPF term
    ("spf ip6 with an ESC in its zone id", _spf(ip6=["2001:db8::1%\x1b[2J"]),
     "domains.example.org.spf.ip6.0"),
    ("spf ip6 with a zone id", _spf(ip6=["2001:db8::1%eth0/64"]), "domains.example.org.spf.ip6.0"),
    ("spf ip6 IPv4-mapped", _spf(ip6=["::ffff:192.0.2.1"]), "domains.example.org.spf.ip6.0"),
    # the whole internet, which `all: +all` is refused for
    ("spf ip4 0.0.0.0/0", _spf(ip4=["0.0.0.0/0"]), "domains.example.org.spf.ip4.0"),
    ("spf ip6 ::/0", _spf(ip6=["::/0"]), "domains.example.org.spf.ip6.0"),
    ("spf include a bad A-label", _spf(include=["xn--zz.example"]),
     "domains.example.org.spf.include.0"),
    # RFC 7208's 450 characters, which the string form keeps, went unchecked for parts
    ("spf 60 ip4 parts", _spf(ip4=[f"10.0.{i}.1" for i in range(60)]), "domains.example.org.spf"),
    ("spf 40 ip6 parts", _spf(ip6=[f"2001:db8:{i:x}::1" for i in range(40)]),
     "domains.example.org.spf"),
    ("spf 60 ip4 parts in defaults", _set("defaults|spf", {
        "ip4": [f"10.0.{i}.1" for i in range(60)]}), "domains.example.com.spf"),
    # refused as "domains.msp.example: the rendered zone fails octoDNS's validation"
    ("delegate spf of 4 long labels", _delegating(spf=".".join(["a" * 63] * 4)), "delegate.spf"),
    ("delegate spf of 60 labels", _delegating(spf=".".join(["_spf"] * 60)), "delegate.spf"),
    ("delegate dkim too long for a name", _delegating(
        dkim=["pmg2026", ".".join(["s" * 63] * 4)]), "delegate.dkim.1"),
    ("delegated spf over 450 characters", lambda s: (_delegating()(s), _spf(
        ip4=[f"10.0.{i}.1" for i in range(60)])(s)), "domains.example.org.spf"),
    # accepted, then `verify` ended in "internal error (NameTooLong)"
    ("dnsbl zone of 120 labels", _set("verify", {"dnsbl": [".".join(["a"] * 120)]}),
     "verify.dnsbl.0"),
    ("dnsbl zone of 190 characters", _set("verify", {"dnsbl": ["a" * 60 + "." + "b" * 60 + "."
                                                               + "c" * 60 + ".example"]}),
     "verify.dnsbl.0"),
    # 3000 entries were compared pairwise: `validate` ran out of its time budget
    ("ssh_sources 3000 networks and one inside them", _many_ssh(["10.0.5.7"]),
     "firewall.ssh_sources.3000"),
    ("ssh_sources 3000 networks and one around them", _many_ssh(["10.0.0.0/8"]),
     "firewall.ssh_sources.3000"),
    ("ssh_sources 3000 networks and a repeat", _many_ssh(["10.11.183.0/24"]),
     "firewall.ssh_sources.3000"),
]


@pytest.mark.parametrize("change,key", [(c, k) for _, c, k in KEY_CASES],
                         ids=[n for n, _, _ in KEY_CASES])
def test_refused_by_its_key(change: Callable[[dict[str, Any]], None], key: str, keys: Keys,
                            fresh: Callable[[], Path]) -> None:
    root = fresh()
    write_project(root, _spec_with(keys, change))
    run = pmgdns(root, "validate")
    assert_spec_error(run, SPEC)
    assert f": {key}: " in error_line(run), f"the error does not name {key}\n{run}"
    assert not zone_files(root)


def test_thousands_of_ssh_sources_are_checked_at_once(keys: Keys,
                                                      fresh: Callable[[], Path]) -> None:
    """A list of 3000 distinct networks passes `validate` and `firewall` within the budget."""
    root = fresh()
    write_project(root, _spec_with(keys, _many_ssh([])))
    for args in (("validate",), ("firewall", "--format", "nftables")):
        run = pmgdns(root, *args)
        firewall_sane(run)
        assert run.code == 0, str(run)
    assert "set ssh_sources_v4" in run.out, str(run)


def test_a_unicode_include_is_published_as_its_a_labels(keys: Keys,
                                                        fresh: Callable[[], Path]) -> None:
    """An SPF record is ASCII (RFC 7208 §3): `include: [bücher.example]` publishes
    `include:xn--bcher-kva.example`, which a receiver can look up."""
    root = fresh()
    write_project(root, _spec_with(keys, _spf(include=["bücher.example"])))
    assert drive(root) is not None
    zone = (root / "build" / "zones" / "example.org.zone").read_text()
    assert "include:xn--bcher-kva.example -all" in zone, zone
