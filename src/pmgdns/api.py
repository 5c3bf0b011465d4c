"""The Python API behind the command line: spec -> records -> zones -> plan -> apply.

Every function raises a `PmgdnsError` subclass on bad input or a failing provider; the CLI maps
those to exit codes. The CLI only parses options and prints; a test can call these functions the
way the CLI does.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .core.errors import (
    Interrupted,
    NotConfirmed,
    PmgdnsError,
    StalePlanError,
    StaleZonesError,
    UsageError,
)
from .core.text import plural
from .families import FAMILIES
from .families.loader import DEFAULT_CONFIG, load_site, parse_site
from .plan import planfile
from .plan.engine import Applied, ApplyReport, Engine, PlanResult, select_domains
from .plan.lock import apply_lock
from .plan.takes_away import check as check_takes_away
from .spec.model import Site
from .tickets.customer import Ticket, tickets
from .tickets.customer_formats import EXTENSIONS, FORMATS, MARKERS
from .zones import render as renderlib
from .zones.customer import customer_manual
from .zones.loading import check_rendered
from .zones.provider_classes import check_provider_classes
from .zones.records import domain_records
from .zones.render import processor_config

if TYPE_CHECKING:
    from .verify.probe import DnsProbe

Progress = Callable[[int, int], None]


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

    def render_domains(self, site: Site, domains: Sequence[str]) -> list[str]:
        """Write the zone files of `domains` and `build/octodns.yaml` only (for a plan of the
        domains that changed; the others render as before by definition). Leaves the render
        stamp alone, so the next full run renders everything."""
        files = {renderlib.zone_file_path(site.domains[d].zone, self.zones_dir):
                 renderlib.zone_yaml(domain_records(site, site.domains[d]), site.file)
                 for d in domains}
        changed = [p for p, text in files.items() if renderlib.write_text(p, text)]
        renderlib.write_text(self.octodns_config, renderlib.config_yaml(
            renderlib.octodns_config(site, self.zones_dir)))
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
               progress: Progress | None = None, in_process: bool = False) -> Engine:
        return Engine(site, select_domains(site, patterns), self.zones_dir, self.build_dir,
                      parallel, progress=progress, in_process=in_process)


@dataclass
class PlanRun:
    """A plan with what a person needs beside it: the manual PTR steps and notes."""

    engine: Engine
    result: PlanResult
    manual: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def notes(site: Site) -> list[str]:
    return [n for f in FAMILIES for n in f.notes(site)]


def manual_steps(site: Site, domains: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The `manual` entries of a plan (spec-v1 §5): what only the hoster can do, and the records
    of the (chosen) customer zones (§7.2), which only the customer's DNS host can set."""
    return [m for f in FAMILIES for m in f.manual(site)] + customer_manual(site, domains)


def plan(workspace: Workspace, site: Site, patterns: Sequence[str] = (),
         parallel: int | None = None, progress: Progress | None = None,
         in_process: bool = False, since: str | None = None) -> PlanRun:
    """Render (if the spec changed), then plan the chosen domains at their targets. With
    `since` (a git revision), only those of them whose records changed since then."""
    extra: list[str] = []
    if since is None:
        workspace.render(site, force=False)
        engine = workspace.engine(site, patterns, parallel, progress, in_process)
    else:
        changed = changed_since(site, since)
        chosen = set(select_domains(site, patterns))
        domains = [d for d in changed.domains if d in chosen]
        changed.domains, changed.total = domains, len(chosen)
        workspace.render_domains(site, domains)
        engine = Engine(site, domains, workspace.zones_dir, workspace.build_dir, parallel,
                        progress=progress, in_process=in_process)
        extra.append(changed.note())
    result = engine.plan()
    return PlanRun(engine, result, manual_steps(site, engine.domains),
                   notes(site) + plan_notes(site, result, engine.domains) + extra)


def plan_notes(site: Site, result: PlanResult, planned: Sequence[str]) -> list[str]:
    return [n for f in FAMILIES for n in f.plan_notes(site, result.changes, planned)]


def write_plan_file(workspace: Workspace, site: Site, run: PlanRun, path: str) -> None:
    """Write the reviewed plan of `run` for `apply --plan`."""
    doc = planfile.plan_document(site, run.result, planfile.zones_digest(
        site, run.result.domains, workspace.zones_dir), run.manual, run.notes)
    planfile.write_plan(path, doc)


