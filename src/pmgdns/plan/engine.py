"""Steps 4 and 5 of the data path: plan through octoDNS, then apply.

octoDNS's Manager reads the rendered configuration and builds the providers, the ownership
processor and the validators. For each chosen zone, pmgdns builds the desired zone from the spec
(`SiteSource`, the records `render` writes into `zones/`), then for each of the zone's targets asks
the provider for a plan with the processors, exactly as `octodns-sync` does; it knows at every
step which zone and which target it is at, so a failure names them. Applying takes each
(zone, target) plan in turn, so a failure or Ctrl-C can say exactly what was and was not applied.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    ConflictError,
    Interrupted,
    OwnershipConflict,
    PlanFailure,
    PmgdnsError,
    ProviderError,
    SpecError,
    StalePlanError,
    UnsafePlanError,
)
from ..core.redact import SECRET_MIN_LENGTH, Redactor
from ..families.loader import CUSTOMER
from ..providers.pacing import suggested_workers_for
from ..spec.model import ENV_REF, SOURCE_ID, Site
from ..spec.values import shown
from ..zones import render as renderlib
from ..zones.provider_classes import check_provider_classes
from ..zones.records import domain_records
from ..zones.source import SiteSource
from .compact import (
    Batch,
    Change,
    ChangeLog,
    Collector,
    Planned,
    ZonePlan,
    data_json,
    pack,
    sha,
    zone_groups,
)
from .takes_away import Taken, TakesAway, watched


@dataclass
class PlanResult:
    """The changes pmgdns would make, and octoDNS's plans behind them (compact: see
    `compact`)."""

    changes: Sequence[Change]
    checksum: str
    unsafe: list[str] = field(default_factory=list)
    zone_plans: list[ZonePlan] = field(default_factory=list, repr=False)
    domains: list[str] = field(default_factory=list)
    planned: int = 0  # (zone, target) pairs planned, with changes or not
    takes_away: list[Taken] = field(default_factory=list)  # spec-v1 §7.1

    @property
    def target_digests(self) -> dict[str, str]:
        """{"ZONE at TARGET": digest} for each planned (zone, target) with changes: a reviewed
        plan is stale when anything the target holds there changed, foreign records included."""
        return {f"{zp.zone} at {zp.target}": zp.digest for zp in self.zone_plans}

    def summary(self) -> dict[str, int]:
        if isinstance(self.changes, ChangeLog):
            return dict(self.changes.actions)
        out = {"create": 0, "update": 0, "delete": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def by_zone_target(self) -> Mapping[tuple[str, str], list[Change]]:
        """The changes of each (zone, target); streamed for a plan the engine made."""
        if isinstance(self.changes, ChangeLog):
            return zone_groups(self.changes)
        out: dict[tuple[str, str], list[Change]] = {}
        for c in self.changes:
            out.setdefault((c.zone, c.target), []).append(c)
        return out


Applied = Callable[[int, int, str, str, int], None]


@dataclass
class ApplyReport:
    applied: list[tuple[str, str, int]] = field(default_factory=list)  # zone, target, changes


# Providers whose planning is CPU-bound here (files, AXFR on a near server): threads only add
# overhead under the GIL (measured: bench/run.py). Remote HTTP APIs wait on latency instead.
LOCAL_CLASSES = ("pmgdns.providers.local.", "pmgdns.providers.rfc2136.",
                 "pmgdns.providers.customer.",
                 "octodns_bind.", "octodns.provider.yaml.")
REMOTE_PARALLEL = 4


PROCESS_MIN = 200  # zones; below that, starting worker processes costs more than it saves


def planning_is_cpu_bound(site: Site, domains: Sequence[str]) -> bool:
    """Every target is a local zone file or an RFC 2136 server (AXFR on a near server)."""
    targets = {t for d in domains for t in site.domains[d].targets}
    classes = [str(site.providers[t].get("class", "")) for t in targets]
    return all(c.startswith(LOCAL_CLASSES) for c in classes)


def default_parallel(site: Site, domains: Sequence[str]) -> int:
    """Workers: for local and RFC 2136 targets one process per CPU (at most 4) when there are
    at least PROCESS_MIN zones, else 1; with remote APIs threads: as many as the fastest paced
    provider's pace keeps busy (`suggested_workers`), REMOTE_PARALLEL for unpaced ones."""
    if not planning_is_cpu_bound(site, domains):

        sizes = []
        for t in {t for d in domains for t in site.domains[d].targets}:
            conf = dict(site.providers[t])
            cls = str(conf.pop("class", ""))
            if cls.startswith(LOCAL_CLASSES):
                continue
            try:
                size = suggested_workers_for(cls, conf)
            except (ValueError, TypeError):  # an invalid pace: the provider reports it
                size = None
            sizes.append(REMOTE_PARALLEL if size is None else size)
        return max(sizes, default=REMOTE_PARALLEL)
    if len(domains) < PROCESS_MIN:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def select_domains(site: Site, patterns: Sequence[str]) -> list[str]:
    """The spec's domains matching `patterns` (names or shell globs); all when none are given."""
    if not patterns:
        return list(site.domains)
    chosen: dict[str, None] = {}  # ordered, and a lookup in constant time
    for pat in patterns:
        p = pat.lower().rstrip(".")
        if p in site.domains:  # a name (a reviewed plan of a fleet names 100,000 of them)
            hits = [p]
        else:
            hits = [d for d in site.domains if fnmatch.fnmatchcase(d, p)]
        if not hits:

            raise SpecError(site.file, "domains", f"`{shown(pat)}` matches no domain of the "
                                                  "spec; check the name or the glob")
        chosen.update(dict.fromkeys(hits))
    return list(chosen)


