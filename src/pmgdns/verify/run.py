"""`pmgdns verify`: check what the DNS answers against the spec, reverse DNS included.

Every record family checks its own records (`Family.domain_checks`, `Family.node_checks`); this
module runs them, the domains concurrently, through a `DnsProbe`. Each check is OK, WARN or FAIL
with a one-line fix; `pmgdns.reports.verify_report` formats the report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import dns.exception
import dns.nameserver
import dns.resolver

from ..core.errors import VerifyError
from ..core.libraries import quiet_import
from ..families import FAMILIES
from ..families.checking import APPLY, FAIL, OK, WARN, Check, Probe, VerifyOptions
from ..spec.model import Domain, Gateway, Site
from .customer import customer_fixes
from .probe import BATCH, DnsProbe, make_resolver

with quiet_import("checkdmarc"):
    from checkdmarc.utils import DNS_CACHE

Options = VerifyOptions

__all__ = ["Check", "Options", "Report", "make_resolver", "verify"]


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    made: str = ""  # when the run began, UTC, RFC 3339 (2026-12-07T01:02:03Z)
    nameservers: list[str] = field(default_factory=list)  # asked, as HOST:PORT ([v6]:PORT)
    system_resolver: bool = False  # the system's resolver (no --nameserver)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def summary(self) -> dict[str, int]:
        out = {OK: 0, WARN: 0, FAIL: 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def to_json(self, checks: bool = True) -> dict[str, object]:
        """The JSON report (without `checks`, its `checks` left out, to be streamed)."""
        out: dict[str, object] = {"version": 1}
        if checks:
            out["checks"] = [c.to_json() for c in self.checks]
        out.update({"summary": self.summary(), "notes": self.notes})
        if self.made:
            out["made"] = self.made
        if self.nameservers:
            out["resolver"] = {"nameservers": self.nameservers, "system": self.system_resolver}
        return out


UNREACHED = ("fix the delegation first (see its check): the DNS the world asks is not where "
             "pmgdns applies the records")
UNASKED = ("the parent zone(s) {parents} could not be asked (the name server refuses or does not "
           "answer for them, as an authoritative-only --nameserver does): the delegation and "
           "DNSSEC checks were not made")


def _domain_checks(probe: Probe, domain: Domain) -> list[Check]:
    if domain.absent:
        return []
    out: list[Check] = []
    instead = frozenset().union(*(f.checks_instead_of(probe.site, domain) for f in FAMILIES))
    for family in FAMILIES:
        if family.name not in instead:
            out.extend(family.domain_checks(probe, domain))
    out = customer_fixes(probe.site, domain, out)
    if any(c.family == "delegation" and c.status == FAIL for c in out):
        # what the world sees of this domain is not what pmgdns applied: apply cannot help
        out = [replace(c, fix=UNREACHED) if c.family != "delegation" and APPLY in c.fix else c
               for c in out]
    return out


def _node_checks(probe: Probe, node: Gateway) -> list[Check]:
    out: list[Check] = []
    for family in FAMILIES:
        out.extend(family.node_checks(probe, node))
    return out


PROCESS_MIN = 200  # domains; below that, worker processes cost more than they save


def asked(resolver: dns.resolver.Resolver) -> list[str]:
    """The name servers `resolver` asks, as HOST:PORT ([v6]:PORT for IPv6)."""
    out = []
    for ns in resolver.nameservers:
        host, port = str(ns), resolver.port
        if isinstance(ns, dns.nameserver.Do53Nameserver):
            host, port = ns.address, ns.port
        elif not isinstance(ns, str):
            out.append(str(ns))  # DoH/DoT: its URL says it all
            continue
        out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return out


def verify(site: Site, domains: Iterable[str], resolver: dns.resolver.Resolver,
           workers: int | None = None, progress: Callable[[int, int], None] | None = None,
           options: VerifyOptions | None = None, system_resolver: bool = False) -> Report:
    """Run every family's checks: the nodes', then the domains'.

    Concurrency follows the DNS's latency, not the number of domains: the checks of a domain are
    CPU work between queries, so they run in one worker process per CPU, each with as many
    threads as it takes to keep its CPU busy while queries are in flight (latency / CPU time of
    a query; `workers` fixes the threads per process)."""

    # checkdmarc caches answers by name only, not by name server: a verify run asks afresh
    DNS_CACHE.clear()
    probe = DnsProbe(site, resolver, options or VerifyOptions())
    chosen = [site.domains[d] for d in domains]
    report = Report(made=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    nameservers=asked(resolver), system_resolver=system_resolver)
    for node in site.gateways:
        if site.node_zone(node) is None:
            report.notes.append(f"{node.hostname} lies in none of the spec's domains: pmgdns "
                                "does not publish its A/AAAA and SPF; they were checked all the "
                                "same")
    try:
        for node in site.gateways:
            report.checks.extend(_node_checks(probe, node))
        live = [d for d in chosen if not d.absent]
        threads = workers or _threads_for(probe, live)
        processes = min(4, os.cpu_count() or 1) if len(live) >= PROCESS_MIN else 1
        if processes > 1:
            report.checks.extend(_in_processes(probe, live, processes, threads, progress))
        else:
            report.checks.extend(_in_threads(probe, live, threads, progress))
        if probe.unasked:
            report.notes.append(UNASKED.format(parents=", ".join(sorted(probe.unasked))))
    except dns.exception.Timeout:
        raise VerifyError("DNS queries timed out: check --nameserver and that it answers for "
                          "the spec's domains") from None
    return report


def _threads_for(probe: Probe, domains: list[Domain]) -> int:
    """Threads that keep one CPU busy: the DNS's round trip over the CPU time of a query
    (about 0.25 ms here), within 4..128."""
    if not domains:
        return 1
    rtts = []
    cache, probe.resolver.cache = probe.resolver.cache, None  # measure the network, not it
    try:
        for _ in range(3):
            start = time.perf_counter()
            try:
                probe.resolver.resolve(domains[0].zone, "SOA", raise_on_no_answer=False)
            except dns.exception.DNSException:
                pass
            rtts.append(time.perf_counter() - start)
    finally:
        probe.resolver.cache = cache
    rtt = sorted(rtts)[1]
    return max(4, min(128, math.ceil(rtt / 0.00025)))


def _in_threads(probe: DnsProbe, domains: list[Domain], threads: int,
                progress: Callable[[int, int], None] | None) -> list[Check]:
    """Check `domains` a batch at a time: ask what their checks will ask first (all at once),
    run the checks in `threads` threads, then forget the batch's answers."""
    out: list[Check] = []
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, len(domains), BATCH):
            batch = domains[start:start + BATCH]
            probe.prefetch(batch)
            strings: dict[str, str] = {}
            for i, checks in enumerate(pool.map(lambda d: _domain_checks(probe, d), batch),
                                       start + 1):
                # one object per distinct text (the expected values of a fleet repeat): a
                # fleet's report holds, and a worker hands back, each text once per batch
                out.extend(Check(*(strings.setdefault(v, v) for v in c.fields()))
                           for c in checks)
                if progress:
                    progress(i, len(domains))
            probe.forget(batch)
    return out


