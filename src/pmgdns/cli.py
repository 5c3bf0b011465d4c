"""The command line: parses options, calls `pmgdns.api`, prints. Errors map to `ExitCode`s."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .core import libraries
from .core.errors import ExitCode, FileProblem, NotConfirmed, PmgdnsError, UsageError
from .core.redact import RedactingFilter, Redactor
from .core.text import plural, visible

if TYPE_CHECKING:
    from .api import PlanRun, Workspace
    from .spec.model import Site

FORMATS = click.Choice(["text", "markdown", "json"])
REPORT_FORMATS = click.Choice(["text", "markdown", "json", "html"])
HTML_MARKER = '<meta name="generator" content="pmgdns'
# What marks a file as a verify report pmgdns wrote (`verify --out` overwrites only those).
VERIFY_MARKERS: dict[str, str | re.Pattern[str]] = {
    "html": HTML_MARKER,
    "json": re.compile(r'\A\{\n  "version": 1,\n  "checks": \['),
    "markdown": "<!-- pmgdns-verify -->",
    "text": re.compile(r"^Verify: \d+ ok, \d+ warnings?, \d+ failed\.\n\Z", re.MULTILINE),
}

PROGRESS_MIN = 20  # zones; below that a run is quick enough to need no progress bar
LINES_MAX = 200  # zones; without a terminal, above that apply logs every tenth, not every zone
_redactor = Redactor()


class Ui:
    """Printing with colour only on a terminal and never with NO_COLOR."""

    def __init__(self, verbose: int = 0, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet  # the spec's warnings only where asked for (validate)
        self.colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.err_colour = sys.stderr.isatty() and not os.environ.get("NO_COLOR")

    def style(self, text: str, colour: str) -> str:
        if not self.colour:
            return text
        if colour == "bold":
            return click.style(text, bold=True)
        return click.style(text, fg=colour)

    def out(self, text: str, nl: bool = True) -> None:
        click.echo(_redactor(text), nl=nl, color=self.colour)

    def note(self, text: str) -> None:
        click.echo(visible(_redactor(text), newlines=True), err=True, color=self.err_colour)

    def warn(self, text: str) -> None:
        label = click.style("Warning:", fg="yellow") if self.err_colour else "Warning:"
        click.echo(f"{label} {visible(_redactor(text))}", err=True, color=self.err_colour)

    @contextmanager
    def progress(self, label: str) -> Iterator[Callable[[int, int], None] | None]:
        """Click's progress bar on stderr for long runs, only when stderr is a terminal;
        yields the callback `(done, total)` to drive it (None when there is no terminal)."""
        if not sys.stderr.isatty():
            yield None
            return
        bar: Any = None
        lock = threading.Lock()

        def show(done: int, total: int) -> None:
            nonlocal bar
            if total < PROGRESS_MIN:
                return
            with lock:
                _advance(done, total)

        def _advance(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                        show_pos=True, show_eta=False, width=30,
                                        bar_template="%(label)s [%(bar)s] %(info)s")
                bar.__enter__()
            if done > bar.pos:
                bar.update(done - bar.pos)

        try:
            yield show
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)


@dataclass
class State:
    """What every command gets from the group: where it works, and how it prints."""

    workspace: Workspace
    ui: Ui

    def load(self, warnings: bool = False) -> Site:
        """The spec; its warnings printed unless --quiet (always with `warnings`)."""
        site = self.workspace.load()
        _redactor.add(site.secret_values())
        for w in site.warnings if warnings or not self.ui.quiet else ():
            self.ui.warn(w)
        return site


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stderr is at the time of the record (the CLI may run in-process)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if verbose < 2:
        handler.addFilter(_without_traceback)
    handler.addFilter(RedactingFilter(_redactor))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    handler.addFilter(_drop_root_ns_notice)
    handler.addFilter(_visible_record)
    for text in libraries.HELD:  # what libraries said on import, before logging was set up
        libraries.log.debug("%s", text)


def _visible_record(record: logging.LogRecord) -> bool:
    # log lines carry values from the targets: data, never terminal control
    record.msg = visible(record.getMessage(), newlines=True)
    record.args = None
    return True


def _without_traceback(record: logging.LogRecord) -> bool:
    # libraries log exceptions with their traceback; say what happened in one line (-vv: all)
    if record.exc_info:
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


def _drop_root_ns_notice(record: logging.LogRecord) -> bool:
    # octoDNS warns that the source has no root NS; pmgdns never manages root NS (its processor
    # keeps the target's), so the warning would only alarm
    return "root NS record supported, but no record is configured" not in record.getMessage()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-c", "--config", envvar="PMGDNS_CONFIG", default="config/site.yaml",
              callback=lambda ctx, param, value: _file_option()(ctx, param, value),
              show_default=True, metavar="PATH", help="The mail-site spec (env PMGDNS_CONFIG).")
@click.option("-v", "--verbose", count=True, help="More detail: full values, octoDNS's log (-vv: "
                                                 "debug).")
@click.option("-q", "--quiet", is_flag=True, envvar="PMGDNS_QUIET",
              help="Do not repeat the spec's warnings (`validate` always shows them; env "
                   "PMGDNS_QUIET=1).")
@click.version_option(__version__, "--version", prog_name="pmgdns")
@click.pass_context
def cli(ctx: click.Context, config: str, verbose: int, quiet: bool) -> None:
    """Put a Proxmox Mail Gateway's DNS in place: MX, SPF, DMARC, DKIM, each node's
    A/AAAA, a null SPF wildcard, MTA-STS, TLS-RPT, DANE and CAA, and the PTR request for the
    hoster; prove it with `verify`; read the gateway with `pmg pull`.

    Edit the spec, `pmgdns render`, review `pmgdns plan`, then `pmgdns apply`.
    """
    from .api import Workspace

    _setup_logging(verbose)
    ctx.obj = State(Workspace(config=config), Ui(verbose, quiet))


pass_state = click.make_pass_decorator(State)


class Seconds(click.ParamType[float, Any]):
    """A finite, non-negative number of seconds (within `low`..`high`); `nan`, `inf` and
    negative values are refused while parsing, before any work."""

    name = "seconds"

    def __init__(self, low: float = 0.0, high: float | None = None) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        top = "" if self.high is None else f" and at most {self.high:g}"
        if not math.isfinite(number) or number < self.low or (
                self.high is not None and number > self.high):
            self.fail(f"{visible(str(value)[:40])!r} is not a number of seconds (at least "
                      f"{self.low:g}{top})", param, ctx)
        return number


def _file_option(must_exist: bool = False
                 ) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback refusing a file option that names a FIFO, a device or a directory (and, with
    `must_exist`, a path that does not exist), before any work."""
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from .core.files import check_file_option

        if value is not None:
            check_file_option(param.opts[-1] if param.opts else str(param.name), value,
                              must_exist=must_exist)
        return value

    return check


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
@pass_state
def init(state: State, force: bool) -> None:
    """Write a commented starter spec (config/site.yaml)."""
    from importlib.resources import files

    ws, ui = state.workspace, state.ui
    if os.path.exists(ws.config) and not force:
        raise UsageError(f"{ws.config} exists already; edit it, or pass --force to overwrite it")
    text = (files("pmgdns") / "templates" / "site.yaml").read_text(encoding="utf-8")
    os.makedirs(os.path.dirname(ws.config) or ".", exist_ok=True)
    with open(ws.config, "w", encoding="utf-8") as fh:
        fh.write(text)
    ui.out(f"Wrote {ws.config}. Fill in the TODO lines, then run `pmgdns validate`.")
    try:
        from .core.gitignore import ensure_ignored  # start-up time: only init writes files

        added = ensure_ignored(".gitignore", ws.build_dir)
    except FileProblem as exc:
        ui.warn(f"{exc}; add `{ws.build_dir}/` to .gitignore yourself (generated files)")
    else:
        if added:
            ui.out(f"Added {added} to .gitignore: generated files. Commit {ws.config} and "
                   f"{ws.zones_dir}/.")


