"""octodns-route53's provider with botocore's adaptive retries and a shared pacing bucket.

Drop-in for `octodns_route53.Route53Provider` (same options, plus `requests_per_second`, `burst`,
`pace_group`):

- the boto3 client uses `Config(retries={"mode": "adaptive", "max_attempts": N})`: on a
  `Throttling` answer botocore backs off exponentially and its client-side rate limiter slows
  the client down; N is upstream's `client_max_attempts` (botocore counts retries after the first
  attempt), default 8 here (upstream: unset, botocore's legacy mode with 4 retries);
- every Route53 request (retries too: botocore emits `before-send` for each attempt) first takes a
  token from one bucket shared by every Route53 provider in the process (`pace_group`, default
  "route53": the limit is per AWS account, and which account a credential belongs to is not known
  without an extra STS call), at 4.5 requests per second (the limit is 5).
"""

from __future__ import annotations

import re
from typing import Any

import boto3
import octodns_route53
from botocore.config import Config

from .bind import txt_presentation
from .pacing import ROUTE53_BURST, ROUTE53_MAX_ATTEMPTS, ROUTE53_RATE, TokenBucket, shared_bucket

PACED_SERVICES = ("route53",)  # STS (assume-role) has its own, separate limits


class Route53Provider(octodns_route53.Route53Provider):  # type: ignore[misc]
    """octodns_route53.Route53Provider, paced, with adaptive retries (module doc)."""

    def __init__(self, id: str, *args: Any, requests_per_second: float = ROUTE53_RATE,
                 burst: int = ROUTE53_BURST, pace_group: str | None = None,
                 **kwargs: Any) -> None:
        # Set before upstream's __init__, which builds the client through self.client().
        self.bucket: TokenBucket = shared_bucket(pace_group or "route53",
                                                 float(requests_per_second), int(burst))
        self.requests_per_second = float(requests_per_second)
        if kwargs.get("client_max_attempts") is None:
            kwargs["client_max_attempts"] = ROUTE53_MAX_ATTEMPTS
        super().__init__(id, *args, **kwargs)

    def retry_config(self, max_attempts: int) -> Config:
        return Config(retries={"mode": "adaptive", "max_attempts": int(max_attempts)})

    def client(self, service_name: str, access_key_id: str | None,
               secret_access_key: str | None, session_token: str | None,
               role_arn: str | None, profile: str | None, client_max_attempts: int | None,
               *args: Any, **kwargs: Any) -> Any:
        """Mirrors upstream's `_AuthMixin.client` (the public hook its __init__ calls to build
        `self._conn`), which hard-codes `config=Config(retries={'max_attempts': n})` as a keyword
        of `Session.client`, so no config can be passed through it. Same credential logic:
        an assumed role when `role_arn` is set, else the given keys, else boto3's own chain."""
        if role_arn:
            self.log.debug("client:   assuming role %s", role_arn)
            sts = self.client("sts", access_key_id, secret_access_key, session_token, None,
                              profile, client_max_attempts, *args, **kwargs)
            ident = re.sub(r"[^a-zA-Z0-9_=,.@-]+", "-", self.id)
            creds = sts.assume_role(RoleArn=role_arn,
                                    RoleSessionName="octodns-route53-" + ident)["Credentials"]
            access_key_id = creds["AccessKeyId"]
            secret_access_key = creds["SecretAccessKey"]
            session_token = creds["SessionToken"]
        session_kwargs: dict[str, Any] = {}
        if profile is not None:
            session_kwargs["profile_name"] = profile
        if not (access_key_id is None and secret_access_key is None and session_token is None):
            session_kwargs.update(aws_access_key_id=access_key_id,
                                  aws_secret_access_key=secret_access_key,
                                  aws_session_token=session_token)
        attempts = ROUTE53_MAX_ATTEMPTS if client_max_attempts is None else client_max_attempts
        client = boto3.Session(**session_kwargs).client(
            *args, service_name=service_name, config=self.retry_config(attempts), **kwargs)
        if service_name in PACED_SERVICES:
            # botocore emits before-send once per HTTP attempt, retries included; the handler
            # returns None, so the request is then sent as usual.
            client.meta.events.register("before-send", self._pace)
        self.log.debug("client: service_name=%s, retry mode adaptive, max_attempts=%d, "
                       "paced at %s/s", service_name, attempts, self.bucket.rate)
        return client

    def _pace(self, **kwargs: Any) -> None:
        self.bucket.acquire()

    # upstream renders TXT through octoDNS's legacy chunking, which loops forever on a value
    # ending in a backslash; these send each value as the bytes it is (dnspython's escaping)
    def _value_convert_quoted(self, value: Any, record: Any) -> str:
        return txt_presentation(value)

    def _values_for_quoted(self, record: Any) -> list[str]:
        return [txt_presentation(v) for v in record.values]

    _value_convert_SPF = _value_convert_quoted
    _value_convert_TXT = _value_convert_quoted
    _values_for_SPF = _values_for_quoted
    _values_for_TXT = _values_for_quoted

__all__ = ["Route53Provider"]
