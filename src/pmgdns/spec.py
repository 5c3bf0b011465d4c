"""Step 1 of the data path: read and check the mail-site spec (spec-v1 §1) into a typed `Site`."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import idna

from . import dkim as dkimlib
from .errors import SpecError
from .yamlload import LocatedYaml, Path, load_located

DEFAULT_CONFIG = "config/site.yaml"
SOURCE_ID = "pmgdns"  # the octoDNS source provider that reads zones/
RESERVED_PROVIDERS = {SOURCE_ID}
LOCAL_PROVIDER: dict[str, Any] = {
    "class": "pmgdns.local.LocalZoneFileProvider",
    "directory": "./build/zones",
}

POLICIES = ("none", "quarantine", "reject")
DMARC_KEYS = ("p", "sp", "np", "t", "rua", "ruf", "fo", "aspf", "adkim", "pct", "rf", "ri")
DMARC_REMOVED = ("pct", "rf", "ri")
DMARC_BUILTIN: dict[str, Any] = {"p": "quarantine", "aspf": "s", "adkim": "s"}
DOMAIN_KEYS = ("ttl", "targets", "mx_priority", "spf", "wildcard_spf", "dmarc", "absent")
DEFAULTS: dict[str, Any] = {
    "ttl": 3600,
    "targets": ["local"],
    "mx_priority": 10,
    "spf": "v=spf1 mx -all",
    "wildcard_spf": True,
}
SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|api_?key|access_key_id|credential|private_key)", re.I
)
ENV_REF = re.compile(r"^env/([A-Za-z_][A-Za-z0-9_]*)$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SELECTOR_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_MAILTO = re.compile(r"^mailto:([^@\s,;!]+)@([^@\s,;!]+?)(![0-9]+[kmgt]?)?$", re.I)
_SPF_LOOKUP = re.compile(r"^[+~?-]?(include:|a\b|a:|a/|mx\b|mx:|mx/|ptr|exists:|redirect=)", re.I)
DOC_V4 = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
DOC_V6 = [ipaddress.ip_network(n) for n in ("2001:db8::/32", "3fff::/20")]


@dataclass(frozen=True)
class Dmarc:
    """The effective DMARC policy of one domain (RFC 9989 tags)."""

    p: str
    sp: str | None = None
    np: str | None = None
    t: str | None = None
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str | None = None
    aspf: str | None = None
    adkim: str | None = None

    @property
    def txt_value(self) -> str:
        """`v=DMARC1; p=...;` with the tags in spec-v1 order, each followed by `;`."""
        parts = [("v", "DMARC1"), ("p", self.p)]
        for tag in ("sp", "np", "t"):
            if getattr(self, tag) is not None:
                parts.append((tag, getattr(self, tag)))
        if self.rua:
            parts.append(("rua", ",".join(self.rua)))
        if self.ruf:
            parts.append(("ruf", ",".join(self.ruf)))
        for tag in ("fo", "aspf", "adkim"):
            if getattr(self, tag) is not None:
                parts.append((tag, getattr(self, tag)))
        return " ".join(f"{k}={v};" for k, v in parts)

    def report_domains(self) -> list[str]:
        """The domains of the rua/ruf addresses, in order, without repeats."""
        out: list[str] = []
        for uri in (*self.rua, *self.ruf):
            m = _MAILTO.match(uri)
            if m:
                d = m.group(2).lower().rstrip(".")
                if d not in out:
                    out.append(d)
        return out


@dataclass(frozen=True)
class Domain:
    """One mail domain (a DNS zone) with every default resolved."""

    name: str  # ASCII (IDNA) form, lower case, no trailing dot
    ttl: int
    targets: tuple[str, ...]
    mx_priority: int
    spf: str
    wildcard_spf: bool
    dmarc: Dmarc
    absent: bool = False

    @property
    def zone(self) -> str:
        return f"{self.name}."


@dataclass(frozen=True)
class Gateway:
    hostname: str  # ASCII, lower case, no trailing dot
    ipv4: str
    ipv6: str | None = None

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}."

    @property
    def addresses(self) -> list[str]:
        return [a for a in (self.ipv4, self.ipv6) if a]


@dataclass(frozen=True)
class Dkim:
    selector: str
    key: dkimlib.DkimKey
    retired_selectors: tuple[str, ...] = ()


@dataclass
class Site:
    """The whole checked spec."""

    file: str
    gateway: Gateway
    dkim: Dkim
    domains: dict[str, Domain]
    providers: dict[str, dict[str, Any]]
    digest: str
    warnings: list[str] = field(default_factory=list)

    def secret_env_vars(self) -> list[str]:
        """Names of the environment variables the providers take secrets from."""
        return sorted({m.group(1) for m in _env_refs(self.providers)})

    def secret_values(self) -> list[str]:
        """The current values of those variables, for redaction."""
        return [v for v in (os.environ.get(n) for n in self.secret_env_vars()) if v]

    def gateway_zone(self) -> str | None:
        """The spec domain whose zone contains the gateway's name (longest match), if any."""
        return zone_of(self.gateway.hostname, self.domains)


