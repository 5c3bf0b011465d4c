"""The project's own lint and type checks, so CI keeps them clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def test_ruff_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_octodns_deprecations_are_errors_in_this_suite() -> None:
    """pyproject's filterwarnings turn octoDNS's deprecation warnings into errors, so a use of
    an API octoDNS 2 removes fails the suite."""
    import pytest
    from octodns.record.rr import Rr

    with pytest.raises(DeprecationWarning, match="DEPRECATED"):
        Rr("a.example.com.", "A", 60, "192.0.2.1")


def test_families_do_not_import_the_cli() -> None:
    import re

    imports = re.compile(r"^\s*(?:from\s+(\S+)\s+import\s+(.+)|import\s+(\S+))", re.M)
    for path in (ROOT / "src" / "pmgdns" / "families").glob("*.py"):
        for m in imports.finditer(path.read_text()):
            names = " ".join(g for g in m.groups() if g)
            assert not re.search(r"\bcli\b", names), (path, m.group(0))
