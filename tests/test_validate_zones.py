"""`pmgdns validate` loads every rendered zone as octoDNS's YamlProvider loads `zones/` (the same
records, contexts and errors), and its work per zone does not grow with the fleet (issue #28)."""

from __future__ import annotations

import cProfile
import os
import pstats
import textwrap
from pathlib import Path
from typing import Any

import pytest
from octodns.provider.yaml import YamlProvider
from octodns.record import Record
from octodns.zone import Zone

from pmgdns import api
from pmgdns.core.errors import SpecError
from pmgdns.families.loader import load_site
from pmgdns.zones import loading
from pmgdns.zones.render import Rendering, zone_file_path

from .conftest import Project
from .tls_servers import CertFactory

# -- the same zones as octoDNS's YamlProvider ----------------------------------------------------


def _outcome(load: Any, directory: str, name: str) -> tuple[Any, ...]:
    """What `load(directory, name)` gives: the zone's records in full, or its error."""
    Record.enable_validators(["legacy", "strict"])
    Zone.enable_zone_validators(["legacy", "strict"])
    try:
        zone = load(directory, name)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("ok", sorted((r.name, r._type, r.ttl, repr(r.data), str(r.context))
                         for r in zone.records))


def _by_octodns(directory: str, name: str) -> Any:
    zone = Zone(name, [])
    YamlProvider("pmgdns", directory, enforce_order=True, escaped_semicolons=False).populate(zone)
    zone.validate()
    return zone


def _by_pmgdns(directory: str, name: str) -> Any:
    path = os.path.join(directory, f"{name}yaml")
    text = Path(path).read_text(encoding="utf-8")
    return loading.load_zone(name, path, text, loading.zone_source(directory))


def test_rendered_zones_load_as_octodns_loads_them(project: Project, tmp_path: Path) -> None:
    mx = CertFactory(tmp_path / "certs").leaf("mx", ["mx1.example.com"])
    spec = project.spec(defaults={"mta_sts": {"mode": "enforce", "max_age": 604800,
                                              "web": {"ipv4": "198.51.100.80"}},
                                  "tls_rpt": {"rua": ["mailto:tls-reports@example.com"]},
                                  "dmarc": {"p": "reject", "rua": ["mailto:d@example.com"]}})
    spec.pop("gateway")
    spec["gateways"] = [{"hostname": "mx1.example.com", "ipv4": "198.51.100.25",
                         "ipv6": "2001:db8::25", "caa": ["letsencrypt.org"],
                         "tlsa": [{"cert_file": str(mx.cert_file)}]}]
    spec["domains"] = {"example.com": {}, "example.org": {"ttl": 600},
                       "parked.example": {"parked": True}}
    project.write_spec(spec)
    assert project.run("render").code == 0
    types = set()
    for name in ("example.com.", "example.org.", "parked.example."):
        ours = _outcome(_by_pmgdns, "zones", name)
        assert ours[0] == "ok", ours
        assert ours == _outcome(_by_octodns, "zones", name)
        types |= {r[1] for r in ours[1]}
    assert {"A", "AAAA", "CAA", "MX", "TLSA", "TXT"} <= types


ZONE_TEXTS = {
    "TXT with semicolons": """\
        ---
        '':
          - type: MX
            value: {exchange: mx1.example.com., preference: 10}
          - type: TXT
            values: ['v=spf1 mx -all', 'a=1; b=2']
        _dmarc:
          ttl: 300
          type: TXT
          value: v=DMARC1; p=reject;
        """,
    "keys out of order": """\
        ---
        zz:
          type: A
          value: 192.0.2.1
        aa:
          type: A
          value: 192.0.2.2
        """,
    "record keys out of order": """\
        ---
        www:
          value: 192.0.2.1
          type: A
        """,
    "strict validator": """\
        ---
        www:
          type: A
          value: not-an-address
        """,
    "CNAME beside other records": """\
        ---
        www:
          - type: A
            value: 192.0.2.1
          - type: CNAME
            value: example.net.
        """,
    "empty zone": "--- {}\n",
    "no document": "",
}


@pytest.mark.parametrize("case", sorted(ZONE_TEXTS))
def test_a_zone_text_loads_or_fails_as_octodns_yamlprovider(tmp_path: Path, case: str) -> None:
    """Records, contexts and error messages (which name the file and line) are octoDNS's own."""
    directory = str(tmp_path / "zones")
    os.mkdir(directory)
    text = textwrap.dedent(ZONE_TEXTS[case])
    Path(directory, "example.com.yaml").write_text(text, encoding="utf-8")
    ours = _outcome(_by_pmgdns, directory, "example.com.")
    assert ours == _outcome(_by_octodns, directory, "example.com.")
    loads = case in ("TXT with semicolons", "empty zone", "no document")
    assert ours[0] == ("ok" if loads else "error"), ours
    if ours[0] == "error" and "order" in case:
        assert "keys out of order" in ours[2] and "example.com.yaml, line" in ours[2]