@dataclass
class ApplyOutcome:
    """What `apply` did: the plan it applied (None when there was nothing to do)."""

    run: PlanRun
    report: ApplyReport | None


def apply(workspace: Workspace, site: Site, patterns: Sequence[str] = (), *,
          plan_file: str | None = None, show: Callable[[PlanRun], None] | None = None,
          confirm: Callable[[PlanRun], bool] | None = None,
          force: bool = False, lock_timeout: float = 0.0, parallel: int | None = None,
          progress: Progress | None = None,
          applied: Applied | None = None, since: str | None = None) -> ApplyOutcome:
    """`_apply`; a Ctrl-C before the first change (planning, checking, asking) is an
    Interrupted error saying nothing was applied (one during the changes says which were)."""
    try:
        return _apply(workspace, site, patterns, plan_file=plan_file, show=show,
                      confirm=confirm, force=force, lock_timeout=lock_timeout,
                      parallel=parallel, progress=progress, applied=applied, since=since)
    except KeyboardInterrupt:
        raise Interrupted("interrupted before any change was applied (while waiting for the "
                          "lock or planning). Nothing was applied, and the apply lock is "
                          "released; run apply again.") from None


def _apply(workspace: Workspace, site: Site, patterns: Sequence[str] = (), *,
           plan_file: str | None = None, show: Callable[[PlanRun], None] | None = None,
           confirm: Callable[[PlanRun], bool] | None = None,
           force: bool = False, lock_timeout: float = 0.0, parallel: int | None = None,
           progress: Progress | None = None,
           applied: Applied | None = None, since: str | None = None) -> ApplyOutcome:
    """The apply workflow: take the lock; plan (or check the reviewed `plan_file` against a
    fresh plan); `show` the plan; ask `confirm` (when given) and plan again with fresh
    providers, applying only if the targets still give the plan that was shown; apply one
    (zone, target) at a time, calling `applied(done, total, zone, target, changes)` after each.

    Without `plan_file` and without `confirm`, the plan is applied as planned (`--yes`)."""
    with apply_lock(workspace.build_dir, lock_timeout):
        if plan_file:
            doc = planfile.read_plan(plan_file)
            planfile.check_spec(doc, plan_file, site)
            chosen = list(patterns) or list(doc.get("domains", []))
            if not chosen:  # a reviewed plan of nothing (e.g. --changed-since, no change)
                empty = Engine(site, [], workspace.zones_dir, workspace.build_dir)
                return ApplyOutcome(PlanRun(empty, PlanResult([], planfile.empty_checksum())),
                                    None)
            gone = [d for d in doc.get("domains", []) if d not in site.domains]
            if gone:
                raise StalePlanError(f"{plan_file} is stale: it covers "
                                     f"{', '.join(gone[:5])}, which the spec {site.file} no "
                                     "longer has. Nothing was applied; run `pmgdns plan --out` "
                                     "again and review it.")
            workspace.render(site, force=False)
            engine = workspace.engine(site, chosen, parallel, progress, in_process=True)
            planfile.check_inputs(doc, plan_file, site, engine.domains,
                                  planfile.zones_digest(site, engine.domains, workspace.zones_dir))
            run = PlanRun(engine, engine.plan(), manual_steps(site, engine.domains),
                          notes(site))
            planfile.check_targets(doc, plan_file, run.result)
            planfile.check_shown(doc, plan_file, run.result, run.manual,
                                 run.notes + plan_notes(site, run.result, engine.domains))
            check_takes_away(run.result.takes_away)
        else:
            run = plan(workspace, site, patterns, parallel, progress,
                       in_process=confirm is None, since=since)
            if show is not None:
                show(run)
            check_takes_away(run.result.takes_away)  # nothing applied at any target
            if run.result.has_changes and confirm is not None:
                if not confirm(run):
                    raise NotConfirmed("apply cancelled. Nothing was applied.")
                # plan again with fresh providers (they cache what they read) and apply only if
                # the targets still give the plan that was shown
                fresh = Engine(site, run.result.domains, workspace.zones_dir,
                               workspace.build_dir, parallel, in_process=True)
                result = fresh.plan()
                if result.checksum != run.result.checksum:
                    raise StalePlanError("the targets changed while you were reading the plan "
                                         "(stale); nothing was applied: run apply again")
                run = PlanRun(fresh, result, run.manual, run.notes)
        if not run.result.has_changes:
            return ApplyOutcome(run, None)
        return ApplyOutcome(run, run.engine.apply(run.result, force=force, progress=applied))


