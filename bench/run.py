#!/usr/bin/env python3
"""Benchmark pmgdns against bare octodns-sync on the same work.

For each N it generates a spec with N mail domains, then times (wall clock, peak RSS of the
process) render, validate, plan/apply/re-plan on the local target, and plan/apply/re-plan/verify
against a real BIND on loopback holding those zones (AXFR + RFC 2136). Every plan and apply is also
run by `octodns-sync --config-file build/octodns.yaml` in the same run, and the ratio printed.

    python bench/run.py --domains 100 --domains 1000      # default: 100, 1000 and 10000
    python bench/run.py --domains 100000 --cloudflare-zones 0   # the fleet row set (issue #28)

Above --full-max domains (default 10,000) the row set is the fleet's: render, validate, plan,
`plan --out`, apply, no-change re-plan, `--changed-since` and `apply --plan` on the local
target, then plan, apply and re-plan against one real BIND holding the fleet's zones, and verify
against it (the second BIND that octodns-sync applies to and the one-process rows are left
out).
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.servers import BindServer, zone_text  # noqa: E402  (real BIND on loopback)

BIN = Path(sys.executable).parent
PMGDNS = [sys.executable, "-m", "pmgdns"]
OCTODNS_SYNC = [str(BIN / "octodns-sync"), "--config-file", "build/octodns.yaml"]


@dataclass
class Run:
    seconds: float
    peak_mib: float
    code: int


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/statm", "rb") as fh:
                rss[int(entry)] = int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measure(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Run:
    """Wall time, and the peak resident memory of the process and all its worker processes
    together (sampled every 20 ms; never below the process's own peak)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"{err.read().decode(errors='replace')[-3000:]}")
    return Run(seconds, max(peak, usage.ru_maxrss * 1024) / 2**20, proc.returncode)


def attempt(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Run:
    """`measure`, but a failing step is reported on stderr and the run goes on (a fleet's run
    takes an hour)."""
    try:
        return measure(cmd, cwd, env, ok)
    except SystemExit as exc:
        print(f"# FAILED: {exc}", file=sys.stderr, flush=True)
        return Run(float("nan"), float("nan"), 1)


def dkim_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def domains(n: int) -> list[str]:
    return [f"d{i:05}.example" for i in range(n)]


def write_spec(work: Path, n: int, key: str, providers: dict[str, object] | None,
               target: str) -> None:
    spec = {
        "version": 1,
        "gateway": {"hostname": "mx1.d00000.example", "ipv4": "198.51.100.25",
                    "ipv6": "2001:db8::25"},
        "dkim": {"selector": "pmg2026", "public_key": key},
        "defaults": {"targets": [target], "dmarc": {"p": "reject"}},
        "domains": {d: {} for d in domains(n)},
    }
    if providers:
        spec["providers"] = providers
    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "site.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def changed_since(work: Path, n: int, env: dict[str, str]) -> tuple[Run, Run]:
    """`plan --changed-since HEAD` after one domain's DMARC changed, and the full plan of the
    same spec as its reference."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.email=b@example.com", "-c", "user.name=b", *args],
                       cwd=work, check=True, capture_output=True)

    if not (work / ".git").exists():
        git("init", "-q")
    git("add", "config")
    git("commit", "-qm", "bench", "--allow-empty")
    spec = work / "config" / "site.yaml"
    before = spec.read_text()
    one = domains(n)[n // 2]
    spec.write_text(before.replace(f"  {one}: {{}}\n", f"  {one}:\n    dmarc: {{p: none}}\n"))
    try:
        fast = measure(PMGDNS + ["plan", "--changed-since", "HEAD"], work, env)
        full = measure(PMGDNS + ["plan"], work, env)
    finally:
        spec.write_text(before)
        measure(PMGDNS + ["render"], work, env)
    return fast, full


def cloudflare_pacing(zones: int) -> str:
    """A no-change plan of `zones` zones against the local Cloudflare-like server enforcing a
    request limit with 429 + Retry-After, paced by pmgdns; the reference is requests divided by
    the allowed rate, measured in the same run."""
    from tests.test_pacing import bench_cloudflare_pacing

    limit, window = 100, 5.0  # 20 requests/s: Cloudflare's 1,200 per 5 minutes, scaled 5x
    f = bench_cloudflare_pacing(zones=zones, limit=limit, window=window, max_workers=4)
    ideal = f["requests"] / (limit / window)  # requests / the allowed rate
    return (f"| {zones} | Cloudflare no-change plan, limit {limit} per {window:g} s, paced "
            f"{f['rate']:.1f}/s | {f['seconds']:.2f} | | {ideal:.2f} (requests / allowed "
            f"rate) | | {f['seconds'] / ideal:.2f}x |\n\n{zones} zones: "
            f"{f['requests']:.0f} requests "
            f"({f['requests_per_zone']:.3f} per zone), {f['answered_429']:.0f} answered 429, at "
            f"most {f['max_in_window']:.0f} in any {window:g} s.")


def start_bind(n: int) -> BindServer:
    zones = {d: zone_text(d, "www IN A 203.0.113.80\n") for d in domains(n)}
    zones["100.51.198.in-addr.arpa"] = zone_text("100.51.198.in-addr.arpa",
                                                 "25 IN PTR mx1.d00000.example.\n")
    return loaded(BindServer(zones).start(), domains(n)[-1])


def loaded(server: BindServer, last: str) -> BindServer:
    """`server` once named says it loaded every zone and answers for `last` (named loads a
    fleet's zones in the background, and answers slowly while it does)."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            if ("all zones loaded" in server.log_text()
                    and server.resolver().resolve(f"{last}.", "SOA")):
                break
        except Exception:  # not loaded yet
            pass
        time.sleep(1)
    return server


Row = tuple[int, str, Run, Run | None]


def fleet(n: int, key: str, env: dict[str, str], reference_all: bool) -> list[Row]:
    """The row set of a fleet: the local target, then plan, apply and re-plan against a real
    BIND holding the fleet's zones, and verify against that BIND. octodns-sync runs beside the
    local plan (and, with `reference_all`, beside every plan, apply and re-plan: at 100,000
    zones each of its runs takes many minutes)."""
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix=f"pmgdns-bench-{n}-"))
    try:
        write_spec(work, n, key, None, "local")
        rows.append((n, "render", attempt(PMGDNS + ["render"], work, env), None))
        rows.append((n, "validate", attempt(PMGDNS + ["validate"], work, env), None))
        rows.append((n, "plan, local target", attempt(PMGDNS + ["plan"], work, env),
                     attempt(OCTODNS_SYNC, work, env)))
        rows.append((n, "plan --out (plan file written)",
                     attempt(PMGDNS + ["plan", "--out", "plan.json"], work, env), None))
        shutil.rmtree(work / "build" / "zones", ignore_errors=True)
        pm_apply = attempt(PMGDNS + ["apply", "--yes"], work, env)
        od_apply = None
        if reference_all:
            shutil.rmtree(work / "build" / "zones")
            od_apply = attempt(OCTODNS_SYNC + ["--doit"], work, env)
        rows.append((n, "apply, local target", pm_apply, od_apply))
        rows.append((n, "re-plan, local (no changes)", attempt(PMGDNS + ["plan"], work, env),
                     attempt(OCTODNS_SYNC, work, env) if reference_all else None))
        try:
            rows.append((n, "plan --changed-since, 1 domain changed (ref: full plan)",
                         *changed_since(work, n, env)))
        except SystemExit as exc:
            print(f"# FAILED: {exc}", file=sys.stderr, flush=True)
        shutil.rmtree(work / "build" / "zones", ignore_errors=True)
        rows.append((n, "apply --plan plan.json (the reviewed plan), local target",
                     attempt(PMGDNS + ["apply", "--plan", "plan.json"], work, env), None))

        server = start_bind(n)
        try:
            env = dict(env, PMGDNS_TSIG_SECRET=server.secret)
            write_spec(work, n, key, {"bind": dict(server.provider_config(), timeout=30)},
                       "bind")
            measure(PMGDNS + ["render"], work, env)
            rows.append((n, "plan, BIND (AXFR)", attempt(PMGDNS + ["plan"], work, env),
                         attempt(OCTODNS_SYNC, work, env) if reference_all else None))
            rows.append((n, "apply, BIND (RFC 2136)",
                         attempt(PMGDNS + ["apply", "--yes"], work, env), None))
            rows.append((n, "re-plan, BIND (no changes)", attempt(PMGDNS + ["plan"], work, env),
                         None))
            rows.append((n, "verify, BIND", attempt(
                PMGDNS + ["verify", "--nameserver", f"127.0.0.1:{server.port}"], work, env,
                ok=(0, 1)), None))
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def bench(n: int, key: str, env: dict[str, str], parallel: int) -> list[Row]:
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix=f"pmgdns-bench-{n}-"))
    try:
        # -- local target -------------------------------------------------------------------
        write_spec(work, n, key, None, "local")
        rows.append((n, "render", measure(PMGDNS + ["render"], work, env), None))
        rows.append((n, "validate", measure(PMGDNS + ["validate"], work, env), None))
        rows.append((n, "plan, local target", measure(PMGDNS + ["plan"], work, env),
                     measure(OCTODNS_SYNC, work, env)))
        shutil.rmtree(work / "build" / "zones", ignore_errors=True)
        pm_apply = measure(PMGDNS + ["apply", "--yes"], work, env)
        shutil.rmtree(work / "build" / "zones")
        rows.append((n, "apply, local target", pm_apply,
                     measure(OCTODNS_SYNC + ["--doit"], work, env)))
        rows.append((n, "re-plan, local (no changes)",
                     measure(PMGDNS + ["plan"], work, env),
                     measure(OCTODNS_SYNC, work, env)))
        rows.append((n, "re-plan, local, one process (--parallel 1)",
                     measure(PMGDNS + ["plan", "--parallel", "1"], work, env), None))
        rows.append((n, "plan --changed-since, 1 domain changed (ref: full plan)",
                     *changed_since(work, n, env)))

        # -- real BIND on loopback ------------------------------------------------------------
        first = start_bind(n)
        second = start_bind(n)
        try:
            env = dict(env, PMGDNS_TSIG_SECRET=first.secret)
            cfg = dict(first.provider_config(), timeout=30)
            write_spec(work, n, key, {"bind": cfg}, "bind")
            measure(PMGDNS + ["render"], work, env)
            rows.append((n, "plan, BIND (AXFR)", measure(PMGDNS + ["plan"], work, env),
                         measure(OCTODNS_SYNC, work, env)))
            rows.append((n, "plan, BIND, one process (--parallel 1)",
                         measure(PMGDNS + ["plan", "--parallel", "1"], work, env), None))
            pm_apply = measure(PMGDNS + ["apply", "--yes"], work, env)
            # octodns-sync applies the same work to a second, identical server
            config = yaml.safe_load((work / "build" / "octodns.yaml").read_text())
            config["providers"]["bind"]["port"] = second.port
            (work / "build" / "octodns-second.yaml").write_text(yaml.safe_dump(config))
            second_env = dict(env, PMGDNS_TSIG_SECRET=second.secret)
            od_apply = measure([str(BIN / "octodns-sync"), "--config-file",
                                "build/octodns-second.yaml", "--doit"], work, second_env)
            rows.append((n, "apply, BIND (RFC 2136)", pm_apply, od_apply))
            rows.append((n, "re-plan, BIND (no changes)", measure(PMGDNS + ["plan"], work, env),
                         measure(OCTODNS_SYNC, work, env)))
            rows.append((n, "verify, BIND", measure(
                PMGDNS + ["verify", "--nameserver", f"127.0.0.1:{first.port}"], work, env,
                ok=(0, 1)), None))
        finally:
            first.stop()
            second.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def help_time(env: dict[str, str]) -> float:
    exe = BIN / "pmgdns"
    cmd = [str(exe), "--help"] if exe.exists() else PMGDNS + ["--help"]
    return statistics.median(measure(cmd, ROOT, env).seconds for _ in range(7))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, action="append",
                        help="number of domains (repeatable; default 100, 1000, 10000)")
    parser.add_argument("--parallel", type=int, default=4,
                        help="(kept for compatibility; planning picks its workers)")
    parser.add_argument("--full-max", type=int, default=10000,
                        help="above this many domains, the fleet's row set (see above)")
    parser.add_argument("--fleet-reference-all", action="store_true",
                        help="in the fleet's row set, run octodns-sync beside apply and re-plan "
                             "too (not only beside plan)")
    parser.add_argument("--cloudflare-zones", type=int, default=1000,
                        help="zones of the Cloudflare pacing row (0: skip it)")
    args = parser.parse_args()
    sizes = args.domains or [100, 1000, 10000]
    env = dict(os.environ, NO_COLOR="1")
    key = dkim_key()
    print(f"# pmgdns benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    rows: list[Row] = []
    for n in sizes:
        rows.extend(fleet(n, key, env, args.fleet_reference_all) if n > args.full_max
                    else bench(n, key, env, args.parallel))
        print(f"# N={n} done", file=sys.stderr, flush=True)
    print()
    print("| N | step | pmgdns s | pmgdns MiB | octodns-sync s | octodns-sync MiB | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, step, pm, od in rows:
        if od is None:
            print(f"| {n} | {step} | {pm.seconds:.2f} | {pm.peak_mib:.0f} | | | |")
        else:
            print(f"| {n} | {step} | {pm.seconds:.2f} | {pm.peak_mib:.0f} | {od.seconds:.2f} | "
                  f"{od.peak_mib:.0f} | {pm.seconds / od.seconds:.2f}x |")
    print()
    if args.cloudflare_zones:
        print("| N | step | pmgdns s | | reference s | | ratio |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        print(cloudflare_pacing(args.cloudflare_zones))
        print()
    print("Targets (issue #15): plan, local target at 10,000 domains at least 1.6x faster than "
          "octodns-sync (ratio <= 0.625x), at 1,000 at least 1.3x (<= 0.77x); peak memory of "
          "all processes under 1 GiB; plan --changed-since under 3 s; verify of 10,000 "
          "domains under 30 s; Cloudflare within 1.2x of requests / rate, <= 1.05 requests per "
          "zone, no 429. Issue #28: plan and apply of 100,000 domains under 1 GiB (MiB: the "
          "peak resident memory of the command and all its worker processes summed), plan at "
          "least 3x faster than octodns-sync (ratio <= 0.33x).")
    print(f"`pmgdns --help`: {help_time(env):.3f} s (median of 7)")


if __name__ == "__main__":
    main()