@cli.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when zones/ is stale.")
@pass_state
def render(state: State, check: bool) -> None:
    """Write the octoDNS zone YAML of every domain into zones/, and build/octodns.yaml.

    `octodns-sync --config-file build/octodns.yaml` then runs the same sync as `pmgdns plan`.
    """
    ws, ui = state.workspace, state.ui
    site = state.load()
    if check:
        ws.check_fresh(site)
        ui.out(f"{ws.zones_dir}/ is up to date with {site.file}.")
        return
    changed = ws.render(site)
    head = (f"Rendered {plural(len(site.domains), 'zone')} into {ws.zones_dir}/ and "
            f"{ws.octodns_config}")
    if not changed:
        ui.out(f"{head}; nothing changed.")
    elif ui.verbose:
        ui.out(f"{head}; {plural(len(changed), 'file')} changed:")
        for path in changed:
            ui.out(f"  {visible(path)}")
    elif len(changed) <= 3:
        ui.out(f"{head}; changed: {', '.join(visible(p) for p in changed)}.")
    else:  # a fleet: the count, not two thousand names
        ui.out(f"{head}; {plural(len(changed), 'file')} changed (-v lists them).")


@cli.command()
@pass_state
def validate(state: State) -> None:
    """Check the spec and the zones it renders, without contacting any provider."""
    from . import api

    site = state.load(warnings=True)
    for w in api.validate(state.workspace, site)[len(site.warnings):]:
        state.ui.warn(w)
    n = len(site.domains)
    nodes = ", ".join(g.hostname for g in site.gateways)
    state.ui.out(f"{site.file} is valid: {n} domain{'s' if n != 1 else ''}, gateway "
                 f"{nodes}, DKIM selector {site.dkim.selector} "
                 f"({site.dkim.key.algorithm}, {site.dkim.key.bits} bits).")


