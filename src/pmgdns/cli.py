"""The command line: parses options, calls `pmgdns.api`, prints. Every error exits 1."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from . import __version__
from .errors import PmgdnsError
from .redact import RedactingFilter, Redactor

FORMATS = click.Choice(["text", "markdown", "json"])
PROGRESS_MIN = 20  # zones; below that a run is quick enough to need no progress bar
_redactor = Redactor()


class Ui:
    """Printing with colour only on a terminal and never with NO_COLOR."""

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
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
        click.echo(_redactor(text), err=True, color=self.err_colour)

    def progress(self, label: str) -> Callable[[int, int], None] | None:
        """A progress bar on stderr for long runs, only when stderr is a terminal."""
        if not sys.stderr.isatty():
            return None
        width = 30

        def show(done: int, total: int) -> None:
            if total < PROGRESS_MIN:
                return
            filled = width * done // max(total, 1)
            bar = "#" * filled + "." * (width - filled)
            end = "\r\x1b[K" if done >= total else ""
            sys.stderr.write(f"\r{label} [{bar}] {done}/{total}{end}")
            sys.stderr.flush()

        return show

    def warn(self, text: str) -> None:
        label = click.style("Warning:", fg="yellow") if self.err_colour else "Warning:"
        click.echo(f"{label} {_redactor(text)}", err=True, color=self.err_colour)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (the CLI may run in-process)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: int) -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
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
              show_default=True, metavar="PATH", help="The mail-site spec (env PMGDNS_CONFIG).")
@click.option("-v", "--verbose", count=True, help="More detail: full values, octoDNS's log (-vv: "
                                                 "debug).")
@click.version_option(__version__, "--version", prog_name="pmgdns")
@click.pass_context
def cli(ctx: click.Context, config: str, verbose: int) -> None:
    """Put a Proxmox Mail Gateway's DNS in place: MX, SPF, DMARC, DKIM, the gateway's
    A/AAAA, a null SPF wildcard, and the PTR request for the hoster.

    Edit the spec, `pmgdns render`, review `pmgdns plan`, then `pmgdns apply`.
    """
    from .api import Workspace

    _setup_logging(verbose)
    ctx.obj = {"ws": Workspace(config=config), "ui": Ui(verbose)}


def _load(ctx: click.Context) -> Any:
    ws, ui = ctx.obj["ws"], ctx.obj["ui"]
    site = ws.load()
    _redactor.add(site.secret_values())
    for w in site.warnings:
        ui.warn(w)
    return site


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented starter spec (config/site.yaml)."""
    from importlib.resources import files

    ws, ui = ctx.obj["ws"], ctx.obj["ui"]
    if os.path.exists(ws.config) and not force:
        raise PmgdnsError(f"{ws.config} exists already; edit it, or pass --force to overwrite it")
    text = (files("pmgdns") / "templates" / "site.yaml").read_text(encoding="utf-8")
    os.makedirs(os.path.dirname(ws.config) or ".", exist_ok=True)
    with open(ws.config, "w", encoding="utf-8") as fh:
        fh.write(text)
    ui.out(f"Wrote {ws.config}. Fill in the TODO lines, then run `pmgdns validate`.")


