"""Ctrl-C (SIGINT to a real pmgdns process) during `apply` (issue 27, item 6): the message says
what was and was not applied, the apply lock is free again, and no half-written or temporary
file is left. (Ctrl-C during the changes themselves: tests/test_hostile.py; during `pmg pull`:
tests/test_pmg_hostile.py.)"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Project

TOKEN_ENV = "PMGDNS_TEST_INTERRUPT_TOKEN"


class Silent:
    """A server on loopback that accepts connections, reads the request and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            try:
                if conn.recv(65536):
                    self.requests += 1
            except OSError:
                pass

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.stop()


def _leftovers(*dirs: Path) -> list[str]:
    return [str(p) for d in dirs if d.exists() for p in d.rglob("*")
            if p.name.startswith(".") and p.is_file()]


@pytest.mark.parametrize("parallel", ["1", "4"])
def test_ctrl_c_while_planning_says_nothing_was_applied(project: Project, silent: Silent,
                                                        parallel: str) -> None:
    url = f"http://127.0.0.1:{silent.port}/client/v4"
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": f"env/{TOKEN_ENV}", "api_url": url,
                                          "pagerules": False, "retry_count": 1,
                                          "retry_period": 0}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmgdns", "apply", "--yes", "--parallel", parallel],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "NO_COLOR": "1", TOKEN_ENV: "tok-interrupt-0123456789",
             "PMGDNS_ALLOW_ENDPOINTS": url})
    deadline = time.monotonic() + 60
    while silent.requests == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert silent.requests, "pmgdns never asked the provider"
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert time.monotonic() - start < 30
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert "interrupted" in errors[0] and "Nothing was applied" in errors[0], errors[0]
    assert "Traceback" not in err
    assert not project.local_zone("example.com").exists()  # true: nothing was applied
    with open(project.root / "build" / "apply.lock", "a") as fh:  # the lock is free
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert _leftovers(project.root / "build", project.root / "zones",
                      project.root / "config") == []
