"""Step 1 of the data path: read and check the mail-site spec (spec-v1 §1, §6) into a `Site`.

The core keys (`version`, `providers`, and `ttl`, `targets`, `absent` of a domain) are checked
here; every other key belongs to a record family (`pmgdns.families`), which checks it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

from ..core.errors import FileProblem, SpecError
from ..core.files import MiB, read_bytes
from ..spec.model import ENV_REF, SOURCE_ID, Domain, Gateway, Site, zone_of
from ..spec.reading import Path, load_located
from ..spec.values import Checker, shown
from . import FAMILIES
from .delegation import CUSTOMER

DEFAULT_CONFIG = "config/site.yaml"
MAX_SPEC = 64 * MiB  # bytes; a spec of 10,000 domains is well under 1 MiB
RESERVED_PROVIDERS = {SOURCE_ID}
LOCAL_PROVIDER: dict[str, Any] = {
    "class": "pmgdns.providers.local.LocalZoneFileProvider",
    "directory": "./build/zones",
}
# the built-in `customer` target (spec-v1 §7.2): zones the customer's own DNS host holds
CUSTOMER_PROVIDER: dict[str, Any] = {"class": "pmgdns.providers.customer.CustomerProvider"}
CORE_DEFAULTS: dict[str, Any] = {"ttl": 3600, "targets": ["local"]}
SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|api_?key|access_key_id|credential|private_key)", re.I
)

__all__ = ["CUSTOMER", "DEFAULT_CONFIG", "ENV_REF", "SOURCE_ID", "Domain", "Gateway", "Site",
           "load_site", "parse_site", "zone_of"]


def domain_keys() -> tuple[str, ...]:
    """The keys of a domain, in the order messages list them."""
    return ("ttl", "targets", *(k.name for f in FAMILIES for k in f.domain_keys), "absent")


def load_site(path: str | os.PathLike[str] = DEFAULT_CONFIG) -> Site:
    """Read, check and resolve the spec at `path`. Raises SpecError."""
    file = str(path)
    try:
        raw = read_bytes(file, MAX_SPEC, "the spec")
    except FileNotFoundError:
        raise SpecError(file, "", "no such file; create one with `pmgdns init` or pass "
                                  "-c/--config PATH") from None
    except FileProblem as exc:
        raise SpecError(file, "", str(exc).replace(f"the spec {file} ", "")) from None
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
    c = Checker(doc)
    top_keys = ("version", *(k for f in FAMILIES for k in f.top_keys), "defaults", "domains",
                "providers")
    if isinstance(doc.data, dict) and doc.data and "version" not in doc.data:
        # say so without repeating a line of what may be any file (`-c /etc/shadow`)
        raise c.fail((), "is not a pmgdns spec: it has no `version: 1`; start from `pmgdns "
                         "init`")
    top = c.mapping(doc.data, (), top_keys)
    if not top:
        raise c.fail((), "the spec is empty; start from `pmgdns init`")
    for key in ("version", "domains"):
        if key not in top:
            raise c.fail((key,), "is missing; every spec needs version, gateway, dkim and domains")
    if type(top["version"]) is not int or top["version"] != 1:
        raise c.fail(("version",), f"must be 1 (this is spec version 1), not "
                                   f"{shown(top['version'])}")

    providers = _providers(c, top.get("providers"))
    sections: dict[str, Any] = {}
    for family in FAMILIES:
        section = family.parse_top(c, top)
        if section is not None:
            sections[family.name] = section
    defaults = _settings(c, top.get("defaults"), ("defaults",), providers, _initial(),
                         tuple(k for k in domain_keys() if k != "absent"))
    domains = _domains(c, top["domains"], defaults, providers)
    site = Site(file=file, domains=domains, providers=providers,
                digest=hashlib.sha256(text.encode()).hexdigest(), sections=sections)
    for family in FAMILIES:
        family.check_site(c, site)
    site.warnings = c.warnings
    site.inputs = dict(c.inputs)
    site.lines = dict(c.doc.lines)
    return site


def _initial() -> dict[str, Any]:
    out = dict(CORE_DEFAULTS)
    for family in FAMILIES:
        for key in family.domain_keys:
            out[key.name] = key.default
    return out


def _providers(c: Checker, value: Any) -> dict[str, dict[str, Any]]:
    path: Path = ("providers",)
    block = c.mapping(value, path, None)
    out: dict[str, dict[str, Any]] = {}
    for name, conf in block.items():
        p = (*path, name)
        if name in RESERVED_PROVIDERS:
            raise c.fail(p, f"`{name}` is reserved for pmgdns's own zone source; pick another name")
        if name == CUSTOMER:
            raise c.fail(p, "`customer` is built in: it names zones the customer's own DNS host "
                            "holds, which pmgdns never applies (spec-v1 §7.2); give this "
                            "provider another name")
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
    out[CUSTOMER] = dict(CUSTOMER_PROVIDER)
    return out


def _check_secrets(c: Checker, conf: Any, path: Path) -> None:
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


def _targets(c: Checker, value: Any, path: Path, providers: Mapping[str, Any]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise c.fail(path, "must be a non-empty list of provider names, e.g. [local]")
    out: list[str] = []
    for i, t in enumerate(value):
        if not isinstance(t, str) or t not in providers:
            known = ", ".join(sorted(providers))
            raise c.fail((*path, str(i)), f"`{shown(t)}` is not a provider; define it under "
                                          f"`providers:` or use one of: {known}")
        if t not in out:
            out.append(t)
    if CUSTOMER in out and len(out) > 1:
        other = next(t for t in out if t != CUSTOMER)
        raise c.fail((*path, str(value.index(other))),
                     f"`{other}` stands beside `customer`: a zone is held by the customer or by "
                     f"you, not both; keep `customer` alone (the customer's DNS host holds the "
                     f"zone and gets a ticket) or remove it (you hold the zone at `{other}`)")
    return out


def _settings(c: Checker, value: Any, path: Path, providers: Mapping[str, Any],
              base: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """`base` with the keys of one `defaults:` or `domains:` entry applied."""
    d = c.mapping(value, path, allowed)
    out = dict(base)
    for key, val in d.items():
        p = (*path, key)
        if key == "ttl":
            out[key] = c.integer(val, p, 1, 2147483647)
        elif key == "targets":
            out[key] = _targets(c, val, p, providers)
        elif key == "absent":
            out[key] = c.boolean(val, p)
    for family in FAMILIES:
        for k in family.domain_keys:
            if k.name in d:
                out[k.name] = k.parse(c, d[k.name], (*path, k.name), base.get(k.name))
    return out


def _domains(c: Checker, value: Any, defaults: dict[str, Any],
             providers: Mapping[str, Any]) -> dict[str, Domain]:
    path: Path = ("domains",)
    block = c.mapping(value, path, None)
    if not block:
        raise c.fail(path, "lists no domain; add at least one, e.g. `example.com: {}`")
    keys = domain_keys()
    out: dict[str, Domain] = {}
    for key, conf in block.items():
        p = (*path, key)
        name = c.hostname(key, p, "domain name")
        if name in out:
            raise c.fail(p, f"`{name}` is listed twice")
        s = _settings(c, conf, p, providers, defaults, keys)
        options: dict[str, Any] = {}
        for family in FAMILIES:
            for k in family.domain_keys:
                value_ = s[k.name]
                options[k.name] = k.finish(c, (*p, k.name), value_) if k.finish else value_
        out[name] = Domain(name=name, ttl=s["ttl"], targets=tuple(s["targets"]),
                           absent=s.get("absent", False), options=options, key=str(key))
    if not any(not d.absent for d in out.values()):
        c.warn(path, "every domain is absent: pmgdns only removes records in this run")
    return out
