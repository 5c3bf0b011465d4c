"""Pacing of the Cloudflare and Route53 providers against real servers on loopback.

Cloudflare: the fake v4 API (tests/cloudflare_api.py) enforcing a request limit with 429 +
Retry-After, scaled down to 40 requests per 2 s. Route53: moto's server behind a small counting
proxy that timestamps every request (and can answer Throttling). octoDNS plans through its own
`Manager` with a minimal config, as `octodns-sync build/octodns.yaml` would.

`bench_cloudflare_pacing()` returns the figures for bench/run.py.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import math
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from octodns.manager import Manager
from octodns_cloudflare import CloudflareRateLimitError

from pmgdns.providers import pacing
from pmgdns.providers.cloudflare import CloudflareProvider
from pmgdns.providers.pacing import (
    PACED_CLASSES,
    TokenBucket,
    forget_buckets,
    shared_bucket,
    suggested_workers,
    suggested_workers_for,
)

from .cloudflare_api import FakeCloudflare, Fault, Hit
from .conftest import REPORT, Project, allow_endpoint, assert_clean_error
from .servers import free_port

CF_CLASS = "pmgdns.providers.cloudflare.CloudflareProvider"
R53_CLASS = "pmgdns.providers.route53.Route53Provider"
TOKEN_ENV = "PMGDNS_TEST_PACING_CF_TOKEN"


@pytest.fixture(autouse=True)
def _fresh_buckets() -> Iterator[None]:
    forget_buckets()  # buckets are per process; each test starts with its own
    yield
    forget_buckets()


# -- the bucket on its own --------------------------------------------------------------------


def test_bucket_paces_threads_together() -> None:
    bucket = TokenBucket(rate=50, burst=5)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    # 60 requests, 5 at once, then 50/s: (60 - 5) / 50 = 1.1 s
    assert elapsed >= 1.0, elapsed  # the bucket made them wait (timing is bench/run.py's job)
    stamps.sort()
    assert _max_in_window(stamps, 0.5) <= bucket.max_in(0.5) + 1  # +1: scheduler jitter


def test_bucket_pause_holds_every_thread() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    bucket.acquire()
    bucket.pause(0.3)
    start = time.monotonic()
    waited = []
    threads = [threading.Thread(target=lambda: waited.append(bucket.acquire())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 0.29
    assert min(waited) >= 0.29 and bucket.pauses == 1


def test_shared_bucket_is_per_key_and_keeps_the_stricter_pace() -> None:
    a = shared_bucket("acct", 10, 5)
    b = shared_bucket("acct", 4, 8)
    assert a is b and (a.rate, a.burst) == (4, 5)
    assert shared_bucket("other", 10, 5) is not a
    with pytest.raises(ValueError):
        shared_bucket("bad", 0, 1)


def test_suggested_workers() -> None:
    assert suggested_workers(3.8, 0.35) == 3  # ceil(1.33) + 1
    assert suggested_workers(4.5, 0.25) == 3
    assert suggested_workers(0.5, 0.1) == 2
    assert suggested_workers(1000, 1.0) == 16
    assert suggested_workers_for("octodns_cloudflare.CloudflareProvider") == 3
    assert suggested_workers_for(R53_CLASS, {"requests_per_second": 1}) == 2
    assert suggested_workers_for("octodns_bind.Rfc2136Provider") is None
    assert PACED_CLASSES["octodns_cloudflare.CloudflareProvider"] == CF_CLASS
    assert PACED_CLASSES["octodns_route53.Route53Provider"] == R53_CLASS


# -- Cloudflare ---------------------------------------------------------------------------------


def _max_in_window(stamps: list[float], window: float) -> int:
    """Most timestamps inside any half-open interval of `window` seconds."""
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _cf_fleet(zones: int) -> FakeCloudflare:
    api = FakeCloudflare(token=f"cf-token-{secrets.token_hex(12)}")
    for i in range(zones):
        name = f"z{i:04d}.example"
        api.add_zone(name)
        api.add_record(name, name, "A", f"192.0.2.{i % 250 + 1}", ttl=300)
        api.add_record(name, name, "MX", f"mx.{name}", ttl=300, priority=10)
        api.add_record(name, f"www.{name}", "AAAA", "2001:db8::80", ttl=300)
    return api.start()


def _cf_manager(tmp: Path, api: FakeCloudflare, options: dict[str, Any],
                max_workers: int = 4) -> Manager:
    """octoDNS's Manager with every fake zone as a YAML source that matches it (no changes)."""
    zdir = tmp / "zones"
    zdir.mkdir(parents=True, exist_ok=True)
    names = sorted(z["name"] for z in api.zones.values())
    for name in names:
        (zdir / f"{name}.yaml").write_text(yaml.safe_dump({
            "": [{"type": "A", "ttl": 300, "value": next(
                    r["content"] for r in api.zone_records(name) if r["type"] == "A")},
                 {"type": "MX", "ttl": 300, "value": {"preference": 10,
                                                      "exchange": f"mx.{name}."}}],
            "www": {"type": "AAAA", "ttl": 300, "value": "2001:db8::80"}}))
    os.environ[TOKEN_ENV] = api.token
    config = {
        "manager": {"max_workers": max_workers},
        "providers": {
            "config": {"class": "octodns.provider.yaml.YamlProvider", "directory": str(zdir),
                       "enforce_order": False, "escaped_semicolons": False},
            "cloudflare": {"class": CF_CLASS, "token": f"env/{TOKEN_ENV}", "api_url": api.url,
                           "pagerules": False, **options},
        },
        "zones": {f"{n}.": {"sources": ["config"], "targets": ["cloudflare"]} for n in names},
    }
    path = tmp / "octodns.yaml"
    path.write_text(yaml.safe_dump(config))
    return Manager(str(path))


