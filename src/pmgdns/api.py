"""The Python API behind the command line: spec -> records -> zones -> plan -> apply.

Every function raises a `PmgdnsError` subclass on bad input or a failing provider; the CLI maps
those to exit code 1.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import render as renderlib
from .errors import SpecError, StaleZonesError
from .planning import ApplyReport, Engine, PlanResult, select_domains
from .ptr import manual_steps
from .records import gateway_note
from .spec import DEFAULT_CONFIG, Site, load_site


@dataclass
class Workspace:
    """Where a run reads and writes: the spec, `zones/` and `build/` (relative to the cwd)."""

    config: str = DEFAULT_CONFIG
    zones_dir: str = renderlib.ZONES_DIR
    build_dir: str = renderlib.BUILD_DIR

    @property
    def octodns_config(self) -> str:
        return os.path.join(self.build_dir, "octodns.yaml")

    def load(self) -> Site:
        return load_site(self.config)

    def render(self, site: Site, force: bool = True) -> list[str]:
        """Write `zones/` and `build/octodns.yaml`; the zone files that changed. Without `force`,
        nothing is done when the last render was of this spec and its files are untouched."""
        if not force and renderlib.up_to_date(site, self.zones_dir, self.octodns_config):
            return []
        rendering = renderlib.render(site, self.zones_dir)
        changed = renderlib.write(rendering, self.zones_dir, self.octodns_config)
        renderlib.write_stamp(site, self.zones_dir, self.octodns_config)
        return changed

    def stale(self, site: Site) -> list[str]:
        """The zone files that `render` would change (nothing is written)."""
        return renderlib.render(site, self.zones_dir).stale_zone_files(self.zones_dir)

    def check_fresh(self, site: Site) -> None:
        stale = self.stale(site)
        if stale:
            raise StaleZonesError(
                f"{self.zones_dir}/ is stale: {', '.join(stale)} "
                f"do{'es' if len(stale) == 1 else ''} not match {site.file}; run "
                "`pmgdns render` and commit the result")

    def engine(self, site: Site, patterns: Sequence[str] = (), parallel: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> Engine:
        return Engine(site, select_domains(site, patterns), self.zones_dir, self.build_dir,
                      parallel, progress=progress)


@dataclass
class PlanRun:
    """A plan with what a person needs beside it: the manual PTR step and notes."""

    engine: Engine
    result: PlanResult
    manual: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def notes(site: Site) -> list[str]:
    note = gateway_note(site)
    return [note] if note else []


def plan(workspace: Workspace, site: Site, patterns: Sequence[str] = (),
         parallel: int | None = None, progress: Callable[[int, int], None] | None = None
         ) -> PlanRun:
    """Render (if the spec changed), then plan the chosen domains at their targets."""
    workspace.render(site, force=False)
    engine = workspace.engine(site, patterns, parallel, progress)
    result = engine.plan()
    return PlanRun(engine, result, manual_steps(site), notes(site))


def apply(run: PlanRun, force: bool = False,
          progress: Callable[[str, str, int], None] | None = None) -> ApplyReport:
    """Apply a plan's changes, one (zone, target) at a time."""
    return run.engine.apply(run.result, force=force, progress=progress)


def validate(workspace: Workspace, site: Site) -> list[str]:
    """Check what the spec renders to with octoDNS's strict validators, and that each provider
    class imports. Contacts no provider. Returns warnings (e.g. a stale zones/)."""
    from octodns.provider.yaml import YamlProvider
    from octodns.record import Record
    from octodns.zone import Zone

    warnings = list(site.warnings)
    for name, conf in site.providers.items():
        module, _, cls = str(conf["class"]).rpartition(".")
        try:
            getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            raise SpecError(site.file, f"providers.{name}.class",
                            f"`{conf['class']}` cannot be imported; install its package (e.g. "
                            "pip install octodns-cloudflare) or fix the class path") from None
    rendering = renderlib.render(site, workspace.zones_dir)
    Record.enable_validators(["legacy", "strict"])
    with tempfile.TemporaryDirectory() as tmp:
        for path, text in rendering.zone_files.items():
            with open(os.path.join(tmp, os.path.basename(path)), "w", encoding="utf-8") as fh:
                fh.write(text)
        source = YamlProvider("pmgdns", tmp, enforce_order=True, escaped_semicolons=False)
        for d in site.domains.values():
            zone = Zone(d.zone, [])
            try:
                source.populate(zone)
                zone.validate()
            except Exception as exc:  # octoDNS's validation errors
                raise SpecError(site.file, f"domains.{d.name}",
                                f"the rendered zone fails octoDNS's validation: {exc}") from None
    stale = rendering.stale_zone_files(workspace.zones_dir)
    if stale:
        warnings.append(f"{workspace.zones_dir}/ is stale ({', '.join(stale)}): run "
                        "`pmgdns render` and commit the result")
    return warnings


__all__ = ["PlanRun", "Workspace", "apply", "notes", "plan", "validate"]