_FORKED: tuple[DnsProbe, int] | None = None  # what a forked verify worker works with


def _chunk(domains: list[Domain]) -> tuple[list[Check], set[str]]:
    assert _FORKED is not None
    probe, threads = _FORKED
    return _in_threads(probe, domains, threads, None), probe.unasked


def _in_processes(probe: DnsProbe, domains: list[Domain], processes: int, threads: int,
                  progress: Callable[[int, int], None] | None) -> list[Check]:

    global _FORKED
    size = max(1, min(500, len(domains) // (processes * 8) or 1))
    chunks = [domains[i:i + size] for i in range(0, len(domains), size)]
    out: list[Check] = []
    _FORKED = (probe, threads)
    try:
        # start-up time: worker processes are for large fleets only
        import multiprocessing

        # concurrent.futures, not multiprocessing.Pool: a worker that dies (killed, out of
        # memory) breaks the pool with an error instead of leaving verify waiting for ever
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            done = 0
            try:
                for chunk, (checks, unasked) in zip(chunks, pool.map(_chunk, chunks),
                                                    strict=True):
                    out.extend(checks)
                    probe.unasked |= unasked
                    done += len(chunk)
                    if progress:
                        progress(done, len(domains))
            except BrokenProcessPool:
                raise VerifyError(
                    f"a verify worker process ended unexpectedly after {done} of "
                    f"{len(domains)} domains (killed, or out of memory); nothing was reported. "
                    "Run verify again with fewer domains at a time (verify DOMAIN...)") from None
    finally:
        _FORKED = None
    return out
