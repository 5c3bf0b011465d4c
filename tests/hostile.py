"""Running pmgdns as a hostile pipeline would: in a subprocess with a time and memory budget, and
the invariants every run must keep whatever it was given (tests/test_adversarial.py and
tests/test_filesystem.py).

Every run is a real `python -m pmgdns` process in its own session, killed (with its children) by
process group when it overruns its budget, so a hang is a failed assertion and never a stuck
suite. Its data segment is capped, so reading an endless or huge file fails fast instead of
taking the machine's memory.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PYTHON = sys.executable
CHECKZONE = shutil.which("named-checkzone") or "/usr/bin/named-checkzone"
DATA_LIMIT = 1024 * 1024 * 1024  # bytes of heap a pmgdns run may take (it needs about 60 MiB)
TIMEOUT = 5.0  # seconds per pmgdns run; a normal run takes about 0.3 s

# the environment of every run: nothing from the calling shell that changes pmgdns's behaviour
_DROP = ("GITHUB_STEP_SUMMARY", "PMGDNS_CONFIG", "PMGDNS_DEBUG", "PYTHONSTARTUP")


@dataclass
class Run:
    """One finished (or killed) pmgdns run."""

    args: tuple[str, ...]
    code: int | None  # None when it was killed for overrunning its time budget
    raw_out: bytes
    raw_err: bytes
    timed_out: bool = False

    @property
    def out(self) -> str:
        return self.raw_out.decode("utf-8", "backslashreplace")

    @property
    def err(self) -> str:
        return self.raw_err.decode("utf-8", "backslashreplace")

    def __str__(self) -> str:
        return (f"pmgdns {' '.join(self.args)!r} -> exit {self.code}"
                f"{' (KILLED: no answer within the time budget)' if self.timed_out else ''}\n"
                f"--- stdout (last 2000 bytes) ---\n{self.raw_out[-2000:]!r}\n"
                f"--- stderr (last 2000 bytes) ---\n{self.raw_err[-2000:]!r}")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update({"PYTHONPATH": str(SRC), "NO_COLOR": "1", "LC_ALL": "C.UTF-8",
                "PYTHONIOENCODING": "utf-8", "MALLOC_ARENA_MAX": "2"})
    env.update(extra or {})
    return env


def pmgdns(cwd: Path | str, *args: str, env: Mapping[str, str] | None = None,
           timeout: float = TIMEOUT, wrap: Sequence[str] = ()) -> Run:
    """Run `pmgdns ARGS` in `cwd` (optionally under a wrapper such as `unshare ...`)."""
    return command(cwd, [*wrap, PYTHON, "-m", "pmgdns", *args], env=env, timeout=timeout,
                   label=args)


def command(cwd: Path | str, argv: Sequence[str], env: Mapping[str, str] | None = None,
            timeout: float = TIMEOUT, label: Sequence[str] | None = None) -> Run:
    proc = subprocess.Popen(list(argv), cwd=cwd, env=environment(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=_limits)
    try:
        out, err = proc.communicate(timeout=timeout)
        return Run(tuple(label or argv), proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return Run(tuple(label or argv), None, out, err, timed_out=True)


# -- what every run must keep ---------------------------------------------------------------

# Characters that must never reach a terminal or a pull-request comment raw: C0 and C1 controls
# (ESC, NUL, CR, BEL, ...) and DEL, the bidirectional overrides and isolates ("Trojan Source"),
# and the Unicode line/paragraph separators. A newline is the only control allowed.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def forbidden_characters(text: str) -> list[str]:
    bad = []
    for ch in text:
        if ch == "\n":
            continue
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI:
            bad.append(f"U+{ord(ch):04X}")
    return sorted(set(bad))


def assert_no_raw_controls(run: Run) -> None:
    for stream, raw in (("stdout", run.raw_out), ("stderr", run.raw_err)):
        assert b"\x1b" not in raw, f"raw ESC in {stream}\n{run}"
        text = raw.decode("utf-8", "replace")
        bad = forbidden_characters(text)
        assert not bad, f"raw control/bidi characters {bad} in {stream}\n{run}"


def assert_sane(run: Run) -> None:
    """What every run keeps, whatever it was given: it finished within its budget, exit code
    0 or 1, no traceback, no internal error, no raw control character, and an error is one
    `Error:` paragraph (one line, the last of stderr)."""
    assert not run.timed_out, f"HANG: pmgdns did not finish within its budget\n{run}"
    assert run.code in (0, 1), f"exit code {run.code} (only 0 and 1 are allowed)\n{run}"
    for stream in (run.out, run.err):
        assert "Traceback" not in stream, f"a traceback\n{run}"
        assert "internal error" not in stream.lower(), f"an internal error\n{run}"
    assert_no_raw_controls(run)
    errors = error_lines(run)
    if run.code == 1:
        assert len(errors) == 1, f"exit 1 needs exactly one `Error:` paragraph\n{run}"
        last = [line for line in run.err.splitlines() if line.strip()][-1]
        assert last.startswith("Error:"), f"the `Error:` paragraph is not the last\n{run}"
    else:
        assert not errors, f"exit 0 with an `Error:` line\n{run}"


def error_lines(run: Run) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith("Error:")]


def error_line(run: Run) -> str:
    lines = error_lines(run)
    assert len(lines) == 1, str(run)
    return lines[0]


TOP_KEYS = ("version", "gateway", "gateways", "dkim", "defaults", "domains", "providers",
            "firewall", "retired_gateways", "delegate")


def assert_spec_error(run: Run, spec_file: str) -> None:
    """An exit-1 error about the spec names the file and a key path (`domains.x.dmarc.p`), or,
    for a document-level YAML error that has no key path, the line."""
    assert_sane(run)
    assert run.code == 1, str(run)
    line = error_line(run)
    m = re.match(rf"Error: {re.escape(spec_file)}(?:, line (\d+))?: (.*)$", line)
    assert m, f"the error does not start by naming the spec file {spec_file}\n{run}"
    rest = m.group(2)
    keyed = re.match(rf"(?:{'|'.join(TOP_KEYS)})(?:\.[^:]*)?: ", rest)
    # a document-level YAML error has no key path: then the line is what locates it
    located = m.group(1) is not None
    whole_file = rest.startswith(WHOLE_FILE)
    assert keyed or located or whole_file, f"the error names neither a key path nor a line\n{run}"


# errors about the spec file as a whole, which no key path or line could locate
WHOLE_FILE = ("the spec is empty", "is not UTF-8 text", "no such file", "cannot be read")


def _representations(ch: str) -> list[str]:
    """How an escaped control character may show: C/Python, DNS presentation, JSON, caret,
    Unicode control pictures, U+ notation, or its UTF-8 bytes escaped."""
    o = ord(ch)
    out = [f"\\x{o:02x}", f"\\u{o:04x}", f"U+{o:04X}", f"<U+{o:04X}>"]
    data = ch.encode("utf-8")
    out.append("".join(f"\\{b:03d}" for b in data))
    out.append("".join(f"\\x{b:02x}" for b in data))
    if o < 0x20 or o == 0x7F:
        out += [f"^{chr(o ^ 0x40)}", chr(0x2400 + o) if o < 0x20 else "\u2421"]
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e", "\x00": "\\0",
                 "\x07": "\\a", "\x08": "\\b", "\x0b": "\\v", "\x0c": "\\f"}
        if ch in named:
            out.append(named[ch])
    return out


def hidden_characters(value: str) -> list[str]:
    """The characters of `value` that an output must show escaped."""
    return sorted({ch for ch in value if (ch != " " and unicodedata.category(ch) in
                                          ("Cc", "Zl", "Zp")) or ch in BIDI})


def unshown(output: str, value: str) -> list[str]:
    """The characters of `value` that need escaping and that `output` shows in no escaped form."""
    low = output.lower()
    return [f"U+{ord(ch):04X}" for ch in hidden_characters(value)
            if not any(r.lower() in low for r in _representations(ch))]


# -- zone files -----------------------------------------------------------------------------

def checkzone(zone: str, path: Path) -> None:
    result = subprocess.run([CHECKZONE, "-i", "local", zone, str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, (f"named-checkzone refuses {path}:\n{result.stdout}"
                                    f"{result.stderr}\n{path.read_bytes()[:4000]!r}")


def txt_rdata_text(value: bytes) -> str:
    """A TXT value (its bytes) in zone-file presentation format, cut into 255-byte strings."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [b""]
    return str(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks).to_text())


