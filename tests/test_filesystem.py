"""Every path pmgdns reads or writes, in every state a checkout, a pipeline or an attacker can put
it in: missing, a directory where a file goes, a file where a directory goes, a FIFO, symlinks
(elsewhere, dangling, a loop), /dev/zero, a 3 GB sparse file, read-only or unreadable, and a
full disk.

The paths: the spec (`-c`), `dkim.key_file`, `zones/` (rendered), `build/` (octodns.yaml, the
render stamp, apply.lock, the local target's zone files in build/zones), the plan file
(`plan --out`, `apply --plan`), `verify --out` and `GITHUB_STEP_SUMMARY`.

Every run is a real `python -m pmgdns` process with a time and memory budget (tests/hostile.py),
so a FIFO that blocks or an endless file is a failed assertion, not a stuck suite. What must
hold: exit 0, or exit 1 with one `Error:` paragraph that names the path; no traceback, no
"internal error"; nothing half-written (no temporary file left, the old file intact, nothing
written through a symlink to a file elsewhere); and no byte of a file pmgdns was pointed at by
mistake (`key_file: /etc/shadow`) in any output.

Root bypasses file modes, so "read-only" and "unreadable" run pmgdns in a user namespace that
maps an ordinary uid onto the files' owner (`hostile.USERNS`), where chmod applies. The full
disk is a 256 KiB tmpfs mounted over the directory in a private mount namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Keys, base_spec
from .hostile import (
    USERNS,
    Problems,
    Run,
    assert_no_raw_controls,
    assert_sane,
    error_line,
    leftovers,
    pmgdns,
    pmgdns_on_full_disk,
)
from .servers import BindServer, zone_text

SPEC = "config/site.yaml"
CANARY = b"CANARY-5e1f7c: a file outside the checkout that pmgdns must never change\n"
SPARSE = 3 * 1024 * 1024 * 1024  # bytes


# -- a checkout --------------------------------------------------------------------------------

@dataclass
class Tree:
    """A checkout (the cwd of every run) after a first `apply --yes` on the local target, and
    a directory elsewhere (`outside`) holding a canary file."""

    root: Path
    outside: Path
    keys: Keys
    env: dict[str, str] = field(default_factory=dict)

    def __truediv__(self, rel: str) -> Path:
        return self.root / rel

    @property
    def canary(self) -> Path:
        return self.outside / "canary.txt"

    def write_spec(self, spec: dict[str, Any] | None = None, **defaults: Any) -> None:
        data = spec or base_spec(self.keys)
        if defaults:
            data["defaults"] = defaults
        (self / SPEC).write_text(yaml.safe_dump(data, sort_keys=False))

    def run(self, *args: str, wrap: tuple[str, ...] = (), env: dict[str, str] | None = None
            ) -> Run:
        return pmgdns(self.root, *args, wrap=wrap, env={**self.env, **(env or {})})

    def replace(self, rel: str, kind: str, target: str | None = None) -> Path:
        """Put `kind` at `rel` in place of what is there: dir, file, fifo, symlink (to
        `target`), sparse (a 3 GB sparse file)."""
        path = self / rel
        if path.is_symlink() or path.is_file() or stat.S_ISFIFO(_mode(path)):
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_bytes(b"a file where a directory belongs\n")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink":
            assert target is not None
            path.symlink_to(target)
        elif kind == "sparse":
            with open(path, "wb") as fh:
                fh.truncate(SPARSE)
        else:
            raise ValueError(kind)
        return path


def _mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Path:
    """A checkout after `apply --yes`: config/, zones/, build/ (octodns.yaml, render.stamp,
    apply.lock, zones/*.zone)."""
    root = tmp_path_factory.mktemp("template")
    (root / "config").mkdir()
    (root / SPEC).write_text(yaml.safe_dump(base_spec(keys), sort_keys=False))
    (root / "keys").mkdir()
    (root / "keys" / "dkim.pem").write_text(keys.pem())
    first = pmgdns(root, "apply", "--yes")
    assert first.code == 0, str(first)
    plan = pmgdns(root, "plan", "--out", "plans/reviewed.json")
    assert plan.code == 0, str(plan)
    return root


@pytest.fixture
def tree(template: Path, tmp_path: Path, keys: Keys) -> Iterator[Tree]:
    root = tmp_path / "checkout"
    shutil.copytree(template, root, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_bytes(CANARY)
    t = Tree(root, outside, keys)
    yield t
    for d, dirs, _files in os.walk(tmp_path):  # undo chmods so that the tmp dir can go
        for name in dirs:
            p = os.path.join(d, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def snapshot(path: Path) -> Any:
    """What is at `path`, without following a symlink or opening a FIFO."""
    mode = _mode(path)
    if mode == 0:
        return None
    if stat.S_ISLNK(mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISDIR(mode):
        return ("dir", sorted(p.name for p in path.iterdir()))
    if stat.S_ISREG(mode):
        size = os.lstat(path).st_size
        return ("file", path.read_bytes() if size < 1 << 20 else size)
    return ("special", stat.S_IFMT(mode))


# -- the cases -----------------------------------------------------------------------------------

Prepare = Callable[[Tree], None]


@dataclass
class Case:
    """`prepare` the tree, run `args`; `expect` ok (exit 0), error (exit 1 naming `names`) or
    either (whichever, as long as it is clean). `intact`: paths whose content must not change;
    `fresh_spec`: change the spec first so that render must write new zone files."""

    id: str
    prepare: Prepare
    args: tuple[str, ...]
    expect: str = "error"
    names: str | None = None
    intact: tuple[str, ...] = ()
    fresh_spec: bool = False
    userns: bool = False
    env: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # paths (outside the checkout too) that must not appear


def nothing(t: Tree) -> None:
    pass


def put(rel: str, kind: str, target: str | Callable[[Tree], str] | None = None) -> Prepare:
    def prepare(t: Tree) -> None:
        tgt = target(t) if callable(target) else target
        t.replace(rel, kind, tgt)
    return prepare


def chmod(rel: str, mode: int) -> Prepare:
    def prepare(t: Tree) -> None:
        os.chmod(t / rel, mode)
    return prepare


def both(*steps: Prepare) -> Prepare:
    def prepare(t: Tree) -> None:
        for s in steps:
            s(t)
    return prepare


def with_key_file(path: str) -> Prepare:
    def prepare(t: Tree) -> None:
        spec = base_spec(t.keys)
        spec["dkim"] = {"selector": "pmg2026", "key_file": path}
        t.write_spec(spec)
    return prepare


def canary(t: Tree) -> str:
    return str(t.canary)


def outside_spec(t: Tree) -> str:
    path = t.outside / "site.yaml"
    path.write_text(yaml.safe_dump(base_spec(t.keys), sort_keys=False))
    return str(path)


def outside_pem(t: Tree) -> str:
    path = t.outside / "dkim.pem"
    path.write_text(t.keys.pem())
    return str(path)


def loop(rel: str) -> Prepare:
    def prepare(t: Tree) -> None:
        t.replace(rel, "symlink", os.path.basename(rel))
    return prepare


def summary(value: str) -> dict[str, str]:
    return {"GITHUB_STEP_SUMMARY": value}


ZONE = "build/zones/example.com.zone"
YAML_ZONE = "zones/example.com.yaml"

CASES: list[Case] = [
    # the spec (-c)
    Case("spec missing", nothing, ("-c", "config/none.yaml", "validate"), names="config/none.yaml"),
    Case("spec is a directory", put("config/dir.yaml", "dir"),
         ("-c", "config/dir.yaml", "validate"), names="config/dir.yaml"),
    Case("spec is a FIFO", put("config/fifo.yaml", "fifo"), ("-c", "config/fifo.yaml", "validate"),
         names="config/fifo.yaml"),
    Case("spec is a symlink elsewhere", put("config/link.yaml", "symlink", outside_spec),
         ("-c", "config/link.yaml", "validate"), expect="ok"),
    Case("spec is a dangling symlink", put("config/link.yaml", "symlink", "/nonexistent/x"),
         ("-c", "config/link.yaml", "validate"), names="config/link.yaml"),
    Case("spec is a symlink loop", loop("config/loop.yaml"), ("-c", "config/loop.yaml", "validate"),
         names="config/loop.yaml"),
    Case("spec is /dev/zero", nothing, ("-c", "/dev/zero", "validate"), names="/dev/zero"),
    Case("spec is a 3 GB sparse file", put("config/big.yaml", "sparse"),
         ("-c", "config/big.yaml", "validate"), names="config/big.yaml"),
    Case("spec is unreadable", chmod(SPEC, 0), ("validate",), names=SPEC, userns=True),
    Case("spec path runs through a file", nothing, ("-c", "config/site.yaml/x", "validate"),
         names="config/site.yaml/x"),
    Case("spec is read-only", chmod(SPEC, 0o444), ("render",), expect="ok", userns=True),
    Case("spec from PMGDNS_CONFIG is a FIFO", put("config/fifo.yaml", "fifo"), ("validate",),
         names="config/fifo.yaml", env={"PMGDNS_CONFIG": "config/fifo.yaml"}),
    # dkim.key_file
    Case("key_file missing", with_key_file("keys/none.pem"), ("validate",), names="keys/none.pem"),
    Case("key_file is a directory", both(with_key_file("keys/d.pem"), put("keys/d.pem", "dir")),
         ("validate",), names="keys/d.pem"),
    Case("key_file is a FIFO", both(with_key_file("keys/f.pem"), put("keys/f.pem", "fifo")),
         ("validate",), names="keys/f.pem"),
    Case("key_file is a symlink elsewhere",
         both(with_key_file("keys/l.pem"), put("keys/l.pem", "symlink", outside_pem)),
         ("validate",), expect="ok"),
    Case("key_file is a dangling symlink",
         both(with_key_file("keys/l.pem"), put("keys/l.pem", "symlink", "/nonexistent/k")),
         ("validate",), names="keys/l.pem"),
    Case("key_file is a symlink loop", both(with_key_file("keys/loop.pem"), loop("keys/loop.pem")),
         ("validate",), names="keys/loop.pem"),
    Case("key_file is /dev/zero", with_key_file("/dev/zero"), ("validate",), names="/dev/zero"),
    Case("key_file is /dev/urandom", with_key_file("/dev/urandom"), ("validate",),
         names="/dev/urandom"),
    Case("key_file is a 3 GB sparse file",
         both(with_key_file("keys/big.pem"), put("keys/big.pem", "sparse")), ("validate",),
         names="keys/big.pem"),
    Case("key_file is unreadable", both(with_key_file("keys/dkim.pem"), chmod("keys/dkim.pem", 0)),
         ("validate",), names="keys/dkim.pem", userns=True),
    Case("key_file path runs through a file", with_key_file("keys/dkim.pem/x"), ("validate",),
         names="keys/dkim.pem/x"),
    # zones/ (render writes it; validate and render --check read it)
    Case("zones/ is a file", put("zones", "file"), ("render",), names="zones", fresh_spec=True),
    Case("zones/ is read-only", chmod("zones", 0o555), ("render",), names="zones",
         fresh_spec=True, userns=True, intact=(YAML_ZONE,)),
    Case("a zone file is a directory", put(YAML_ZONE, "dir"), ("render",), names=YAML_ZONE),
    Case("a zone file is a FIFO", put(YAML_ZONE, "fifo"), ("render",), expect="either",
         names=YAML_ZONE),
    Case("a zone file is a FIFO (render --check)", put(YAML_ZONE, "fifo"), ("render", "--check"),
         names=YAML_ZONE),
    Case("a zone file is a symlink elsewhere", put(YAML_ZONE, "symlink", canary), ("render",),
         expect="either", names=YAML_ZONE),
    Case("a zone file is a symlink to /dev/zero", put(YAML_ZONE, "symlink", "/dev/zero"),
         ("render",), expect="either", names=YAML_ZONE),
    Case("a zone file is a dangling symlink", put(YAML_ZONE, "symlink", "/nonexistent/z"),
         ("render",), expect="either", names=YAML_ZONE, absent=("/nonexistent/z",)),
    Case("a zone file is a symlink loop", loop(YAML_ZONE), ("render",), expect="either",
         names=YAML_ZONE),
    Case("a zone file is read-only", chmod(YAML_ZONE, 0o444), ("render",), expect="either",
         names=YAML_ZONE, fresh_spec=True, userns=True),
    Case("a zone file is unreadable", chmod(YAML_ZONE, 0), ("render",), expect="either",
         names=YAML_ZONE, fresh_spec=True, userns=True),
    Case("a stray zones/*.yaml is a symlink to /dev/zero",
         put("zones/stray.yaml", "symlink", "/dev/zero"), ("validate",), expect="either",
         names="zones/stray.yaml"),
    Case("a stray zones/*.yaml is a FIFO", put("zones/stray.yaml", "fifo"), ("plan",),
         expect="either", names="zones/stray.yaml"),
    # build/: octodns.yaml and the render stamp
    Case("build/ is a file", put("build", "file"), ("render",), names="build", fresh_spec=True),
    Case("build/ is read-only", chmod("build", 0o555), ("render",), names="build",
         fresh_spec=True, userns=True, intact=("build/octodns.yaml",)),
    Case("build/octodns.yaml is a directory", put("build/octodns.yaml", "dir"), ("render",),
         names="build/octodns.yaml"),
    Case("build/octodns.yaml is a FIFO", put("build/octodns.yaml", "fifo"), ("render",),
         expect="either", names="build/octodns.yaml"),
    Case("build/octodns.yaml is a symlink elsewhere",
         put("build/octodns.yaml", "symlink", canary), ("render",), expect="either",
         names="build/octodns.yaml", fresh_spec=True),
    Case("build/octodns.yaml is unreadable", chmod("build/octodns.yaml", 0), ("render",),
         expect="either", names="build/octodns.yaml", fresh_spec=True, userns=True),
    Case("the render stamp is unreadable", chmod("build/render.stamp", 0), ("plan",),
         expect="either", names="build/render.stamp", userns=True),
    Case("the render stamp is a directory", put("build/render.stamp", "dir"), ("plan",),
         expect="either", names="build/render.stamp"),
    Case("the render stamp is a FIFO", put("build/render.stamp", "fifo"), ("plan",),
         expect="either", names="build/render.stamp"),
    Case("the render stamp is a symlink to /dev/zero",
         put("build/render.stamp", "symlink", "/dev/zero"), ("plan",), expect="either",
         names="build/render.stamp"),
    Case("the render stamp is a symlink elsewhere", put("build/render.stamp", "symlink", canary),
         ("plan",), expect="either", names="build/render.stamp", fresh_spec=True),
    # build/apply.lock
    Case("apply.lock is a directory", put("build/apply.lock", "dir"), ("apply", "--yes"),
         names="build/apply.lock"),
    Case("apply.lock is a FIFO", put("build/apply.lock", "fifo"), ("apply", "--yes"),
         expect="either", names="build/apply.lock"),
    Case("apply.lock is a symlink elsewhere", put("build/apply.lock", "symlink", canary),
         ("apply", "--yes"), expect="either", names="build/apply.lock"),
    Case("apply.lock is a dangling symlink",
         put("build/apply.lock", "symlink", lambda t: str(t.outside / "created-by-pmgdns")),
         ("apply", "--yes"), expect="either", names="build/apply.lock",
         absent=("{outside}/created-by-pmgdns",)),
    Case("apply.lock is read-only", chmod("build/apply.lock", 0o444), ("apply", "--yes"),
         expect="either", names="build/apply.lock", userns=True),
    # build/zones (the local target)
    Case("build/zones is a file", put("build/zones", "file"), ("apply", "--yes"),
         names="build/zones", fresh_spec=True),
    Case("build/zones is read-only", chmod("build/zones", 0o555), ("apply", "--yes"),
         names="build/zones", fresh_spec=True, userns=True, intact=(ZONE,)),
    Case("a local zone file is a directory", put(ZONE, "dir"), ("plan",), names=ZONE),
    Case("a local zone file is a FIFO", put(ZONE, "fifo"), ("plan",), names=ZONE),
    Case("a local zone file is a symlink elsewhere", put(ZONE, "symlink", canary),
         ("apply", "--yes"), expect="either", names=ZONE),
    Case("a local zone file is a symlink to /dev/zero", put(ZONE, "symlink", "/dev/zero"),
         ("plan",), names=ZONE),
    Case("a local zone file is a 3 GB sparse file", put(ZONE, "sparse"), ("plan",), names=ZONE),
    Case("a local zone file is a dangling symlink", put(ZONE, "symlink", "/nonexistent/zone"),
         ("apply", "--yes"), expect="either", names=ZONE, absent=("/nonexistent/zone",)),
    Case("a local zone file is a symlink loop", loop(ZONE), ("plan",), names=ZONE),
    Case("a local zone file is unreadable", chmod(ZONE, 0), ("plan",), names=ZONE, userns=True),
    Case("a local zone file is read-only", chmod(ZONE, 0o444), ("apply", "--yes"),
         expect="either", names=ZONE, fresh_spec=True, userns=True),
    # the plan file: plan --out
    Case("plan --out over the spec", nothing, ("plan", "--out", SPEC), names=SPEC,
         intact=(SPEC,)),
    Case("plan --out to a directory", put("plans/d.json", "dir"), ("plan", "--out", "plans/d.json"),
         names="plans/d.json"),
    Case("plan --out to a FIFO", put("plans/f.json", "fifo"), ("plan", "--out", "plans/f.json"),
         names="plans/f.json"),
    Case("plan --out to a symlink elsewhere", put("plans/l.json", "symlink", canary),
         ("plan", "--out", "plans/l.json"), names="plans/l.json"),
    Case("plan --out to a dangling symlink",
         put("plans/l.json", "symlink", lambda t: str(t.outside / "created-by-pmgdns")),
         ("plan", "--out", "plans/l.json"), expect="either", names="plans/l.json",
         absent=("{outside}/created-by-pmgdns",)),
    Case("plan --out to a read-only directory", chmod("plans", 0o555),
         ("plan", "--out", "plans/reviewed.json"), names="plans/reviewed.json", userns=True,
         fresh_spec=True, intact=("plans/reviewed.json",)),
    Case("plan --out through a file", nothing, ("plan", "--out", "config/site.yaml/plan.json"),
         names="config/site.yaml/plan.json"),
    Case("plan --out to /dev/full", nothing, ("plan", "--out", "/dev/full"), names="/dev/full"),
    Case("plan --out over a read-only plan file", chmod("plans/reviewed.json", 0o444),
         ("plan", "--out", "plans/reviewed.json"), expect="either", userns=True,
         names="plans/reviewed.json"),
    # the plan file: apply --plan
    Case("apply --plan missing", nothing, ("apply", "--plan", "plans/none.json"),
         names="plans/none.json"),
    Case("apply --plan a directory", put("plans/d.json", "dir"),
         ("apply", "--plan", "plans/d.json"), names="plans/d.json"),
    Case("apply --plan a FIFO", put("plans/f.json", "fifo"), ("apply", "--plan", "plans/f.json"),
         names="plans/f.json"),
    Case("apply --plan /dev/zero", nothing, ("apply", "--plan", "/dev/zero"), names="/dev/zero"),
    Case("apply --plan a 3 GB sparse file", put("plans/big.json", "sparse"),
         ("apply", "--plan", "plans/big.json"), names="plans/big.json"),
    Case("apply --plan a symlink loop", loop("plans/loop.json"),
         ("apply", "--plan", "plans/loop.json"), names="plans/loop.json"),
    Case("apply --plan unreadable", chmod("plans/reviewed.json", 0),
         ("apply", "--plan", "plans/reviewed.json"), names="plans/reviewed.json", userns=True),
    Case("apply --plan the spec", nothing, ("apply", "--plan", SPEC), names=SPEC),
    Case("apply --plan a symlink to a reviewed plan",
         put("plans/link.json", "symlink", "reviewed.json"),
         ("apply", "--plan", "plans/link.json"), expect="ok"),
    # GITHUB_STEP_SUMMARY (plan appends its markdown)
    Case("step summary is a directory", put("summary", "dir"), ("plan",), names="summary",
         env=summary("summary")),
    Case("step summary is a FIFO", put("summary.md", "fifo"), ("plan",), names="summary.md",
         env=summary("summary.md")),
    Case("step summary's directory is missing", nothing, ("plan",), names="nodir/summary.md",
         env=summary("nodir/summary.md")),
    Case("step summary is read-only", both(put("summary.md", "file"), chmod("summary.md", 0o444)),
         ("plan",), names="summary.md", env=summary("summary.md"), userns=True,
         intact=("summary.md",)),
    Case("step summary's directory is a file", put("ci", "file"), ("plan",),
         names="ci/summary.md", env=summary("ci/summary.md")),
    Case("step summary is /dev/full", nothing, ("plan",), names="/dev/full",
         env=summary("/dev/full")),
    Case("step summary is a symlink loop", loop("summary.md"), ("plan",), names="summary.md",
         env=summary("summary.md")),
]


def _absent_paths(case: Case, t: Tree) -> list[Path]:
    return [Path(p.format(outside=t.outside)) for p in case.absent]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_path_state(case: Case, tree: Tree) -> None:
    if case.fresh_spec:
        tree.write_spec(ttl=600)
    case.prepare(tree)
    before = {rel: snapshot(tree / rel) for rel in case.intact}
    run = tree.run(*case.args, wrap=USERNS if case.userns else (), env=case.env)
    p = Problems(run)
    p.check(lambda: assert_sane(run))
    if case.expect == "ok":
        p.check(run.code == 0, "expected exit 0")
    elif case.expect == "error":
        p.check(run.code == 1, f"expected a clean error naming {case.names}")
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    if run.code == 1 and case.names:
        p.check(any(case.names in line for line in errors),
                f"the error does not name the path {case.names}")
    for rel, old in before.items():
        p.check(snapshot(tree / rel) == old, f"{rel} changed though the run failed")
    p.check(tree.canary.read_bytes() == CANARY, "wrote through a symlink to a file elsewhere")
    for path in _absent_paths(case, tree):
        p.check(not os.path.lexists(path), f"created {path} through a dangling symlink")
    left = leftovers(tree / "zones", tree / "build", tree / "build" / "zones", tree / "plans",
                     tree.root)
    p.check(not left, f"temporary files left behind: {left}")
    p.assert_none()


# -- hostile plan files ----------------------------------------------------------------------------

def _edited_plan(change: Callable[[dict[str, Any]], Any]) -> Prepare:
    def prepare(t: Tree) -> None:
        path = t / "plans" / "reviewed.json"
        doc = json.loads(path.read_text())
        out = change(doc)
        path.write_text(out if isinstance(out, str) else json.dumps(doc))
    return prepare


PLAN_EDITS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("domains is a number", lambda d: d.update(domains=5)),
    ("domains holds a number", lambda d: d.update(domains=[5])),
    ("domains names no domain of the spec", lambda d: d.update(domains=["nope.example"])),
    ("changes is a string", lambda d: d.update(changes="x", checksum="0")),
    ("a change lacks its zone", lambda d: d.update(changes=[{"target": "local"}], checksum="0")),
    ("a change is a number", lambda d: d.update(changes=[1], checksum="0")),
    ("the document is a list", lambda d: "[]"),
    ("a 5000-digit number", lambda d: json.dumps(d)[:-1] + ', "x": ' + "1" * 5000 + "}"),
    ("100000 nested lists", lambda d: json.dumps(d)[:-1] + ', "x": ' + "[" * 100000
     + "]" * 100000 + "}"),
    ("not UTF-8", lambda d: json.dumps(d).replace("pmgdns-plan", "pmgdns-plan\udcff")),
    ("an ESC in the checksum", lambda d: d.update(checksum="\x1b]0;pwned\x07")),
    ("an ESC in the domains", lambda d: d.update(domains=["\x1b]0;pwned\x07"])),
]


@pytest.mark.parametrize("edit", [e for _, e in PLAN_EDITS], ids=[n for n, _ in PLAN_EDITS])
def test_hostile_plan_file(edit: Callable[[dict[str, Any]], Any], tree: Tree) -> None:
    """A reviewed plan file edited by hand (or by an attacker): refused cleanly (or, if it still
    matches, applied), never an internal error; the zone is not changed."""
    path = tree / "plans" / "reviewed.json"
    doc = json.loads(path.read_text())
    out = edit(doc)
    text = out if isinstance(out, str) else json.dumps(doc)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    zone_before = snapshot(tree / ZONE)
    run = tree.run("apply", "--plan", "plans/reviewed.json")
    assert_sane(run)
    if run.code == 1:
        assert "plans/reviewed.json" in error_line(run), str(run)
    assert snapshot(tree / ZONE) == zone_before


# -- full disk ---------------------------------------------------------------------------------

FULL: list[tuple[str, str, tuple[str, ...], tuple[str, ...], dict[str, str]]] = [
    # id, the full directory, args, its files that must stay as they were, env
    ("zones/ full: render", "zones", ("render",), (YAML_ZONE,), {}),
    ("build/ full: render", "build", ("render",), ("build/octodns.yaml",), {}),
    ("build/ full: plan", "build", ("plan",), ("build/octodns.yaml",), {}),
    ("build/zones full: apply", "build/zones", ("apply", "--yes"), (ZONE,), {}),
    ("plans/ full: plan --out", "plans", ("plan", "--out", "plans/reviewed.json"),
     ("plans/reviewed.json",), {}),
    ("summary's directory full: plan", "ci", ("plan",), ("ci/summary.md",),
     summary("ci/summary.md")),
]


@pytest.mark.parametrize("directory,args,intact,env", [f[1:] for f in FULL],
                         ids=[f[0] for f in FULL])
def test_full_disk(directory: str, args: tuple[str, ...], intact: tuple[str, ...],
                   env: dict[str, str], tree: Tree) -> None:
    """The directory pmgdns writes to is a full file system (a 256 KiB tmpfs, filled): a
    clean error naming the path, the old files intact, no temporary file left."""
    tree.write_spec(ttl=600)  # so that every output changes
    (tree / "ci").mkdir()
    # a whole page, so that appending needs a new one on the full tmpfs
    (tree / "ci" / "summary.md").write_bytes(b"old summary\n".ljust(4096, b"."))
    old = {rel: (tree / rel).read_bytes() for rel in intact}
    full = pmgdns_on_full_disk(tree.root, tree / directory, *args, env=env)
    run = full.run
    p = Problems(run)
    p.check(lambda: assert_sane(run))
    p.check(run.code == 1, "a full disk must be an error")
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    p.check(any(directory in line for line in errors), f"the error does not name {directory}")
    for rel in intact:
        inside = os.path.relpath(rel, directory)
        p.check(full.files.get(inside) == old[rel], f"{rel} is not intact")
    temp = [name for name in full.files if leftovers_in(name)]
    p.check(not temp, f"temporary files left on the full disk: {temp}")
    p.assert_none()


def leftovers_in(name: str) -> bool:
    base = os.path.basename(name)
    return bool(base.startswith((".tmp-", ".pmgdns-", ".run-")) or ".tmp-" in base)


# -- files pmgdns was pointed at by mistake: none of their bytes in any output ----------------

SECRET = b"SECRETCANARY-9d2b41-root:$6$saltsalt$hashhashhash"


def _secret_file(content: bytes) -> Callable[[Tree], str]:
    def make(t: Tree) -> str:
        path = t.outside / "secret"
        path.write_bytes(content)
        return str(path)
    return make


SECRET_FILES: list[tuple[str, Callable[[Tree], str]]] = [
    ("/etc/shadow", lambda t: "/etc/shadow"),
    ("a passwd-like line", _secret_file(SECRET + b":0:99999:7:::\n")),
    ("a tag list whose v= is the secret", _secret_file(b"v=" + SECRET + b"; p=abc\n")),
    ("a tag list whose k= is the secret", _secret_file(b"k=" + SECRET + b"; p=abc\n")),
    ("a tag list whose p= is the secret", _secret_file(b"v=DKIM1; p=" + SECRET + b"\n")),
    ("the secret, then a byte that is not UTF-8", _secret_file(SECRET + b"\xff\xfe")),
    ("a byte that is not UTF-8 first", _secret_file(b"\xff" + SECRET)),
    ("a private key", _secret_file(b"-----BEGIN PRIVATE KEY-----\n" + SECRET
                                   + b"\n-----END PRIVATE KEY-----\n")),
    ("a PEM block holding the secret", _secret_file(b"-----BEGIN PUBLIC KEY-----\n" + SECRET
                                                    + b"\n-----END PUBLIC KEY-----\n")),
    ("a quoted record holding the secret", _secret_file(b'sel._domainkey IN TXT ( "' + SECRET
                                                        + b'" )\n')),
]


def _windows(data: bytes, size: int = 6) -> set[bytes]:
    return {data[i:i + size] for i in range(0, max(1, len(data) - size + 1))}


def _assert_not_echoed(run: Run, content: bytes) -> None:
    """No 6-byte run of the file's secret part (the canary token, or the first line of
    /etc/shadow) and no non-ASCII byte of its head (as `0xff`) in stdout or stderr."""
    output = run.raw_out + run.raw_err
    needle = SECRET if SECRET in content else content.split(b"\n", 1)[0][:64]
    for window in _windows(needle):
        assert window not in output, f"{window!r} of the file appears in the output\n{run}"
    for byte in set(content[:16]) - set(range(0x20, 0x7F)) - {0x0A}:
        assert f"0x{byte:02x}".encode() not in output, (
            f"the byte 0x{byte:02x} of the file appears in the output\n{run}")


@pytest.mark.parametrize("make", [m for _, m in SECRET_FILES], ids=[n for n, _ in SECRET_FILES])
def test_key_file_never_echoes_its_bytes(make: Callable[[Tree], str], tree: Tree) -> None:
    path = make(tree)
    content = Path(path).read_bytes()
    with_key_file(path)(tree)
    run = tree.run("validate")
    assert_sane(run)
    assert run.code == 1, str(run)
    _assert_not_echoed(run, content)


@pytest.mark.parametrize("make", [m for _, m in SECRET_FILES[:3]], ids=[n for n, _ in
                                                                         SECRET_FILES[:3]])
@pytest.mark.parametrize("where", ["spec", "plan file", "local zone file"])
def test_other_paths_never_echo_a_files_bytes(make: Callable[[Tree], str], where: str,
                                              tree: Tree) -> None:
    """The same for the spec (`-c`), a plan file (`apply --plan`) and a local zone file that is
    a symlink to such a file (a checkout can hold any symlink)."""
    path = make(tree)
    content = Path(path).read_bytes()
    if where == "spec":
        run = tree.run("-c", path, "validate")
    elif where == "plan file":
        run = tree.run("apply", "--plan", path)
    else:
        tree.replace(ZONE, "symlink", path)
        run = tree.run("plan")
    assert_sane(run)
    assert run.code == 1, str(run)
    _assert_not_echoed(run, content)


# -- verify --out (needs a name server: a real BIND on loopback) ------------------------------

@pytest.fixture(scope="module")
def bind() -> Iterator[BindServer]:
    s = BindServer({z: zone_text(z, "") for z in ("example.com", "example.org")}).start()
    try:
        yield s
    finally:
        s.stop()


VERIFY_CASES: list[tuple[str, Prepare, str, bool, str]] = [
    # id, prepare, --out, userns, expect
    ("to a new file", nothing, "reports/verify.txt", False, "ok"),
    ("over the spec", nothing, SPEC, False, "error"),
    ("to a directory", put("reports/d.txt", "dir"), "reports/d.txt", False, "error"),
    ("to a FIFO", put("reports/f.txt", "fifo"), "reports/f.txt", False, "error"),
    ("to a symlink elsewhere", put("reports/l.txt", "symlink", canary), "reports/l.txt", False,
     "error"),
    ("to a symlink loop", loop("reports/loop.txt"), "reports/loop.txt", False, "error"),
    ("to a dangling symlink",
     put("reports/l.txt", "symlink", lambda t: str(t.outside / "created-by-pmgdns")),
     "reports/l.txt", False, "error"),
    ("to a read-only directory", both(put("reports/x", "file"), chmod("reports", 0o555)),
     "reports/verify.txt", True, "error"),
    ("through a file", nothing, "config/site.yaml/verify.txt", False, "error"),
    ("to /dev/full", nothing, "/dev/full", False, "error"),
]


@pytest.mark.parametrize("prepare,out,userns,expect", [c[1:] for c in VERIFY_CASES],
                         ids=[c[0] for c in VERIFY_CASES])
def test_verify_out(prepare: Prepare, out: str, userns: bool, expect: str, tree: Tree,
                    bind: BindServer) -> None:
    prepare(tree)
    spec_before = snapshot(tree / SPEC)
    run = tree.run("verify", "--nameserver", f"127.0.0.1:{bind.port}", "--out", out,
                   wrap=USERNS if userns else ())
    assert not run.timed_out, f"HANG\n{run}"
    assert run.code in (0, 1), str(run)
    assert "Traceback" not in run.err and "internal error" not in run.err.lower(), str(run)
    assert_no_raw_controls(run)
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    if expect == "ok":
        assert not errors, str(run)
        assert "Verify:" in (tree / out).read_text(), str(run)
    else:
        # verify exits 1 on any FAIL with a report; a path it cannot write is an `Error:`
        assert run.code == 1 and len(errors) == 1 and out in errors[0], (
            f"expected one error naming {out}\n{run}")
    assert snapshot(tree / SPEC) == spec_before
    assert tree.canary.read_bytes() == CANARY
    assert not (tree.outside / "created-by-pmgdns").exists()
    assert not leftovers(tree / "reports", tree.root)


def test_verify_out_on_a_full_disk(tree: Tree, bind: BindServer) -> None:
    (tree / "reports").mkdir()
    first = tree.run("verify", "--nameserver", f"127.0.0.1:{bind.port}", "--out",
                     "reports/verify.txt")
    assert first.code in (0, 1) and (tree / "reports" / "verify.txt").exists(), str(first)
    old = (tree / "reports" / "verify.txt").read_bytes()
    full = pmgdns_on_full_disk(tree.root, tree / "reports", "verify", "--nameserver",
                               f"127.0.0.1:{bind.port}", "--format", "json", "--out",
                               "reports/verify.txt", timeout=30)
    run = full.run
    assert_sane(run)
    assert "reports/verify.txt" in error_line(run), str(run)
    assert full.files.get("verify.txt") == old
    assert not [n for n in full.files if leftovers_in(n)], full.files.keys()


def test_the_harness_can_make_a_full_disk(tree: Tree) -> None:
    """A guard for the full-disk cases: the tmpfs really is full inside the namespace."""
    result = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs -o size=64k tmpfs {tree / 'zones'} && "
         f"dd if=/dev/zero of={tree / 'zones'}/f bs=4k count=100 2>&1; true"],
        capture_output=True, text=True, timeout=30)
    assert "No space left on device" in result.stdout + result.stderr, result
