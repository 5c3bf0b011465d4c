"""Where a provider sends its credential is the operator's choice, not the spec's.

A spec comes from a pull request and its plan runs with the provider credentials in the
environment. A provider option that names where requests go (`api_url`, `url`, `endpoint`,
`base_url`, `server`, `host`, ...: found by name among the constructor parameters of the class
and its bases) may hold only the value the class itself defaults to, or an endpoint the operator
allows outside the spec in `PMGDNS_ALLOW_ENDPOINTS` (comma-separated base URLs, e.g.
`https://cf-test.internal/client/v4,http://127.0.0.1:8081`). Anything else stops `validate`,
`plan` and `apply` before any connection.

Classes that only sign with their secret keep their endpoint options: an RFC 2136 server or an
AXFR source receives TSIG-signed messages (the key never leaves the host), and Route 53 receives
SigV4-signed requests, each bound to its host and time.

A value is checked in a strict form (scheme, host, optional port and a plain path: no user
part, no backslash, no escapes, no `..`), so no URL parser can read a different host from it.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import SpecError, UsageError
from ..core.text import visible

ALLOW_VARIABLE = "PMGDNS_ALLOW_ENDPOINTS"

# parameter names that say where a request goes
_ENDPOINT_NAME = re.compile(
    r"(^|_)(endpoint|endpoints|server|servers|host|hosts|hostname|address|api_root)$"
    r"|(url|urls|uri)$", re.IGNORECASE)
# classes (any class in the MRO, by module and name) whose secret signs and is never sent
SIGNING_BASES = frozenset({
    "octodns_bind.AxfrPopulate",  # RFC 2136 updates and AXFR, TSIG-signed
    "octodns_bind.Rfc2136Provider",
    "octodns_bind.AxfrSource",
    "octodns_route53.auth._AuthMixin",  # Route 53, EC2, ELB: SigV4-signed
    "octodns_route53.provider.Route53Provider",
})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}" \
        r"[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])"
_URL = re.compile(rf"^(?P<scheme>https?)://(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?"
                  r"(?P<path>(?:/[A-Za-z0-9._~-]*)*)$")
_BARE_HOST = re.compile(rf"^(?P<host>{_HOST}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$")


@dataclass(frozen=True)
class Endpoint:
    """A strict endpoint: scheme (None when the class has no scheme option), host, port (None
    when unknown) and path segments; for a bare host only its origin counts."""

    scheme: str | None
    host: str
    port: int | None
    path: tuple[str, ...] = ()
    origin: bool = False  # a bare host (with scheme and port options): the path is the class's

    def within(self, base: Endpoint) -> bool:
        """Whether a request to this endpoint goes to `base` (same origin, path under it)."""
        if self.host != base.host:
            return False
        if self.scheme is not None and base.scheme is not None and self.scheme != base.scheme:
            return False
        if self.port is not None and base.port is not None and self.port != base.port:
            return False
        if self.origin:
            return True
        return self.path[:len(base.path)] == base.path

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = ("" if self.port is None or self.port == _DEFAULT_PORTS.get(self.scheme or "")
                else f":{self.port}")
        scheme = f"{self.scheme}://" if self.scheme else ""
        return f"{scheme}{host}{port}{''.join('/' + p for p in self.path)}"


def _host(text: str) -> str | None:
    host = text.strip("[]").lower().rstrip(".")
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    return host or None


def parse_url(text: str) -> Endpoint | None:
    """A strict `scheme://host[:port][/path]`, or None when `text` is not one."""
    m = _URL.match(text)
    if m is None:
        return None
    host = _host(m["host"])
    segments = tuple(s for s in m["path"].split("/") if s)
    if host is None or any(s in (".", "..") for s in segments):
        return None
    port = int(m["port"]) if m["port"] else _DEFAULT_PORTS[m["scheme"].lower()]
    if not 0 < port < 65536:
        return None
    return Endpoint(m["scheme"].lower(), host, port, segments)


def allowed_endpoints(environ: Mapping[str, str] | None = None) -> list[Endpoint]:
    """The operator's `PMGDNS_ALLOW_ENDPOINTS`; a UsageError for an entry that is no base URL."""
    text = (os.environ if environ is None else environ).get(ALLOW_VARIABLE, "")
    out = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        endpoint = parse_url(item)
        if endpoint is None:
            raise UsageError(f"{ALLOW_VARIABLE}: `{visible(item[:100])}` is not a base URL such "
                             "as https://dns-api.example.net/v1 (scheme, host, optional port "
                             "and path; entries separated by commas)")
        out.append(endpoint)
    return out


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def signs_only(cls: type) -> bool:
    """Whether the class (or a base) is one whose secret signs requests and is never sent."""
    return any(_qualname(c) in SIGNING_BASES for c in cls.__mro__)


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The named parameters of `cls.__init__` and of every base's, nearest class first (a
    subclass passing `**kwargs` on still takes its bases' options)."""
    params: dict[str, inspect.Parameter] = {}
    for c in cls.__mro__:
        init = c.__dict__.get("__init__")
        if init is None or c is object:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            continue
        for name, p in signature.parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in ("self", "id"):
                params.setdefault(name, p)
    return params


