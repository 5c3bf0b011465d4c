"""octodns-cloudflare's provider, paced under Cloudflare's API limit and honouring Retry-After.

Drop-in for `octodns_cloudflare.CloudflareProvider` (same options, plus `requests_per_second`,
`burst`, `retry_max_wait`, `pace_group`):

- every HTTP request, first attempts and retries alike, takes a token from the bucket shared by
  every provider instance using the same API URL and credential (or the same `pace_group`), so
  octoDNS's planning threads together stay under 1,200 requests per 5 minutes;
- a 429 (and a 502/503) is retried by urllib3 on the provider's requests Session after the
  server's Retry-After, holding every thread that shares the bucket, instead of upstream's fixed
  `retry_period` sleep (300 s, up to 4 times: octodns-cloudflare issue 108). When the next wait
  would take one request's total waiting past `retry_max_wait` (120 s), or after `retry_count`
  attempts, the last response goes back to upstream's `_request`, which raises its own
  `CloudflareRateLimitError` (pmgdns shows it as one "rate-limiting" line);
- `retry_count` keeps its meaning (attempts per request on 429 and, as upstream, 502/503);
  `retry_period` is no longer slept on a 429: it caps one exponential backoff wait (1, 2, 4 s…)
  when a 429/502/503 carries no Retry-After, and stays upstream's pause between retries of an
  authentication error (`auth_error_retry_count`, off by default).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Self

import octodns_cloudflare
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from .bind import txt_presentation
from .pacing import CLOUDFLARE_BURST, CLOUDFLARE_RATE, RETRY_MAX_WAIT, TokenBucket, shared_bucket

log = logging.getLogger("pmgdns.providers.cloudflare")

RETRY_STATUSES = (429, 502, 503)  # upstream retries these three


class PacedRetry(Retry):
    """urllib3's Retry for 429/502/503 on every method, waiting through a shared TokenBucket.

    `increment` (called once per refused attempt, before `sleep`) works out the wait: the
    server's Retry-After (seconds or HTTP date), else exponential backoff capped at `backoff_max`.
    If that wait would take this request's total past `max_wait`, it raises MaxRetryError, and
    with `raise_on_status=False` urllib3 hands the refused response back to the caller unchanged.
    `sleep` then pauses the shared bucket for the wait (all threads hold off, not just this one)
    and takes a token for the retry, so retries are paced like first attempts."""

    def __init__(self, *args: Any, bucket: TokenBucket | None = None,
                 max_wait: float = RETRY_MAX_WAIT, waited: float = 0.0,
                 next_wait: float = 0.0, logger: logging.Logger = log, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bucket = bucket
        self.logger = logger
        self.max_wait = max_wait
        self.waited = waited  # seconds this request has waited for retries so far
        self.next_wait = next_wait  # the wait before the attempt this Retry object allows

    def new(self, **kw: Any) -> Self:
        kw.setdefault("bucket", self.bucket)
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        kw.setdefault("next_wait", self.next_wait)
        kw.setdefault("logger", self.logger)
        return super().new(**kw)

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: ConnectionPool | None = None, _stacktrace: Any = None) -> Self:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        try:
            retry_after = self.get_retry_after(response) if response is not None else None
        except InvalidHeader:  # neither seconds nor an HTTP date: back off instead
            retry_after = None
        wait = new.backoff_wait() if retry_after is None else retry_after
        status = response.status if response is not None else None
        if self.waited + wait > self.max_wait:
            self.logger.warning("HTTP %s from %s: waiting %.0fs more would exceed "
                                "retry_max_wait (%.0fs); giving up", status, url, wait,
                                self.max_wait)
            cause = f"{status}: waiting {wait:g}s more would exceed {self.max_wait:g}s"
            raise MaxRetryError(_pool, url, ResponseError(cause))  # type: ignore[arg-type]
        self.logger.warning("HTTP %s from %s: retrying in %.1fs (%s)", status, url, wait,
                            "Retry-After" if retry_after is not None else "backoff")
        new.waited = self.waited + wait
        new.next_wait = wait
        return new

    def backoff_wait(self) -> float:
        """Backoff for a refusal without Retry-After: factor x 2^(n-1) for the n-th consecutive
        one (urllib3's own formula waits 0 s before the first retry), capped at backoff_max."""
        n = max(1, len(self.history))
        return float(max(0.0, min(self.backoff_max, self.backoff_factor * 2 ** (n - 1))))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        if self.bucket is None:
            super().sleep(response)
            return
        self.bucket.pause(self.next_wait)
        self.bucket.acquire()


class PacedAdapter(HTTPAdapter):
    """requests' HTTPAdapter that takes a token from the bucket before each first attempt
    (retries take theirs in PacedRetry.sleep)."""

    def __init__(self, bucket: TokenBucket, retry: PacedRetry, **kwargs: Any) -> None:
        super().__init__(max_retries=retry, **kwargs)
        self.bucket = bucket

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        self.bucket.acquire()
        return super().send(request, *args, **kwargs)


def pace_key(api_url: str, email: str | None, token: str | None) -> str:
    """Cloudflare's limit is per user; the credential is the best stand-in known offline."""
    digest = hashlib.sha256(f"{email or ''}\0{token or ''}".encode()).hexdigest()[:16]
    return f"cloudflare {api_url.rstrip('/')} {digest}"


class CloudflareProvider(octodns_cloudflare.CloudflareProvider):  # type: ignore[misc]
    """octodns_cloudflare.CloudflareProvider, paced and honouring Retry-After (module doc)."""

    def __init__(self, id: str, *args: Any, requests_per_second: float = CLOUDFLARE_RATE,
                 burst: int = CLOUDFLARE_BURST, retry_max_wait: float = RETRY_MAX_WAIT,
                 pace_group: str | None = None, retry_count: int = 4,
                 retry_period: float = 300, **kwargs: Any) -> None:
        # Upstream's _try_request loop sleeps retry_period on a 429 (retry_count tries) and on a
        # 502/503: with retry_count=0 it re-raises both at once, leaving the retries to the
        # Session below. Its auth-error retries (auth_error_retry_count) are unchanged.
        super().__init__(id, *args, retry_count=0, retry_period=retry_period, **kwargs)
        self.http_retry_count = max(1, int(retry_count))
        self.requests_per_second = float(requests_per_second)
        self.retry_max_wait = float(retry_max_wait)
        email, token = kwargs.get("email"), kwargs.get("token")
        key = pace_group or pace_key(self.api_url, email, token)
        self.bucket = shared_bucket(key, self.requests_per_second, int(burst))
        self.burst = self.bucket.burst
        retry = PacedRetry(
            total=None, connect=0, read=False, redirect=0, other=0,
            status=self.http_retry_count - 1, status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # a 429 means "not processed": safe on POST/PUT/DELETE too
            respect_retry_after_header=True, raise_on_status=False,
            backoff_factor=1.0, backoff_max=max(0.0, float(retry_period)),
            bucket=self.bucket, max_wait=self.retry_max_wait, logger=self.log)
        # `_sess` is upstream's private requests.Session, the one every `_request` goes through
        # (it holds the auth headers). Mounting an adapter for the API URL is the narrowest hook
        # that sees each HTTP response with its headers: upstream's CloudflareRateLimitError
        # keeps only the JSON body, so Retry-After is gone by the time `_request` raises.
        self._sess.mount(f"{self.api_url}/", PacedAdapter(self.bucket, retry))
        # Upstream fills its zone cache lazily; octoDNS's planning threads would each list the
        # zones on a cold cache. One lock keeps that to one listing.
        self._zones_lock = threading.Lock()
        self.log.debug("__init__: requests_per_second=%s, burst=%d, retry_max_wait=%s, "
                       "retry_count=%d", self.requests_per_second, self.burst,
                       self.retry_max_wait, self.http_retry_count)

    @property
    def zones(self) -> Any:
        with self._zones_lock:
            return super().zones

    def _contents_for_TXT(self, record: Any) -> Any:
        # upstream renders TXT through octoDNS's legacy chunking, which loops forever on a value
        # ending in a backslash; this sends each value as the bytes it is (dnspython's escaping)
        for value in record.values:
            yield {"content": txt_presentation(value)}

    _contents_for_SPF = _contents_for_TXT

__all__ = ["CloudflareProvider", "PacedAdapter", "PacedRetry", "pace_key"]