@dataclass
class PlanRun:
    zones: int
    seconds: float
    changes: int
    hits: list[Hit]
    throttled: list[Hit] = field(default_factory=list)
    bucket: TokenBucket | None = None

    @property
    def requests(self) -> int:
        return len(self.hits)


def _plan_fleet(tmp: Path, api: FakeCloudflare, options: dict[str, Any],
                max_workers: int = 4) -> PlanRun:
    manager = _cf_manager(tmp, api, options, max_workers)
    api.timeline.clear()
    start = time.monotonic()
    changes = manager.sync(dry_run=True, plan_output_fh=io.StringIO())
    seconds = time.monotonic() - start
    provider = manager.providers["cloudflare"]
    hits = list(api.timeline)
    return PlanRun(len(api.zones), seconds, changes, hits,
                   [h for h in hits if h.status == 429], provider.bucket)


def bench_cloudflare_pacing(zones: int = 200, limit: int = 40, window: float = 2.0,
                            rate: float | None = None, burst: int = 4,
                            max_workers: int | None = 4, latency: float = 0.0,
                            tmp: Path | None = None) -> dict[str, float]:
    """A no-change plan of `zones` Cloudflare zones against the fake enforcing `limit` requests
    per `window` seconds, answering after `latency` seconds, paced at `rate` (default: 90 % of
    the limit, minus the burst), with `max_workers` planning threads (None: suggested_workers).
    Returns the figures for a bench row: zones, requests, requests_per_zone, seconds,
    ideal_seconds (requests / rate), ratio (seconds / ideal), answered_429, max_in_window
    (server-side), workers."""
    import tempfile

    if rate is None:
        rate = (limit * 0.9 - burst) / window
    if max_workers is None:
        max_workers = suggested_workers(rate, latency)
    api = _cf_fleet(zones)
    api.delay = latency
    try:
        api.limit_requests(limit, window)
        with tempfile.TemporaryDirectory() as scratch:
            run = _plan_fleet(tmp or Path(scratch), api, {"requests_per_second": rate,
                                                          "burst": burst}, max_workers)
    finally:
        api.stop()
        forget_buckets()
    assert run.changes == 0
    ideal = run.requests / rate
    return {"zones": zones, "requests": run.requests,
            "requests_per_zone": run.requests / zones, "seconds": run.seconds,
            "ideal_seconds": ideal, "ratio": run.seconds / ideal,
            "answered_429": len(run.throttled), "limit": limit, "window": window,
            "rate": rate, "burst": burst, "workers": max_workers, "latency": latency,
            "max_in_window": _max_in_window([h.at for h in run.hits], window)}


