"""Packaging: the wheel and sdist build and pass `twine check`; pipx installs the wheel into a
fresh environment, and the installed `pmgdns` runs the demo, prints its version and shell
completion scripts; the pre-commit hooks name real commands.

The pipx and pre-commit tests install pipx, pre-commit and pmgdns's dependencies from the
package index, with pip's usual cache (the tests' HOME is temporary, so the cache directory is
passed on explicitly; PMGDNS_TEST_PIP_CACHE overrides it). Nothing is written to the real HOME.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pmgdns import __version__
from pmgdns.cli import cli

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / ".pre-commit-hooks.yaml"
PACKAGE_DATA = ["pmgdns/py.typed", "pmgdns/templates/site.yaml",
                "pmgdns/schemas/plan.schema.json", "pmgdns/schemas/verify.schema.json",
                "pmgdns/schemas/customer-ticket.schema.json"]


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        pytest.fail(f"{shlex.join(cmd)} exited {result.returncode}\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


# -- the one version ---------------------------------------------------------------------------


def test_version_has_one_place() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "pmgdns.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", __version__)
    for data in PACKAGE_DATA[1:]:
        glob = str(Path(data).relative_to("pmgdns").parent / "*") + Path(data).suffix
        assert glob in project["tool"]["setuptools"]["package-data"]["pmgdns"]


# -- pre-commit hooks --------------------------------------------------------------------------


def _hooks() -> dict[str, dict[str, Any]]:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert isinstance(hooks, list)
    return {h["id"]: h for h in hooks}


def test_pre_commit_hooks_reference_real_commands() -> None:
    hooks = _hooks()
    assert set(hooks) == {"pmgdns-validate", "pmgdns-render-check"}
    assert hooks["pmgdns-validate"]["entry"] == "pmgdns validate"
    assert hooks["pmgdns-render-check"]["entry"] == "pmgdns render --check"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False
        assert hook["name"] and hook["description"]
        # the entry is a console script of this package, a subcommand and its options
        program, command, *options = shlex.split(hook["entry"])
        assert program == "pmgdns"
        sub = cli.commands[command]
        known = {o for p in sub.params if isinstance(p, click.Option) for o in p.opts}
        assert set(options) <= known, options
        files = re.compile(hook["files"])
        for path in ("config/site.yaml", "config/site.yml", "config/other.yaml",
                     "zones/example.com.yaml"):
            assert files.search(path), path
        for path in ("README.md", "src/pmgdns/templates/site.yaml", "zones/notes.txt",
                     "build/zones/example.com.", "examples/config/site.yaml"):
            assert not files.search(path), path


# -- build, twine check, pipx install, demo ----------------------------------------------------


@dataclass
class Dist:
    wheel: Path
    sdist: Path
    repo: Path  # a git repository of the tracked files (what pre-commit clones)
    rev: str
    log: str  # what `python -m build` printed


def _copy_tracked(dest: Path) -> None:
    """The repository's tracked files (as in the work tree), so untracked junk stays out."""
    names = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    assert shutil.which("git") and (ROOT / ".git").exists(), "built from a git checkout"
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("dist")
    _copy_tracked(src)
    git = ["git", "-c", "user.name=pmgdns test", "-c", "user.email=test@example.invalid",
           "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    run([*git, "init", "-q"], cwd=src)
    run([*git, "add", "-A"], cwd=src)
    run([*git, "commit", "-qm", "snapshot"], cwd=src)
    rev = run(["git", "rev-parse", "HEAD"], cwd=src).stdout.strip()
    t0 = time.monotonic()
    built = run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out)],
                cwd=src)
    print(f"\nbuild: {time.monotonic() - t0:.1f} s")
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"pmgdns-{__version__}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"pmgdns-{__version__}.tar.gz"]
    return Dist(wheels[0], sdists[0], src, rev, built.stdout + built.stderr)