def test_a_zone_octodns_refuses_is_an_error_naming_the_domain_and_the_fix(
        project: Project) -> None:
    site = load_site("config/site.yaml")
    bad = "---\nwww:\n  type: A\n  value: not-an-address\n"
    rendering = Rendering({zone_file_path(d.zone): bad for d in site.domains.values()}, "")
    with pytest.raises(SpecError) as caught:
        loading.check_rendered(site, rendering)
    message = str(caught.value)
    for part in ("config/site.yaml", "domains.example.com", "example.com.yaml",
                 "not-an-address", "Change the domain's records in the spec"):
        assert part in message, message


def test_validate_warns_of_each_stale_zone_file(project: Project) -> None:
    spec = project.spec()
    spec["domains"]["example.net"] = {}
    project.write_spec(spec)
    assert project.run("render").code == 0
    assert "stale" not in project.run("validate").err
    zones = project.root / "zones"
    (zones / "example.com.yaml").write_text("--- {}\n")  # edited by hand
    (zones / "example.org.yaml").unlink()  # missing
    spec["domains"].pop("example.net")  # rendered for a domain the spec dropped
    project.write_spec(spec)
    (zones / "handmade.example.yaml").write_text("--- {}\n")  # not pmgdns's: not stale
    result = project.run("validate")
    assert result.code == 0, result.err
    assert ("zones/ is stale (zones/example.com.yaml, zones/example.net.yaml, "
            "zones/example.org.yaml): run `pmgdns render` and commit the result") in result.err


# -- a cost per zone that does not grow with the fleet --------------------------------------------


def _fleet(project: Project, n: int, prefix: str) -> None:
    """n domains named alike, `prefix` naming them apart from the other runs' (whose patterns
    Python's `re` cache would hold)."""
    spec = project.spec()
    spec["gateway"]["hostname"] = f"mx1.{prefix}000.example"
    spec["domains"] = {f"{prefix}{i:03}.example": {} for i in range(n)}
    project.write_spec(spec)
    assert project.run("render").code == 0


def _validate_calls(project: Project, n: int, prefix: str) -> dict[str, int]:
    """Function calls of loading the spec and `api.validate`, counted by cProfile on a fleet of
    n domains rendered to zones/: all, directory listings, files opened, and PyYAML's
    pure-Python parser."""
    _fleet(project, n, prefix)
    workspace = api.Workspace()
    profile = cProfile.Profile()
    profile.enable()
    try:
        warnings = api.validate(workspace, workspace.load())
    finally:
        profile.disable()
    assert not [w for w in warnings if "stale" in w]
    counts = {"all": 0, "listdir": 0, "open": 0, "python yaml": 0}
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore
    for (file, _, function), (_, calls, *_rest) in stats.items():
        counts["all"] += calls
        if function in ("<built-in method posix.listdir>", "<built-in method posix.scandir>"):
            counts["listdir"] += calls
        if function in ("<built-in method posix.open>", "<built-in method io.open>"):
            counts["open"] += calls
        if any(file.endswith(f"yaml/{m}.py") for m in ("reader", "scanner", "parser",
                                                        "composer")):
            counts["python yaml"] += calls
    return counts


def test_validate_does_the_same_work_for_each_zone_whatever_the_fleet(project: Project) -> None:
    _validate_calls(project, 5, "w")  # modules imported on first use are not the fleet's cost
    n = 40
    one, two, three = (_validate_calls(project, k * n, p) for k, p in ((1, "a"), (2, "b"),
                                                                        (3, "c")))
    # zones/ is listed once per run, never per zone
    assert one["listdir"] == two["listdir"] == three["listdir"]
    # each zone's file is opened once (to find it stale), and nothing else per zone
    assert two["open"] - one["open"] == three["open"] - two["open"] == n
    # no zone text goes through PyYAML's pure-Python parser
    assert one["python yaml"] == two["python yaml"] == three["python yaml"]
    # and the work of n more domains is the same at 2n as at n: no step grows with the fleet
    first, second = two["all"] - one["all"], three["all"] - two["all"]
    assert abs(second - first) <= 0.005 * first, (first, second)
