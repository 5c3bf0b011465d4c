"""Reviewed plan files (`plan --out`, `apply --plan`) and the staleness check between them."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import PlanFileError, StalePlanError
from ..core.files import read_text, write_output
from ..spec.model import Site
from ..zones.render import ZONES_DIR, zone_file_path
from .compact import json_list
from .engine import PlanResult, octodns_checksum

FORMAT = "pmgdns-plan"


def zones_digest(site: Site, domains: Sequence[str], zones_dir: str = ZONES_DIR) -> str:
    """sha256 over the zone files of `domains` as they are on disk."""
    h = hashlib.sha256()
    for d in sorted(domains):
        path = zone_file_path(site.domains[d].zone, zones_dir)
        h.update(path.encode() + b"\0")
        try:
            h.update(Path(path).read_bytes())
        except FileNotFoundError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def plan_document(site: Site, result: PlanResult, zones_sha: str) -> dict[str, Any]:
    """What `plan --out` writes. Holds DNS data and digests only: no secrets. Its `changes`
    are the plan's own (read as they are written: `write_plan`)."""
    return {
        "format": FORMAT,
        "version": 1,
        "pmgdns_version": __version__,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "spec": site.file,
        "spec_digest": site.digest,
        "zones_digest": zones_sha,
        "domains": list(result.domains),
        "checksum": result.checksum,
        "targets": result.target_digests,
        "summary": result.summary(),
        "changes": result.changes,
    }


MARKER = f'"format": "{FORMAT}"'
MAX_PLAN = 256 * 1024 * 1024  # bytes


def empty_checksum() -> str:
    """The checksum of a plan without changes."""

    return octodns_checksum([])


def write_plan(path: str, document: dict[str, Any]) -> None:
    """Write a plan file atomically; only over a plan file (never over the spec, say). The
    changes are written one at a time, as `json.dumps(document, indent=2)` would write them."""
    write_output(path, _pieces(document), MARKER, "a plan file")


def _pieces(document: dict[str, Any]) -> Iterator[str]:
    head = json.dumps({k: v for k, v in document.items() if k != "changes"}, indent=2)
    yield head[:-2] + ',\n  "changes": '
    yield from json_list(document.get("changes", []))
    yield "\n}\n"


class ReadChange(tuple[str, str, str]):
    """A change of a plan file as it is kept once read: its zone, its target and the digest
    of its JSON (keys sorted), which is all the staleness check compares (a fleet's plan file
    holds a million changes)."""

    __slots__ = ()


_CHANGE_KEYS = frozenset(("zone", "target", "action", "name", "type", "ttl", "values",
                          "previous"))


def _compact(obj: dict[str, Any]) -> Any:
    """A JSON object as the plan file is read: a well-formed change becomes a `ReadChange`;
    anything else stays as it is (and `_shape_problem` judges it)."""
    if obj.keys() != _CHANGE_KEYS or not all(isinstance(obj[k], str) for k in _TEXT_KEYS) \
            or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                       for v in (obj["values"], obj["previous"])):
        return obj
    return ReadChange((sys.intern(obj["zone"]), sys.intern(obj["target"]), _digest(obj)))


def _digest(change: Any) -> str:
    return hashlib.sha256(json.dumps(change, sort_keys=True).encode("utf-8")).hexdigest()