@cli.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when zones/ is stale.")
@click.pass_context
def render(ctx: click.Context, check: bool) -> None:
    """Write the octoDNS zone YAML of every domain into zones/, and build/octodns.yaml.

    `octodns-sync --config-file build/octodns.yaml` then runs the same sync as `pmgdns plan`.
    """
    ws, ui = ctx.obj["ws"], ctx.obj["ui"]
    site = _load(ctx)
    if check:
        ws.check_fresh(site)
        ui.out(f"{ws.zones_dir}/ is up to date with {site.file}.")
        return
    changed = ws.render(site)
    n = len(site.domains)
    ui.out(f"Rendered {n} zone{'s' if n != 1 else ''} into {ws.zones_dir}/ and "
           f"{ws.octodns_config}" + (f"; changed: {', '.join(changed)}." if changed
                                     else "; nothing changed."))


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check the spec and the zones it renders, without contacting any provider."""
    from . import api

    ws, ui = ctx.obj["ws"], ctx.obj["ui"]
    site = _load(ctx)
    for w in api.validate(ws, site)[len(site.warnings):]:
        ui.warn(w)
    n = len(site.domains)
    ui.out(f"{site.file} is valid: {n} domain{'s' if n != 1 else ''}, gateway "
           f"{site.gateway.hostname}, DKIM selector {site.dkim.selector} "
           f"({site.dkim.key.algorithm}, {site.dkim.key.bits} bits).")


def _print_plan(ctx: click.Context, run: Any, fmt: str) -> None:
    from . import output

    ui = ctx.obj["ui"]
    if fmt == "json":
        ui.out(output.plan_json(run.result, run.manual, run.notes), nl=False)
    elif fmt == "markdown":
        ui.out(output.plan_markdown(run.result, run.manual, run.notes), nl=False)
    else:
        ui.out(output.plan_text(run.result, run.manual, run.notes, ui.style,
                                verbose=ui.verbose > 0), nl=False)


parallel_option = click.option(
    "--parallel", type=click.IntRange(1, 64), default=None, metavar="N",
    help="Plan up to N zones at once (octoDNS's max_workers). Default: 1 when every target is "
         "local or RFC 2136 (planning is CPU-bound), 4 with remote APIs.")


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--out", "out", metavar="PLANFILE", help="Also write the plan for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when there are changes (0: none, 1: error).")
@parallel_option
@click.pass_context
def plan(ctx: click.Context, domains: tuple[str, ...], fmt: str, out: str | None,
         detailed_exitcode: bool, parallel: int | None) -> None:
    """Show the changes apply would make at every target. DOMAIN may be a glob."""
    from . import api, output, planfile

    ws = ctx.obj["ws"]
    site = _load(ctx)
    run = api.plan(ws, site, domains, parallel, ctx.obj["ui"].progress("planning"))
    _print_plan(ctx, run, fmt)
    if out:
        doc = planfile.plan_document(site, run.result,
                                     planfile.zones_digest(site, run.result.domains, ws.zones_dir))
        planfile.write_plan(out, doc)
        ctx.obj["ui"].note(f"Plan written to {out}; apply it with `pmgdns apply --plan {out}`.")
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(_redactor(output.plan_markdown(run.result, run.manual, run.notes)))
    if detailed_exitcode and run.result.has_changes:
        ctx.exit(2)


def _confirm(ui: Ui) -> None:
    if not sys.stdin.isatty():
        raise PmgdnsError("apply needs confirmation, and there is no terminal to ask on; pass "
                          "--yes, or apply a reviewed plan with --plan PLANFILE. Nothing was "
                          "applied.")
    answer = click.prompt("Apply these changes? Only 'yes' is accepted", default="",
                          show_default=False)
    if answer.strip() != "yes":
        raise PmgdnsError("apply cancelled. Nothing was applied.")


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--plan", "plan_file", metavar="PLANFILE",
              help="Apply only this reviewed plan, and only if the targets still match it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Go past octoDNS's update/delete safety thresholds.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=0, show_default=True,
              metavar="SECONDS", help="Wait this long for another apply in this checkout.")
@parallel_option
@click.pass_context
def apply(ctx: click.Context, domains: tuple[str, ...], plan_file: str | None, yes: bool,
          force: bool, lock_timeout: float, parallel: int | None) -> None:
    """Make the changes at every target (asks first unless --yes or --plan)."""
    from . import api, planfile
    from .lock import apply_lock

    ws, ui = ctx.obj["ws"], ctx.obj["ui"]
    site = _load(ctx)
    with apply_lock(ws.build_dir, lock_timeout):
        if plan_file:
            doc = planfile.read_plan(plan_file)
            planfile.check_spec(doc, plan_file, site)
            chosen = domains or tuple(doc.get("domains", []))
            ws.render(site, force=False)
            engine = ws.engine(site, chosen, parallel, ui.progress("planning"))
            planfile.check_inputs(doc, plan_file, site, engine.domains,
                                  planfile.zones_digest(site, engine.domains, ws.zones_dir))
            run = api.PlanRun(engine, engine.plan(), [], [])
            planfile.check_targets(doc, plan_file, run.result)
        else:
            run = api.plan(ws, site, domains, parallel, ui.progress("planning"))
            _print_plan(ctx, run, "text")
            if not run.result.has_changes:
                return
            if not yes:
                _confirm(ui)
                # plan again with fresh providers (they cache what they read) and apply only if
                # the targets still give the plan that was shown
                fresh = ws.engine(site, run.result.domains, parallel)
                result = fresh.plan()
                if result.checksum != run.result.checksum:
                    raise PmgdnsError("the targets changed while you were reading the plan "
                                      "(stale); nothing was applied: run apply again")
                run = api.PlanRun(fresh, result, run.manual, run.notes)
        if not run.result.has_changes:
            ui.out("No changes. The DNS matches the spec.")
            return

        total = len(run.result.octodns_plans)
        bar = ui.progress("applying")
        done = 0

        def progress(zone: str, target: str, n: int) -> None:
            nonlocal done
            done += 1
            if bar and total >= PROGRESS_MIN:
                bar(done, total)
            elif ui.verbose or total < PROGRESS_MIN:
                ui.note(f"Applied {n} change{'s' if n != 1 else ''} to {zone} at {target}.")

        api.apply(run, force=force, progress=progress)
        s = run.result.summary()
        ui.out(ui.style(f"Apply complete! {s['create']} added, {s['update']} changed, "
                        f"{s['delete']} destroyed.", "green"))


@cli.command("ptr-ticket")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.pass_context
def ptr_ticket(ctx: click.Context, fmt: str) -> None:
    """The reverse-DNS (PTR) request to paste into the hoster's support form."""
    from . import ptr

    site = _load(ctx)
    text = {"json": ptr.ticket_json, "markdown": ptr.ticket_markdown,
            "text": ptr.ticket_text}[fmt](site)
    ctx.obj["ui"].out(text, nl=False)


