"""Hostile values in the commands that take values of their own (spec-v1 §7.2, §7.3):
`verify --dnsbl ZONE[,ZONE...]` and `customer-ticket` (its DOMAIN arguments, `--format`, `--out`,
`--nameserver`), each run a real `python -m pmgdns` process under the time and memory budget of
tests/hostile.py, against a real BIND on loopback (every run names it with `--nameserver`, and a
hostile name server value is tried only when it is not an address, or a loopback one).

Whatever the value: an answer within the budget, exit 0 or 1, no traceback, no raw control
character, and a refusal is one `Error:` paragraph that shows the value escaped.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pmgdns.core.errors import UsageError
from pmgdns.verify.probe import split_hostport

from .conftest import Keys
from .hostile import (
    Run,
    assert_sane,
    error_line,
    error_lines,
    pmgdns,
    txt_rdata_text,
    unshown,
)
from .servers import BindServer, zone_text
from .test_adversarial import HYPOTHESIS, ZONES, _assert_report, base_spec, dump, write_project
from .test_adversarial_keys import hostile_text, injected

SHOWN = 50  # characters: a shorter value shows whole in an error (longer ones are cut)


# a blocklist that lists the gateway's addresses, with hostile reasons (server data)
REASON = b"\x1b[2J\x1b]0;pwned\x07 listed \xe2\x80\xae <b>x</b> `y` | z\x00"
BLOCKLIST = "".join(
    f"{name} IN A 127.0.0.2\n{name} IN TXT {txt_rdata_text(REASON)}\n" for name in (
        "25.100.51.198", ".".join(reversed(ipaddress.ip_address("2001:db8::25").exploded
                                           .replace(":", "")))))


@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    s = BindServer({**{z: zone_text(z, "") for z in ZONES},
                    "bl.example": zone_text("bl.example", BLOCKLIST)}).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def site(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A project whose example.org is held by the customer (`targets: [customer]`)."""
    def make() -> Path:
        root = tmp_path_factory.mktemp("hostile")
        spec = base_spec(keys)
        spec["domains"]["example.org"] = {"targets": ["customer"]}
        write_project(root, dump(spec))
        return root
    return make


def argument(value: str) -> bool:
    """Can `value` be one command-line argument (no NUL, encodable)?"""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def assert_refused_showing(run: Run, option: str, value: str) -> None:
    """Exit 1, one `Error:` paragraph naming `option`, with `value` shown escaped."""
    assert_sane(run)
    assert run.code == 1, f"{option} {value!r} was not refused\n{run}"
    line = error_line(run)
    assert option in line, f"the error does not name {option}\n{run}"
    if len(value) <= SHOWN:
        missing = unshown(line, value)
        assert not missing, f"the error does not show {missing} of {value!r} escaped\n{run}"


# -- verify --dnsbl -------------------------------------------------------------------------

def check_dnsbl(root: Path, server: BindServer, value: str, refused: bool | None) -> None:
    """`verify --dnsbl VALUE`: a report (every zone looked up), or a refusal naming --dnsbl.
    `refused` is what the value must get (None: either)."""
    run = pmgdns(root, "verify", "--nameserver", f"127.0.0.1:{server.port}", "--dnsbl", value,
                 timeout=20)
    _assert_report(run)
    if error_lines(run):
        assert refused is not False, f"--dnsbl {value!r} was refused\n{run}"
        assert_refused_showing(run, "--dnsbl", value)
        return
    assert refused is not True, f"--dnsbl {value!r} was not refused\n{run}"
    for zone in {z.strip().rstrip(".").lower() for z in value.split(",")}:
        assert f"listed in {zone}" in run.out, f"the blocklist {zone} was not asked\n{run}"


