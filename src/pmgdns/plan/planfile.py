"""Reviewed plan files (`plan --out`, `apply --plan`) and the staleness check between them."""

from __future__ import annotations

import binascii
import bisect
import hashlib
import json
import re
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from .. import __version__
from ..core import jsonstream
from ..core.errors import PlanFileError, StalePlanError
from ..core.files import read_text_chunks, write_output
from ..core.text import visible
from ..spec.model import Site
from ..zones.render import ZONES_DIR, zone_file_path
from .compact import json_members
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


def plan_document(site: Site, result: PlanResult, zones_sha: str,
                  manual: Sequence[dict[str, str]] = (), notes: Sequence[str] = ()
                  ) -> dict[str, Any]:
    """What `plan --out` writes. Holds DNS data and digests only: no secrets. Its `changes`
    are the plan's own (read as they are written: `write_plan`). `write_plan` adds `digest`,
    over everything else in it, so an edit anywhere (the summary, the manual steps, the notes)
    is found; `apply --plan` also checks each shown part against a fresh plan (`check_shown`)."""
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
        "takes_away": [t.to_json() for t in result.takes_away],
        "changes": result.changes,
        "manual": [dict(m) for m in manual],
        "notes": list(notes),
    }


def document_digest(doc: dict[str, Any]) -> str:
    """The `digest` of a plan document: sha256 over the canonical JSON of every key but
    `digest` and `changes`, then over the digest of each change in turn (`_digest`, its JSON
    with keys sorted), so that a read plan file, which keeps only those digests of its
    changes, is checked without its changes as objects, and a written one is digested as it
    is streamed."""
    h = _head(doc)
    changes = doc.get("changes", [])
    if isinstance(changes, ReadChanges):
        for lines in changes.digest_lines():
            h.update(lines)
        return h.hexdigest()
    for c in changes if isinstance(changes, list) else [changes]:
        h.update(_change_digest(c).encode("ascii") + b"\n")
    return h.hexdigest()


def _head(doc: dict[str, Any]) -> hashlib._Hash:
    """sha256 over what `document_digest` hashes first: the canonical JSON of all but the
    changes (`json.dumps(..., sort_keys=True, ensure_ascii=True, separators=(",", ":"))` and a
    newline), made a part at a time (a fleet's `domains` and `targets` hold 100,000 entries)."""
    h = hashlib.sha256(b"{")
    body = {k: v for k, v in doc.items() if k not in ("digest", "changes")}
    for i, key in enumerate(sorted(body)):
        h.update(("," if i else "").encode() + _canonical(key) + b":")
        value = body[key]
        if isinstance(value, dict):
            keys = sorted(value)
            h.update(b"{")
            for at in range(0, len(keys), _PART):
                part = {k: value[k] for k in keys[at:at + _PART]}
                h.update(("," if at else "").encode() + _canonical(part)[1:-1])
            h.update(b"}")
        elif isinstance(value, list):
            h.update(b"[")
            for at in range(0, len(value), _PART):
                h.update(("," if at else "").encode() + _canonical(value[at:at + _PART])[1:-1])
            h.update(b"]")
        else:
            h.update(_canonical(value))
    h.update(b"}\n")
    return h


_PART = 1000  # entries of a list or a mapping made into JSON at a time


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=True,
                      separators=(",", ":")).encode()


def _change_digest(change: Any) -> str:
    return change[2] if isinstance(change, ReadChange) else _digest(change)