def _print_plan(state: State, run: PlanRun, fmt: str) -> None:
    from .reports import plan_report as output

    ui = state.ui
    if fmt == "html":
        from .reports.html import plan_html

        doc = _redacted(output.plan_json_data(run.result, run.manual, run.notes))
        ui.out(plan_html(doc), nl=False)
    elif fmt == "json":
        for piece in output.plan_json_pieces(run.result, run.manual, run.notes):
            ui.out(piece, nl=False)
    elif fmt == "markdown":
        ui.out(output.plan_markdown(run.result, run.manual, run.notes), nl=False)
    else:
        ui.out(output.plan_text(run.result, run.manual, run.notes, ui.style,
                                verbose=ui.verbose > 0), nl=False)


parallel_option = click.option(
    "--parallel", type=click.IntRange(1, 64), default=None, metavar="N",
    help="Plan with N workers: processes for local and RFC 2136 targets (CPU-bound; default one "
         "per CPU, at most 4, from 200 zones on), threads with remote APIs (default 4).")
since_option = click.option(
    "--changed-since", "since", metavar="REF",
    help="Plan only the domains whose records changed since the git revision REF (e.g. "
         "origin/main); a full plan also finds drift.")


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--format", "fmt", type=REPORT_FORMATS, default="text", show_default=True,
              help="html: one self-contained page. The report goes to stdout (`> plan.html`).")
@click.option("--out", "out", metavar="PLANFILE", callback=_file_option(),
              help="Also write the plan for `apply --plan`: always JSON, whatever --format "
                   "says (a .html, .md or .txt name is refused).")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes (0: none, 1: error).")
@parallel_option
@since_option
@pass_state
def plan(state: State, domains: tuple[str, ...], fmt: str, out: str | None,
         detailed_exitcode: bool, parallel: int | None, since: str | None) -> None:
    """Show the changes apply would make at every target. DOMAIN may be a glob."""
    from . import api
    from .reports import plan_report as output

    _check_plan_out(out, fmt)
    site = state.load()
    with state.ui.progress("planning") as bar:
        run = api.plan(state.workspace, site, domains, parallel, bar, since=since)
    _print_plan(state, run, fmt)
    if out:
        api.write_plan_file(state.workspace, site, run, out)
        state.ui.note(f"Plan written to {out}; apply it with `pmgdns apply --plan {out}`.")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        from .core.files import append_text

        append_text(summary_file, _redactor(output.plan_markdown(run.result, run.manual,
                                                                 run.notes)),
                    "the plan (GITHUB_STEP_SUMMARY)")
    if detailed_exitcode and run.result.has_changes:
        raise click.exceptions.Exit(ExitCode.CHANGES)


REPORT_SUFFIXES = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
                   ".txt": "text"}


