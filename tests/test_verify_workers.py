"""verify of a large fleet runs in worker processes: the report is the one a single process
makes, and a worker that dies ends verify with an error instead of a wait for ever. Real BIND
on loopback; the fleet threshold is lowered so two domains take the large-fleet path."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from pmgdns.verify import run as verify_run

from .conftest import Project, verify_json
from .servers import BindServer


def _keyed(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted((c["subject"], c["family"], c["check"], c["status"]) for c in report["checks"])


def test_workers_report_what_one_process_reports(project: Project, bind: BindServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("apply", "--yes").code == 0
    code_one, one = verify_json(project, bind.port)
    monkeypatch.setattr(verify_run, "PROCESS_MIN", 2)
    code_many, many = verify_json(project, bind.port)
    assert (code_many, _keyed(many)) == (code_one, _keyed(one))
    assert any(c["subject"] == "example.org" for c in many["checks"])


def _die(domains: list[Any]) -> Any:
    os._exit(3)  # a worker killed mid-run (out of memory, a signal)


def test_a_worker_that_dies_ends_verify_with_an_error(project: Project, bind: BindServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_run, "PROCESS_MIN", 2)
    monkeypatch.setattr(verify_run, "_chunk", _die)
    start = time.monotonic()
    result = project.run("verify", "--nameserver", f"127.0.0.1:{bind.port}")
    assert time.monotonic() - start < 60
    assert result.code == 1
    assert "a verify worker process ended unexpectedly" in result.err
    assert "Traceback" not in result.err
