"""The package's layout is its data path: each stage imports only the stages below it (type-only
and function-local imports included), no two modules import each other in a cycle, every package
says in one line what it holds, no module grows past 700 lines, and function-local imports of
pmgdns exist only in the CLI (for its start-up time)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "src" / "pmgdns"

# Lowest first. A module may import its own stage and the stages before it, never one after.
STAGES = ("core", "spec", "families", "providers", "zones", "plan", "verify", "reports",
          "tickets", "pmg", "firewall", "api", "cli", "__main__")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        out[name or "__init__"] = path
    return out


def _stage(module: str) -> int:
    if module in ("", "__init__"):
        return -1  # the package root holds only __version__
    return STAGES.index(module.split(".")[0])


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported pmgdns module, line, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if module != "__init__" else []
    base = here if is_pkg else here[:-1]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    parent = base[:len(base) - child.level + 1]
                    target = ".".join([*parent, *([child.module] if child.module else [])])
                elif child.module and child.module.split(".")[0] == "pmgdns":
                    target = child.module.removeprefix("pmgdns").lstrip(".")
                else:
                    continue
                for alias in child.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    found.append((sub if sub in MODULES else target, child.lineno, inner))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "pmgdns":
                        found.append((alias.name.removeprefix("pmgdns").lstrip("."),
                                      child.lineno, inner))
            visit(child, inner)

    visit(tree, False)
    return found


MODULES = _modules()


def test_no_import_runs_upward() -> None:
    upward = []
    for module, path in MODULES.items():
        for target, line, _ in _imports(module, path):
            if target and _stage(target) > _stage(module):
                upward.append(f"{path.relative_to(PKG)}:{line} imports pmgdns.{target}")
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = {m: {t for t, _, _ in _imports(m, p) if t in MODULES and t != m}
             for m, p in MODULES.items()}
    # a package's __init__ importing its own modules is the registry, not a cycle
    for m in graph:
        graph[m] = {t for t in graph[m] if not (MODULES[t].name == "__init__.py"
                                               and m.startswith(t + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                walk(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)


def test_function_local_imports_only_in_the_cli() -> None:
    local = [f"{path.relative_to(PKG)}:{line} imports pmgdns.{target}"
             for module, path in MODULES.items() if module not in ("cli", "__main__")
             for target, line, inner in _imports(module, path) if inner]
    assert not local, "\n".join(local)


def test_every_package_says_what_it_holds() -> None:
    for init in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(PKG)} has no docstring"


def test_no_module_past_700_lines() -> None:
    long = [f"{p.relative_to(PKG)}: {n} lines" for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 700]
    assert not long, "\n".join(long)