def read_plan(path: str) -> dict[str, Any]:
    try:
        data = json.loads(read_text(path, MAX_PLAN, "the plan file"), object_hook=_compact)
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file; make one with `pmgdns plan --out "
                            f"{path}`") from None
    except (ValueError, RecursionError) as exc:  # JSON, or a number Python cannot hold
        raise PlanFileError(f"{path}: not a readable pmgdns plan file ({exc}); make a new one "
                            "with `pmgdns plan --out`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1:
        raise PlanFileError(f"{path}: not a pmgdns plan file (version 1); make a new one with "
                            "`pmgdns plan --out`")
    problem = _shape_problem(data)
    if problem:
        raise PlanFileError(f"{path}: {problem}, which `pmgdns plan --out` never writes (was "
                            "the file edited?); make a new one with `pmgdns plan --out`")
    return data


_TEXT_KEYS = ("zone", "target", "action", "name", "type")


def _shape_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a plan document, if anything."""
    domains = data.get("domains")
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        return "its `domains` is not a list of names"
    for key in ("checksum", "spec_digest", "zones_digest"):
        if not isinstance(data.get(key), str):
            return f"its `{key}` is not a text"
    targets = data.get("targets")
    if not isinstance(targets, dict) or not all(isinstance(v, str) for v in targets.values()):
        return "its `targets` is not a mapping of digests"
    changes = data.get("changes")
    if not isinstance(changes, list):
        return "its `changes` is not a list"
    for c in changes:
        if isinstance(c, ReadChange):
            continue
        if not isinstance(c, dict) or not all(isinstance(c.get(k), str) for k in _TEXT_KEYS):
            return "a change in it is not a change"
        for key in ("values", "previous"):
            values = c.get(key)
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                return f"a change in it has `{key}` that are not texts"
    return None


def check_spec(document: dict[str, Any], path: str, site: Site) -> None:
    """Refuse a plan made from another spec."""
    if document.get("spec_digest") != site.digest:
        raise StalePlanError(f"{path} is stale: the spec {site.file} changed since the plan was "
                             "made. Nothing was applied; run `pmgdns plan --out` again and "
                             "review it.")


def check_inputs(document: dict[str, Any], path: str, site: Site, domains: Sequence[str],
                 zones_sha: str) -> None:
    """Refuse a plan made from another spec, other zones or other domains."""
    check_spec(document, path, site)
    if sorted(document.get("domains", [])) != sorted(domains):
        def names(ds: Sequence[str]) -> str:
            return ", ".join(list(ds)[:5]) + (f" and {len(ds) - 5} more" if len(ds) > 5 else "")

        raise StalePlanError(f"{path} is stale: it covers the domains "
                             f"{names(document.get('domains', []))}, this run "
                             f"{names(domains)}. Nothing was applied.")
    if document.get("zones_digest") != zones_sha:
        raise StalePlanError(f"{path} is stale: the zone files in zones/ changed since the plan "
                             "was made. Nothing was applied; plan again.")


def check_targets(document: dict[str, Any], path: str, fresh: PlanResult) -> None:
    """Refuse when the targets no longer give the reviewed plan, or hold anything else than
    when it was made; say which zone at which target. And refuse a plan whose changes are not
    the ones a fresh plan gives: what the reviewer saw is what is applied."""
    planned: dict[tuple[str, str], list[str]] = {}
    changes = document.get("changes", [])
    if not isinstance(changes, list) \
            or not all(isinstance(c, dict | ReadChange) for c in changes):
        raise PlanFileError(f"{path}: its changes are not a list of changes; make a new one with "
                            "`pmgdns plan --out`")
    for c in changes:
        if isinstance(c, ReadChange):
            zone, target, digest = c
        else:
            zone, target, digest = str(c.get("zone")), str(c.get("target")), _digest(c)
        planned.setdefault((zone, target), []).append(digest)
    differing = []
    for key, now in fresh.by_zone_target().items():  # one (zone, target) at a time
        if sorted(planned.pop(key, [])) != sorted(_digest(c.to_json()) for c in now):
            differing.append(key)
    differing = sorted(differing + list(planned))  # planned then, no changes now
    reviewed = document.get("targets")
    now_digests = fresh.target_digests
    moved = sorted(k for k in set(reviewed or {}) | set(now_digests)
                   if (reviewed or {}).get(k) != now_digests.get(k)) \
        if isinstance(reviewed, dict) else ["?"]
    if document.get("checksum") == fresh.checksum and not differing and not moved:
        return
    if document.get("checksum") == fresh.checksum and differing:
        raise StalePlanError(f"{path} is stale: its changes are not the ones planned (was the "
                             "file edited?). Nothing was applied; run `pmgdns plan --out` again "
                             "and review it.")
    where = ", ".join([f"{z} at {t}" for z, t in differing] + [m for m in moved if m != "?"])
    where = where or "the plan's checksum"
    count = len(differing) + len(moved)
    raise StalePlanError(f"{path} is stale: the targets changed since the plan was made "
                         f"({where} now differ{'s' if count == 1 else ''}). Nothing was "
                         "applied; run `pmgdns plan --out` again and review it.")
