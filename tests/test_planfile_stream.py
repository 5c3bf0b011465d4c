"""`apply --plan` reads a plan file a block at a time (issue 28: a fleet's plan file is hundreds of
megabytes of JSON): what it holds is a fraction of the file, and every file is accepted or refused
as when the whole text was read and parsed by `json.loads`, with the same message."""

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pmgdns.core import jsonstream
from pmgdns.core.errors import PmgdnsError
from pmgdns.plan import planfile

from .conftest import Project, assert_clean_error

DKIM = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 20


def _changes(zones: int) -> Iterator[dict[str, Any]]:
    for i in range(zones):
        zone = f"d{i:05}.example."
        for name, type_, value in ((zone, "MX", "10 mx1.example."),
                                   (zone, "TXT", "v=spf1 mx -all"),
                                   (f"_dmarc.{zone}", "TXT", "v=DMARC1; p=reject"),
                                   (f"pmg2026._domainkey.{zone}", "TXT", DKIM)):
            yield {"zone": zone, "target": "local", "action": "create", "name": name,
                   "type": type_, "ttl": 3600, "values": [value], "previous": []}


def _document(zones: int) -> dict[str, Any]:
    return {"format": planfile.FORMAT, "version": 1, "pmgdns_version": "0.1.0",
            "created": "2026-12-07T00:00:00Z", "spec": "config/site.yaml",
            "spec_digest": "a" * 64, "zones_digest": "b" * 64,
            "domains": [f"d{i:05}.example" for i in range(zones)], "checksum": "c" * 64,
            "targets": {f"d{i:05}.example. at local": "d" * 64 for i in range(zones)},
            "summary": {"create": 4 * zones, "update": 0, "delete": 0}, "takes_away": [],
            "changes": _changes(zones),
            "manual": [{"kind": "ptr", "address": "198.51.100.25", "name": "mx1.example."}],
            "notes": ["a note"]}


def _write(path: Path, zones: int) -> Path:
    planfile.write_plan(str(path), _document(zones))
    return path


def _whole(pieces: Iterable[str], decoder: json.JSONDecoder, member: str,
           collect: Callable[[], Any], block: int | None = None) -> Any:
    """The plan file read as before: its whole text, then `json.loads` with the same hooks."""
    return json.loads("".join(pieces), object_pairs_hook=decoder.object_pairs_hook,
                      parse_constant=decoder.parse_constant)


def _traced(read: Callable[[], Any]) -> tuple[int, int]:
    """(bytes held by what `read` returns, peak bytes while it ran), as tracemalloc counts."""
    tracemalloc.start()
    try:
        kept = read()
        held, peak = tracemalloc.get_traced_memory()
        del kept
        return held, peak
    finally:
        tracemalloc.stop()


def test_a_large_plan_file_is_read_holding_a_fraction_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "plan.json", 10_000)
    size = path.stat().st_size
    assert size > 16 * 2**20
    held, peak = _traced(lambda: planfile.read_plan(str(path)))
    # reading costs a block or two beside what is kept, whatever the size of the file
    assert peak - held < 4 * jsonstream.BLOCK, (peak, held)
    # and what is kept of a change is its digest and its (zone, target) run
    assert held < size / 2.5, (held, size)
    doc = planfile.read_plan(str(path))
    assert len(doc["changes"]) == doc["summary"]["create"] == 40_000
    # the same file read whole, as before: the text alone is as large as the file
    monkeypatch.setattr(jsonstream, "load", _whole)
    assert _traced(lambda: planfile.read_plan(str(path)))[1] > size


