"""verify asks a batch's questions at once and leaves the answers in the resolver's cache
(`pmgdns.verify.prefetch`): the cached answers are the ones the resolver would have got, and
what is not a clean answer (truncated, a forged reply, no reply) is left to the resolver. Real
BIND on loopback; a small UDP server of the test's own plays the forger."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.resolver
import dns.rrset
import pytest
import yaml

from pmgdns.families.loader import load_site
from pmgdns.verify import run as verify_run
from pmgdns.verify.prefetch import prefetch
from pmgdns.verify.probe import DnsProbe, make_resolver

from .conftest import Keys, base_spec
from .servers import BindServer, zone_text

LONG = " ".join(f'"{"x" * 250}"' for _ in range(8))  # 2,000 bytes: more than one UDP answer


@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    server = BindServer({
        "example.com": zone_text("example.com",
                                 '@ IN MX 10 mx1.example.com.\nmx1 IN A 192.0.2.25\n'
                                 '_dmarc IN TXT "v=DMARC1; p=reject"\n'
                                 f"long IN TXT {LONG}\n"
                                 "alias IN CNAME mx1.example.com.\n"),
    }).start()
    try:
        yield server
    finally:
        server.stop()


QUESTIONS = [("example.com.", "MX"), ("_dmarc.example.com.", "TXT"), ("mx1.example.com.", "A"),
             ("mx1.example.com.", "AAAA"),  # no such data
             ("nothing.example.com.", "TXT"),  # no such name
             ("alias.example.com.", "A")]  # through a CNAME


def _texts(answer: dns.resolver.Answer) -> list[str]:
    return sorted(r.to_text() for r in answer.rrset) if answer.rrset is not None else []


def test_prefetched_answers_are_the_resolvers_own(bind: BindServer) -> None:
    fresh = make_resolver(f"127.0.0.1:{bind.port}", timeout=2)
    fresh.cache = None
    expected = {}
    for name, rtype in QUESTIONS:
        try:
            expected[(name, rtype)] = _texts(fresh.resolve(name, rtype, raise_on_no_answer=False))
        except dns.resolver.NXDOMAIN:
            expected[(name, rtype)] = ["NXDOMAIN"]

    resolver = make_resolver(f"127.0.0.1:{bind.port}", timeout=2)
    assert prefetch(resolver, QUESTIONS) == len(QUESTIONS)
    # with the server gone, every answer can only come from the cache
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = _closed_port()
    for name, rtype in QUESTIONS:
        try:
            got = _texts(resolver.resolve(name, rtype, raise_on_no_answer=False))
        except dns.resolver.NXDOMAIN:
            got = ["NXDOMAIN"]
        assert got == expected[(name, rtype)], (name, rtype)
    assert expected[("alias.example.com.", "A")] == ["192.0.2.25"]


def test_a_truncated_answer_is_left_to_the_resolver(bind: BindServer) -> None:
    resolver = make_resolver(f"127.0.0.1:{bind.port}", timeout=2)
    assert prefetch(resolver, [("long.example.com.", "TXT"), ("example.com.", "MX")]) == 1
    answer = resolver.resolve("long.example.com.", "TXT")  # the resolver retries over TCP
    assert len(b"".join(answer.rrset[0].strings)) == 2000


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_server_no_wait_beyond_the_timeout() -> None:
    resolver = make_resolver(f"127.0.0.1:{_closed_port()}", timeout=0.5)
    start = time.monotonic()
    assert prefetch(resolver, QUESTIONS) == 0
    assert time.monotonic() - start < 5


class Forger:
    """A UDP server that answers each query twice: first a forged reply (the query's id, another
    question, another address), then the true one (NOERROR, 192.0.2.1)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            forged = dns.message.make_response(dns.message.make_query("forged.example.", "A"))
            forged.id = query.id
            forged.answer.append(dns.rrset.from_text("forged.example.", 60, "IN", "A",
                                                     "203.0.113.66"))
            self.sock.sendto(forged.to_wire(), peer)
            true = dns.message.make_response(query)
            true.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A",
                                                   "192.0.2.1"))
            self.sock.sendto(true.to_wire(), peer)


@pytest.fixture
def forger() -> Iterator[Forger]:
    server = Forger()
    server.thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.thread.join()
        server.sock.close()


def test_a_reply_to_another_question_is_not_taken(forger: Forger) -> None:
    resolver = make_resolver(f"127.0.0.1:{forger.port}", timeout=2)
    names = [(f"h{i}.example.com.", "A") for i in range(20)]
    assert prefetch(resolver, names) == 20
    resolver.port = _closed_port()
    for name, _ in names:
        assert _texts(resolver.resolve(name, "A")) == ["192.0.2.1"]


def test_a_fleet_run_forgets_each_batch(bind: BindServer, monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path, keys: Keys) -> None:
    """What a run learns inside a batch's zones is dropped when the batch is done: a fleet's
    verify holds a batch's answers, not the whole run's."""
    spec = tmp_path / "site.yaml"
    data = base_spec(keys)
    data["domains"] = {"example.com": {}, **{f"d{i}.example": {} for i in range(30)}}
    spec.write_text(yaml.safe_dump(data))
    site = load_site(spec)
    resolver = make_resolver(f"127.0.0.1:{bind.port}", timeout=2)
    probe = DnsProbe(site, resolver)
    domains = [site.domains[d] for d in site.domains]
    monkeypatch.setattr(verify_run, "BATCH", 8)
    checks = verify_run._in_threads(probe, domains, 4, None)
    assert {c.subject for c in checks} >= {"example.com", "d0.example", "d29.example"}
    kept = {name for name, _ in probe._seen}
    assert not any(name.endswith("d29.example.") or name.endswith("d0.example.")
                   for name in kept), kept
