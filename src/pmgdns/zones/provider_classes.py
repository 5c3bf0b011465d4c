"""Which provider classes a spec may name: octoDNS providers and sources from installed packages.

A spec comes from a pull request; its `class:` must not run arbitrary code (`subprocess.Popen`
with `BASH_ENV` would run a script during `plan`). Before anything is imported from the module a
spec names, it must belong to an installed distribution that is octoDNS, pmgdns, or depends on
octoDNS, and be that distribution's own file (not one in the working directory that shadows
it). After the import, the class must be an octoDNS `BaseProvider` or `BaseSource` subclass.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from ..core.errors import ClassNotAllowed, SpecError
from ..spec.model import Site
from .endpoints import check_endpoints

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_TRUSTED = ("octodns", "pmgdns")


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _depends_on_octodns(dist: importlib.metadata.Distribution) -> bool:
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if name in _TRUSTED:
        return True
    for req in dist.requires or []:
        head = re.split(r"[\s;<>=!~\[(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if head == "octodns":
            return True
    return False


def _own_file(dist: importlib.metadata.Distribution, origin: str) -> bool:
    real = os.path.realpath(origin)
    for f in dist.files or []:
        if os.path.realpath(str(dist.locate_file(f))) == real:
            return True
    return False


def check_class_path(path: str) -> None:
    """Refuse a class path before anything of it is imported (see the module docstring)."""
    if not _DOTTED.match(path):
        raise ClassNotAllowed(f"`{path[:80]}` is not a dotted class path such as "
                              "octodns_cloudflare.CloudflareProvider")
    module = path.rpartition(".")[0]
    top = module.split(".")[0]
    if any(part in ("__main__", "cmds") for part in module.split(".")):
        raise ClassNotAllowed(f"`{path}` cannot be loaded: it names a program's entry point, "
                              "not a provider module")
    names = _distributions().get(top, [])
    dists = []
    for name in names:
        try:
            dists.append(importlib.metadata.distribution(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    trusted = [d for d in dists if _depends_on_octodns(d)]
    if not trusted:
        why = ("no installed package provides it" if not dists else
               "its package is not an octoDNS provider package (it does not depend on octodns)")
        near = _close(top, _provider_packages())
        hint = (f"did you mean `{near}.{path.partition('.')[2]}`? " if near and not dists
                else "")
        raise ClassNotAllowed(f"`{path}` cannot be loaded: {why}. {hint}pmgdns loads only "
                              "octoDNS providers from installed packages (pip install "
                              "octodns-cloudflare, ...)")
    spec = importlib.util.find_spec(top)
    origin = spec.origin if spec is not None else None
    if top == "pmgdns":  # this very package (also when installed in development mode)
        own = origin is not None and os.path.realpath(origin) == os.path.realpath(
            os.path.join(os.path.dirname(os.path.dirname(__file__)), "__init__.py"))
    else:
        own = origin is not None and any(_own_file(d, origin) for d in trusted)
    if not own:
        raise ClassNotAllowed(f"`{path}` cannot be loaded: the module `{top}` found first is "
                              "not the installed package's own file (a file of that name in the "
                              "working directory?)")


def load_provider_class(path: str) -> Any:
    """Check `path`, import it, and return the class if it is an octoDNS provider or source."""
    # start-up time: octoDNS loads in ~0.1 s; commands that never plan skip it
    from octodns.provider.base import BaseProvider
    from octodns.source.base import BaseSource

    check_class_path(path)
    module, _, name = path.rpartition(".")
    kinds = (BaseProvider, BaseSource)
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        raise ClassNotAllowed(_no_module(path, module)) from None
    cls = getattr(loaded, name, None)
    if cls is None:
        classes = sorted(n for n, v in vars(loaded).items()
                         if isinstance(v, type) and issubclass(v, kinds) and v not in kinds
                         and not n.startswith("_"))
        near = _close(name, classes)
        hint = (f"did you mean `{module}.{near}`?" if near else
                f"its providers are {', '.join(f'`{c}`' for c in classes)}" if classes else
                "it has no octoDNS provider class")
        raise ClassNotAllowed(f"`{path}` cannot be loaded: the module `{module}` (installed) "
                              f"has no class `{name}`; {hint}")
    if not (isinstance(cls, type) and issubclass(cls, kinds)):
        raise ClassNotAllowed(f"`{path}` is not an octoDNS provider or source class")
    return cls


def _close(word: str, candidates: Iterable[str]) -> str | None:
    near = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    if not near:  # a case slip: cloudflareprovider
        near = [c for c in candidates if c.lower() == word.lower()]
    return near[0] if near else None


def _provider_packages() -> list[str]:
    """Top-level modules of the installed octoDNS provider packages."""
    out = []
    for top, names in _distributions().items():
        for name in names:
            try:
                if _depends_on_octodns(importlib.metadata.distribution(name)):
                    out.append(top)
                    break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def _no_module(path: str, module: str) -> str:
    """Why `module` of a trusted package does not import, with the nearest module named."""
    parts = module.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:i])
        try:
            package = importlib.import_module(parent)
        except ImportError:
            continue
        subs = [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
        near = _close(parts[i], subs)
        hint = (f"; did you mean `{'.'.join([parent, near, *parts[i + 1:]])}."
                f"{path.rpartition('.')[2]}`?" if near else "")
        return (f"`{path}` cannot be loaded: the package `{parent}` (installed) has no module "
                f"`{parts[i]}`{hint}")
    return (f"`{path}` cannot be imported; reinstall its package (e.g. pip install "
            "octodns-cloudflare) or fix the class path")


def check_provider_classes(site: Site, names: Iterable[str]) -> None:
    """Every named provider's class may load (see the module docstring), and its endpoint
    options name only where the operator lets credentials go (zones/endpoints.py); a SpecError
    naming `providers.NAME.class` or the endpoint option otherwise."""
    for name in sorted(set(names)):
        try:
            cls = load_provider_class(str(site.providers[name]["class"]))
        except ClassNotAllowed as exc:
            raise SpecError(site.file, f"providers.{name}.class", str(exc),
                            site.lines.get(("providers", name, "class"))) from None
        check_endpoints(site.file, name, cls, site.providers[name])