@cli.command()
@click.argument("domains", nargs=-1, metavar="[DOMAIN]...")
@click.option("--nameserver", metavar="HOST[:PORT]",
              help="Ask this server instead of the system's resolver.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True,
              metavar="N", help="Check up to N domains at once.")
@click.pass_context
def verify(ctx: click.Context, domains: tuple[str, ...], nameserver: str | None, fmt: str,
           workers: int) -> None:
    """Check what the DNS answers against the spec, reverse DNS included; exit 1 on any FAIL."""
    from . import verify as verifylib
    from .planning import select_domains

    ui = ctx.obj["ui"]
    site = _load(ctx)
    resolver = verifylib.make_resolver(nameserver)
    report = verifylib.verify(site, select_domains(site, domains), resolver, workers)
    if fmt == "json":
        ui.out(verifylib.report_json(report), nl=False)
    elif fmt == "markdown":
        ui.out(verifylib.report_markdown(report), nl=False)
    else:
        ui.out(verifylib.report_text(report, ui.style), nl=False)
    if report.failed:
        ctx.exit(1)


def _fail(message: str) -> NoReturn:
    text = _redactor(" ".join(message.split()))
    prefix = click.style("Error:", fg="red") if (sys.stderr.isatty() and
                                                 not os.environ.get("NO_COLOR")) else "Error:"
    click.echo(f"{prefix} {text}", err=True)
    sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every failure to exit code 1 (never 2 for usage)."""
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
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted.")
    except Exception as exc:  # a bug: say so in one paragraph, keep the traceback for -vv
        if os.environ.get("PMGDNS_DEBUG"):
            raise
        _fail(f"internal error ({type(exc).__name__}: {exc}); run again with PMGDNS_DEBUG=1 "
              "for the traceback and report it")
    sys.exit(code if isinstance(code, int) else 0)
