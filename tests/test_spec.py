"""The spec (spec-v1 §1): defaults, overrides, and every class of bad input through the CLI."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from pmgdns.families.loader import parse_site
from pmgdns.families.spf import spf_value

from .conftest import Project, assert_clean_error, base_spec


def test_defaults_and_overrides(keys: Any) -> None:
    spec = base_spec(keys)
    spec["defaults"] = {"ttl": 600, "dmarc": {"p": "none", "rua": ["mailto:r@example.com"]}}
    spec["domains"] = {
        "example.com": {},
        "Example.ORG.": {"ttl": 300, "mx_priority": 5, "wildcard_spf": False,
                         "dmarc": {"p": "reject", "aspf": None}},
    }
    import yaml

    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    com, org = site.domains["example.com"], site.domains["example.org"]
    assert (com.ttl, com.targets, com.mx_priority, spf_value(site, com), com.wildcard_spf) == (
        600, ("local",), 10, "v=spf1 mx -all", True)
    assert com.dmarc.txt_value == ("v=DMARC1; p=none; rua=mailto:r@example.com; aspf=s; "
                                   "adkim=s;")
    # dmarc is merged key by key: rua inherited, p overridden, aspf removed
    assert org.dmarc.txt_value == "v=DMARC1; p=reject; rua=mailto:r@example.com; adkim=s;"
    assert (org.ttl, org.mx_priority, org.wildcard_spf) == (300, 5, False)
    assert "local" in site.providers


def test_builtin_dmarc_matches_pmg_prerequisites(keys: Any) -> None:
    import yaml

    site = parse_site(yaml.safe_dump(base_spec(keys)), "site.yaml")
    assert site.domains["example.com"].dmarc.txt_value == \
        "v=DMARC1; p=quarantine; aspf=s; adkim=s;"


def test_rfc9989_tags_in_order(keys: Any) -> None:
    import yaml

    spec = base_spec(keys)
    spec["domains"]["example.com"] = {"dmarc": {
        "p": "reject", "sp": "quarantine", "np": "reject", "t": "y",
        "rua": ["mailto:a@example.com"], "ruf": ["mailto:f@example.com!10m"], "fo": "1:d",
        "pct": 50, "rf": "afrf", "ri": 86400}}
    site = parse_site(yaml.safe_dump(spec), "site.yaml")
    assert site.domains["example.com"].dmarc.txt_value == (
        "v=DMARC1; p=reject; sp=quarantine; np=reject; t=y; rua=mailto:a@example.com; "
        "ruf=mailto:f@example.com!10m; fo=1:d; aspf=s; adkim=s;")
    removed = [w for w in site.warnings if "RFC 9989" in w]
    assert len(removed) == 3 and any("dmarc.pct" in w for w in removed)


def test_idna_domain_is_encoded(keys: Any) -> None:
    import yaml

    spec = base_spec(keys)
    spec["domains"] = {"bücher.example": {}}
    site = parse_site(yaml.safe_dump(spec, allow_unicode=True), "site.yaml")
    assert list(site.domains) == ["xn--bcher-kva.example"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        node = spec
        keys = path.split("|")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        node = spec
        keys = path.split("|")
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return mutate


BAD: list[tuple[str, Callable[[dict[str, Any]], None], tuple[str, ...]]] = [
    ("unknown top key", _set("domian", {}), ("domian", "unknown key", "did you mean `domains`")),
    ("typo dmark", _set("domains|example.org", {"dmark": {"p": "reject"}}),
     ("domains.example.org.dmark", "did you mean `dmarc`")),
    ("missing gateway", _delete("gateway"), ("gateway", "is missing")),
    ("version", _set("version", 2), ("version", "must be 1")),
    ("hostname label", _set("gateway|hostname", "mx_1.example.com"),
     ("gateway.hostname", "invalid label `mx_1`")),
    ("hostname single label", _set("gateway|hostname", "mx1"),
     ("gateway.hostname", "not a fully qualified")),
    ("hostname long label", _set("gateway|hostname", "a" * 64 + ".example.com"),
     ("gateway.hostname", "invalid label")),
    ("idna invalid", _set("gateway|hostname", "mx\u200d.example.com"),
     ("gateway.hostname", "internationalised")),
    ("ipv4 malformed", _set("gateway|ipv4", "198.51.100.256"),
     ("gateway.ipv4", "not a valid IPv4 address")),
    ("ipv4 private", _set("gateway|ipv4", "10.1.2.3"), ("gateway.ipv4", "private")),
    ("ipv4 loopback", _set("gateway|ipv4", "127.0.0.1"), ("gateway.ipv4", "loopback")),
    ("ipv4 link-local", _set("gateway|ipv4", "169.254.1.1"), ("gateway.ipv4", "link-local")),
    ("ipv4 multicast", _set("gateway|ipv4", "224.0.0.5"), ("gateway.ipv4", "multicast")),
    ("ipv4 unspecified", _set("gateway|ipv4", "0.0.0.0"), ("gateway.ipv4", "unspecified")),
    ("ipv4 given v6", _set("gateway|ipv4", "2001:db8::1"), ("gateway.ipv4", "IPv6 address")),
    ("ipv6 malformed", _set("gateway|ipv6", "2001:db8:::1"),
     ("gateway.ipv6", "not a valid IPv6")),
    ("ipv6 ula", _set("gateway|ipv6", "fd00::1"), ("gateway.ipv6", "private")),
    ("ipv6 loopback", _set("gateway|ipv6", "::1"), ("gateway.ipv6", "loopback")),
    ("ipv6 link-local", _set("gateway|ipv6", "fe80::1"), ("gateway.ipv6", "link-local")),
    ("dkim two sources", _set("dkim|record", "v=DKIM1; p=abc"),
     ("dkim", "exactly one of public_key, record or key_file")),
    ("dkim no source", _delete("dkim|public_key"), ("dkim", "exactly one of")),
    ("dkim not base64", _set("dkim|public_key", "not*base64!"),
     ("dkim.public_key", "not valid base64")),
    ("dkim not a key", _set("dkim|public_key", "QUJDRA=="),
     ("dkim.public_key", "SubjectPublicKeyInfo")),
    ("dkim revoked", lambda s: s["dkim"].update({"public_key": None, "record": "v=DKIM1; p="}),
     ("dkim.record", "revoked")),
    ("dkim key type", lambda s: s["dkim"].update({"public_key": None,
                                                   "record": "v=DKIM1; k=dsa; p=QUJD"}),
     ("dkim.record", "k=dsa")),
    ("dkim missing file", lambda s: s["dkim"].update({"public_key": None,
                                                       "key_file": "keys/none.pub"}),
     ("dkim.key_file", "does not exist")),
    ("dkim retired current", _set("dkim|retired_selectors", ["pmg2026"]),
     ("dkim.retired_selectors.0", "both current and retired")),
    ("dkim selector", _set("dkim|selector", "bad selector"),
     ("dkim.selector", "not a valid DKIM selector")),
    ("dmarc p", _set("domains|example.com", {"dmarc": {"p": "block"}}),
     ("domains.example.com.dmarc.p", "none, quarantine, reject")),
    ("dmarc p null", _set("defaults|dmarc", {"p": None}),
     ("domains.example.com.dmarc.p", "needs p")),
    ("dmarc aspf", _set("defaults|dmarc", {"aspf": "x"}), ("defaults.dmarc.aspf", "r (relaxed)")),
    ("dmarc t", _set("defaults|dmarc", {"t": "maybe"}), ("defaults.dmarc.t", "y or n")),
    ("dmarc rua", _set("defaults|dmarc", {"rua": ["dmarc@example.com"]}),
     ("defaults.dmarc.rua.0", "not a mailto: URI")),
    ("dmarc rua domain", _set("defaults|dmarc", {"rua": ["mailto:a@bad_domain.example"]}),
     ("defaults.dmarc.rua.0", "invalid label")),
    ("dmarc fo", _set("defaults|dmarc", {"fo": "2"}), ("defaults.dmarc.fo", "0, 1, d or s")),
    ("dmarc unknown tag", _set("defaults|dmarc", {"adsp": "x"}),
     ("defaults.dmarc.adsp", "unknown key")),
    ("ttl zero", _set("defaults|ttl", 0), ("defaults.ttl", "whole number")),
    ("ttl text", _set("domains|example.com", {"ttl": "1h"}),
     ("domains.example.com.ttl", "whole number")),
    ("ttl bool", _set("defaults|ttl", True), ("defaults.ttl", "whole number")),
    ("mx priority", _set("defaults|mx_priority", 70000), ("defaults.mx_priority", "0 to 65535")),
    ("spf not spf", _set("defaults|spf", "mx -all"), ("defaults.spf", "must start with `v=spf1`")),
    ("spf +all", _set("defaults|spf", "v=spf1 +all"), ("defaults.spf", "+all")),
    ("spf lookups", _set("defaults|spf", "v=spf1 " + " ".join(f"include:i{i}.example"
                                                              for i in range(11)) + " -all"),
     ("defaults.spf", "at most 10")),
    ("target unknown", _set("domains|example.org", {"targets": ["cloudflare"]}),
     ("domains.example.org.targets.0", "`cloudflare` is not a provider")),
    ("targets empty", _set("defaults|targets", []), ("defaults.targets", "non-empty list")),
    ("absent not bool", _set("domains|example.org", {"absent": "yes"}),
     ("domains.example.org.absent", "true or false")),
    ("domain invalid", _set("domains|bad_domain.example", {}),
     ("domains.bad_domain.example", "invalid label")),
    ("no domains", _set("domains", {}), ("domains", "lists no domain")),
    ("gateway is apex", _set("domains|mx1.example.com", {}),
     ("domains.mx1.example.com", "gateway's own hostname")),
    ("provider no class", _set("providers|cf", {"token": "env/CF"}),
     ("providers.cf.class", "dotted class path")),
    ("provider reserved", _set("providers|pmgdns", {"class": "a.B"}),
     ("providers.pmgdns", "reserved")),
    ("bad env ref", _set("providers|cf", {"class": "a.B", "token": "env/"}),
     ("providers.cf.token", "name one variable")),
]


@pytest.mark.parametrize("mutate,fragments", [(m, f) for _, m, f in BAD],
                         ids=[name for name, _, _ in BAD])
def test_bad_input_exits_1_and_applies_nothing(project: Project, mutate: Any,
                                               fragments: tuple[str, ...]) -> None:
    spec = copy.deepcopy(project.spec())
    mutate(spec)
    project.write_spec(spec)
    for command in (["validate"], ["apply", "--yes"]):
        result = project.run(*command)
        assert_clean_error(result, "config/site.yaml", *fragments)
    assert not (project.root / "build" / "zones").exists()
    assert not (project.root / "zones").exists()


def test_error_names_the_line(project: Project) -> None:
    project.write_spec(f"""\
        version: 1
        gateway:
          hostname: mx1.example.com
          ipv4: 198.51.100.25
        dkim:
          selector: pmg2026
          public_key: {project.keys.b64()}
        domains:
          example.com: {{}}
          example.org:
            dmark: {{p: reject}}
        """)
    result = project.run("validate")
    assert_clean_error(result, "config/site.yaml, line 11", "domains.example.org.dmark",
                       "did you mean `dmarc`")


def test_yaml_syntax_error_reports_its_line(project: Project) -> None:
    project.write_spec("version: 1\ngateway:\n  hostname: [mx1.example.com\n  ipv4: 1.2.3.4\n")
    result = project.run("plan")
    assert_clean_error(result, "config/site.yaml, line 4", "YAML syntax error")


def test_duplicate_key_is_an_error(project: Project) -> None:
    project.write_spec(f"""\
        version: 1
        gateway: {{hostname: mx1.example.com, ipv4: 198.51.100.25}}
        dkim: {{selector: s1, public_key: {project.keys.b64()}}}
        domains:
          example.com: {{}}
          example.com: {{ttl: 60}}
        """)
    assert_clean_error(project.run("validate"), "line 6", "domains.example.com", "duplicate key")


def test_missing_spec_file(project: Project) -> None:
    assert_clean_error(project.run("-c", "nope.yaml", "plan"), "nope.yaml", "no such file",
                       "pmgdns init")


def test_literal_secret_is_refused_without_echo(project: Project) -> None:
    token = "cf-LITERAL-TOKEN-1234567890"
    project.write_spec(project.spec(providers={"cloudflare": {
        "class": "octodns_cloudflare.CloudflareProvider", "token": token}}))
    result = project.run("apply", "--yes")
    assert_clean_error(result, "providers.cloudflare.token", "literal secret",
                       "env/CLOUDFLARE_TOKEN")
    assert token not in result.err + result.out


def test_missing_env_variable_is_named_never_shown(project: Project) -> None:
    spec = project.spec(providers={"cloudflare": {
        "class": "octodns_cloudflare.CloudflareProvider", "token": "env/PMGDNS_TEST_CF_TOKEN"}})
    spec["domains"]["example.org"] = {"targets": ["cloudflare"]}
    project.write_spec(spec)
    result = project.run("plan")
    assert_clean_error(result, "providers.cloudflare.token", "PMGDNS_TEST_CF_TOKEN", "not set")
    assert not (project.root / "build" / "zones").exists()


def test_documentation_addresses_warn(project: Project) -> None:
    result = project.run("validate")
    assert result.code == 0, result.err
    assert "gateway.ipv4: 198.51.100.25 is a documentation address" in result.err
    assert "gateway.ipv6" in result.err


def test_weak_keys(project: Project) -> None:
    project.write_spec(project.spec(dkim={"selector": "s1",
                                          "public_key": project.keys.b64("rsa1024")}))
    result = project.run("validate")
    assert result.code == 0 and "1024 bits; 2048 is the recommended minimum" in result.err
    project.write_spec(project.spec(dkim={"selector": "s1",
                                          "public_key": project.keys.b64("rsa512")}))
    assert_clean_error(project.run("validate"), "dkim.public_key", "512 bits",
                       "below 1024 bits (RFC 8301)")


def test_private_key_file_refused_without_echo(project: Project, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    (project.root / "keys").mkdir()
    (project.root / "keys" / "dkim.key").write_text(pem)
    project.write_spec(project.spec(dkim={"selector": "s1", "key_file": "keys/dkim.key"}))
    result = project.run("validate")
    assert_clean_error(result, "dkim.key_file", "PRIVATE key")
    body = pem.splitlines()[1]
    assert body not in result.err + result.out


def test_record_selector_must_match(project: Project) -> None:
    project.write_spec(project.spec(dkim={"selector": "pmg2027",
                                          "record": project.keys.pmg_record("pmg2026")}))
    assert_clean_error(project.run("validate"), "dkim.record", "selector `pmg2026`",
                       "dkim.selector is `pmg2027`")


def test_usage_error_exits_1_not_2(project: Project) -> None:
    result = project.run("plan", "--detailed-exitcode", "--format", "yaml")
    assert_clean_error(result, "--format")
    result = project.run("frobnicate")
    assert_clean_error(result, "frobnicate")


def test_unknown_provider_class_is_one_clear_error(project: Project) -> None:
    spec = project.spec(providers={"foo": {"class": "octodns_nothere.FooProvider"}})
    spec["domains"]["example.org"] = {"targets": ["foo"]}
    project.write_spec(spec)
    result = project.run("apply", "--yes")
    assert_clean_error(result, "providers.foo.class", "no installed package provides it")
    assert not (project.root / "build" / "zones").exists()


CF_MEANT = "did you mean `octodns_cloudflare.CloudflareProvider`"


@pytest.mark.parametrize("path,fragment", [
    ("octodns_cloudflare.CloudfareProvider", CF_MEANT),
    ("octodns_cloudflar.CloudflareProvider", CF_MEANT),
    ("octodns_bind.Rfc2136provider", "did you mean `octodns_bind.Rfc2136Provider`"),
    ("octodns.provider.yamll.YamlProvider", "did you mean `octodns.provider.yaml.YamlProvider`"),
    ("octodns_cloudflare.Zone", "its providers are `CloudflareInternalProvider`, "
                                "`CloudflareProvider`"),
])
def test_provider_class_typo_gets_a_did_you_mean_and_the_line(project: Project, path: str,
                                                              fragment: str) -> None:
    spec = project.spec(providers={"cf": {"class": path, "token": "env/PMGDNS_TEST_CF"}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    text = yaml.safe_dump(spec, sort_keys=False)
    line = text.splitlines().index(f"    class: {path}") + 1
    project.write_spec(text)
    for command in (["validate"], ["plan"]):
        result = project.run(*command, env={"PMGDNS_TEST_CF": "cf-token-3b9f0c1e7d"})
        assert_clean_error(result, f"config/site.yaml, line {line}: providers.cf.class",
                           fragment)
        assert "install its package" not in result.err


def test_broken_provider_block_is_one_clear_error(project: Project) -> None:
    spec = project.spec(providers={"foo": {"class": "octodns_bind.Rfc2136Provider"}})
    spec["domains"]["example.org"] = {"targets": ["foo"]}
    project.write_spec(spec)
    result = project.run("apply", "--yes")
    assert_clean_error(result, "the providers could not be set up",
                       "Incorrect provider config for foo", "providers:")
    assert "missing 1 required positional argument" in result.err
    assert "Traceback" not in result.err and ".run-" not in result.err
    assert not (project.root / "build" / "zones").exists()


@pytest.mark.parametrize("path,fragment", [
    ("subprocess.Popen", "no installed package provides it"),
    ("os.system", "no installed package provides it"),
    ("requests.get", "not an octoDNS provider package"),
    ("octodns.manager.Manager", "not an octoDNS provider or source class"),
    ("pmgdns.cli.main", "not an octoDNS provider or source class"),
    ("octodns_bind.Rfc2136Provider; touch x", "not a dotted class path"),
])
def test_provider_class_must_be_an_octodns_provider(project: Project, path: str,
                                                    fragment: str) -> None:
    """A spec from a pull request cannot make plan run arbitrary code through `class:`."""
    marker = project.root / "ran"
    script = project.root / "evil.sh"
    script.write_text(f"touch {marker}\n")
    spec = project.spec(providers={"evil": {"class": path, "args": ["true"]}})
    spec["domains"]["example.org"] = {"targets": ["evil"]}
    project.write_spec(spec)
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        result = project.run(*command, env={"BASH_ENV": str(script)})
        assert_clean_error(result, "providers.evil.class", fragment)
    assert not marker.exists()


def test_a_module_in_the_working_directory_cannot_shadow_a_provider(project: Project) -> None:
    import os
    import subprocess
    import sys

    marker = project.root / "ran"
    lib = project.root / "lib"
    lib.mkdir()
    for where in (project.root, lib):
        (where / "octodns_cloudflare.py").write_text(
            f"open({str(marker)!r}, 'w').close()\nclass CloudflareProvider: pass\n")
    spec = project.spec(providers={"cf": {"class": "octodns_cloudflare.CloudflareProvider",
                                          "token": "env/CF"}})
    spec["domains"]["example.org"] = {"targets": ["cf"]}
    project.write_spec(spec)
    # `python -m pmgdns` drops the working directory from the module path; a directory on
    # PYTHONPATH comes first, and then the installed package's own file is what counts
    plain = subprocess.run([sys.executable, "-m", "pmgdns", "validate"], cwd=project.root,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert not marker.exists()
    env = dict(os.environ, PYTHONPATH=str(lib))
    result = subprocess.run([sys.executable, "-m", "pmgdns", "validate"], cwd=project.root,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    assert "not the installed package's own file" in result.stderr
    assert not marker.exists()