def customer_tickets(site: Site, patterns: Sequence[str] = (),
                     probe: DnsProbe | None = None) -> list[Ticket]:
    """The requests for the customers' DNS hosts (spec-v1 §7.2), one per chosen `customer`
    zone; compared with the DNS through `probe` (`verify.probe.DnsProbe`) when given."""
    return tickets(site, patterns, probe)


def ticket_files(found: Sequence[Ticket], fmt: str,
                 out: str | None) -> list[tuple[str | None, str]]:
    """(path, text) of the tickets in `fmt`: one text for all (to `out`, or stdout when None),
    or, when `out` names a directory (ends with `/` or is one), one file per domain in it."""
    render = FORMATS[fmt]
    if out is not None and (out.endswith(os.sep) or os.path.isdir(out)):
        os.makedirs(out, exist_ok=True)
        return [(os.path.join(out, f"{t.domain}.{EXTENSIONS[fmt]}"), render([t]))
                for t in found]
    return [(out, render(found))]


TICKET_MARKERS = MARKERS


def validate(workspace: Workspace, site: Site) -> list[str]:
    """Check what the spec renders to with octoDNS's strict validators, and that each provider
    class imports. Contacts no provider. Returns warnings (e.g. a stale zones/)."""
    warnings = list(site.warnings)
    check_provider_classes(site, site.providers)
    rendering = renderlib.render(site, workspace.zones_dir)
    stale = check_rendered(site, rendering, workspace.zones_dir)
    if stale:
        warnings.append(f"{workspace.zones_dir}/ is stale ({', '.join(stale)}): run "
                        "`pmgdns render` and commit the result")
    return warnings


__all__ = ["TICKET_MARKERS", "ApplyOutcome", "ChangedDomains", "PlanRun", "Workspace", "apply",
           "changed_since", "check_provider_classes", "customer_tickets", "manual_steps", "notes",
           "plan", "ticket_files", "validate", "write_plan_file"]


@dataclass
class ChangedDomains:
    """The domains whose rendered records (or targets) differ from the spec at a git REF."""

    ref: str
    domains: list[str]
    total: int
    why: str = ""

    def note(self) -> str:
        return (f"planned {len(self.domains)} of {plural(self.total, 'domain')}: those whose "
                f"records changed since {self.ref}{f' ({self.why})' if self.why else ''}; a full "
                "`pmgdns plan` also finds drift at the targets")


def _git_show(ref: str, path: str) -> bytes | None:

    try:
        result = subprocess.run(["git", "show", f"{ref}:./{path}"], capture_output=True,
                                timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--changed-since {ref}: git cannot be run ({exc})") from None
    return result.stdout if result.returncode == 0 else None


def changed_since(site: Site, ref: str) -> ChangedDomains:
    """The spec's domains whose records differ between the spec at git `ref` and now. A change
    that reaches every domain (defaults, the gateway, the DKIM key, a key or certificate file,
    what pmgdns removes) marks every domain it reaches."""


    if not ref or ref.startswith("-"):
        raise UsageError(f"--changed-since {ref!r}: give a git revision, e.g. origin/main")
    everything = ChangedDomains(ref, list(site.domains), len(site.domains))
    old_text = _git_show(ref, site.file)
    if old_text is None:
        raise UsageError(f"--changed-since {ref}: {site.file} is not in git at {ref} (or "
                         f"{ref} is not a revision here); run a full `pmgdns plan`")
    for path, digest in site.inputs.items():
        content = _git_show(ref, path)
        if content is None or hashlib.sha256(content).hexdigest() != digest:
            everything.why = f"{path} changed"
            return everything
    try:
        old = parse_site(old_text.decode("utf-8"), f"{ref}:{site.file}")
    except (UnicodeDecodeError, PmgdnsError):
        everything.why = f"the spec at {ref} does not load"
        return everything
    if processor_config(old) != processor_config(site):
        everything.why = "what pmgdns removes or owns changed"
        return everything
    moved = {p for p, conf in site.providers.items() if old.providers.get(p) != conf}
    changed = []
    for name, d in site.domains.items():
        before = old.domains.get(name)
        if before is None or before.targets != d.targets or before.absent != d.absent \
                or moved.intersection(d.targets) \
                or domain_records(old, before) != domain_records(site, d):
            changed.append(name)
    return ChangedDomains(ref, changed, len(site.domains))