DNSBL_CASES: list[tuple[str, str, bool | None]] = [
    ("one zone", "zen.spamhaus.org", False),
    ("two zones, one twice in capitals", "ZEN.Spamhaus.ORG.,bl.spamcop.net,zen.spamhaus.org",
     False),
    ("ESC", "zen\x1b[2J.example", True),
    ("OSC after a comma", "zen.example,\x1b]0;pwned\x07", True),
    ("a bidi override", "zen.example\u202e", True),
    ("a tab", "zen\texample.org", True),
    ("a next-line control", "zen\x85.example", True),
    ("empty", "", True),
    ("a comma only", ",", True),
    ("an empty zone between commas", "a.example,,b.example", True),
    ("an option inside", "zen.example --nameserver 8.8.8.8", True),
    ("a glob", "*.example", True),
    ("Unicode", "bücher.example", True),
    ("5000 characters", "a" * 5000, True),
    # accepted, then verify ended in "internal error (NameTooLong)"
    ("120 labels", ".".join(["a"] * 120), True),
    ("190 characters", "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".example", True),
    # accepted as a zone, and reported "not listed in 1.2.3.4"
    ("an address", "1.2.3.4", True),
]


@pytest.mark.parametrize("value,refused", [(v, r) for _, v, r in DNSBL_CASES],
                         ids=[n for n, _, _ in DNSBL_CASES])
def test_verify_dnsbl_value(value: str, refused: bool | None, bind: BindServer,
                            site: Callable[[], Path]) -> None:
    check_dnsbl(site(), bind, value, refused)


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_a_blocklist_reason_is_data(fmt: str, bind: BindServer, site: Callable[[], Path]) -> None:
    """The TXT reason a blocklist gives (ESC, OSC, a bidi override, NUL, markup) shows escaped
    in every report format."""
    run = pmgdns(site(), "verify", "--nameserver", f"127.0.0.1:{bind.port}", "--dnsbl",
                 "bl.example", "--format", fmt, timeout=20)
    _assert_report(run)
    assert run.code == 1 and "is listed in bl.example" in run.out, str(run)
    if fmt == "text":
        missing = unshown(run.out, REASON.decode())
        assert not missing, f"the report does not show {missing} of the reason escaped\n{run}"
    if fmt == "html":
        assert "<b>x</b>" not in run.out, str(run)


@given(value=st.one_of(
    injected("zen.spamhaus.org"),
    st.lists(st.one_of(injected("bl.spamcop.net"), st.just("zen.spamhaus.org")), min_size=2,
             max_size=4).map(",".join),
).filter(argument))
@settings(HYPOTHESIS, max_examples=15)
def test_verify_dnsbl_hostile(value: str, bind: BindServer, site: Callable[[], Path]) -> None:
    check_dnsbl(site(), bind, value, None)


# -- customer-ticket ------------------------------------------------------------------------

def loopback_only(value: str) -> bool:
    """Would `--nameserver value` send nothing beyond loopback (it is refused, or a loopback
    address)?"""
    try:
        host, _ = split_hostport(value)
    except UsageError:
        return True
    return ipaddress.ip_address(host.partition("%")[0]).is_loopback


TICKET_CASES: list[tuple[str, tuple[str, ...], bool]] = [
    ("the customer zone", ("--", "example.org"), False),
    ("in capitals with a dot", ("--", "EXAMPLE.ORG."), False),
    ("every format: markdown", ("--format", "markdown"), False),
    ("every format: json", ("--format", "json"), False),
    ("every format: html", ("--format", "html"), False),
    ("a domain with ESC", ("--", "exa\x1b[2Jmple.org"), True),
    ("a domain with a bidi override", ("--", "example.org\u202e"), True),
    ("a domain of 100,000 characters", ("--", "a" * 100_000), True),
    ("a glob that backtracks", ("--", "*a" * 2000 + "b"), True),
    ("5000 brackets", ("--", "[" * 5000), True),
    ("a zone pmgdns holds", ("--", "example.com"), True),
    ("an option-like domain", ("--", "--nameserver=8.8.8.8"), True),
    ("a format with ESC", ("--format", "x\x1b[2J"), True),
    ("an empty --out", ("--out", ""), True),
    ("--out over the spec", ("--out", "config/site.yaml"), True),
    ("--out named with ESC", ("--out", "t\x1b[2J.md"), False),
    ("--out a directory named with ESC", ("--out", "d\x1b[2J/"), False),
    ("a name server with ESC", ("--nameserver", "x\x1b[2J"), True),
    ("a port with ESC", ("--nameserver", "127.0.0.1:\x1b[2J"), True),
    ("a port past 65535", ("--nameserver", "127.0.0.1:99999"), True),
    ("a name server of 5000 characters", ("--nameserver", "a" * 5000), True),
    ("a name server with a tab", ("--nameserver", "127.0.0.1\t:53"), True),
    ("an IPv4 name server with a zone index", ("--nameserver", "127.0.0.1%lo"), True),
    # an interface that does not exist: every query failed, and the ticket said "pending"
    ("a zone index with ESC", ("--nameserver", "::1%\x1b[2J"), True),
    ("a zone index with a bidi override", ("--nameserver", "::1%\u202e"), True),
]


@pytest.mark.parametrize("args,refused", [(a, r) for _, a, r in TICKET_CASES],
                         ids=[n for n, _, _ in TICKET_CASES])
def test_customer_ticket_value(args: tuple[str, ...], refused: bool, site: Callable[[], Path]
                               ) -> None:
    root = site()
    run = pmgdns(root, "customer-ticket", *args)
    assert_sane(run)
    if not refused:
        assert run.code == 0, str(run)
        if "--out" in args:
            out = root / args[args.index("--out") + 1]
            assert out.is_file() or (out / "example.org.txt").is_file(), str(run)
        else:
            assert "example.org" in run.out, str(run)
        return
    assert run.code == 1, str(run)
    value = args[-1]
    if len(value) <= SHOWN:
        missing = unshown(error_line(run), value)
        assert not missing, f"the error does not show {missing} of {value!r} escaped\n{run}"
    if args[0] == "--nameserver" or args == ("--out", ""):  # an empty --out was "cannot
        assert args[0] in error_line(run), str(run)  # write a customer ticket : No such file"


def test_customer_ticket_live_against_bind(bind: BindServer, site: Callable[[], Path]) -> None:
    run = pmgdns(site(), "customer-ticket", "--nameserver", f"127.0.0.1:{bind.port}",
                 "--format", "markdown", timeout=20)
    assert_sane(run)
    assert run.code == 0 and "pending" in run.out, str(run)


def test_customer_ticket_live_with_a_silent_name_server(site: Callable[[], Path]) -> None:
    """A name server that never answers: one error saying so (it was "internal error
    (LifetimeTimeout ...)")."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        run = pmgdns(site(), "customer-ticket", "--nameserver", f"127.0.0.1:{port}", timeout=30)
    assert_sane(run)
    assert run.code == 1, str(run)
    line = error_line(run)
    assert "timed out" in line and "--nameserver" in line, str(run)


@given(domains=st.lists(st.one_of(injected("example.org"), hostile_text), min_size=1,
                        max_size=3).filter(lambda d: all(map(argument, d))))
@settings(HYPOTHESIS, max_examples=15)
def test_customer_ticket_hostile_domains(domains: list[str], site: Callable[[], Path]) -> None:
    run = pmgdns(site(), "customer-ticket", "--format", "markdown", "--", *domains)
    assert_sane(run)
    if run.code == 0:
        assert "example.org" in run.out, str(run)


@given(value=injected("127.0.0.1:53").filter(argument))
@settings(HYPOTHESIS, max_examples=15)
def test_customer_ticket_hostile_name_server(value: str, bind: BindServer,
                                             site: Callable[[], Path]) -> None:
    value = value.replace("127.0.0.1:53", f"127.0.0.1:{bind.port}")
    assume(loopback_only(value))
    run = pmgdns(site(), "customer-ticket", "--nameserver", value, timeout=20)
    assert_sane(run)
    if run.code == 1 and "timed out" not in error_line(run):
        assert_refused_showing(run, "--nameserver", value)


def test_customer_ticket_names_a_few_held_domains(keys: Keys, fresh_root: Path) -> None:
    """A glob over a fleet the MSP holds: the error names a few domains and counts the rest (it
    named all of them, in one line of any length)."""
    spec = base_spec(keys)
    spec["domains"] = {f"d{i:05}.example": {} for i in range(3000)}
    spec["domains"]["example.org"] = {"targets": ["customer"]}
    write_project(fresh_root, dump(spec))
    run = pmgdns(fresh_root, "customer-ticket", "--", "*", timeout=20)
    assert_sane(run)
    line = error_line(run)
    assert "d00000.example" in line and "and 2995 more" in line and len(line) < 500, str(run)


@pytest.fixture
def fresh_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


SECRET = "s3cr3t-t0ken.example"  # a provider's token that is also a name pmgdns shows


def test_a_secret_in_a_ticket_or_a_blocklist_is_never_shown(keys: Keys, bind: BindServer,
                                                            fresh_root: Path) -> None:
    """A provider's secret (`env/VAR`) that is also an SPF include of a customer zone and a
    `--dnsbl` zone shows masked in every ticket format, in a ticket file and in verify."""
    spec = base_spec(keys)
    spec["providers"] = {"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                "token": "env/CF_TOKEN"}}
    spec["domains"]["example.org"] = {"targets": ["customer"], "spf": {"include": [SECRET]}}
    write_project(fresh_root, dump(spec))
    env = {"CF_TOKEN": SECRET}
    ns = f"127.0.0.1:{bind.port}"
    runs = [pmgdns(fresh_root, "customer-ticket", "--format", fmt, env=env)
            for fmt in ("text", "markdown", "json", "html")]
    runs.append(pmgdns(fresh_root, "customer-ticket", "--out", "t.md", "--format", "markdown",
                       env=env))
    runs.append(pmgdns(fresh_root, "customer-ticket", "--nameserver", ns, env=env, timeout=20))
    for run in runs:
        assert_sane(run)
        assert run.code == 0, str(run)
    verify = pmgdns(fresh_root, "verify", "--nameserver", ns, "--dnsbl", SECRET, env=env,
                    timeout=20)
    _assert_report(verify)
    for run in [*runs, verify]:
        for stream in (run.raw_out, run.raw_err):
            assert SECRET.encode() not in stream, f"the secret shows\n{run}"
    assert SECRET not in (fresh_root / "t.md").read_text()
    assert "include:" in runs[0].out and "blocklist" in verify.out, str(verify)