class _NotStrictJson(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> Any:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _NotStrictJson(f"the key `{visible(key[:40])}` appears twice in one object "
                                 "(readers disagree on which one counts)")
        out[key] = value
    return _compact(out)


def _no_constant(name: str) -> Any:
    raise _NotStrictJson(f"it holds {name}, which is not JSON")


MARKER = f'"format": "{FORMAT}"'
MAX_PLAN = 256 * 1024 * 1024  # bytes


def empty_checksum() -> str:
    """The checksum of a plan without changes."""

    return octodns_checksum([])


def write_plan(path: str, document: dict[str, Any]) -> None:
    """Write a plan file atomically; only over a plan file (never over the spec, say). The
    changes are written one at a time, as `json.dumps(document, indent=2)` would write them,
    and digested as they are written: `digest` comes last."""
    write_output(path, _pieces(document, sign=True), MARKER, "a plan file")


def _pieces(document: dict[str, Any], sign: bool = False) -> Iterator[str]:
    """`document` as `json.dumps(document, indent=2)` writes it, its changes one at a time;
    with `sign`, its `digest` (`document_digest`) is made on the way and written last."""
    body = {k: v for k, v in document.items() if k != "digest" or not sign}
    h = _head(body) if sign else None
    if h is not None:
        body["changes"] = _digesting(body.get("changes", []), h)
    yield "{"
    yield from json_members(body)
    if h is not None:
        yield ',\n  "digest": ' + json.dumps(h.hexdigest())
    yield "\n}\n"


def _digesting(changes: Iterable[Any], h: Any) -> Iterator[dict[str, Any]]:
    for c in changes:
        data = c if isinstance(c, dict) else c.to_json()
        h.update(_digest(data).encode("ascii") + b"\n")
        yield data


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


class ReadChanges(Sequence[Any]):
    """The changes of a plan file as they are kept once read (a fleet's plan file holds a
    million, hundreds of megabytes of JSON): the digest of each, in order (32 bytes; what
    `document_digest` hashes and `check_targets` compares), the (zone, target) of each run of
    changes (as JSON text, in one buffer), and, as they were read, the few that are not
    well-formed changes (the first problem among them is `problem`; a file with one is
    refused, so, unless `complete`, nothing after it is kept). Read as a sequence, a
    well-formed change is a `ReadChange`."""

    def __init__(self, complete: bool = False) -> None:
        self._complete = complete
        self._digests = bytearray()
        self._keys = bytearray()  # the (zone, target) of each run, as JSON
        self._key_at = array("q")  # where each run's (zone, target) starts in _keys
        self._starts = array("q")  # the index of the first change of each run
        self._last: tuple[str, str] | None = None
        self._count = 0
        self.odd: dict[int, Any] = {}  # index: the item as read
        self.problem: str | None = None
        self.all_changes = True  # each item is a change or an object

    def add(self, item: Any) -> None:
        self._count += 1
        if self.problem is not None and not self._complete:
            self.all_changes = self.all_changes and isinstance(item, dict | ReadChange)
            return
        if isinstance(item, ReadChange):
            zone, target, digest = item
        else:
            self.odd[self._count - 1] = item
            digest = _digest(item)
            self.problem = self.problem or _change_problem(item)
            if isinstance(item, dict):
                zone, target = str(item.get("zone")), str(item.get("target"))
            else:
                zone = target = ""
                self.all_changes = False
        self._digests += bytes.fromhex(digest)
        if self._last != (zone, target):
            self._last = (zone, target)
            self._key_at.append(len(self._keys))
            self._keys += json.dumps(self._last).encode() + b"\n"
            self._starts.append(self._count - 1)

    def _key(self, run: int) -> tuple[str, str]:
        at = self._key_at[run]
        zone, target = json.loads(self._keys[at:self._keys.index(b"\n", at)])
        return sys.intern(zone), sys.intern(target)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("change index out of range")
        if index in self.odd:
            return self.odd[index]
        zone, target = self._key(bisect.bisect_right(self._starts, index) - 1)
        return ReadChange((zone, target, self._digests[32 * index:32 * index + 32].hex()))

    def digest_lines(self) -> Iterator[bytes]:
        """The digests of the changes in hex, a line each, a block of lines at a time."""
        step = 32 * 4096
        for i in range(0, len(self._digests), step):
            text = binascii.hexlify(self._digests[i:i + step])
            yield b"".join(text[j:j + 64] + b"\n" for j in range(0, len(text), 64))

    def runs(self) -> dict[tuple[str, str], list[int]]:
        """{(zone, target): its runs of changes} (a plan file has one run for each)."""
        out: dict[tuple[str, str], list[int]] = {}
        for run in range(len(self._starts)):
            out.setdefault(self._key(run), []).append(run)
        return out

    def digests(self, runs: Iterable[int]) -> list[bytes]:
        """The digests of the changes of `runs`, sorted."""
        out: list[bytes] = []
        for run in runs:
            start = self._starts[run]
            end = self._starts[run + 1] if run + 1 < len(self._starts) \
                else len(self._digests) // 32
            out.extend(bytes(self._digests[32 * i:32 * i + 32]) for i in range(start, end))
        return sorted(out)


def read_plan(path: str) -> dict[str, Any]:
    """A plan file, read as strict JSON a block at a time: its changes kept as `ReadChanges`;
    refused (PlanFileError, StalePlanError) when it is not one `plan --out` wrote or its
    digest does not match."""
    pieces = read_text_chunks(path, MAX_PLAN, "the plan file")
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    try:
        data = jsonstream.load(pieces, decoder, "changes", ReadChanges)
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file; make one with `pmgdns plan --out "
                            f"{path}`") from None
    except (ValueError, RecursionError) as exc:  # JSON, or a number Python cannot hold
        failed: BaseException | None = exc
    else:
        failed = None
    if failed is not None:
        for _ in pieces:  # a file too large or not UTF-8 is refused as that, first
            pass
        if isinstance(failed, _NotStrictJson):
            raise PlanFileError(f"{path}: refused: {failed}, which `pmgdns plan --out` never "
                                "writes (was the file edited?). Nothing was applied; make a new "
                                "one with `pmgdns plan --out`")
        raise PlanFileError(f"{path}: not a readable pmgdns plan file ({failed}); make a new "
                            "one with `pmgdns plan --out`")
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != 1:
        raise PlanFileError(f"{path}: not a pmgdns plan file (version 1); make a new one with "
                            "`pmgdns plan --out`")
    problem = _shape_problem(data)
    if problem:
        raise PlanFileError(f"{path}: {problem}, which `pmgdns plan --out` never writes (was "
                            "the file edited?); make a new one with `pmgdns plan --out`")
    if data.get("digest") != document_digest(data):
        raise StalePlanError(f"{path} is stale: its content does not match its digest (was the "
                             "file edited? its summary, manual steps and notes are covered as "
                             "well as its changes). Nothing was applied; run `pmgdns plan --out` "
                             "again and review it.")
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
    if not isinstance(data.get("digest"), str):
        return "it has no `digest` (made by an older pmgdns?)"
    summary = data.get("summary")
    if not isinstance(summary, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in summary.values()):
        return "its `summary` is not a mapping of counts"
    manual = data.get("manual")
    if not isinstance(manual, list) or not all(
            isinstance(m, dict) and all(isinstance(v, str) for v in m.values()) for m in manual):
        return "its `manual` is not a list of steps"
    notes = data.get("notes")
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        return "its `notes` is not a list of texts"
    changes = data.get("changes")
    if not isinstance(changes, list | ReadChanges):
        return "its `changes` is not a list"
    if not isinstance(data.get("takes_away", []), list):
        return "its `takes_away` is not a list"
    if isinstance(changes, ReadChanges):
        return changes.problem
    for c in changes:
        problem = _change_problem(c)
        if problem:
            return problem
    return None


def _change_problem(c: Any) -> str | None:
    """What is wrong with one change of a plan document, if anything."""
    if isinstance(c, ReadChange):
        return None
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
    changes = document.get("changes", [])
    read = changes if isinstance(changes, ReadChanges) else ReadChanges(complete=True)
    if read is not changes and isinstance(changes, list):
        for c in changes:
            read.add(c)
    if not isinstance(changes, list | ReadChanges) or not read.all_changes:
        raise PlanFileError(f"{path}: its changes are not a list of changes; make a new one with "
                            "`pmgdns plan --out`")
    planned = read.runs()
    differing = []
    for key, now in fresh.by_zone_target().items():  # one (zone, target) at a time
        digests = sorted(hashlib.sha256(json.dumps(c.to_json(), sort_keys=True).encode())
                         .digest() for c in now)
        if read.digests(planned.pop(key, [])) != digests:
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
    # a zone whose changes and whose records both moved is named once, in the plan's order
    places = list(dict.fromkeys([f"{z} at {t}" for z, t in differing]
                                + [m for m in moved if m != "?"]))
    where = ", ".join(places) or "the plan's checksum"
    count = len(places) or 1
    raise StalePlanError(f"{path} is stale: the targets changed since the plan was made "
                         f"({where} now differ{'s' if count == 1 else ''}). Nothing was "
                         "applied; run `pmgdns plan --out` again and review it.")


# the note `plan --changed-since` adds (api.ChangedDomains.note); the only note a fresh plan of
# the same domains does not give again
_SINCE_NOTE = re.compile(r"planned (\d+) of \d+ domains: those whose records changed since "
                         r"\S+(?: \([^\n]*\))?; a full `pmgdns plan` also finds drift at the "
                         r"targets")


def check_shown(document: dict[str, Any], path: str, fresh: PlanResult,
                manual: Sequence[dict[str, str]], notes: Sequence[str]) -> None:
    """Refuse a plan whose summary, manual steps or notes are not the ones a fresh plan of the
    same spec gives: what the reviewer read is what holds, not only its changes."""
    edited = []
    if document.get("summary") != fresh.summary():
        edited.append("summary")
    if _canon(list(document.get("manual", []))) != _canon([dict(m) for m in manual]):
        edited.append("manual steps")
    planned = str(len(document.get("domains", [])))
    shown = [n for n in document.get("notes", [])
             if not ((m := _SINCE_NOTE.fullmatch(n)) and m.group(1) == planned)]
    if sorted(map(_untimed, shown)) != sorted(map(_untimed, notes)):
        edited.append("notes")
    if edited:
        raise StalePlanError(f"{path} is stale: its {' and '.join(edited)} are not the ones "
                             "planned (was the file edited?). Nothing was applied; run `pmgdns "
                             "plan --out` again and review it.")


_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\b")


def _untimed(note: str) -> str:
    """A note without the moment it was written for (`not before 2026-12-07 03:00 UTC if you
    apply now` moves with the clock; the rest of the note must not)."""
    return _TIME.sub("<time>", note)


def _canon(changes: list[Any]) -> list[str]:
    return sorted(json.dumps(c, sort_keys=True) for c in changes)