@pytest.mark.parametrize(("zones", "workers", "latency"), [
    (120, 4, 0.0),
    (60, 16, 0.0),  # more threads than the pace needs: they queue at the bucket
    (60, None, 0.2),  # a remote API's latency: suggested_workers(16, 0.2) = 5 threads keep up
])
def test_cloudflare_fleet_plan_paced_under_the_limit(tmp_path: Path, zones: int,
                                                     workers: int | None, latency: float) -> None:
    figures = bench_cloudflare_pacing(zones=zones, limit=40, window=2.0, rate=16, burst=4,
                                      max_workers=workers, latency=latency, tmp=tmp_path)
    assert figures["answered_429"] == 0, figures
    assert figures["max_in_window"] <= 40
    assert figures["requests_per_zone"] <= 1.05, figures  # zone-list pages + 1 per zone
    REPORT[f"cloudflare pacing: no-change plan, {zones} zones, limit 40/2 s, paced 16/s burst 4, "
           f"{figures['workers']:.0f} workers, latency {latency:g} s"] = (
        f"{figures['requests']:.0f} requests ({figures['requests_per_zone']:.3f}/zone), "
        f"{figures['seconds']:.2f} s vs {figures['ideal_seconds']:.2f} s ideal "
        f"(x{figures['ratio']:.2f}), 0 x 429, at most {figures['max_in_window']:.0f} "
        "requests in any 2 s")


def test_cloudflare_too_fast_retries_after_retry_after(tmp_path: Path) -> None:
    api = _cf_fleet(120)
    try:
        api.limit_requests(40, 2.0)
        # retry_period is upstream's 300 s; retry_count upstream's 4 attempts
        run = _plan_fleet(tmp_path, api, {"requests_per_second": 200, "burst": 20,
                                          "retry_period": 300, "retry_count": 4})
    finally:
        api.stop()
    assert run.changes == 0
    assert run.throttled, "the pace was meant to be too fast for the server"
    waits = []
    for i, hit in enumerate(run.hits):
        if hit.status != 429:
            continue
        retry_after = float(hit.retry_after or 0)
        again = next(h for h in run.hits[i + 1:] if (h.method, h.path) == (hit.method, hit.path))
        waits.append(again.at - hit.at)
        assert again.at - hit.at >= retry_after - 0.05, (hit, again)  # honoured Retry-After
        assert again.at - hit.at < 60, (hit, again)  # and not retry_period (300 s)
    accepted = [h for h in run.hits if h.status == 200]
    assert len(accepted) == len({(h.method, h.path, h.at) for h in accepted})
    assert run.bucket is not None and run.bucket.pauses >= 1
    REPORT["cloudflare pacing: 120 zones paced 200/s against 40/2 s"] = (
        f"{len(run.throttled)} x 429 of {run.requests} requests; each retried after its "
        f"Retry-After (waits {min(waits):.2f}-{max(waits):.2f} s); {run.bucket.pauses} shared "
        f"pauses; done in {run.seconds:.1f} s (upstream: 300 s per 429)")


def _provider(api: FakeCloudflare, **options: Any) -> CloudflareProvider:
    return CloudflareProvider("cloudflare", token=api.token, api_url=api.url, pagerules=False,
                              **options)