def _check_plan_out(out: str | None, fmt: str) -> None:
    """`--out` is the JSON plan file for `apply --plan`; a report's name there is a mistake."""
    suffix = os.path.splitext(out or "")[1].lower()
    if out and suffix in REPORT_SUFFIXES:
        page = fmt if fmt != "text" else REPORT_SUFFIXES[suffix]
        raise UsageError(
            f"--out {visible(out)}: --out writes the plan file for `pmgdns apply --plan`, which "
            f"is JSON, not a {suffix} report; the report goes to stdout: `pmgdns plan --format "
            f"{page} > {visible(out)}` (with the plan file in the same run: `--out plan.json`)")


def _confirm(run: PlanRun) -> bool:
    if not sys.stdin.isatty():
        raise NotConfirmed("apply needs confirmation, and there is no terminal to ask on; pass "
                           "--yes, or apply a reviewed plan with --plan PLANFILE. Nothing was "
                           "applied.")
    answer = click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                          show_default=False)
    return bool(answer.strip() == "yes")


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--plan", "plan_file", metavar="PLANFILE", callback=_file_option(),
              help="Apply only this reviewed plan, and only if the targets still match it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Go past octoDNS's update/delete safety thresholds.")
@click.option("--lock-timeout", type=Seconds(), default=0, show_default=True,
              metavar="SECONDS", help="Wait this long for another apply in this checkout.")
@parallel_option
@since_option
@pass_state
def apply(state: State, domains: tuple[str, ...], plan_file: str | None, yes: bool,
          force: bool, lock_timeout: float, parallel: int | None, since: str | None) -> None:
    """Make the changes at every target (asks first unless --yes or --plan)."""
    from . import api

    ui = state.ui
    site = state.load()
    if since and plan_file:
        raise UsageError("--changed-since goes with a new plan, not with --plan PLANFILE (the "
                         "plan file already says which domains it covers)")

    def show(run: PlanRun) -> None:
        _print_plan(state, run, "text")

    with ui.progress("planning") as planning, ui.progress("applying") as bar:
        def applied(done: int, total: int, zone: str, target: str, n: int) -> None:
            if bar is not None:
                bar(done, total)
            if ui.verbose or total < PROGRESS_MIN or (bar is None and total <= LINES_MAX):
                ui.note(f"Applied {n} change{'s' if n != 1 else ''} to {zone} at {target}.")
            elif bar is None and done * 10 // total != (done - 1) * 10 // total:
                ui.note(f"Applied {done} of {total} zones and targets.")  # every tenth

        outcome = api.apply(
            state.workspace, site, domains, plan_file=plan_file,
            show=None if plan_file else show, confirm=None if (yes or plan_file) else _confirm,
            force=force, lock_timeout=lock_timeout, parallel=parallel, progress=planning,
            applied=applied, since=since)
    if outcome.report is None:
        if plan_file:
            ui.out("No changes. The DNS matches the spec.")
        return
    s = outcome.run.result.summary()
    ui.out(ui.style(f"Apply complete! {s['create']} added, {s['update']} changed, "
                    f"{s['delete']} destroyed.", "green"))


@cli.command("ptr-ticket")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@pass_state
def ptr_ticket(state: State, fmt: str) -> None:
    """The reverse-DNS (PTR) request to paste into the hoster's support form."""
    from .tickets import ptr

    site = state.load()
    text = {"json": ptr.ticket_json, "markdown": ptr.ticket_markdown,
            "text": ptr.ticket_text}[fmt](site)
    state.ui.out(text, nl=False)


@cli.command("customer-ticket")
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--format", "fmt", type=REPORT_FORMATS, default="text", show_default=True,
              help="markdown and html are what you mail to a customer.")
@click.option("--out", "out", metavar="FILE|DIR/",
              help="Write to FILE (one ticket for all), or one file per domain into DIR/.")
@click.option("--live", is_flag=True,
              help="Compare with what the DNS holds today: done/pending, what to replace.")
@click.option("--nameserver", metavar="HOST[:PORT]",
              help="With --live: ask this server instead of the system's resolver.")
@click.option("--detailed-exitcode", is_flag=True,
              help="With --live: exit 2 when a customer still has something to do.")
