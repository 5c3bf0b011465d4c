"""Bad values end with a clear error before any work (issue 27, item 5): seconds that are not a
finite non-negative number, file options naming a FIFO, a device or a directory, and a
`dkim.record` that is not a DKIM key record (refused without echoing it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Project, assert_clean_error


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e999", "soon", ""])
def test_lock_timeout_must_be_seconds(project: Project, value: str) -> None:
    result = project.run("apply", "--yes", "--lock-timeout", value)
    assert_clean_error(result, "--lock-timeout", "seconds")
    assert not project.local_zone("example.com").exists()  # nothing applied


@pytest.mark.parametrize("value", ["nan", "inf", "0.5", "301"])
def test_pmg_timeout_must_be_seconds(project: Project, value: str) -> None:
    result = project.run("pmg", "pull", "--url", "https://127.0.0.1:9", "--timeout", value,
                         env={"PMG_PASSWORD": "long-enough-password"})
    assert_clean_error(result, "--timeout", "seconds")


def _special(kind: str, tmp: Path) -> str:
    if kind == "fifo":
        os.mkfifo(tmp / "pipe.pem")
        return str(tmp / "pipe.pem")
    if kind == "directory":
        (tmp / "adir").mkdir()
        return str(tmp / "adir")
    return "/dev/zero"


FILE_OPTIONS = [
    ("verify", "--ca-file"),
    ("pmg pull --url https://127.0.0.1:9", "--ca-file"),
    ("apply", "--plan"),
    ("plan", "--out"),
    ("verify", "--out"),
]


@pytest.mark.parametrize("command,option", FILE_OPTIONS)
@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_file_option_that_is_no_regular_file_is_refused_up_front(
        project: Project, tmp_path: Path, command: str, option: str, kind: str) -> None:
    special = _special(kind, tmp_path)
    # a process of its own: a FIFO opened for reading would block it, not the suite
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pmgdns", *command.split(), option, special],
        cwd=project.root, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", "PMG_PASSWORD": "long-enough-password"})
    assert time.monotonic() - start < 30
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert option in error and special in error, error
    assert {"fifo": "FIFO", "device": "device", "directory": "directory"}[kind] in error, error
    assert not project.local_zone("example.com").exists()


def test_the_spec_option_that_is_a_directory_is_refused(project: Project) -> None:
    assert_clean_error(project.run("-c", str(project.root), "validate"), "--config",
                       "directory")


@pytest.mark.parametrize("record", [
    "ghp_R3alL00kingT0kenValue1234567890abcd",
    "v=ghp_R3alL00kingT0kenValue1234567890abcd; p=QUJD",
    "v=DKIM1; k=ghp_R3alL00kingT0kenValue1234567890abcd; p=QUJD",
    "Bearer ghp_R3alL00kingT0kenValue1234567890abcd",
])
def test_a_dkim_record_that_is_no_dkim_record_is_not_echoed(project: Project,
                                                            record: str) -> None:
    spec = project.spec()
    spec["dkim"] = {"selector": "pmg2026", "record": record}
    project.write_spec(spec)
    result = project.run("validate")
    assert_clean_error(result, "dkim.record")
    for part in ("ghp_", "R3alL00k", "1234567890abcd"):
        assert part not in result.out + result.err, result.err
