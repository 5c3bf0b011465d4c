"""Ask a batch of DNS questions at once and leave the answers in the resolver's own cache.

A verify run asks about five questions per domain, and most of them can be known before the
checks run: the records the spec publishes for the domain. dnspython's resolver (like
`dns.query` and `dns.asyncquery`) opens a socket per question and waits for its answer: 0.33 ms
a question against BIND on loopback, where the same questions sent over one socket, 60 in
flight, take 0.12 ms. This module keeps only that schedule; dnspython builds and parses every
message, and each answer becomes the `dns.resolver.Answer` the resolver itself would have
cached, under the key it would have used. The checks then ask the resolver as before and find
the answers there.

Anything but a clean answer (NOERROR or NXDOMAIN, not truncated, matching the question) is left
out, and so is a question unanswered after the resolver's timeout: the resolver asks those
itself, with its own retries, its other name servers and TCP.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dns.entropy
import dns.exception
import dns.inet
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver

WINDOW = 60  # questions in flight; BIND on loopback drops some at 200
RESEND = 0.3  # seconds without an answer before a question is sent again


@dataclass
class _Pending:
    request: dns.message.QueryMessage
    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    wire: bytes
    first: float
    sent: float


def server_of(resolver: dns.resolver.Resolver) -> tuple[str, int] | None:
    """The first name server `resolver` asks over plain UDP, as (address, port); None when it
    asks over TLS or HTTPS, signs with TSIG, or keeps no cache (nothing to put answers in)."""
    if resolver.cache is None or resolver.keyname is not None or not resolver.nameservers:
        return None
    first = resolver.nameservers[0]
    if isinstance(first, dns.nameserver.Do53Nameserver):
        return first.address, first.port
    if isinstance(first, str) and dns.inet.is_address(first):
        return first, resolver.nameserver_ports.get(first, resolver.port)
    return None


def prefetch(resolver: dns.resolver.Resolver, questions: Iterable[tuple[str, str]]) -> int:
    """Ask every (name, type) of `questions` not already cached, over one UDP socket, and cache
    each clean answer as `resolver.resolve` would. Returns how many answers were cached."""
    server = server_of(resolver)
    if server is None:
        return 0
    cache = resolver.cache
    assert cache is not None
    todo: list[tuple[dns.name.Name, dns.rdatatype.RdataType]] = []
    for name, rtype in dict.fromkeys(questions):
        try:
            qname = dns.name.from_text(name)
            rdtype = dns.rdatatype.from_text(rtype)
        except dns.exception.DNSException:
            continue  # the resolver will say what is wrong with it, if anybody asks
        if cache.get((qname, rdtype, dns.rdataclass.IN)) is None:
            todo.append((qname, rdtype))
    if not todo:
        return 0
    address, port = server
    family = socket.AF_INET6 if dns.inet.af_for_address(address) == socket.AF_INET6 \
        else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.connect((address, port))
        except OSError:
            return 0  # the resolver reports an unreachable server in its own words
        return _exchange(resolver, sock, todo, address, port)


def _request(resolver: dns.resolver.Resolver, qname: dns.name.Name,
             rdtype: dns.rdatatype.RdataType) -> dns.message.QueryMessage:
    """The query `Resolver.resolve` would send (its EDNS and flags)."""
    request = dns.message.make_query(qname, rdtype)
    request.use_edns(resolver.edns, resolver.ednsflags, resolver.payload,
                     options=resolver.ednsoptions)
    if resolver.flags is not None:
        request.flags = resolver.flags
    return request


def _exchange(resolver: dns.resolver.Resolver, sock: socket.socket,
              todo: list[tuple[dns.name.Name, dns.rdatatype.RdataType]], address: str,
              port: int) -> int:
    cache = resolver.cache
    assert cache is not None
    timeout = min(resolver.timeout, resolver.lifetime)
    pending: dict[int, _Pending] = {}
    queue = list(reversed(todo))
    cached = 0
    poller = select.poll()  # not select(): a worker may hold file descriptors past 1024
    poller.register(sock, select.POLLIN)
    while queue or pending:
        now = time.monotonic()
        while queue and len(pending) < WINDOW:
            qname, rdtype = queue.pop()
            request = _request(resolver, qname, rdtype)
            while request.id in pending:
                request.id = dns.entropy.random_16()
            wire = request.to_wire()
            if not _send(sock, wire):
                return cached
            pending[request.id] = _Pending(request, qname, rdtype, wire, now, now)
        for key, waiting in list(pending.items()):
            if now - waiting.first > timeout:
                del pending[key]  # left to the resolver
            elif now - waiting.sent > RESEND:
                waiting.sent = now
                if not _send(sock, waiting.wire):
                    return cached
        if not pending:
            continue
        if not poller.poll(RESEND / 3 * 1000):
            continue
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            continue
        except OSError:
            return cached  # e.g. ICMP port unreachable: the resolver reports it
        try:
            response = dns.message.from_wire(data, raise_on_truncation=True)
        except dns.exception.DNSException:
            if len(data) >= 2:
                pending.pop(int.from_bytes(data[:2], "big"), None)  # truncated or malformed
            continue
        asked = pending.get(response.id)
        if asked is None or not asked.request.is_response(response):
            continue
        del pending[response.id]
        if _cache(cache, asked, response, address, port):
            cached += 1
    return cached


def _send(sock: socket.socket, wire: bytes) -> bool:
    try:
        sock.send(wire)
    except BlockingIOError:
        return True  # the socket's buffer is full: the resend timer sends it again
    except OSError:
        return False
    return True


def _cache(cache: dns.resolver.Cache | dns.resolver.LRUCache, p: _Pending,
           response: dns.message.Message, address: str, port: int) -> bool:
    """Cache `response` under the key, and as the `Answer`, that `Resolver.resolve` uses."""
    assert isinstance(response, dns.message.QueryMessage)
    try:
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            answer = dns.resolver.Answer(p.qname, p.rdtype, dns.rdataclass.IN, response,
                                         address, port)
            key = (p.qname, p.rdtype, dns.rdataclass.IN)
        elif rcode == dns.rcode.NXDOMAIN:
            answer = dns.resolver.Answer(p.qname, dns.rdatatype.ANY, dns.rdataclass.IN,
                                         response)
            key = (p.qname, dns.rdatatype.ANY, dns.rdataclass.IN)
        else:
            return False  # SERVFAIL, REFUSED, ...: the resolver asks again and reports it
    except Exception:  # as the resolver does: an answer it cannot make sense of is not cached
        return False
    cache.put(key, answer)
    return True