def test_build_and_twine_check(dist: Dist) -> None:
    result = run([sys.executable, "-m", "twine", "check", "--strict", str(dist.wheel),
                  str(dist.sdist)])
    assert result.stdout.count("PASSED") == 2, result.stdout
    with zipfile.ZipFile(dist.wheel) as whl:
        names = set(whl.namelist())
        meta = whl.read(f"pmgdns-{__version__}.dist-info/METADATA").decode()
        entry_points = whl.read(f"pmgdns-{__version__}.dist-info/entry_points.txt").decode()
    assert set(PACKAGE_DATA) <= names
    assert "pmgdns/reports/html.py" in names
    assert not [n for n in names if n.startswith(("tests/", "build/", "config/", "zones/"))]
    assert f"\nVersion: {__version__}\n" in meta
    # the MIT licence as an SPDX expression (PEP 639), with its text in the wheel
    assert "\nLicense-Expression: MIT\n" in meta and "\nLicense-File: LICENSE\n" in meta
    assert f"pmgdns-{__version__}.dist-info/licenses/LICENSE" in names
    assert "Description-Content-Type: text/markdown" in meta
    assert "pmgdns = pmgdns.cli:main" in entry_points
    with tarfile.open(dist.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {f"src/{p}" for p in PACKAGE_DATA} | {"README.md", "pyproject.toml"} <= members


@dataclass
class Installed:
    bin: Path  # the pmgdns console script pipx exposed
    python: Path  # the interpreter of pipx's venv for pmgdns
    env: dict[str, str]
    venv: Path  # the fresh venv that holds pipx


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """pipx (from the package index) in a fresh venv, then `pipx install` the wheel."""
    base = tmp_path_factory.mktemp("pipx")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMGDNS_", "VIRTUAL_ENV", "PYTHON", "PIPX_"))}
    env.update(PIPX_HOME=str(base / "home"), PIPX_BIN_DIR=str(base / "bin"),
               PIPX_MAN_DIR=str(base / "man"), HOME=str(base / "userhome"), NO_COLOR="1")
    cache = os.environ.get("PMGDNS_TEST_PIP_CACHE") or run(
        [sys.executable, "-m", "pip", "cache", "dir"], check=False).stdout.strip()
    if cache:
        env["PIP_CACHE_DIR"] = cache  # the user's cache, though HOME is a temporary one
    t0 = time.monotonic()
    run([sys.executable, "-m", "venv", str(base / "venv")])
    venv_python = base / "venv" / "bin" / "python"
    run([str(venv_python), "-m", "pip", "install", "--quiet", "pipx"], env=env)
    t1 = time.monotonic()
    run([str(base / "venv" / "bin" / "pipx"), "install", str(dist.wheel)], env=env)
    t2 = time.monotonic()
    print(f"\nvenv + pip install pipx: {t1 - t0:.1f} s; pipx install <wheel>: {t2 - t1:.1f} s")
    pmgdns = base / "bin" / "pmgdns"
    assert pmgdns.exists()
    python = base / "home" / "venvs" / "pmgdns" / "bin" / "python"
    assert python.exists()
    yield Installed(pmgdns, python, env, base / "venv")


def test_pipx_version(installed: Installed) -> None:
    result = run([str(installed.bin), "--version"], env=installed.env)
    assert result.stdout.strip() == f"pmgdns, version {__version__}"
    # the installed package is the wheel's, not this checkout's
    where = run([str(installed.python), "-c", "import pmgdns; print(pmgdns.__file__)"],
                env=installed.env).stdout
    assert str(ROOT) not in where and "site-packages" in where


def _starter(installed: Installed, keys: Any, project: Path) -> Path:
    """`pmgdns init`, then the DKIM record pasted as PMG shows it; returns the spec's path."""
    result = run([str(installed.bin), "init"], cwd=project, env=installed.env)
    assert "Wrote config/site.yaml" in result.stdout
    spec = project / "config" / "site.yaml"
    text = spec.read_text(encoding="utf-8")
    assert "    PASTE-THE-DKIM-RECORD-HERE\n" in text
    spec.write_text(text.replace("PASTE-THE-DKIM-RECORD-HERE", keys.pmg_record("pmg2026")),
                    encoding="utf-8")
    return spec


def test_pipx_demo(installed: Installed, keys: Any, tmp_path: Path) -> None:
    """The demo against the local target, with the installed command in an empty project."""
    def pmgdns(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(installed.bin), *args], cwd=tmp_path, env=installed.env, check=check)

    t0 = time.monotonic()
    spec = _starter(installed, keys, tmp_path)
    assert "is valid: 1 domain" in pmgdns("validate").stdout
    plan = pmgdns("plan").stdout
    assert "to add" in plan and "_dmarc.example.com." in plan
    assert "Apply complete!" in pmgdns("apply", "--yes").stdout
    again = pmgdns("plan", "--detailed-exitcode", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    assert (tmp_path / "build" / "zones").is_dir()

    # the pre-commit hooks' entries, run as pre-commit runs them
    hooks = _hooks()
    for hook in hooks.values():
        args = shlex.split(hook["entry"])[1:]
        assert pmgdns(*args).returncode == 0
    spec.write_text(spec.read_text(encoding="utf-8").replace("ttl: 3600", "ttl: 600"),
                    encoding="utf-8")
    stale = pmgdns(*shlex.split(hooks["pmgdns-render-check"]["entry"])[1:], check=False)
    assert stale.returncode == 1 and "stale" in (stale.stdout + stale.stderr)
    print(f"\ndemo with the installed pmgdns: {time.monotonic() - t0:.1f} s")


# -- shell completion --------------------------------------------------------------------------

COMPLETION = {  # shell -> what its script must contain
    "bash": ["_pmgdns_completion()", "complete -o nosort -F _pmgdns_completion pmgdns",
             "_PMGDNS_COMPLETE=bash_complete"],
    "zsh": ["#compdef pmgdns", "_pmgdns_completion", "_PMGDNS_COMPLETE=zsh_complete"],
    "fish": ["complete --no-files --command pmgdns", "_PMGDNS_COMPLETE=fish_complete"],
}


def test_completion_scripts(installed: Installed) -> None:
    """The console script and `python -m pmgdns` print each shell's script (exit 0)."""
    for shell, needles in COMPLETION.items():
        for cmd in ([str(installed.bin)], [str(installed.python), "-m", "pmgdns"]):
            env = {**installed.env, "_PMGDNS_COMPLETE": f"{shell}_source"}
            result = run(cmd, env=env)
            for needle in needles:
                assert needle in result.stdout, (shell, cmd, needle)
            assert result.stderr == ""


def test_completion_completes(installed: Installed, tmp_path: Path) -> None:
    """Bash sources the script and completes subcommands, options and choices."""
    assert shutil.which("bash"), "bash completes the commands"
    bindir = installed.bin.parent
    script = """
eval "$(_PMGDNS_COMPLETE=bash_source pmgdns)"
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));
  COMPREPLY=(); _pmgdns_completion pmgdns; echo "${COMPREPLY[*]}"; }
complete_words pmgdns ver
complete_words pmgdns pl
complete_words pmgdns plan --for
complete_words pmgdns plan --format ""
complete_words pmgdns render --
"""
    env = {**installed.env, "PATH": f"{bindir}{os.pathsep}{installed.env.get('PATH', '')}"}
    lines = run(["bash", "--norc", "--noprofile", "-c", script], cwd=tmp_path,
                env=env).stdout.splitlines()
    assert lines[0] == "verify"
    assert lines[1] == "plan"
    assert lines[2] == "--format"
    assert {"text", "markdown", "json"} <= set(lines[3].split())
    assert "--check" in lines[4].split() and "--help" in lines[4].split()


# -- pre-commit runs the hooks from a clone of this repository ---------------------------------


def test_pre_commit_runs_the_hooks(dist: Dist, installed: Installed, keys: Any,
                                   tmp_path: Path) -> None:
    """pre-commit (from the package index) installs pmgdns from a clone of the repository and
    runs both hooks in a user's project: they pass, and render-check fails on a stale zones/."""
    env = {**installed.env, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1"}
    (tmp_path / "gitconfig").write_text("[user]\n\tname = pmgdns test\n\temail = "
                                        "test@example.invalid\n[init]\n\tdefaultBranch = "
                                        "main\n[commit]\n\tgpgsign = false\n")
    t0 = time.monotonic()
    run([str(installed.venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "pre-commit"], env=env)
    pre_commit = str(installed.venv / "bin" / "pre-commit")
    project = tmp_path / "site"
    project.mkdir()
    spec = _starter(installed, keys, project)
    run([str(installed.bin), "render"], cwd=project, env=env)
    (project / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{
        "repo": str(dist.repo), "rev": dist.rev,
        "hooks": [{"id": "pmgdns-validate"}, {"id": "pmgdns-render-check"}]}]}))
    run(["git", "init", "-q"], cwd=project, env=env)
    run(["git", "add", "-A"], cwd=project, env=env)
    t1 = time.monotonic()
    ok = run([pre_commit, "run", "--all-files"], cwd=project, env=env, check=False)
    t2 = time.monotonic()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.search(r"pmgdns validate\.+Passed", ok.stdout), ok.stdout
    assert re.search(r"pmgdns render --check\.+Passed", ok.stdout), ok.stdout

    spec.write_text(spec.read_text(encoding="utf-8").replace("ttl: 3600", "ttl: 600"),
                    encoding="utf-8")
    run(["git", "add", "-A"], cwd=project, env=env)
    stale = run([pre_commit, "run", "--all-files"], cwd=project, env=env, check=False)
    assert stale.returncode == 1
    assert re.search(r"pmgdns validate\.+Passed", stale.stdout), stale.stdout
    assert re.search(r"pmgdns render --check\.+Failed", stale.stdout), stale.stdout
    assert "is stale" in stale.stdout

    # a change outside config/ and zones/ does not run them
    (project / "README.md").write_text("hello\n")
    run(["git", "add", "README.md"], cwd=project, env=env)
    other = run([pre_commit, "run", "--files", "README.md"], cwd=project, env=env, check=False)
    assert other.returncode == 0 and "(no files to check)Skipped" in other.stdout
    print(f"\npip install pre-commit and setup: {t1 - t0:.1f} s; first pre-commit run "
          f"(installs the hooks' environment): {t2 - t1:.1f} s")