def test_a_read_plan_file_gives_its_changes_back(tmp_path: Path) -> None:
    path = _write(tmp_path / "plan.json", 30)
    doc = planfile.read_plan(str(path))
    raw = json.loads(path.read_text())
    changes = doc["changes"]
    assert len(changes) == len(raw["changes"]) == 120
    assert all(isinstance(c, planfile.ReadChange) for c in changes)
    assert [tuple(c)[:2] for c in changes] == [(c["zone"], c["target"]) for c in raw["changes"]]
    assert [c[2] for c in changes] == [planfile._digest(c) for c in raw["changes"]]
    assert changes[-1] == changes[119] and changes[2:4] == [changes[2], changes[3]]
    assert planfile.document_digest(doc) == planfile.document_digest(raw) == raw["digest"]


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _redigest(mutate: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    def edit(text: str) -> str:
        doc = json.loads(text)
        mutate(doc)
        doc["digest"] = planfile.document_digest(doc)
        return json.dumps(doc, indent=2)
    return edit


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.__setitem__(key, value)


def _change(key: str, value: Any, index: int = 5) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc["changes"][index].__setitem__(key, value)


EDITS: dict[str, Callable[[str], str]] = {
    "duplicate key": lambda t: _edit(t, '"summary": {', '"summary": {"create": 0},\n  '
                                                       '"summary": {'),
    "duplicate key in a change": lambda t: _edit(t, '"ttl": 3600', '"ttl": 3600, "ttl": 60'),
    "NaN": lambda t: _edit(t, '"ttl": 3600', '"ttl": NaN'),
    "Infinity": lambda t: _edit(t, '"notes": [', '"notes": [-Infinity, '),
    "trailing comma": lambda t: _edit(t, "\n  ],\n  \"manual\"", ",\n  ],\n  \"manual\""),
    "missing comma": lambda t: _edit(t, '"ttl": 3600,', '"ttl": 3600'),
    "single quotes": lambda t: _edit(t, '"action": "create"', "'action': 'create'"),
    "extra data": lambda t: t + "{}",
    "byte order mark": lambda t: "\ufeff" + t,
    "empty": lambda t: "",
    "only whitespace": lambda t: " \n\t",
    "a list": lambda t: "[" + t + "]",
    "control character": lambda t: _edit(t, "v=spf1 mx", "v=spf1\tmx"),
    "bad escape": lambda t: _edit(t, "v=spf1 mx", "v=spf1\\x mx"),
    "integer too long": lambda t: _edit(t, '"ttl": 3600', '"ttl": ' + "9" * 5000),
    "deep nesting": lambda t: _edit(t, '"notes": [', '"notes": [' + "[" * 100_000),
    "changes not a list": _redigest(_set("changes", {"zone": "x"})),
    "a change not a change": _redigest(lambda doc: doc["changes"].insert(7, 12)),
    "values not texts": _redigest(_change("values", [1])),
    "previous not a list": _redigest(_change("previous", "x")),
    "zone not a text": _redigest(_change("zone", None)),
    "a change with a key more": _redigest(_change("note", "edited")),
    "domains not a list": _redigest(_set("domains", "d00000.example")),
    "summary not counts": _redigest(_set("summary", {"create": True})),
    "no digest": lambda t: _edit(t, '"digest"', '"digests"'),
    "not a plan": _redigest(_set("format", "other")),
    "digest mismatch": lambda t: _edit(t, '"ttl": 3600', '"ttl": 3601'),
    "takes_away not a list": _redigest(_set("takes_away", {})),
}


def _outcome(path: Path) -> tuple[str, str]:
    try:
        doc = planfile.read_plan(str(path))
    except PmgdnsError as exc:
        return type(exc).__name__, str(exc)
    return "read", planfile.document_digest(doc)


@pytest.mark.parametrize("name", sorted(EDITS))
def test_a_malformed_plan_file_is_refused_as_before(tmp_path: Path, name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = _write(tmp_path / "plan.json", 12).read_text()
    path = tmp_path / "edited.json"
    path.write_text(EDITS[name](text), encoding="utf-8")
    outcomes = set()
    for block in (1, 7, 64, 4096, jsonstream.BLOCK):
        monkeypatch.setattr(jsonstream, "BLOCK", block)
        outcomes.add(_outcome(path))
    with monkeypatch.context() as m:
        m.setattr(jsonstream, "load", _whole)
        before = _outcome(path)
    assert outcomes == {before}
    if name != "a change with a key more":
        assert before[0] != "read", before  # each edit is refused


def test_cut_or_spoiled_anywhere_a_plan_file_is_refused_as_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _write(tmp_path / "plan.json", 3).read_text()
    rng = random.Random(28)
    path = tmp_path / "edited.json"
    monkeypatch.setattr(jsonstream, "BLOCK", 5)
    for i in range(400):
        at = rng.randrange(len(text))
        spoiled = (text[:at] if i % 2 else
                   text[:at] + rng.choice('{}[],:"\\ \nN-0e\x01') + text[at + rng.randrange(3):])
        path.write_text(spoiled, encoding="utf-8")
        streamed = _outcome(path)
        with monkeypatch.context() as m:
            m.setattr(jsonstream, "load", _whole)
            assert streamed == _outcome(path), spoiled


def test_a_file_not_utf8_or_too_large_is_refused_as_that_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _write(tmp_path / "plan.json", 12).read_text()
    path = tmp_path / "edited.json"
    # a JSON error early, a byte that is not UTF-8 late: the file is not UTF-8 text
    path.write_bytes(b"{x" + text[2:].encode() + b"\xff")
    monkeypatch.setattr(jsonstream, "BLOCK", 64)
    with pytest.raises(PmgdnsError, match="is not UTF-8 text"):
        planfile.read_plan(str(path))
    path.write_text(_edit(text, '"ttl": 3600', '"ttl": NaN'))
    monkeypatch.setattr(planfile, "MAX_PLAN", len(text) - 10)
    with pytest.raises(PmgdnsError, match="pmgdns reads at most"):
        planfile.read_plan(str(path))


def test_apply_refuses_a_spoiled_plan_file_cleanly(project: Project) -> None:
    assert project.run("plan", "--out", "plan.json").code == 0
    plan = project.root / "plan.json"
    plan.write_text(plan.read_text()[:-40])
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "plan.json",
                       "not a readable pmgdns plan file", "line ", "column ")
    assert not project.local_zone("example.com").exists()


def test_json_parsed_as_it_streams_in_is_what_json_loads_gives() -> None:
    """The reader on its own, against `json.loads`, on documents cut and spoiled at random."""
    class Items(list[Any]):
        def add(self, item: Any) -> None:
            self.append(item)

    def outcome(text: str, block: int = 0) -> tuple[str, Any]:
        try:
            if not block:
                return "ok", json.loads(text)
            return "ok", jsonstream.load(jsonstream.pieces_of(text, min(block, 2)),
                                         json.JSONDecoder(), "changes", Items, block)
        except (ValueError, RecursionError) as exc:
            return type(exc).__name__.replace("StreamError", "JSONDecodeError"), str(exc)

    doc = {"a": [1, 2.5, -3e2, None, True], "changes": [{"x": "é\"\\"}, [], "\ud83d\ude00", 7],
           "z": {"y": ["\n"]}}
    texts = [json.dumps(doc), json.dumps(doc, indent=2, ensure_ascii=False)]
    rng = random.Random(7)
    cases = ["", "{", "[1]", '{"changes": [1,]}', '{"changes": [1 2]}', '{"changes": 3}',
             '{"a": 1}x', '{"changes": [' + "1" * 30 + "]}",
             '{"a": [2.5, 1e5, -0.5E-3, 10], "changes": [3.25, 1E+2, -1], "b": {"c": 1.0}}']
    for _ in range(600):
        text = rng.choice(texts)
        at = rng.randrange(len(text) + 1)
        cases.append(text[:at] + rng.choice(['"', "", ",", "]", "}", " ", "\\u12", "tru",
                                             "-", "1e"]) + text[at + rng.randrange(3):])
    for text in cases:
        for block in (1, 3, 50):
            assert outcome(text, block) == outcome(text), (text, block)


def test_a_file_of_many_items_that_are_no_changes_is_refused_holding_none(
        tmp_path: Path) -> None:
    doc = json.loads(_write(tmp_path / "plan.json", 1).read_text())
    doc["changes"] = [1] * 300_000
    doc["digest"] = planfile.document_digest(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc, indent=2))
    del doc

    def refused() -> str:
        with pytest.raises(PmgdnsError) as caught:
            planfile.read_plan(str(path))
        return str(caught.value)

    held, peak = _traced(refused)
    assert "a change in it is not a change" in refused()
    assert peak < 4 * jsonstream.BLOCK, peak


def test_the_digest_is_the_one_plan_files_have_always_had(tmp_path: Path) -> None:
    """sha256 over the canonical JSON of all but the changes, then a line for each change's
    digest: made a part at a time now, so a plan file written before still applies."""
    def digest(doc: dict[str, Any]) -> str:
        body = {k: v for k, v in doc.items() if k not in ("digest", "changes")}
        h = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True,
                                      separators=(",", ":")).encode() + b"\n")
        for c in doc["changes"]:
            h.update(hashlib.sha256(json.dumps(c, sort_keys=True).encode()).hexdigest().encode()
                     + b"\n")
        return h.hexdigest()

    raw = json.loads(_write(tmp_path / "plan.json", 2500).read_text())
    assert raw["digest"] == digest(raw) == planfile.document_digest(raw)
    assert planfile.document_digest(planfile.read_plan(str(tmp_path / "plan.json"))) \
        == raw["digest"]
    raw["notes"].append({"é": [1.5, None, {"b": 1, "a": "\u2028"}]})
    raw["targets"]["zz. at local"] = "e" * 64
    assert planfile.document_digest(raw) == digest(raw)