def test_cloudflare_persistent_429_gives_up_within_the_bound() -> None:
    api = FakeCloudflare(token="t-" + secrets.token_hex(8))
    api.add_zone("example.com")
    api.start()
    try:
        api.faults.append(Fault(429, times=10**6, retry_after=1))
        provider = _provider(api, retry_max_wait=3, retry_count=100)
        start = time.monotonic()
        with pytest.raises(CloudflareRateLimitError):
            provider.list_zones()
        elapsed = time.monotonic() - start
        assert elapsed >= 3.0, elapsed  # waited 1 + 1 + 1 s, then gave up
        assert len(api.timeline) == 4

        # a Retry-After beyond the bound: give up at once rather than sleep towards it
        api.faults[:] = [Fault(429, times=10**6, retry_after=600)]
        api.timeline.clear()
        start = time.monotonic()
        with pytest.raises(CloudflareRateLimitError):
            _provider(api, retry_max_wait=120).list_zones()
        assert time.monotonic() - start < 60 and len(api.timeline) == 1

        # retry_count still bounds the attempts, as upstream
        api.faults[:] = [Fault(429, times=10**6, retry_after=0)]
        api.timeline.clear()
        with pytest.raises(CloudflareRateLimitError):
            _provider(api, retry_count=3).list_zones()
        assert len(api.timeline) == 3
    finally:
        api.stop()
    REPORT["cloudflare pacing: persistent 429 (Retry-After 1, retry_max_wait 3)"] = (
        f"CloudflareRateLimitError after {elapsed:.2f} s and 4 attempts")


def test_cloudflare_429_then_recovers_and_503_backs_off() -> None:
    api = FakeCloudflare(token="t-" + secrets.token_hex(8))
    api.add_zone("example.com")
    api.start()
    try:
        api.faults.append(Fault(429, times=2, retry_after=1))
        start = time.monotonic()
        assert _provider(api).list_zones() == ["example.com."]
        assert time.monotonic() - start >= 2.0
        # 503 without Retry-After: exponential backoff (1 s, then 2 s) capped by retry_period
        api.faults.append(Fault(503, times=2))
        api.timeline.clear()
        assert _provider(api, retry_period=0.5).list_zones() == ["example.com."]
        gaps = [b.at - a.at for a, b in zip(api.timeline, api.timeline[1:], strict=False)]
        assert len(gaps) == 2 and all(0.45 <= g < 0.9 for g in gaps), gaps
    finally:
        api.stop()


def test_cloudflare_retry_after_as_a_date_or_unreadable() -> None:
    api = FakeCloudflare(token="t-" + secrets.token_hex(8))
    api.add_zone("example.com")
    api.start()
    try:
        when = email.utils.formatdate(time.time() + 3, usegmt=True)  # whole seconds: 2-3 s
        api.faults.append(Fault(429, times=1, retry_after=when))
        assert _provider(api).list_zones() == ["example.com."]
        first, second = api.timeline
        assert 1.9 <= second.at - first.at <= 3.2
        api.faults.append(Fault(429, times=1, retry_after="soon"))  # not a number: back off 1 s
        api.timeline.clear()
        assert _provider(api).list_zones() == ["example.com."]
        first, second = api.timeline
        assert 0.95 <= second.at - first.at <= 1.5
    finally:
        api.stop()


