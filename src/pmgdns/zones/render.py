"""Step 3 of the data path: records -> octoDNS zone YAML in `zones/` and `build/octodns.yaml`.

`octodns-sync --config-file build/octodns.yaml` runs the very sync `pmgdns plan`/`apply` run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from natsort import natsort_keygen

from .. import __version__
from ..core.errors import FileProblem
from ..core.files import head_of, read_text, replace_file
from ..families import FAMILIES
from ..families.loader import CUSTOMER
from ..families.mta_sts import POLICY_DIR, policy_path
from ..providers.pacing import PACED_CLASSES
from ..spec.model import SOURCE_ID, RecordSpec, Site
from .records import domain_records
from .source import record_data

ZONES_DIR = "zones"
BUILD_DIR = "build"
CONFIG_FILE = os.path.join(BUILD_DIR, "octodns.yaml")
PROCESSOR_ID = "pmgdns-ownership"
# The classes a spec may name that pmgdns runs as its own subclasses (same options): see each
# module's docstring for why.
PROVIDER_CLASSES = {
    "octodns_bind.Rfc2136Provider": "pmgdns.providers.rfc2136.Rfc2136Provider",
    **PACED_CLASSES,
}
# octoDNS's `mail` zone validator (best-practice set, on by default in octoDNS 2) wants two MX;
# a single-gateway site has one, which is what PMG's docs describe for one node.
MAIL_VALIDATOR = {"class": "octodns.zone.MailZoneValidator", "min_mx": 1,
                  "sets": ["best-practice"]}
HEADER = "# Rendered by pmgdns from {spec}; do not edit: change the spec and run `pmgdns render`.\n"
MARKER = "# Rendered by pmgdns"


_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available
_natural = natsort_keygen()


def _ordered(value: Any) -> Any:
    """Mappings in octoDNS's natural key order, which its `enforce_order` checks on load."""
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in sorted(value, key=_natural)}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def dump_yaml(data: Any) -> str:
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                         indent=2, allow_unicode=True))


def zone_yaml(records: Iterable[RecordSpec], spec_file: str) -> str:
    """The octoDNS YamlProvider file of one zone (`escaped_semicolons: false`, sorted keys)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records):
        by_name.setdefault(r.name, []).append(record_data(r))
    data = {name: (rs[0] if len(rs) == 1 else rs) for name, rs in by_name.items()}
    body = dump_yaml(_ordered(data)) if data else "{}\n"
    return f"{HEADER.format(spec=spec_file)}---\n{body}"


def zone_file_path(zone: str, zones_dir: str = ZONES_DIR) -> str:
    return os.path.join(zones_dir, f"{zone}yaml")


def octodns_config(site: Site, zones_dir: str = ZONES_DIR,
                   domains: Iterable[str] | None = None) -> dict[str, Any]:
    """The octoDNS configuration for `site` (optionally only some domains and their providers)."""
    chosen = [site.domains[d] for d in (domains if domains is not None else site.domains)]
    used = {t for d in chosen for t in d.targets}
    providers: dict[str, Any] = {
        SOURCE_ID: {
            "class": "octodns.provider.yaml.YamlProvider",
            "directory": f"./{zones_dir}" if not os.path.isabs(zones_dir) else zones_dir,
            "enforce_order": True,
            "escaped_semicolons": False,
        }
    }
    for name, conf in site.providers.items():
        if (domains is None and name != CUSTOMER) or name in used:
            providers[name] = provider_config(conf)
    return {
        "manager": {
            "processors": [PROCESSOR_ID],
            "validators": {"enabled": ["legacy", "strict"]},
        },
        "validators": {"mail": dict(MAIL_VALIDATOR)},
        "providers": providers,
        "processors": {PROCESSOR_ID: processor_config(site)},
        "zones": {d.zone: {"sources": [SOURCE_ID], "targets": list(d.targets)} for d in chosen},
    }


def provider_config(conf: dict[str, Any]) -> dict[str, Any]:
    """A provider's octoDNS configuration, with the class pmgdns runs in its place."""
    out = dict(conf)
    out["class"] = PROVIDER_CLASSES.get(str(conf["class"]), conf["class"])
    return out


def processor_config(site: Site) -> dict[str, Any]:
    """The ownership processor's options: the absent zones, and each family's options."""
    return {
        "class": "pmgdns.zones.ownership.OwnershipProcessor",
        "absent_zones": [d.zone for d in site.domains.values() if d.absent],
        "families": {f.name: f.ownership_options(site) for f in FAMILIES},
    }


def config_yaml(config: dict[str, Any]) -> str:
    return ("# Written by pmgdns render: `octodns-sync --config-file build/octodns.yaml` runs the "
            "same sync as `pmgdns plan`.\n" + dump_yaml(config))


class ZoneTexts(Mapping[str, str]):
    """{path: zone YAML} of every zone of a site, each rendered when it is read: a fleet's
    zone files are never all in memory at once (read each once: it is rendered anew)."""

    def __init__(self, site: Site, zones_dir: str = ZONES_DIR) -> None:
        self._site = site
        self._paths = {zone_file_path(d.zone, zones_dir): d.name for d in site.domains.values()}

    def __getitem__(self, path: str) -> str:
        domain = self._site.domains[self._paths[path]]
        return zone_yaml(domain_records(self._site, domain), self._site.file)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, path: object) -> bool:
        return path in self._paths