@pass_state
def customer_ticket(state: State, domains: tuple[str, ...], fmt: str, out: str | None,
                    live: bool, nameserver: str | None, detailed_exitcode: bool) -> None:
    """The request for the DNS host of each `customer` zone: the records to set, ready to
    paste; with --live, what the DNS holds today and what is still pending."""
    from .api import TICKET_MARKERS, customer_tickets, ticket_files
    from .core.files import write_output
    from .verify.probe import DnsProbe, make_resolver

    if out is not None and not out.strip():
        raise UsageError("--out is empty; give a FILE, or a DIR/ for one ticket per domain")
    site = state.load()
    live = live or nameserver is not None
    probe = DnsProbe(site, make_resolver(nameserver)) if live else None
    found = customer_tickets(site, domains, probe)
    written = []
    for path, text in ticket_files(found, fmt, out):
        if path is None:
            state.ui.out(text, nl=False)
        else:
            write_output(path, _redactor(text), TICKET_MARKERS[fmt], "a customer ticket")
            written.append(path)
    if len(written) == 1:
        state.ui.note(f"Ticket written to {written[0]}.")
    elif written:
        state.ui.note(f"{len(written)} tickets written to {out} (one per domain).")
    if detailed_exitcode and any(t.pending for t in found):
        raise click.exceptions.Exit(ExitCode.CHANGES)


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--nameserver", metavar="HOST[:PORT]",
              help="Ask this server instead of the system's resolver.")
@click.option("--format", "fmt", type=REPORT_FORMATS, default="text", show_default=True,
              help="html: one self-contained page (with --out FILE).")
@click.option("--out", "out", metavar="FILE", callback=_file_option(),
              help="Write the report to FILE, not stdout.")
@click.option("--workers", type=click.IntRange(1, 1024), default=None, metavar="N",
              help="Threads per CPU for DNS queries (default: from the DNS's round trip).")
@click.option("--smtp", is_flag=True,
              help="Also connect to each node on port 25: STARTTLS and its certificate.")
@click.option("--resolve", "resolve", multiple=True, metavar="NAME:PORT:ADDRESS:PORT",
              help="Connect to ADDRESS:PORT for NAME:PORT (SMTP, MTA-STS policy), like curl.")
@click.option("--ca-file", metavar="PEM", callback=_file_option(must_exist=True),
              help="Trust only these CAs for SMTP and HTTPS.")
@click.option("--dnsbl", "dnsbl", multiple=True, metavar="ZONE[,ZONE...]",
              help="Look every node address up in these DNS blocklists (beside the spec's).")
@pass_state
def verify(state: State, domains: tuple[str, ...], nameserver: str | None, fmt: str,
           out: str | None, workers: int | None, smtp: bool, resolve: tuple[str, ...],
           ca_file: str | None, dnsbl: tuple[str, ...]) -> None:
    """Check what the DNS answers against the spec, reverse DNS included; exit 1 on any FAIL."""
    from .families.dnsbl import parse_lists
    from .plan.engine import select_domains
    from .reports import verify_report
    from .verify import run as verifylib
    from .verify.session import parse_resolve

    ui = state.ui
    site = state.load()
    resolver = verifylib.make_resolver(nameserver)
    lists = tuple(dict.fromkeys(z for text in dnsbl for z in parse_lists(text)))
    options = verifylib.Options(smtp=smtp, resolve=parse_resolve(resolve), ca_file=ca_file,
                                dnsbl=lists)
    with ui.progress("verifying") as bar:
        report = verifylib.verify(site, select_domains(site, domains), resolver, workers, bar,
                                  options, system_resolver=nameserver is None)
    pieces: Iterable[str]
    if fmt == "html":
        from .reports.html import verify_html

        pieces = [verify_html(_redacted(report.to_json()))]
    elif fmt == "json":
        pieces = verify_report.report_json_pieces(report)
    elif fmt == "markdown":
        pieces = [verify_report.report_markdown(report, verbose=ui.verbose > 0)]
    else:
        pieces = [verify_report.report_text(report, ui.style if not out else _plain,
                                            verbose=ui.verbose > 0)]
    if out:
        from .core.files import write_output

        marker = VERIFY_MARKERS[fmt]
        write_output(out, (_redactor(p) for p in pieces), marker, "a verify report")
        s = report.summary()
        ui.note(f"Report written to {out}: {s['OK']} ok, {plural(s['WARN'], 'warning')}, "
                f"{s['FAIL']} failed.")
    else:
        for piece in pieces:
            ui.out(piece, nl=False)
    if report.failed:
        raise click.exceptions.Exit(ExitCode.ERROR)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["nftables", "pve", "markdown"]),
              default="nftables", show_default=True)
