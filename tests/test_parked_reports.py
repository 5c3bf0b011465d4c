"""A parked domain keeps `defaults.dmarc.rua`/`ruf` (M3AAWG: abuse of the parked name is still
reported) unless it overrides them (spec-v1 §7.3)."""

from __future__ import annotations

from pmgdns.families import parked
from pmgdns.families.loader import load_site

from .conftest import Project


def _dmarc(project: Project, domain: str) -> str:
    site = load_site(str(project.spec_path))
    found = [r for r in parked.FAMILY.records(site, site.domains[domain]) if r.name == "_dmarc"]
    assert len(found) == 1
    return found[0].values[0]


def test_a_parked_domain_keeps_the_default_report_addresses(project: Project) -> None:
    spec = project.spec(defaults={"dmarc": {"rua": ["mailto:dmarc@example.com"],
                                            "ruf": ["mailto:forensic@example.com"]}})
    spec["domains"] = {"example.com": {}, "parked.example.com": {"parked": True},
                       "own.example.com": {"parked": True,
                                           "dmarc": {"rua": ["mailto:abuse@example.org"],
                                                     "ruf": None}}}
    project.write_spec(spec)
    assert _dmarc(project, "parked.example.com") == (
        "v=DMARC1; p=reject; rua=mailto:dmarc@example.com; ruf=mailto:forensic@example.com; "
        "aspf=s; adkim=s;")
    assert _dmarc(project, "own.example.com") == (
        "v=DMARC1; p=reject; rua=mailto:abuse@example.org; aspf=s; adkim=s;")


def test_a_parked_domain_without_report_addresses(project: Project) -> None:
    spec = project.spec()
    spec["domains"] = {"example.com": {}, "parked.example.com": {"parked": True}}
    project.write_spec(spec)
    assert _dmarc(project, "parked.example.com") == "v=DMARC1; p=reject; aspf=s; adkim=s;"
