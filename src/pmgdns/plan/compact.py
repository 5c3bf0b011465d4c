"""A plan of a large fleet kept small: what the engine holds and streams back out.

A plan of 100,000 zones has about a million changes. Held as Python objects, beside octoDNS's
own plans (a second copy of every zone), that is gigabytes. Here the changes are kept as
compressed JSON batches (a batch is a few hundred zones; the zones of one fleet compress well),
made where they are planned (a worker process packs its own share) and turned back into
`Change` objects one batch at a time when a report, a plan file or a check reads them. The
checksum over octoDNS's plan data is hashed as the plans arrive, in their final order; each
(zone, target) keeps only the digest of its own plan data, so an apply can plan a batch again and
know it is the one that was shown.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

ACTIONS = ("create", "update", "delete")


@dataclass(frozen=True)
class Change:
    """One change at one target, with values as DNS answers them (spec-v1 §5)."""

    zone: str
    target: str
    action: str  # create | update | delete
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    previous: tuple[str, ...]
    previous_ttl: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"zone": self.zone, "target": self.target, "action": self.action,
                "name": self.name, "type": self.type, "ttl": self.ttl,
                "values": list(self.values), "previous": list(self.previous)}

    def row(self) -> list[Any]:
        """The change as a compact JSON row (`from_row` reads it back)."""
        return [self.zone, self.target, self.action, self.name, self.type, self.ttl,
                list(self.values), list(self.previous), self.previous_ttl]

    @classmethod
    def from_row(cls, row: list[Any]) -> Change:
        zone, target, action, name, type_, ttl, values, previous, previous_ttl = row
        return cls(zone, target, action, name, type_, ttl, tuple(values), tuple(previous),
                   previous_ttl)


@dataclass(slots=True)
class ZonePlan:
    """One (zone, target) with changes: how many, the digest of what the target held there,
    the digest of octoDNS's plan data (its share of the checksum), octoDNS's safety verdict,
    and octoDNS's Plan itself while it is kept for an apply in this process."""

    zone: str
    target: str
    count: int
    digest: str  # sha256 of everything the target held in the zone
    data_sha: str  # sha256 of octoDNS's Plan.data as JSON
    unsafe: str | None
    plan: Any = field(default=None, repr=False, compare=False)


@dataclass
class Batch:
    """The plans of a few hundred zones, packed where they were planned."""

    plans: list[ZonePlan]
    blob: bytes  # zlib of the JSON rows of their changes, in order
    count: int
    actions: dict[str, int]
    data: list[str]  # octoDNS's plan data of each plan, as JSON, in order
    watched: list[Change] = field(default_factory=list)  # the changes `pack`'s `watch` kept


Planned = tuple[ZonePlan, list[Change], str]  # a plan, its changes, its data as JSON


def pack(planned: Iterable[Planned], watch: Callable[[Change], bool] | None = None) -> Batch:
    """Pack plans into a batch (compressing their changes); the few changes `watch` picks are
    also kept as they are (what the plan takes away is read from them)."""
    watched: list[Change] = []
    plans: list[ZonePlan] = []
    rows: list[list[Any]] = []
    data: list[str] = []
    actions = dict.fromkeys(ACTIONS, 0)
    for zp, changes, text in planned:
        plans.append(zp)
        data.append(text)
        for c in changes:
            rows.append(c.row())
            actions[c.action] += 1
            if watch is not None and watch(c):
                watched.append(c)
    blob = zlib.compress(json.dumps(rows, separators=(",", ":")).encode("utf-8"), 6) \
        if rows else b""
    return Batch(plans, blob, len(rows), actions, data, watched)


