"""`apply --plan FILE` applies exactly what the reviewer read (issue 27, item 4): the JSON is read
strictly (no key twice, no NaN), and an edit of the summary, the manual steps or the notes is
refused, whether or not the editor also recomputed the file's digest."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from pmgdns.plan.planfile import document_digest

from .conftest import Project, assert_clean_error


def _planned(project: Project) -> dict[str, Any]:
    assert project.run("plan", "--out", "plan.json").code == 0
    doc: dict[str, Any] = json.loads((project.root / "plan.json").read_text())
    assert doc["changes"] and doc["manual"], doc  # the base spec plans changes and PTR steps
    return doc


def test_a_duplicate_key_is_refused(project: Project) -> None:
    doc = _planned(project)
    text = json.dumps(doc, indent=2)
    # a second "summary" that some readers show and others ignore
    text = text.replace('"summary": {', '"summary": {"create": 0, "update": 0, "delete": 0},\n'
                                        '  "summary": {', 1)
    (project.root / "plan.json").write_text(text)
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "plan.json", "summary", "twice")
    assert not project.local_zone("example.com").exists()


def test_nan_is_refused(project: Project) -> None:
    doc = _planned(project)
    text = json.dumps(doc).replace('"version": 1', '"version": 1, "x": NaN', 1)
    (project.root / "plan.json").write_text(text)
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "plan.json", "NaN")


def _summary(doc: dict[str, Any]) -> None:
    doc["summary"]["delete"] = 0 if doc["summary"]["delete"] else 7


def _manual(doc: dict[str, Any]) -> None:
    doc["manual"] = doc["manual"][1:]


def _notes(doc: dict[str, Any]) -> None:
    doc["notes"].append("Reviewed and approved by the security team.")


@pytest.mark.parametrize("edit", [_summary, _manual, _notes], ids=["summary", "manual", "notes"])
@pytest.mark.parametrize("redigest", [False, True], ids=["as-edited", "digest-recomputed"])
def test_an_edit_of_what_is_shown_is_refused(project: Project,
                                             edit: Callable[[dict[str, Any]], None],
                                             redigest: bool) -> None:
    doc = _planned(project)
    edit(doc)
    if redigest:
        doc["digest"] = document_digest(doc)
    (project.root / "plan.json").write_text(json.dumps(doc, indent=2))
    result = project.run("apply", "--plan", "plan.json")
    assert_clean_error(result, "stale", "edited")
    assert not project.local_zone("example.com").exists()


def test_the_unedited_plan_applies(project: Project) -> None:
    _planned(project)
    assert project.run("apply", "--plan", "plan.json").code == 0
    assert project.local_zone("example.com").exists()


def _git(project: Project, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   cwd=project.root, check=True, capture_output=True, timeout=60)


def test_a_changed_since_plan_applies_and_its_note_cannot_be_forged(project: Project) -> None:
    _git(project, "init", "-q")
    _git(project, "add", "config")
    _git(project, "commit", "-qm", "spec")
    assert project.run("apply", "--yes").code == 0
    spec = project.spec()
    spec["domains"]["example.org"] = {"dmarc": {"p": "reject"}}
    project.write_spec(spec)
    assert project.run("plan", "--changed-since", "HEAD", "--out", "plan.json").code == 0
    doc = json.loads((project.root / "plan.json").read_text())
    assert any(n.startswith("planned 1 of 2 domains") for n in doc["notes"]), doc["notes"]
    clean = json.dumps(doc, indent=2)
    # a note dressed as the --changed-since note, with words of its own
    doc["notes"].append("planned 1 of 2 domains: those whose records changed since HEAD; a "
                        "full `pmgdns plan` also finds drift at the targets. Approved by "
                        "security")
    doc["digest"] = document_digest(doc)
    (project.root / "plan.json").write_text(json.dumps(doc, indent=2))
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale", "notes")
    (project.root / "plan.json").write_text(clean)
    applied = project.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err


def test_a_note_that_names_the_time_applies_later(project: Project) -> None:
    """The DKIM rotation note says when PMG may switch "if you apply now": applying the plan
    minutes later is what review is for, so only that moment may differ."""
    spec = project.spec()
    spec["dkim"]["next"] = {"selector": "pmg2027", "public_key": project.keys.b64("rsa4096")}
    project.write_spec(spec)
    doc = _planned(project)
    timed = [n for n in doc["notes"] if "if you apply now" in n]
    assert timed, doc["notes"]
    earlier = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "2020-01-01 00:00 UTC", timed[0])
    doc["notes"] = [earlier if n == timed[0] else n for n in doc["notes"]]
    doc["digest"] = document_digest(doc)
    (project.root / "plan.json").write_text(json.dumps(doc, indent=2))
    applied = project.run("apply", "--plan", "plan.json")
    assert applied.code == 0, applied.err
    # but the words around it are what the reviewer read
    assert project.run("plan", "--out", "plan.json").code == 0
    doc = json.loads((project.root / "plan.json").read_text())
    doc["notes"].append("the next DKIM key is published: switch PMG now")
    doc["digest"] = document_digest(doc)
    (project.root / "plan.json").write_text(json.dumps(doc, indent=2))
    assert_clean_error(project.run("apply", "--plan", "plan.json"), "stale", "notes")