def local_zone_text(zone: str, body: Sequence[tuple[str, bytes]]) -> str:
    """A zone file as someone else left it at the local target: SOA, NS and TXT values."""
    lines = [f"$ORIGIN {zone}.", "$TTL 3600",
             f"@ IN SOA ns.invalid. hostmaster.{zone}. 1 3600 600 604800 300",
             "@ IN NS ns.invalid."]
    lines += [f"{name or '@'} 3600 IN TXT {txt_rdata_text(value)}" for name, value in body]
    return "\n".join(lines) + "\n"


def leftovers(*directories: Path) -> list[str]:
    """Temporary files pmgdns (or the local target) left behind in `directories`."""
    out = []
    pattern = re.compile(r"(\.tmp-|\.pmgdns-|\.run-|\.tmp$|\.tmp-\d+$)")
    for d in directories:
        if not d.is_dir() or d.is_symlink():
            continue
        for entry in d.iterdir():
            if pattern.search(entry.name):
                out.append(str(entry))
    return sorted(out)


# -- states of the file system --------------------------------------------------------------

# Run pmgdns as a user that owns the files but holds no capability: root bypasses file modes,
# a user namespace that maps an ordinary uid onto root does not (chmod 000 then denies reading,
# chmod 555 denies creating files in a directory).
USERNS = ("unshare", "-U", "--map-user=1000", "--map-group=1000")

