"""`pmgdns validate`'s check of the rendered zones: each zone file's text loaded the way
octoDNS's YamlProvider loads `zones/` (the `pmgdns` source of `build/octodns.yaml`), then
octoDNS's validators.

YamlProvider can only read files, and parses them with PyYAML's pure-Python parser: at a fleet's
size that parse is most of `validate`. Here each text is parsed from memory with octoDNS's own
order-enforcing loader on libyaml's parser (the same YAML, the same mappings with their file and
line context, the same `keys out of order` error), and its records are made as YamlProvider makes
them (`escaped_semicolons: false`, the provider's default TTL, strict records). Each zone costs
the same whatever the fleet's size: no directory is listed and nothing is written per zone.
"""

from __future__ import annotations

import io
import os
from typing import Any

import yaml
from octodns.record import Record
from octodns.yaml import NaturalSortEnforcingLoader
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from ..core.errors import SpecError
from ..spec.model import SOURCE_ID, Site
from .render import ZONES_DIR, Rendering, rendered_text, zone_file_path

TXT_TYPES = ("SPF", "TXT")

_Loader: Any = NaturalSortEnforcingLoader
try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
except ImportError:  # PyYAML without libyaml: octoDNS's loader as it is
    pass
else:
    class _LibyamlLoader(CParser, NaturalSortEnforcingLoader):  # type: ignore[misc]
        """octoDNS's natural-order enforcing constructor and resolver on libyaml's parser."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _Loader = _LibyamlLoader


class _Named(io.StringIO):
    """A text with the file name that octoDNS's errors and record contexts give."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


def zone_source(zones_dir: str = ZONES_DIR) -> Any:
    """The YamlProvider `build/octodns.yaml` reads `zones_dir` with: its settings are the ones
    `populate` follows (one file per zone, natural key order, `escaped_semicolons: false`)."""
    # start-up time: octoDNS's providers load in ~0.03 s; only validate needs this one
    from octodns.provider.yaml import YamlProvider

    return YamlProvider(SOURCE_ID, zones_dir, enforce_order=True, escaped_semicolons=False)


def populate(zone: Any, path: str, text: str, source: Any) -> None:
    """Add to `zone` the records of its zone file `path` holding `text`, as `source.populate`
    (a YamlProvider) adds them from the file."""
    data = yaml.load(_Named(text, path), Loader=_Loader)
    for name, sets in (data or {}).items():
        for d in sets if isinstance(sets, list) else [sets]:
            if d.get("type") in TXT_TYPES:  # `escaped_semicolons: false`: `;` as written
                if d.get("value") is not None:
                    d["value"] = d["value"].replace(";", "\\;")
                if "values" in d:
                    d["values"] = [v.replace(";", "\\;") if v is not None else v
                                   for v in d["values"]]
            if "ttl" not in d:
                d["ttl"] = source.default_ttl
            record = Record.new(zone, name, d, source=source, lenient=False)
            zone.add_record(record, lenient=False, replace=source.populate_should_replace)


def load_zone(name: str, path: str, text: str, source: Any) -> Any:
    """The octoDNS zone `name` as the zone file `path` holding `text` loads, validated."""
    # start-up time: octoDNS's zones load in ~0.01 s; only validate needs them here
    from octodns.zone import Zone

    zone = Zone(name, [])
    populate(zone, path, text, source)
    zone.validate()
    return zone


def check_rendered(site: Site, rendering: Rendering, zones_dir: str = ZONES_DIR) -> list[str]:
    """Load every zone of `site`'s `rendering` with octoDNS's strict validators on; returns the
    files in `zones_dir` that are stale (differ from the rendering, are missing, or are
    pmgdns-rendered files of zones no longer in the spec). A zone octoDNS refuses is a SpecError
    naming the domain, its zone file and the fix."""
    # start-up time: octoDNS's zones load in ~0.01 s; only validate needs them here
    from octodns.zone import Zone

    Record.enable_validators(["legacy", "strict"])
    Zone.enable_zone_validators(["legacy", "strict"])
    source = zone_source(zones_dir)
    stale = rendering.leftovers(zones_dir)  # one listing of zones_dir
    for d in site.domains.values():
        path = zone_file_path(d.zone, zones_dir)
        text = rendering.zone_files[path]  # each rendered once, as it comes
        if rendered_text(path) != text:
            stale.append(path)
        try:
            load_zone(d.zone, path, text, source)
        except Exception as exc:  # octoDNS's validation errors
            why = str(exc).rstrip(".")
            raise SpecError(site.file, f"domains.{d.name}",
                            f"the rendered zone {os.path.basename(path)} fails octoDNS's "
                            f"validation: {why}. Change the domain's records in the spec so "
                            "that octoDNS accepts them") from None
    return sorted(stale)


__all__ = ["check_rendered", "load_zone", "populate", "zone_source"]