# -- installing what exists ----------------------------------------------------------------------


def test_the_mit_licence_is_declared_and_shipped() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "MIT"
    assert pyproject["project"]["license-files"] == ["LICENSE"]
    assert not [c for c in pyproject["project"]["classifiers"] if c.startswith("License ::")]
    assert "setuptools>=77" in pyproject["build-system"]["requires"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    assert "LICENSE" in run(["git", "ls-files", "LICENSE"], cwd=ROOT).stdout


def test_build_prints_no_deprecation(dist: Dist) -> None:
    """`python -m build` (setuptools from the index, as a user's build gets it) does not warn
    that the project's metadata is deprecated."""
    assert "deprecat" not in dist.log.lower(), dist.log[-3000:]


GIT_PIN = re.compile(r"git\+https://<repository URL>@<commit SHA or tag>")


def test_install_lines_install_what_exists() -> None:
    """No install line names a pmgdns version of a package index (there is none): the README
    and both pipelines install from the repository pinned to a commit or tag, and the
    pre-commit `rev:` is a placeholder for one, not a tag that does not exist."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "examples").glob("*.yml")}
    for name, text in {"README.md": readme, **examples}.items():
        assert not re.search(r"pmgdns\s*[=~<>!]=", text), name
        assert not re.search(r"(?<!`)pip(x)? install\s+\"?pmgdns\b", text), name
    assert 'pipx install "git+https://<repository URL>@<commit SHA or tag>"' in readme
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        doc = yaml.safe_load(examples[name])
        env = doc["env"] if "env" in doc else doc["variables"]
        assert GIT_PIN.fullmatch(env["PMGDNS"]), (name, env["PMGDNS"])
    gitlab = yaml.safe_load(examples["gitlab-ci.yml"])
    assert "slim" not in gitlab["default"]["image"]  # pip needs git for a git+ URL
    tags = set(run(["git", "tag", "-l"], cwd=ROOT).stdout.split())
    for text in (readme, HOOKS.read_text(encoding="utf-8")):
        revs = re.findall(r"^#?\s*rev:\s*(\S.*?)\s*(?:#.*)?$", text, re.M)
        assert revs, "a pre-commit snippet"
        for rev in revs:
            assert rev in tags or rev == "<commit SHA or tag>" or re.fullmatch(
                r"[0-9a-f]{40}", rev), rev
    assert "pre-commit autoupdate --freeze" in readme and "git ls-remote" in readme


def test_a_pinned_git_url_installs(dist: Dist, tmp_path: Path) -> None:
    """The install line's form, `git+URL@COMMIT`, against a clone of this repository: pip
    builds and installs that commit."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMGDNS_", "VIRTUAL_ENV", "PYTHON"))}
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")])
    pip = [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip"]
    run([*pip, "install", "--quiet", "--no-deps", f"git+file://{dist.repo}@{dist.rev}"], env=env)
    meta = run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import importlib.metadata as m;"
                " d = m.metadata('pmgdns'); print(d['Version'], d['License-Expression'])"],
               env=env).stdout.split()
    assert meta == [__version__, "MIT"]