@dataclass
class Rendering:
    """What `render` writes: {path: text} for the zone files, and the octoDNS config."""

    zone_files: Mapping[str, str]
    config_text: str
    other_files: dict[str, str] = field(default_factory=dict)  # e.g. MTA-STS policies in build/

    def stale_zone_files(self, zones_dir: str = ZONES_DIR) -> list[str]:
        """Zone files that differ, are missing, or were rendered earlier for a zone now gone."""
        stale = [p for p, text in self.zone_files.items() if _read(p) != text]
        return sorted(stale + self.leftovers(zones_dir))

    def leftovers(self, zones_dir: str = ZONES_DIR) -> list[str]:
        """pmgdns-rendered files in `zones_dir` for zones no longer in the spec."""
        if not os.path.isdir(zones_dir):
            return []
        out = []
        for entry in sorted(os.listdir(zones_dir)):
            path = os.path.join(zones_dir, entry)
            if entry.endswith(".yaml") and path not in self.zone_files \
                    and head_of(path, len(MARKER)) == MARKER:
                out.append(path)
        return out


MAX_RENDERED = 64 * 1024 * 1024  # bytes; a rendered zone file is a few KiB


def _read(path: str) -> str | None:
    """A file pmgdns rendered, or None when there is none; a FIFO, a device, a directory or a
    huge file in its place is an error naming it (never a hang)."""
    try:
        return read_text(path, MAX_RENDERED, "the rendered file")
    except FileNotFoundError:
        return None


def rendered_text(path: str) -> str | None:
    """The text of a rendered file as it is on disk (None when there is none)."""
    return _read(path)


def render(site: Site, zones_dir: str = ZONES_DIR) -> Rendering:
    """Render every zone of `site` (pure: nothing is written; each zone file is rendered when
    it is read)."""
    files = ZoneTexts(site, zones_dir)
    extra: dict[str, str] = {}
    for family in FAMILIES:
        extra.update(family.files(site))
    return Rendering(files, config_yaml(octodns_config(site, zones_dir)), extra)


def write_text(path: str, text: str) -> bool:
    """Write `text` to `path` atomically if it differs; True when the file changed."""
    try:
        if _read(path) == text:
            return False
    except FileProblem:
        pass  # a FIFO, a directory, ...: replacing it is what render does (or reports)
    replace_file(path, text, "the rendered file")
    return True


def write(rendering: Rendering, zones_dir: str = ZONES_DIR,
          config_file: str = CONFIG_FILE) -> list[str]:
    """Write the rendering; remove files of zones no longer in the spec. Returns changed paths."""
    changed = [p for p, text in rendering.zone_files.items() if write_text(p, text)]
    for path in rendering.leftovers(zones_dir):
        os.unlink(path)
        changed.append(path)
    write_text(config_file, rendering.config_text)
    for path, text in rendering.other_files.items():
        write_text(path, text)
    _remove_stale_policies(rendering.other_files)
    return sorted(changed)


def _remove_stale_policies(current: dict[str, str]) -> None:
    """MTA-STS policy files of domains that no longer publish one (a deploy step would keep
    serving them)."""

    if not os.path.isdir(POLICY_DIR):
        return
    for domain in os.listdir(POLICY_DIR):
        path = policy_path(domain)
        if path not in current and os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)


# -- a stamp so that plan and apply skip re-rendering an unchanged spec ------------------------

def _fingerprint(site: Site, zones_dir: str, config_file: str) -> str:

    parts = [__version__, site.file, site.digest, zones_dir, config_file,
             *(f"{path}={sha}" for path, sha in sorted(site.inputs.items()))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _stats(paths: Iterable[str]) -> dict[str, list[int]] | None:
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        out[path] = [st.st_size, st.st_mtime_ns]
    return out


def _stamp_path(config_file: str) -> str:
    return os.path.join(os.path.dirname(config_file) or ".", "render.stamp")


def _expected_files(site: Site, zones_dir: str, config_file: str) -> list[str]:
    return [zone_file_path(d.zone, zones_dir) for d in site.domains.values()] + [config_file]


def up_to_date(site: Site, zones_dir: str = ZONES_DIR, config_file: str = CONFIG_FILE) -> bool:
    """True when the last render was of this very spec and its files are untouched since."""
    try:
        stamp = json.loads(read_text(_stamp_path(config_file), 16 * 1024 * 1024, "the stamp"))
    except (OSError, ValueError, FileProblem, RecursionError):
        return False
    if not isinstance(stamp, dict):
        return False
    if stamp.get("fingerprint") != _fingerprint(site, zones_dir, config_file):
        return False
    return bool(stamp.get("files") == _stats(_expected_files(site, zones_dir, config_file)))


def write_stamp(site: Site, zones_dir: str = ZONES_DIR, config_file: str = CONFIG_FILE) -> None:
    stats = _stats(_expected_files(site, zones_dir, config_file))
    if stats is None:
        return
    write_text(_stamp_path(config_file),
               json.dumps({"fingerprint": _fingerprint(site, zones_dir, config_file),
                           "files": stats}))