def endpoint_options(cls: type) -> list[str]:
    """The constructor options of `cls` that name where its requests go."""
    return sorted(n for n in constructor_parameters(cls) if _ENDPOINT_NAME.search(n))


def _resolve(value: Any) -> Any:
    """An `env/VARIABLE` value read from the environment (None when unset)."""
    if isinstance(value, str) and value.startswith("env/"):
        return os.environ.get(value[4:])
    return value


def _endpoints(value: Any, conf: Mapping[str, Any], params: Mapping[str, inspect.Parameter]
               ) -> list[Endpoint | None]:
    """The endpoints a value names: a URL as it is, a bare host with the class's scheme and
    port options (or their defaults); None for a value that is neither."""
    values = value if isinstance(value, (list, tuple)) else [value]
    out: list[Endpoint | None] = []
    for v in values:
        if not isinstance(v, str):
            out.append(None)
            continue
        if "://" in v:
            out.append(parse_url(v))
            continue
        m = _BARE_HOST.match(v)
        host = _host(m["host"]) if m else None
        if host is None:
            out.append(None)
            continue

        def option(name: str) -> Any:
            if name in conf:
                return _resolve(conf[name])
            p = params.get(name)
            return None if p is None or p.default is p.empty else p.default

        scheme = option("scheme")
        port = option("port")
        if scheme is not None and str(scheme).lower() not in _DEFAULT_PORTS:
            out.append(None)
            continue
        try:
            port_number = None if port is None else int(str(port))
        except ValueError:
            out.append(None)
            continue
        out.append(Endpoint(None if scheme is None else str(scheme).lower(), host, port_number,
                            origin=True))
    return out


def check_endpoints(file: str, provider: str, cls: type, conf: Mapping[str, Any],
                    allowed: Iterable[Endpoint] | None = None) -> None:
    """Every endpoint option the spec gives provider `provider` (of class `cls`) is the class's
    own default or within an allowed endpoint; a SpecError naming the key, the host and the
    variable otherwise."""
    if signs_only(cls):
        return
    params = constructor_parameters(cls)
    options = endpoint_options(cls)
    given = [k for k in sorted(conf) if k in options or (options and k in ("scheme", "port"))]
    if not given:  # every endpoint as the class defaults it
        return
    bases_given = allowed_endpoints() if allowed is None else list(allowed)
    for option in options:
        default = params[option].default
        raw = _resolve(conf[option]) if option in conf else default
        if raw is None or raw is inspect.Parameter.empty or raw == "":
            continue  # unset (an env/ variable is reported before any connection elsewhere)
        defaults = ([] if default is params[option].empty or default is None
                    else [e for e in _endpoints(default, {}, params) if e is not None])
        where = f"providers.{provider}.{option if option in conf else given[0]}"
        for endpoint in _endpoints(raw, conf, params):
            if endpoint is None:
                raise SpecError(file, where, (
                    "is not an endpoint pmgdns can check (give scheme://host[:port][/path] or a "
                    "plain host name; no user part, escapes or `..`); the value is not shown"))
            if not any(endpoint.within(b) for b in [*defaults, *bases_given]):
                own = f" (the provider's own is {defaults[0]})" if defaults else ""
                raise SpecError(file, where, (
                    f"sends the provider's credential to {visible(endpoint.host)} "
                    f"({visible(str(endpoint))}), which is neither the provider's own "
                    f"endpoint{own} nor one the operator allows. A spec may not choose where "
                    "credentials go: the operator allows an endpoint outside the spec, in the "
                    "environment variable "
                    f"{ALLOW_VARIABLE} (comma-separated base URLs). Nothing was contacted"))
