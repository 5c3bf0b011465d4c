"""Client-side pacing shared by the paced providers: a thread-safe token bucket per API account.

Every request a paced provider sends first takes a token from the bucket of its API account
(`shared_bucket`): N planning threads and several provider instances in one process draw from the
same bucket, so together they stay under the provider's published limit. When the server answers
429 anyway (another client spends the same budget), `TokenBucket.pause` holds every thread that
shares the bucket until the server's Retry-After has passed, not only the one that was refused.

The bucket is a GCRA (a "virtual scheduling" token bucket): `rate` tokens per second, up to
`burst` at once. Over any interval of W seconds it lets through at most `burst + rate * W`
requests, which is what a provider's "N requests per W seconds" limit needs. Waiting is one
`time.sleep` of the computed delay, outside the lock, never a polling loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# The upstream octoDNS classes and the paced subclasses that replace them in build/octodns.yaml.
PACED_CLASSES: dict[str, str] = {
    "octodns_cloudflare.CloudflareProvider": "pmgdns.providers.cloudflare.CloudflareProvider",
    "octodns_route53.Route53Provider": "pmgdns.providers.route53.Route53Provider",
    # octodns_route53 also exports the class from its submodule
    "octodns_route53.provider.Route53Provider": "pmgdns.providers.route53.Route53Provider",
}

# Cloudflare: 1,200 requests per 5 minutes per user (4/s). 3.8/s plus a burst of 10 is at most
# 1,150 requests in any 5 minutes, leaving 50 for the dashboard or another tool of the same user.
CLOUDFLARE_RATE = 3.8
CLOUDFLARE_BURST = 10
# Route53: 5 requests per second per AWS account. 4.5/s with no burst is at most 5 requests in
# any second, and leaves room for clock jitter between threads.
ROUTE53_RATE = 4.5
ROUTE53_BURST = 1
# The longest a single request waits for Retry-After/backoff in total before giving up with the
# provider's rate-limit error (the CLI's one-line "rate-limiting" message).
RETRY_MAX_WAIT = 120.0
# botocore's `max_attempts` for Route53 in adaptive mode: retries after the first attempt (9
# attempts in all). Its backoff is random up to 1, 2, 4, 8, 16, then 20 s: at most 91 s in total,
# within RETRY_MAX_WAIT like Cloudflare's.
ROUTE53_MAX_ATTEMPTS = 8

# Typical round-trip of one API request, used to size the worker pool (see suggested_workers).
TYPICAL_LATENCY = {"cloudflare": 0.35, "route53": 0.25}


@dataclass(frozen=True)
class PacingOption:
    name: str
    default: object
    meaning: str


# The options each paced class adds (or re-interprets), for the README and `pmgdns` docs.
PACING_OPTIONS: dict[str, tuple[PacingOption, ...]] = {
    "pmgdns.providers.cloudflare.CloudflareProvider": (
        PacingOption("requests_per_second", CLOUDFLARE_RATE,
                     "steady request rate for this Cloudflare user (limit: 1,200 per 5 minutes)"),
        PacingOption("burst", CLOUDFLARE_BURST, "requests allowed at once before pacing starts"),
        PacingOption("retry_max_wait", RETRY_MAX_WAIT,
                     "seconds one request may wait for Retry-After in total before it fails"),
        PacingOption("retry_count", 4, "attempts per request on 429, 502 or 503 (upstream name)"),
        PacingOption("retry_period", 300,
                     "cap of one backoff wait when a 429/502/503 carries no Retry-After; no longer "
                     "a fixed sleep (upstream name; still the pause between auth-error retries)"),
        PacingOption("pace_group", None,
                     "bucket name; providers with the same name share one budget (default: one "
                     "bucket per API URL and credential)"),
    ),
    "pmgdns.providers.route53.Route53Provider": (
        PacingOption("requests_per_second", ROUTE53_RATE,
                     "steady request rate for the AWS account (limit: 5 per second)"),
        PacingOption("burst", ROUTE53_BURST, "requests allowed at once before pacing starts"),
        PacingOption("client_max_attempts", ROUTE53_MAX_ATTEMPTS,
                     "botocore retries per call after the first attempt, retry mode `adaptive` "
                     "(upstream name; upstream default: botocore's legacy mode, 4 retries)"),
        PacingOption("pace_group", "route53",
                     "bucket name; every Route53 provider in the process shares one by default, "
                     "as the account behind the credentials is not known without an extra call"),
    ),
}


class TokenBucket:
    """A thread-safe token bucket (GCRA): `rate` requests per second, `burst` at once.

    `acquire()` blocks the calling thread until it may send one request. Threads are served in
    the order they call `acquire` (each reserves the next free slot under the lock, then sleeps
    outside it). `pause(seconds)` makes every caller wait at least that long, e.g. for a 429's
    Retry-After; a thread already sleeping towards an earlier slot re-reserves after the pause.
    """

    def __init__(self, rate: float, burst: int = 1, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"requests_per_second must be a positive number, not {rate!r}")
        if int(burst) < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._set(rate, int(burst))
        self._tat = 0.0  # theoretical arrival time of the next request at the steady rate
        self._not_before = 0.0  # end of the latest pause
        self._epoch = 0  # bumped by every pause, so sleepers notice one
        self.acquired = 0
        self.waited = 0.0  # seconds callers spent blocked in acquire, summed over threads
        self.pauses = 0
        self.paused = 0.0  # seconds added by pauses (wall time, overlapping pauses merged)

    def _set(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = burst
        self._interval = 1.0 / self.rate
        self._tau = (self.burst - 1) * self._interval  # how far ahead of TAT a request may go

    def tighten(self, rate: float, burst: int) -> None:
        """Lower the pace to `rate`/`burst` if they are stricter (a second provider instance
        configured more conservatively for the same account)."""
        with self._lock:
            self._set(min(self.rate, float(rate)), min(self.burst, int(burst)))

    def _reserve(self) -> tuple[float, int]:
        """Reserve the next slot; returns (seconds to wait, epoch of the reservation)."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now, self._not_before)
            send_at = max(now, tat - self._tau, self._not_before)
            self._tat = tat + self._interval
            return send_at - now, self._epoch

    def acquire(self) -> float:
        """Block until one request may be sent; returns the seconds waited."""
        total = 0.0
        while True:
            delay, epoch = self._reserve()
            if delay > 0:
                self._sleep(delay)
                total += delay
            with self._lock:
                # A pause that began while we slept moves us behind it; otherwise we are done.
                if epoch == self._epoch or self._clock() >= self._not_before:
                    self.acquired += 1
                    self.waited += total
                    return total

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now (the server said so); afterwards requests
        resume at the steady rate, without a burst."""
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until <= self._not_before:
                return
            self.pauses += 1
            self.paused += until - max(now, self._not_before)
            self._not_before = until
            self._tat = max(self._tat, until + self._tau)
            self._epoch += 1

    def max_in(self, window: float) -> int:
        """The most requests this bucket lets through in any `window` seconds."""
        return self.burst + math.floor(self.rate * window + 1e-9)


_BUCKETS: dict[str, TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(key: str, rate: float, burst: int) -> TokenBucket:
    """The process-wide bucket for `key` (an API account), created on first use. A later caller
    with a stricter rate or burst tightens it; a looser one gets the existing, stricter bucket."""
    bucket = TokenBucket(rate, burst)  # validates the numbers before anything is shared
    with _BUCKETS_LOCK:
        existing = _BUCKETS.get(key)
        if existing is None:
            _BUCKETS[key] = bucket
            return bucket
    existing.tighten(rate, burst)
    return existing


def forget_buckets() -> None:
    """Drop every shared bucket (tests, or a long-lived process that changed its config)."""
    with _BUCKETS_LOCK:
        _BUCKETS.clear()


def suggested_workers(requests_per_second: float, latency: float, cap: int = 16) -> int:
    """Planning threads worth running against one paced API: enough requests in flight to use
    the whole pace (rate x latency, Little's law) plus one, at least 1, at most `cap`. More
    threads only queue at the bucket; fewer leave the pace unused while each waits on latency."""
    if requests_per_second <= 0 or latency < 0:
        raise ValueError("requests_per_second must be positive and latency non-negative")
    return max(1, min(cap, math.ceil(requests_per_second * latency) + 1))


def suggested_workers_for(provider_class: str, options: dict[str, object] | None = None,
                          latency: float | None = None) -> int | None:
    """`suggested_workers` for a provider as the spec names it (upstream or paced class path),
    from its `requests_per_second` option or the default; None for unpaced classes."""
    cls = PACED_CLASSES.get(provider_class, provider_class)
    if cls not in PACING_OPTIONS:
        return None
    defaults = {o.name: o.default for o in PACING_OPTIONS[cls]}
    opts = {**defaults, **(options or {})}
    kind = "cloudflare" if "cloudflare" in cls else "route53"
    rate = float(str(opts["requests_per_second"]))
    return suggested_workers(rate, TYPICAL_LATENCY[kind] if latency is None else latency)


__all__ = ["PACED_CLASSES", "PACING_OPTIONS", "TokenBucket", "forget_buckets", "shared_bucket",
           "suggested_workers", "suggested_workers_for"]