def _env_refs(value: Any) -> Iterator[re.Match[str]]:
    if isinstance(value, str):
        m = ENV_REF.match(value)
        if m:
            yield m
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _env_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _env_refs(v)


def zone_of(name: str, domains: Mapping[str, Any]) -> str | None:
    """The longest domain in `domains` that is `name` or a parent of it."""
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in domains:
            return candidate
    return None


class _Checker:
    def __init__(self, doc: LocatedYaml) -> None:
        self.doc = doc
        self.warnings: list[str] = []

    def fail(self, path: Path, message: str) -> SpecError:
        return SpecError(self.doc.file, ".".join(path), message, self.doc.line(path))

    def warn(self, path: Path, message: str) -> None:
        line = self.doc.line(path)
        where = self.doc.file if line is None else f"{self.doc.file}, line {line}"
        self.warnings.append(f"{where}: {'.'.join(path)}: {message}")

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, not {_kind(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    hint = _suggest(key, allowed)
                    raise self.fail(
                        (*path, key),
                        f"unknown key{hint}; the keys allowed here are {', '.join(allowed)}",
                    )
        return value

    def integer(self, value: Any, path: Path, lo: int, hi: int) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise self.fail(path, f"must be a whole number from {lo} to {hi}, not {value!r}")
        return value

    def boolean(self, value: Any, path: Path) -> bool:
        if type(value) is not bool:
            raise self.fail(path, f"must be true or false, not {value!r}")
        return value

    def string(self, value: Any, path: Path) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, not {_kind(value)}")
        return value.strip()

    def hostname(self, value: Any, path: Path, what: str = "hostname") -> str:
        text = self.string(value, path).rstrip(".")
        try:
            ascii_name = idna.encode(text, uts46=True).decode("ascii") if not text.isascii() \
                else text.lower()
        except idna.IDNAError as exc:
            raise self.fail(path, f"`{text}` is not a valid internationalised {what}: {exc}") \
                from None
        labels = ascii_name.split(".")
        if len(labels) < 2:
            raise self.fail(path, f"`{text}` is not a fully qualified {what}; write it with its "
                                  "domain, e.g. mx1.example.com")
        if len(ascii_name) > 253:
            raise self.fail(path, f"`{text}` is longer than 253 characters")
        for label in labels:
            if not _LABEL.match(label):
                raise self.fail(
                    path,
                    f"`{text}` has the invalid label `{label}`; labels are 1-63 letters, digits "
                    "or hyphens, not starting or ending with a hyphen",
                )
        if labels[-1].isdigit():
            raise self.fail(path, f"`{text}` is not a {what} (its last label is numeric)")
        return ascii_name


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "empty"}.get(type(value), "a value")


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def load_site(path: str | os.PathLike[str] = DEFAULT_CONFIG) -> Site:
    """Read, check and resolve the spec at `path`. Raises SpecError."""
    file = str(path)
    try:
        raw = FsPath(file).read_bytes()
    except FileNotFoundError:
        raise SpecError(file, "", "no such file; create one with `pmgdns init` or pass "
                                  "-c/--config PATH") from None
    except OSError as exc:
        raise SpecError(file, "", f"cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(file, "", "is not UTF-8 text") from None
    site = parse_site(text, file)
    site.digest = hashlib.sha256(raw).hexdigest()
    return site


def parse_site(text: str, file: str) -> Site:
    """Check spec text (as read from `file`) and resolve defaults."""
    doc = load_located(text, file)
    c = _Checker(doc)
    top = c.mapping(doc.data, (), ("version", "gateway", "dkim", "defaults", "domains",
                                   "providers"))
    if not top:
        raise c.fail((), "the spec is empty; start from `pmgdns init`")
    for key in ("version", "gateway", "dkim", "domains"):
        if key not in top:
            raise c.fail((key,), "is missing; every spec needs version, gateway, dkim and domains")
    if top["version"] != 1:
        raise c.fail(("version",), f"must be 1 (this is spec version 1), not {top['version']!r}")

    providers = _providers(c, top.get("providers"))
    gateway = _gateway(c, top["gateway"])
    dkim = _dkim(c, top["dkim"])
    defaults = _defaults(c, top.get("defaults"), providers)
    domains = _domains(c, top["domains"], defaults, providers, gateway)
    _report_warnings(c, domains)
    return Site(file=file, gateway=gateway, dkim=dkim, domains=domains, providers=providers,
                digest=hashlib.sha256(text.encode()).hexdigest(), warnings=c.warnings)


def _providers(c: _Checker, value: Any) -> dict[str, dict[str, Any]]:
    path: Path = ("providers",)
    block = c.mapping(value, path, None)
    out: dict[str, dict[str, Any]] = {}
    for name, conf in block.items():
        p = (*path, name)
        if name in RESERVED_PROVIDERS:
            raise c.fail(p, f"`{name}` is reserved for pmgdns's own zone source; pick another name")
        if not re.match(r"^[A-Za-z0-9_-]+$", name):
            raise c.fail(p, "provider names may hold letters, digits, `-` and `_` only")
        conf = c.mapping(conf, p, None)
        cls = conf.get("class")
        if not isinstance(cls, str) or "." not in cls:
            raise c.fail((*p, "class"), "is missing or not a dotted class path, e.g. "
                                        "octodns_cloudflare.CloudflareProvider")
        _check_secrets(c, conf, p)
        out[name] = dict(conf)
    if "local" not in out:
        out["local"] = dict(LOCAL_PROVIDER)
    return out


def _check_secrets(c: _Checker, conf: Any, path: Path) -> None:
    if isinstance(conf, dict):
        for key, val in conf.items():
            sub = (*path, str(key))
            if isinstance(val, (dict, list)):
                _check_secrets(c, val, sub)
            elif isinstance(val, str) and val.startswith("env/") and not ENV_REF.match(val):
                raise c.fail(sub, "an env/ reference must name one variable, e.g. "
                                  "env/CLOUDFLARE_TOKEN")
            elif SECRET_KEY.search(str(key)) and val is not None and not (
                isinstance(val, str) and ENV_REF.match(val)
            ):
                var = re.sub(r"[^A-Z0-9]+", "_", f"{path[-1]}_{key}".upper())
                raise c.fail(
                    sub,
                    "holds a literal secret, which must not be in the spec; put it in an "
                    f"environment variable and write `{key}: env/{var}` (the value is not shown)",
                )
    elif isinstance(conf, list):
        for i, val in enumerate(conf):
            _check_secrets(c, val, (*path, str(i)))


def _ip(c: _Checker, value: Any, path: Path, version: int) -> str:
    text = c.string(value, path) if not isinstance(value, (int,)) else str(value)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise c.fail(path, f"`{text}` is not a valid IPv{version} address") from None
    if addr.version != version:
        raise c.fail(path, f"`{text}` is an IPv{addr.version} address; this key takes IPv{version}")
    docs = DOC_V4 if version == 4 else DOC_V6
    if any(addr in net for net in docs):
        c.warn(path, f"{addr} is a documentation address: fine for an example, but the world "
                     "cannot reach a gateway there")
        return str(addr)
    if not addr.is_global or addr.is_multicast or addr.is_reserved:
        kind = ("loopback" if addr.is_loopback else "link-local" if addr.is_link_local
                else "multicast" if addr.is_multicast else "unspecified" if addr.is_unspecified
                else "private or reserved")
        raise c.fail(path, f"{addr} is a {kind} address; give the gateway's public IPv{version} "
                           "address, the one the internet connects to on port 25")
    return str(addr)


def _gateway(c: _Checker, value: Any) -> Gateway:
    path: Path = ("gateway",)
    g = c.mapping(value, path, ("hostname", "ipv4", "ipv6"))
    for key in ("hostname", "ipv4"):
        if key not in g:
            raise c.fail((*path, key), "is missing")
    hostname = c.hostname(g["hostname"], (*path, "hostname"))
    ipv4 = _ip(c, g["ipv4"], (*path, "ipv4"), 4)
    ipv6 = _ip(c, g["ipv6"], (*path, "ipv6"), 6) if g.get("ipv6") is not None else None
    return Gateway(hostname, ipv4, ipv6)


def _selector(c: _Checker, value: Any, path: Path) -> str:
    text = c.string(value, path).lower()
    labels = text.split(".")
    if not all(_SELECTOR_LABEL.match(label) for label in labels):
        raise c.fail(path, f"`{text}` is not a valid DKIM selector (letters, digits, `-`, `_`, "
                           "dot-separated labels)")
    return text


def _dkim(c: _Checker, value: Any) -> Dkim:
    path: Path = ("dkim",)
    d = c.mapping(value, path, ("selector", "public_key", "record", "key_file",
                                "retired_selectors"))
    if "selector" not in d:
        raise c.fail((*path, "selector"), "is missing; give the selector PMG signs with")
    selector = _selector(c, d["selector"], (*path, "selector"))
    sources = [k for k in ("public_key", "record", "key_file") if d.get(k) is not None]
    if len(sources) != 1:
        raise c.fail(path, "give exactly one of public_key, record or key_file"
                           + (f" (found {', '.join(sources)})" if sources else ""))
    src = sources[0]
    kpath = (*path, src)
    try:
        if src == "public_key":
            key = dkimlib.from_spki_base64(c.string(d[src], kpath))
        elif src == "record":
            key = dkimlib.from_record_text(c.string(d[src], kpath))
        else:
            fname = c.string(d[src], kpath)
            try:
                text = FsPath(fname).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise c.fail(kpath, f"the file `{fname}` does not exist (paths resolve from the "
                                    "current directory)") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise c.fail(kpath, f"the file `{fname}` cannot be read: {exc}") from None
            key = dkimlib.from_file_text(text)
    except dkimlib.DkimKeyError as exc:
        raise c.fail(kpath, f"{exc}; paste the public key or the record PMG shows "
                            "(`pmgconfig dkim_record`)") from None
    if key.selector_in_record and key.selector_in_record != selector:
        raise c.fail(kpath, f"the record is for selector `{key.selector_in_record}` but "
                            f"dkim.selector is `{selector}`; make them agree")
    problem = dkimlib.strength_problem(key)
    if problem and problem[0] == "error":
        raise c.fail(kpath, problem[1])
    if problem:
        c.warn(kpath, problem[1])
    retired_raw = d.get("retired_selectors") or []
    rpath = (*path, "retired_selectors")
    if not isinstance(retired_raw, list):
        raise c.fail(rpath, "must be a list of selectors, e.g. [pmg2025]")
    retired: list[str] = []
    for i, r in enumerate(retired_raw):
        sel = _selector(c, r, (*rpath, str(i)))
        if sel == selector:
            raise c.fail((*rpath, str(i)), f"`{sel}` is the current selector; a selector "
                                           "cannot be both current and retired")
        if sel not in retired:
            retired.append(sel)
    return Dkim(selector, key, tuple(retired))


def _targets(c: _Checker, value: Any, path: Path, providers: Mapping[str, Any]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(path, "must be a non-empty list of provider names, e.g. [local]")
    out: list[str] = []
    for i, t in enumerate(value):
        if not isinstance(t, str) or t not in providers:
            known = ", ".join(sorted(providers))
            raise c.fail((*path, str(i)), f"`{t}` is not a provider; define it under "
                                          f"`providers:` or use one of: {known}")
        if t not in out:
            out.append(t)
    return out


def _spf(c: _Checker, value: Any, path: Path) -> str:
    text = " ".join(c.string(value, path).split())
    if not re.match(r"^v=spf1( |$)", text, re.I):
        raise c.fail(path, f"`{text[:60]}` is not an SPF record; it must start with `v=spf1`")
    if not text.isascii() or len(text) > 450:
        raise c.fail(path, "must be ASCII and at most 450 characters")
    terms = text.split()[1:]
    lookups = sum(1 for t in terms if _SPF_LOOKUP.match(t))
    if lookups > 10:
        raise c.fail(path, f"has {lookups} DNS-querying terms; RFC 7208 allows at most 10")
    if any(t.lower() in ("+all", "all") for t in terms):
        raise c.fail(path, "`+all` authorises every host on the internet; end with -all or ~all")
    if not any(t.lower() in ("-all", "~all") for t in terms) and not any(
        t.lower().startswith("redirect=") for t in terms
    ):
        c.warn(path, "does not end with -all or ~all, so it does not deny other senders")
    return text


def _dmarc_fields(c: _Checker, value: Any, path: Path) -> dict[str, Any]:
    d = c.mapping(value, path, DMARC_KEYS)
    out: dict[str, Any] = {}
    for key, val in d.items():
        p = (*path, key)
        if val is None:
            out[key] = None
            continue
        if key in DMARC_REMOVED:
            c.warn(p, f"`{key}` was removed from DMARC by RFC 9989 and is not published")
            continue
        if key in ("p", "sp", "np"):
            if val not in POLICIES:
                raise c.fail(p, f"must be one of none, quarantine, reject, not {val!r}")
        elif key in ("aspf", "adkim"):
            if val not in ("r", "s"):
                raise c.fail(p, f"must be r (relaxed) or s (strict), not {val!r}")
        elif key == "t":
            val = {True: "y", False: "n"}.get(val, val)
            if val not in ("y", "n"):
                raise c.fail(p, f"must be y or n, not {val!r}")
        elif key in ("rua", "ruf"):
            if isinstance(val, str):
                val = [val]
            if not isinstance(val, list) or not val:
                raise c.fail(p, "must be a list of mailto: URIs, e.g. [mailto:dmarc@example.com]")
            uris = []
            for i, uri in enumerate(val):
                m = _MAILTO.match(uri) if isinstance(uri, str) else None
                if not m:
                    raise c.fail((*p, str(i)), f"`{uri}` is not a mailto: URI; write "
                                               "mailto:address@domain")
                c.hostname(m.group(2), (*p, str(i)), "mail domain")
                uris.append(uri.strip())
            val = tuple(uris)
        elif key == "fo":
            val = str(val)
            if not all(part in ("0", "1", "d", "s") for part in val.split(":")):
                raise c.fail(p, f"must be 0, 1, d or s joined by `:`, not {val!r}")
        out[key] = val
    return out


def _domain_settings(c: _Checker, value: Any, path: Path, providers: Mapping[str, Any],
                     base: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    d = c.mapping(value, path, allowed)
    out = dict(base)
    out["dmarc"] = dict(base.get("dmarc", {}))
    for key, val in d.items():
        p = (*path, key)
        if key == "ttl":
            out[key] = c.integer(val, p, 1, 2147483647)
        elif key == "targets":
            out[key] = _targets(c, val, p, providers)
        elif key == "mx_priority":
            out[key] = c.integer(val, p, 0, 65535)
        elif key == "spf":
            out[key] = _spf(c, val, p)
        elif key in ("wildcard_spf", "absent"):
            out[key] = c.boolean(val, p)
        elif key == "dmarc":
            out["dmarc"].update(_dmarc_fields(c, val, p))
    return out


def _defaults(c: _Checker, value: Any, providers: Mapping[str, Any]) -> dict[str, Any]:
    base = dict(DEFAULTS, dmarc=dict(DMARC_BUILTIN))
    keys = tuple(k for k in DOMAIN_KEYS if k != "absent")
    return _domain_settings(c, value, ("defaults",), providers, base, keys)


def _domains(c: _Checker, value: Any, defaults: dict[str, Any], providers: Mapping[str, Any],
             gateway: Gateway) -> dict[str, Domain]:
    path: Path = ("domains",)
    block = c.mapping(value, path, None)
    if not block:
        raise c.fail(path, "lists no domain; add at least one, e.g. `example.com: {}`")
    out: dict[str, Domain] = {}
    for key, conf in block.items():
        p = (*path, key)
        name = c.hostname(key, p, "domain name")
        if name in out:
            raise c.fail(p, f"`{name}` is listed twice")
        s = _domain_settings(c, conf, p, providers, defaults, DOMAIN_KEYS)
        dm = s["dmarc"]
        if dm.get("p") is None:
            raise c.fail((*p, "dmarc", "p"), "the effective DMARC policy needs p (none, "
                                             "quarantine or reject)")
        if name == gateway.hostname:
            raise c.fail(p, "is the gateway's own hostname; give the gateway a host name inside "
                            "the domain, e.g. mx1." + name)
        out[name] = Domain(
            name=name, ttl=s["ttl"], targets=tuple(s["targets"]), mx_priority=s["mx_priority"],
            spf=s["spf"], wildcard_spf=s["wildcard_spf"],
            dmarc=Dmarc(**{k: v for k, v in dm.items() if k not in DMARC_REMOVED}),
            absent=s.get("absent", False),
        )
    if not any(not d.absent for d in out.values()):
        c.warn(path, "every domain is absent: pmgdns only removes records in this run")
    return out


def _report_warnings(c: _Checker, domains: dict[str, Domain]) -> None:
    for d in domains.values():
        if d.absent:
            continue
        for rd in d.dmarc.report_domains():
            if rd == d.name or rd.endswith("." + d.name):
                continue
            zone = zone_of(rd, domains)
            if zone is None or domains[zone].absent:
                c.warn(("domains", d.name, "dmarc"),
                       f"reports go to {rd}, which this spec does not manage: publish "
                       f"`{d.name}._report._dmarc.{rd}. TXT \"v=DMARC1\"` there (RFC 9990), or "
                       "receivers will not send the reports")