# Runs inside a private mount namespace (`unshare -m`): mounts a small tmpfs over a directory,
# puts the directory's old content back, fills the tmpfs, runs pmgdns, and reports as JSON what
# it left there. The mount disappears with the namespace.
FULL_DISK_SCRIPT = r"""
import json, os, shutil, subprocess, sys
cfg = json.loads(sys.argv[1])
mnt = cfg["mount"]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", mnt], check=True)
for name in os.listdir(cfg["saved"]):
    src = os.path.join(cfg["saved"], name)
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, os.path.join(mnt, name), symlinks=True)
    else:
        shutil.copy2(src, os.path.join(mnt, name), follow_symlinks=False)
fill = os.open(os.path.join(mnt, ".filler"), os.O_WRONLY | os.O_CREAT, 0o600)
try:
    while True:
        os.write(fill, b"\0" * 4096)
except OSError:
    pass
os.close(fill)
try:
    p = subprocess.run(cfg["argv"], cwd=cfg["cwd"], capture_output=True, timeout=cfg["timeout"],
                       env=cfg["env"])
    code, out, err, timed_out = p.returncode, p.stdout, p.stderr, False
except subprocess.TimeoutExpired as exc:
    code, out, err, timed_out = None, exc.stdout or b"", exc.stderr or b"", True
def walk(d):
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, d)
            if rel == ".filler":
                continue
            if os.path.islink(path) or os.path.isdir(path):
                out[rel] = None
            else:
                with open(path, "rb") as fh:
                    out[rel] = fh.read().hex()
    return out
print(json.dumps({"code": code, "out": out.hex(), "err": err.hex(), "timed_out": timed_out,
                  "files": walk(mnt)}))
"""


@dataclass
class FullDiskRun:
    run: Run
    files: dict[str, bytes | None]  # what the full directory holds afterwards (None: a dir)


def pmgdns_on_full_disk(cwd: Path, directory: Path, *args: str,
                        env: Mapping[str, str] | None = None,
                        timeout: float = TIMEOUT) -> FullDiskRun:
    """Run `pmgdns ARGS` while `directory` (its old content kept) is a full file system."""
    import json
    import tempfile

    saved = Path(tempfile.mkdtemp(prefix="pmgdns-saved-"))
    try:
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, saved / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, saved / entry.name, follow_symlinks=False)
        cfg = {"mount": str(directory), "saved": str(saved), "cwd": str(cwd),
               "argv": [PYTHON, "-m", "pmgdns", *args], "timeout": timeout,
               "env": environment(env)}
        outer = command(cwd, ["unshare", "-m", "--propagation", "private", PYTHON, "-c",
                              FULL_DISK_SCRIPT, json.dumps(cfg)], timeout=timeout + 20,
                        label=("(full disk)", *args))
        assert outer.code == 0 and not outer.timed_out, f"the full-disk harness failed\n{outer}"
        report = json.loads(outer.raw_out)
        run = Run(tuple(args), report["code"], bytes.fromhex(report["out"]),
                  bytes.fromhex(report["err"]), report["timed_out"])
        files = {k: (bytes.fromhex(v) if v is not None else None)
                 for k, v in report["files"].items()}
        return FullDiskRun(run, files)
    finally:
        shutil.rmtree(saved, ignore_errors=True)


class Problems:
    """Collects every failed check of one run, so that a test reports all of them at once
    (e.g. an internal error *and* a temporary file left behind)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.found: list[str] = []

    def check(self, condition: bool | Callable[[], None], message: str = "") -> None:
        if callable(condition):
            try:
                condition()
            except AssertionError as exc:
                self.found.append(str(exc).split("\n", 1)[0])
        elif not condition:
            self.found.append(message)

    def assert_none(self) -> None:
        assert not self.found, ("; ".join(self.found) + f"\n{self.run}")