def value_texts(record: Any) -> tuple[str, ...]:
    """A record's values as DNS answers them (TXT unescaped and unsplit, MX `10 host.`)."""
    values = record.values if hasattr(record, "values") else [record.value]
    out = []
    for v in values:
        if hasattr(v, "to_raw_text"):
            out.append(str(v.to_raw_text()))
        elif hasattr(v, "to_rdata_text"):
            out.append(str(v.to_rdata_text()))
        else:
            out.append(str(v))
    return tuple(out)


def _change(zone: str, target: str, change: Any) -> Change:
    kind = type(change).__name__.lower()
    new, old = change.new, change.existing
    record = new if new is not None else old
    return Change(
        zone=zone, target=target, action=kind, name=record.fqdn, type=record._type,
        ttl=record.ttl, values=value_texts(new) if new is not None else (),
        previous=value_texts(old) if old is not None else (),
        previous_ttl=old.ttl if old is not None else None,
    )


def zone_digest(zone: Any) -> str:
    """sha256 over every record of an octoDNS zone (names, types, TTLs, values)."""
    rows = sorted(json.dumps([r.fqdn, r._type, r.ttl, sorted(value_texts(r))])
                  for r in zone.records)
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def octodns_checksum(data: Iterable[Any]) -> str:
    """octoDNS's own checksum (`manager.enable_checksum`): sha256 over the plans' data.
    An empty plan has the checksum of an empty list."""
    return hashlib.sha256(json.dumps(list(data)).encode("utf-8")).hexdigest()


def _summary(zone: str, target: str, plan: Any, keep: bool) -> Planned:
    """A plan as pmgdns keeps it: octoDNS's Plan only when `keep`."""
    # start-up time: octoDNS loads in ~0.1 s; commands that never plan skip it
    from octodns.provider.plan import UnsafePlan
    try:
        plan.raise_if_unsafe()
        unsafe = None
    except UnsafePlan as exc:
        unsafe = f"{zone} at {target}: {exc}"
    changes = [_change(zone, target, c) for c in plan.changes]
    text = data_json(plan.data)
    return (ZonePlan(zone, target, len(changes), zone_digest(plan.existing), sha(text), unsafe,
                     plan if keep else None), changes, text)


# The engine and manager a forked planning worker works with (set by the parent before the fork)
_FORKED: tuple[Engine, Any] | None = None


def _plan_chunk(domains: list[str]) -> Batch:
    """Plan a worker's share and pack it (the worker holds only this share)."""
    assert _FORKED is not None
    engine, manager = _FORKED
    engine.progress = None  # the parent reports progress
    source = engine._source(domains)
    return pack((p for d in domains for p in engine._plan_zone(manager, source, d)), watched)


BATCH = 200  # zones planned, packed, or planned again for an apply at a time
KEEP_PLANS = 10_000  # zones; above that octoDNS's plans are planned again batch by batch to apply