class ChangeLog(Sequence[Change]):
    """Every change of a plan, compressed in batches, read back one batch at a time."""

    def __init__(self) -> None:
        self._blobs: list[bytes] = []
        self._ends: list[int] = []  # cumulative change counts, one per blob
        self.actions = dict.fromkeys(ACTIONS, 0)
        self.groups = 0  # (zone, target) runs
        self._cache: tuple[int, list[Change]] | None = None

    def add(self, batch: Batch) -> None:
        if not batch.count:
            return
        self._blobs.append(batch.blob)
        self._ends.append(len(self) + batch.count)
        for action, n in batch.actions.items():
            self.actions[action] += n
        self.groups += sum(1 for zp in batch.plans if zp.count)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def _batch(self, index: int) -> list[Change]:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        rows = json.loads(zlib.decompress(self._blobs[index]))
        changes = [Change.from_row(r) for r in rows]
        self._cache = (index, changes)
        return changes

    def __iter__(self) -> Iterator[Change]:
        for i, blob in enumerate(self._blobs):
            if self._cache is not None and self._cache[0] == i:
                yield from self._cache[1]
            else:  # without caching: a pass over everything holds one batch at a time
                for row in json.loads(zlib.decompress(blob)):
                    yield Change.from_row(row)

    @overload
    def __getitem__(self, index: int) -> Change: ...

    @overload
    def __getitem__(self, index: slice) -> list[Change]: ...

    def __getitem__(self, index: int | slice) -> Change | list[Change]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("change index out of range")
        b = bisect.bisect_right(self._ends, index)
        start = self._ends[b - 1] if b else 0
        return self._batch(b)[index - start]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other,
                                                                          strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def by_target(self) -> Iterator[tuple[tuple[str, str], list[Change]]]:
        """The changes of each (zone, target) in turn (they are stored together)."""
        key: tuple[str, str] | None = None
        run: list[Change] = []
        for c in self:
            if (c.zone, c.target) != key:
                if key is not None:
                    yield key, run
                key, run = (c.zone, c.target), []
            run.append(c)
        if key is not None:
            yield key, run


class _Items(Mapping[tuple[str, str], list[Change]]):
    """{(zone, target): its changes}, read from a ChangeLog as it is iterated (`items()` holds
    one zone's changes at a time); looking one key up reads the log from the start."""

    def __init__(self, log: ChangeLog) -> None:
        self._log = log

    def __len__(self) -> int:
        return self._log.groups

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (k for k, _ in self._log.by_target())

    def __getitem__(self, key: tuple[str, str]) -> list[Change]:
        for k, changes in self._log.by_target():
            if k == key:
                return changes
        raise KeyError(key)

    def items(self) -> _StreamedItems:  # type: ignore[override]
        return _StreamedItems(self)

    def values(self) -> Iterator[list[Change]]:  # type: ignore[override]
        return (v for _, v in self._log.by_target())


class _StreamedItems:
    def __init__(self, groups: _Items) -> None:
        self._groups = groups

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self) -> Iterator[tuple[tuple[str, str], list[Change]]]:
        return self._groups._log.by_target()


def zone_groups(log: ChangeLog) -> Mapping[tuple[str, str], list[Change]]:
    """The changes of `log` by (zone, target), streamed (see `_Items`)."""
    return _Items(log)


class Collector:
    """Takes batches in their final order: keeps the zone plans and the compressed changes,
    and hashes octoDNS's checksum (sha256 of the JSON list of every plan's data) on the way."""

    def __init__(self) -> None:
        self.changes = ChangeLog()
        self.plans: list[ZonePlan] = []
        self._hash = hashlib.sha256(b"[")
        self._first = True

    def add(self, batch: Batch) -> None:
        for text in batch.data:
            if not self._first:
                self._hash.update(b", ")
            self._hash.update(text.encode("utf-8"))
            self._first = False
        self.changes.add(batch)
        self.plans.extend(batch.plans)

    def checksum(self) -> str:
        h = self._hash.copy()
        h.update(b"]")
        return h.hexdigest()


def json_list(items: Iterable[Any]) -> Iterator[str]:
    """A list of `Change`s (or JSON values) one member at a time, as `json.dumps(..., indent=2)`
    writes it as the value of a top-level key."""
    first = True
    for item in items:
        if isinstance(item, Change):
            item = item.to_json()
        text = "\n".join("    " + line for line in json.dumps(item, indent=2).split("\n"))
        yield ("[\n" if first else ",\n") + text
        first = False
    yield "[]" if first else "\n  ]"


def json_members(doc: Mapping[str, Any], streamed: str = "changes") -> Iterator[str]:
    """The members of `doc` as `json.dumps(doc, indent=2)` writes them between its braces,
    the list under `streamed` one member at a time (`json_list`)."""
    first = True
    for key, value in doc.items():
        yield ("\n  " if first else ",\n  ") + json.dumps(key) + ": "
        first = False
        if key == streamed and not isinstance(value, dict):
            yield from json_list(value)
        else:
            yield json.dumps(value, indent=2).replace("\n", "\n  ")


def data_json(data: Any) -> str:
    """octoDNS's plan data as `json.dumps` writes it inside the checksum's list."""
    return json.dumps(data)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