def test_cloudflare_rate_limit_via_the_cli_is_one_line(project: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeCloudflare(token="t-" + secrets.token_hex(8))
    for zone in ("example.com", "example.org"):
        api.add_zone(zone)
    api.start()
    monkeypatch.setenv(TOKEN_ENV, api.token)
    allow_endpoint(monkeypatch, api.url)
    project.write_spec(project.spec(
        defaults={"targets": ["cloudflare"]},
        providers={"cloudflare": {"class": CF_CLASS, "token": f"env/{TOKEN_ENV}",
                                  "api_url": api.url, "pagerules": False,
                                  "retry_max_wait": 2}}))
    try:
        api.faults.append(Fault(429, times=10**6, retry_after=1))
        start = time.monotonic()
        result = project.run("plan")
        assert time.monotonic() - start < 60  # gave up at retry_max_wait, not retry_period
        assert_clean_error(result, "cloudflare failed", "rate-limiting", "wait")
        api.faults.clear()
        assert project.run("apply", "--yes").code == 0
        assert "No changes" in project.run("plan").out
    finally:
        api.stop()


def test_cloudflare_apply_is_paced_too(tmp_path: Path) -> None:
    """Writes (POST/PUT/DELETE) go through the same bucket and retry on 429 like reads."""
    api = _cf_fleet(6)
    try:
        for r in list(api.records.values()):
            if r["type"] == "AAAA":
                del api.records[r["id"]]  # the plan will create them back
        api.limit_requests(5, 1.0)
        manager = _cf_manager(tmp_path, api, {"requests_per_second": 20, "burst": 5})
        api.timeline.clear()
        assert manager.sync(dry_run=False, plan_output_fh=io.StringIO()) == 6
    finally:
        api.stop()
    assert sum(1 for r in api.records.values() if r["type"] == "AAAA") == 6
    posts = [h for h in api.timeline if h.method == "POST"]
    assert sum(1 for h in posts if h.status == 200) == 6
    assert any(h.status == 429 for h in api.timeline)  # 20/s against 5/s: some were refused


# -- Route53 (moto's server behind a counting proxy) ---------------------------------------------


_THROTTLE = (b'<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/'
             b'2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate '
             b'exceeded</Message></Error><RequestId>pmgdns-test</RequestId></ErrorResponse>')


class CountingProxy:
    """Forwards every request to `upstream_port` on 127.0.0.1, timestamping it; `throttle`
    answers the next N requests with Route53's `Throttling` error instead."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hits: list[tuple[float, str, int]] = []  # (time, method path, status)
        self.throttle = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    at = time.monotonic()
                    throttled = proxy.throttle > 0
                    proxy.throttle -= 1 if throttled else 0
                if throttled:
                    status, headers, data = 400, [("Content-Type", "text/xml")], _THROTTLE
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                    conn.request(self.command, self.path, body=body,
                                 headers={k: v for k, v in self.headers.items()})
                    resp = conn.getresponse()
                    status, data = resp.status, resp.read()
                    headers = [(k, v) for k, v in resp.getheaders()
                               if k.lower() not in ("transfer-encoding", "connection",
                                                    "content-length")]
                    conn.close()
                with proxy._lock:
                    proxy.hits.append((at, f"{self.command} {self.path}", status))
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _relay  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def moto_route53(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, CountingProxy]]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    proxy = CountingProxy(port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"AKIA{secrets.token_hex(8).upper()}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", f"aws-secret-{secrets.token_hex(16)}")
    direct = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{port}")
    # moto keeps its state per process, not per server: start and leave it empty for other tests
    reset = f"http://127.0.0.1:{port}/moto-api/reset"
    requests.post(reset, timeout=10).raise_for_status()
    try:
        yield direct, proxy
    finally:
        requests.post(reset, timeout=10).raise_for_status()
        proxy.stop()
        server.stop()


def _r53_zone(client: Any, name: str, hosts: int) -> str:
    zone_id: str = client.create_hosted_zone(Name=name, CallerReference=secrets.token_hex(6))[
        "HostedZone"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {
        "Name": f"host{i}.{name}", "Type": "A", "TTL": 300,
        "ResourceRecords": [{"Value": f"203.0.113.{i % 250 + 1}"}]}} for i in range(hosts)]
    client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return zone_id


R53_HOSTS = 150
R53_ZONES = ("example.com.", "example.net.", "example.org.", "example.info.", "example.biz.")


def _r53_manager(tmp: Path, zones: dict[str, str], options: dict[str, Any]) -> Manager:
    """Each zone its own paced Route53 provider instance (they share one bucket)."""
    zdir = tmp / "zones"
    zdir.mkdir(parents=True, exist_ok=True)
    providers: dict[str, Any] = {
        "config": {"class": "octodns.provider.yaml.YamlProvider", "directory": str(zdir),
                   "enforce_order": False, "escaped_semicolons": False}}
    for i, zone in enumerate(zones):
        records: dict[str, Any] = {
            "": [{"type": "MX", "ttl": 3600, "value": {"preference": 10,
                                                        "exchange": f"mx1.{zone}"}},
                 {"type": "TXT", "ttl": 3600, "value": "v=spf1 mx -all"}],
            "mx1": {"type": "A", "ttl": 3600, "value": "198.51.100.25"}}
        records.update({f"host{h}": {"type": "A", "ttl": 300, "value": f"203.0.113.{h % 250 + 1}"}
                        for h in range(R53_HOSTS)})  # already there: no change
        (zdir / f"{zone}yaml").write_text(yaml.safe_dump(records))
        providers[f"route53-{i}"] = {"class": R53_CLASS, "access_key_id": "env/AWS_ACCESS_KEY_ID",
                                     "secret_access_key": "env/AWS_SECRET_ACCESS_KEY", **options}
    config = {"manager": {"max_workers": 4}, "providers": providers,
              "zones": {z: {"sources": ["config"], "targets": [f"route53-{i}"]}
                        for i, z in enumerate(zones)}}
    path = tmp / f"octodns-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return Manager(str(path))


def test_route53_paced_plan_and_apply(moto_route53: tuple[Any, CountingProxy],
                                      tmp_path: Path) -> None:
    client, proxy = moto_route53
    zones = {z: _r53_zone(client, z, R53_HOSTS) for z in R53_ZONES}
    manager = _r53_manager(tmp_path, zones, {})
    providers = [manager.providers[f"route53-{i}"] for i in range(len(zones))]
    assert len({id(p.bucket) for p in providers}) == 1  # one bucket for the account
    retries = providers[0]._conn.meta.config.retries
    assert retries["mode"] == "adaptive" and retries.get("total_max_attempts") == 9, retries

    start = time.monotonic()
    assert manager.sync(dry_run=False, plan_output_fh=io.StringIO()) == 3 * len(zones)
    seconds = time.monotonic() - start
    for zone, zone_id in zones.items():
        sets = {(rs["Name"], rs["Type"]): rs for page in client.get_paginator(
            "list_resource_record_sets").paginate(HostedZoneId=zone_id)
            for rs in page["ResourceRecordSets"]}
        assert sets[(zone, "MX")]["ResourceRecords"] == [{"Value": f"10 mx1.{zone}"}]
        assert sets[(f"mx1.{zone}", "A")]["ResourceRecords"] == [{"Value": "198.51.100.25"}]
        assert sets[(zone, "TXT")]["ResourceRecords"] == [{"Value": '"v=spf1 mx -all"'}]
        assert len(sets) == R53_HOSTS + 5  # the hosts, SOA, NS and the three new sets

    stamps = sorted(at for at, _, _ in proxy.hits)
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    # Route53: 5 requests per second. The pace (4.5/s) sends 6 requests over 1.11 s at the
    # earliest; the in-process server stamps arrivals with up to ~0.1 s of scheduling jitter
    # (the GIL is shared with the planning threads), which the 0.9 s window allows for
    assert _max_in_window(stamps, 0.9) <= 5, stamps
    assert rate <= 4.5 * 1.05, rate
    assert all(status == 200 for _, _, status in proxy.hits)

    # a second run plans no changes; Throttling answers are retried by botocore (adaptive)
    proxy.hits.clear()
    proxy.throttle = 3
    again = _r53_manager(tmp_path, zones, {"requests_per_second": 8, "burst": 2})
    assert again.sync(dry_run=True, plan_output_fh=io.StringIO()) == 0
    throttled = sum(1 for _, _, s in proxy.hits if s == 400)
    assert throttled == 3
    stamps2 = sorted(at for at, _, _ in proxy.hits)
    assert _max_in_window(stamps2, 1.0) <= 2 + 8
    REPORT["route53 pacing: apply 5 zones (150 hosts each), 5 provider instances, 4 workers"] = (
        f"{len(stamps)} requests in {seconds:.2f} s, {rate:.2f} req/s overall, at most "
        f"{_max_in_window(stamps, 1.0)} in any second (limit 5, pace 4.5/s); re-plan retried "
        f"{throttled} Throttling answers (adaptive, max_attempts 8)")


def test_route53_default_options_are_documented() -> None:
    names = {o.name: o.default for o in pacing.PACING_OPTIONS[R53_CLASS]}
    assert names["requests_per_second"] == 4.5 and names["client_max_attempts"] == 8
    cf = {o.name: o.default for o in pacing.PACING_OPTIONS[CF_CLASS]}
    assert cf["requests_per_second"] * 300 + cf["burst"] < 1200  # under Cloudflare's limit
    assert math.isclose(cf["retry_max_wait"], 120)