class Engine:
    """Plans and applies one site's chosen domains through octoDNS."""

    def __init__(self, site: Site, domains: Sequence[str] | None = None,
                 zones_dir: str = renderlib.ZONES_DIR, build_dir: str = renderlib.BUILD_DIR,
                 parallel: int | None = None, redactor: Redactor | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 in_process: bool = False) -> None:
        self.site = site
        self.domains = list(domains) if domains is not None else list(site.domains)
        self.zones_dir = zones_dir
        self.build_dir = build_dir
        cpu_bound = planning_is_cpu_bound(site, self.domains)
        workers = max(1, parallel) if parallel else default_parallel(site, self.domains)
        # CPU-bound targets plan in worker processes, remote APIs in threads; a plan that is
        # about to be applied is made here and keeps octoDNS's plans, unless the fleet is too
        # large to hold them all: then the apply plans each batch again just before applying it
        self.keep = in_process and len(self.domains) <= KEEP_PLANS
        self.processes = workers if cpu_bound and not self.keep else 1
        self.parallel = 1 if cpu_bound else workers
        self._subs: dict[str, set[str]] | None = None
        self.redactor = redactor or Redactor(site.secret_values())
        self._manager: Any = None
        self.progress = progress
        self._planned = 0
        self._total = sum(len(site.domains[d].targets) for d in self.domains)
        self._lock = threading.Lock()

    # -- set-up -------------------------------------------------------------------------------

    def check_environment(self) -> None:
        """Every env/VAR the chosen domains' providers need is set (named, never shown)."""
        used = {t for d in self.domains for t in self.site.domains[d].targets}
        for name in sorted(used):
            for key, val in self.site.providers[name].items():
                m = ENV_REF.match(val) if isinstance(val, str) else None
                if not m:
                    continue
                var = m.group(1)
                value = os.environ.get(var)
                line = self.site.lines.get(("providers", name, key))
                if not value:
                    raise SpecError(
                        self.site.file, f"providers.{name}.{key}", line=line, message=
                        f"takes its value from the environment variable {var}, which is not "
                        f"set; export {var} (e.g. from your CI's secrets) and run again")
                if value != value.strip() or any(not c.isprintable() for c in value):
                    raise SpecError(
                        self.site.file, f"providers.{name}.{key}", line=line, message=
                        f"the environment variable {var} begins or ends with white space or holds "
                        "a control character (a stray newline from a file or a paste?); export "
                        "it without (the value is not shown)")
                if len(value) < SECRET_MIN_LENGTH:
                    raise SpecError(
                        self.site.file, f"providers.{name}.{key}", line=line, message=
                        f"the environment variable {var} holds fewer than {SECRET_MIN_LENGTH} "
                        "characters, too short to be kept out of the output: masking it would "
                        "garble every line that contains those characters (a port number, a "
                        "word) and still reveal it; use the full token or key the provider "
                        "issued (the value is not shown)")

    def check_classes(self) -> None:
        """The chosen domains' providers are octoDNS providers of installed packages, checked
        before octoDNS imports anything the spec names."""

        check_provider_classes(self.site, {t for d in self.domains
                                           for t in self.site.domains[d].targets})

    def manager(self) -> Any:
        """octoDNS's Manager for the chosen domains: providers, processor and validators."""
        # start-up time: octoDNS loads in ~0.1 s; commands that never plan skip it
        from octodns.manager import Manager
        if self._manager is None:
            self.check_environment()
            self.check_classes()

            config = renderlib.octodns_config(self.site, self.zones_dir, self.domains)
            # pmgdns walks the zones itself (`plan`): the Manager needs the providers and the
            # processor only, not a second copy of every zone's configuration
            config["zones"] = {}
            os.makedirs(self.build_dir, exist_ok=True)
            fd, path = tempfile.mkstemp(dir=self.build_dir, prefix=".run-", suffix=".yaml")
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(renderlib.dump_yaml(config))
                try:
                    self._manager = Manager(path, max_workers=self.parallel)
                except Exception as exc:  # provider classes, options, secrets
                    # octoDNS names the place in its (temporary) config; the spec is what to fix
                    text = re.sub(r",\s*\S*\.run-\S+\.yaml, line \d+, column \d+", "", str(exc))
                    raise ProviderError(
                        f"the providers could not be set up: {self.redactor(text)}; check "
                        f"`providers:` in {self.site.file} (the log line above says more)"
                    ) from None
            finally:
                os.unlink(path)
        return self._manager

    # -- plan ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.progress is None:
            return
        with self._lock:  # planning threads report one at a time, in order
            self._planned += 1
            self.progress(min(self._planned, self._total), self._total)

    def _zone(self, name: str) -> Any:
        """An empty octoDNS zone that knows the spec's zones below it (as the Manager's
        `get_zone` does, without its quadratic search)."""
        # start-up time: octoDNS loads in ~0.1 s; commands that never plan skip it
        from octodns.zone import Zone

        if self._subs is None:
            subs: dict[str, set[str]] = {}
            for d in self.site.domains.values():
                labels = d.zone.split(".")
                for i in range(1, len(labels) - 1):
                    parent = ".".join(labels[i:])
                    if parent[:-1] in self.site.domains:
                        subs.setdefault(parent, set()).add(".".join(labels[:i]))
            self._subs = subs
        return Zone(name, set(self._subs.get(name, ())))

    def _plan_zone(self, manager: Any, source: SiteSource, domain: str,
                   keep: bool | None = None) -> list[Planned]:
        """Plan one zone at each of its targets, as octoDNS's Manager does."""
        zone_name = self.site.domains[domain].zone
        processors = [manager.processors[renderlib.PROCESSOR_ID]]
        try:
            zone = self._zone(zone_name)
            source.populate(zone)
            for processor in processors:
                zone = processor.process_source_zone(zone, sources=[source])
            zone.validate()
        except PmgdnsError:
            raise
        except Exception as exc:
            raise SpecError(self.site.file, f"domains.{domain}",
                            "the records fail octoDNS's validation: "
                            f"{self.redactor(' '.join(str(exc).split()))}") from None
        out = []
        for target_id in self.site.domains[domain].targets:
            if target_id == CUSTOMER:  # never applied: the plan's `manual` list has its records
                self._tick()
                continue
            target = manager.providers[target_id]
            try:
                plan = target.plan(zone, processors=processors)
                for processor in processors:
                    plan = processor.process_plan(plan, sources=[source], target=target)
            except PmgdnsError:
                raise
            except Exception as exc:
                raise _translate(exc, self.redactor, zone_name, target_id) from None
            self._tick()
            if plan:
                out.append(_summary(zone_name, target_id, plan,
                                    self.keep if keep is None else keep))
        return out

    def _source(self, domains: Sequence[str]) -> SiteSource:
        return SiteSource(SOURCE_ID, {
            self.site.domains[d].zone: domain_records(self.site, self.site.domains[d])
            for d in domains})

    def plan(self) -> PlanResult:
        """Plan every chosen zone at its targets. The zones are planned in the order of the
        result (children zones first, as octoDNS's Manager orders them), so that each batch is
        packed, hashed into the checksum and let go as it arrives."""
        manager = self.manager()
        self._planned = 0
        order = sorted(self.domains, key=lambda d: len(self.site.domains[d].zone),
                       reverse=True)  # stable: the spec's order among zones of one length
        collector = Collector()
        taking = TakesAway(self.site)  # reads the few changes it may concern as they arrive
        if self.processes > 1:
            batches = self._plan_in_processes(manager, order)
        elif self.parallel > 1 and len(order) > 1:
            batches = self._plan_in_threads(manager, order)
        else:
            batches = self._plan_here(manager, order)
        for batch in batches:
            collector.add(batch)
            taking.add(batch.watched)
        plans = collector.plans
        return PlanResult(changes=collector.changes, checksum=collector.checksum(),
                          unsafe=[p.unsafe for p in plans if p.unsafe], zone_plans=plans,
                          domains=list(self.domains), planned=self._total,
                          takes_away=taking.result())

    def _plan_here(self, manager: Any, order: list[str]) -> Iterator[Batch]:
        for i in range(0, len(order), BATCH):
            chunk = order[i:i + BATCH]
            source = self._source(chunk)
            yield pack((p for d in chunk for p in self._plan_zone(manager, source, d)), watched)

    def _plan_in_threads(self, manager: Any, order: list[str]) -> Iterator[Batch]:
        """Plan with threads (remote APIs wait on latency), packed in order as they finish."""
        pool = ThreadPoolExecutor(max_workers=self.parallel)
        try:
            for i in range(0, len(order), BATCH):
                chunk = order[i:i + BATCH]
                source = self._source(chunk)
                futures = [pool.submit(self._plan_zone, manager, source, d) for d in chunk]
                yield pack((p for f in futures for p in f.result()), watched)
        except BaseException:  # Ctrl-C: report now, start no further zone
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def _plan_in_processes(self, manager: Any, order: list[str]) -> Iterator[Batch]:
        """Plan the zones in forked worker processes (planning local files and AXFRs is
        CPU-bound, so threads would only wait for each other); each worker plans and packs a
        chunk at a time, and the batches come back in order."""
        global _FORKED
        n = len(order)
        size = max(1, min(BATCH, n // (self.processes * 8) or 1))
        chunks = [order[i:i + size] for i in range(0, n, size)]
        _FORKED = (self, manager)
        try:
            # start-up time: worker processes are for large fleets only
            import multiprocessing

            with multiprocessing.get_context("fork").Pool(self.processes) as pool:
                for chunk, batch in zip(chunks, pool.imap(_plan_chunk, chunks), strict=True):
                    yield batch
                    for d in chunk:
                        for _ in self.site.domains[d].targets:
                            self._tick()
        finally:
            _FORKED = None

    # -- apply --------------------------------------------------------------------------------

    def apply(self, result: PlanResult, force: bool = False,
              progress: Applied | None = None) -> ApplyReport:
        """Apply `result`'s octoDNS plans, one (zone, target) at a time; after each,
        `progress(done, total, zone, target, changes)`."""
        if result.unsafe and not force:
            raise UnsafePlanError(
                "octoDNS's safety check refuses this plan: " + "; ".join(result.unsafe)
                + ". Review the plan, then run apply again with --force to go past it. "
                "Nothing was applied.")
        plans = result.zone_plans
        report = ApplyReport()
        manager = self.manager()
        for done, zp in enumerate(self._octodns_plans(result, report)):
            zone, target = zp.zone, manager.providers[zp.target]
            try:
                count = target.apply(zp.plan)
            except KeyboardInterrupt:
                raise Interrupted(
                    f"interrupted while applying {zone} at {target.id}, which may be partly "
                    f"applied. Applied before: {_listing(report.applied)}. Not applied: "
                    f"{_pairs(plans[done + 1:])}. Run apply again; it converges.") from None
            except Exception as exc:
                msg = _translate(exc, self.redactor, zone, target.id)
                raise PlanFailure(
                    f"{msg} Applied before the failure: {_listing(report.applied)}. Not "
                    f"applied: {_pairs(plans[done:])}. Fix the cause and run apply again; it "
                    "converges.", zone, target.id) from None
            zp.plan = None  # applied: let octoDNS's plan go
            report.applied.append((zone, target.id, count or zp.count))
            if progress:
                try:
                    progress(len(report.applied), len(plans), zone, target.id, zp.count)
                except KeyboardInterrupt:
                    raise Interrupted(
                        f"interrupted. Applied: {_listing(report.applied)}. Not applied: "
                        f"{_pairs(plans[done + 1:])}. Run apply again; it converges.") from None
        return report

    def _octodns_plans(self, result: PlanResult, report: ApplyReport) -> Iterator[ZonePlan]:
        """`result`'s plans with octoDNS's Plan objects, in order. Those not kept (planned in
        worker processes, or too many to hold) are planned again here a batch at a time, just
        before they are applied, and each must come out as it was planned, from what the
        target held when it was planned."""
        if all(zp.plan is not None for zp in result.zone_plans):
            yield from result.zone_plans
            return
        manager = self.manager()
        by_zone = {self.site.domains[d].zone: d for d in self.domains}
        plans = result.zone_plans
        progress, self.progress = self.progress, None
        try:
            i = 0
            while i < len(plans):
                end = min(i + BATCH, len(plans))
                while end < len(plans) and plans[end].zone == plans[end - 1].zone:
                    end += 1  # the targets of one zone are planned together
                batch = plans[i:end]
                domains = list(dict.fromkeys(by_zone[zp.zone] for zp in batch))
                source = self._source(domains)
                again = {(zp.zone, zp.target): zp for d in domains
                         for zp, _, _ in self._plan_zone(manager, source, d, keep=True)}
                fresh = []
                for zp in batch:
                    now = again.pop((zp.zone, zp.target), None)
                    if now is None or (now.data_sha, now.digest) != (zp.data_sha, zp.digest):
                        raise _stale(report, plans[i:], zp)
                    fresh.append(now)
                if again:  # a target of a zone in the batch has changes it did not have
                    raise _stale(report, plans[i:], next(iter(again.values())))
                yield from fresh
                i = end
        finally:
            self.progress = progress

LISTED = 100  # (zone, target) pairs named in a message; the rest are counted


def _names(names: list[str]) -> str:
    if len(names) > LISTED:
        return f"{', '.join(names[:LISTED])} and {len(names) - LISTED} more"
    return ", ".join(names) or "nothing"


def _listing(applied: list[tuple[str, str, int]]) -> str:
    return _names([f"{z} at {t}" for z, t, _ in applied])


def _pairs(plans: Sequence[ZonePlan]) -> str:
    return _names([f"{zp.zone} at {zp.target}" for zp in plans])


def _stale(report: ApplyReport, pending: Sequence[ZonePlan], where: ZonePlan) -> PmgdnsError:
    """The targets changed between the plan and the apply of `where`."""
    if not report.applied:
        return StalePlanError("the targets changed between the plan and the apply (stale); "
                              "nothing was applied: run apply again")
    return StalePlanError(
        f"the targets changed between the plan and the apply ({where.zone} at {where.target} "
        f"is stale). Applied before: {_listing(report.applied)}. Not applied: "
        f"{_pairs(pending)}. Run apply again; it converges.")


def _translate(exc: BaseException, redactor: Redactor, zone: str | None = None,
               target: str | None = None) -> PmgdnsError:
    """A one-paragraph, secret-free error for an exception from octoDNS or a provider."""
    # start-up time: octoDNS loads in ~0.1 s; commands that never plan skip it
    from octodns.processor.base import ProcessorException
    if isinstance(exc, PmgdnsError):
        return exc


    where = f" ({zone} at {target})" if zone and target else ""
    text = redactor(" ".join(str(exc).split()) or type(exc).__name__)
    if isinstance(exc, OwnershipConflict):
        return ConflictError(text)
    if isinstance(exc, ProcessorException):
        return ConflictError(f"{text}{where}")
    hint = _hint(exc)
    message = f"{target or 'a provider'} failed{where}: {type(exc).__name__}: {text}."
    if hint:
        message += f" {hint}"
    if zone and target:
        return PlanFailure(message, zone, target)
    return ProviderError(message)


_REFUSED = "The credentials were refused: check the token or keys in the environment."
_FORBIDDEN = ("The credentials lack a permission: the token needs DNS edit rights on this zone "
              "(Cloudflare: Zone > DNS > Edit; AWS: route53:ChangeResourceRecordSets).")
_LIMITED = "The provider is rate-limiting: wait a minute and run again."
_BROKEN = "The provider had an internal error: run again later."
_UNREACHABLE = "The provider could not be reached: check the network and the endpoint."
_BY_CLASS = {
    "CloudflareAuthenticationError": _FORBIDDEN,  # octodns-cloudflare raises it for HTTP 403
    "CloudflareRateLimitError": _LIMITED,
    "Cloudflare5xxError": _BROKEN,
}
_BY_AWS_CODE = {
    "InvalidClientTokenId": _REFUSED, "SignatureDoesNotMatch": _REFUSED,
    "UnrecognizedClientException": _REFUSED, "AccessDenied": _FORBIDDEN,
    "AccessDeniedException": _FORBIDDEN, "Throttling": _LIMITED, "ThrottlingException": _LIMITED,
    "PriorRequestNotComplete": _LIMITED,
}


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    else:  # requests
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _hint(exc: BaseException) -> str:
    """What to do about a provider's exception, in one sentence."""
    if type(exc).__name__ in _BY_CLASS:
        return _BY_CLASS[type(exc).__name__]
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        if code in _BY_AWS_CODE:
            return _BY_AWS_CODE[code]
    status = _status(exc)
    if status == 401:
        return _REFUSED
    if status == 403:
        return _FORBIDDEN
    if status == 429:
        return _LIMITED
    if status is not None and status >= 500:
        return _BROKEN
    text = f"{type(exc).__name__} {exc}".lower()
    if any(w in text for w in ("timed out", "timeout", "connection", "unreachable")):
        return _UNREACHABLE
    return ""


__all__ = ["Applied", "ApplyReport", "Change", "Engine", "PlanResult", "select_domains"]