@pass_state
def firewall(state: State, fmt: str) -> None:
    """The firewall of the PMG prerequisites: nftables rules, a Proxmox VE firewall file for the
    gateway's VM, or a table for the network team (from the spec's `firewall:` block)."""
    from .firewall.rules import FORMATS as FIREWALL_FORMATS

    site = state.load()
    fw = site.sections.get("firewall")
    if fw is None:
        raise UsageError(f"{site.file} has no `firewall:` block; add one with mail_servers, "
                         "admin_sources and dns_servers (spec-v1 §6.3)")
    nodes = ", ".join(g.hostname for g in site.gateways)
    state.ui.out(FIREWALL_FORMATS[fmt](fw, nodes), nl=False)


@cli.group()
def pmg() -> None:
    """Read the Proxmox Mail Gateway itself (its API) into the spec."""


@pmg.command()
@click.option("--url", required=True, metavar="https://HOST:8006", help="PMG's API address.")
@click.option("--user", default="root@pam", show_default=True, metavar="USER@REALM")
@click.option("--fingerprint", metavar="SHA256",
              help="Trust PMG's certificate by its SHA-256 fingerprint (as PMG shows it).")
@click.option("--ca-file", metavar="PEM", callback=_file_option(must_exist=True),
              help="Trust PMG's certificate through these CAs.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when the spec and the gateway differ (a drift gate).")
@click.option("--timeout", type=Seconds(1, 300), default=10, show_default=True,
              metavar="SECONDS")
@pass_state
def pull(state: State, url: str, user: str, fingerprint: str | None, ca_file: str | None,
         check: bool, timeout: float) -> None:
    """Bring the spec in line with the gateway: its relay domains and the DKIM selector and key
    it signs with. The password comes from PMG_PASSWORD and is never shown."""
    from .pmg.client import pull as pmg_pull

    password = os.environ.get("PMG_PASSWORD", "")
    if not password:
        raise UsageError("PMG_PASSWORD is not set; export the password of the PMG user "
                         f"{user} (PMG's API has no tokens)")
    if password != password.strip():
        raise UsageError("PMG_PASSWORD begins or ends with white space (a stray newline?); "
                         "export it without")
    if fingerprint and ca_file:
        raise UsageError("give --fingerprint or --ca-file, not both")
    _redactor.add([password])
    result = pmg_pull(state.workspace.config, url, user, password, fingerprint=fingerprint,
                      ca_file=ca_file, check=check, timeout=timeout)
    for change in result.changes:
        state.ui.out(f"  {visible(change)}")
    for warning in result.warnings:
        state.ui.warn(warning)
    state.ui.out(visible(result.summary))
    if result.exit_code:
        raise click.exceptions.Exit(ExitCode.ERROR)


def _plain(text: str, colour: str) -> str:
    """No styling (for files)."""
    return text


def _redacted(value: Any) -> Any:
    """A JSON document with every secret masked in every string (before it is rendered)."""
    if isinstance(value, str):
        return _redactor(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _fail(message: str, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    text = visible(_redactor(" ".join(message.split())))
    prefix = click.style("Error:", fg="red") if (sys.stderr.isatty() and
                                                 not os.environ.get("NO_COLOR")) else "Error:"
    click.echo(f"{prefix} {text}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every failure to its exit code (usage errors: 1)."""
    try:
        code = cli.main(args=argv, prog_name="pmgdns", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.Abort:
        _fail("aborted. Nothing was applied.")
    except PmgdnsError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted.")
    except OSError as exc:  # a file or directory pmgdns was pointed at is not usable
        where = exc.filename if isinstance(exc.filename, str) else "a file"
        _fail(f"{where}: {exc.strerror or exc}; check that path (its type, its permissions, "
              "free space)")
    except Exception as exc:  # a bug: say so in one paragraph, keep the traceback for -vv
        if os.environ.get("PMGDNS_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {exc}); run again with PMGDNS_DEBUG=1 "
              "for the traceback and report it")
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
