"""The customer ticket against a real BIND (spec-v1 §7.2): the MSP applies its delegate zone, the
test acts as the customer by setting the ticket's records with RFC 2136 (TSIG), and independent
receivers judge the result through a real recursive resolver (a second BIND) that follows the
CNAMEs: dkimpy verifies a signature d=D; s=pmga, pyspf passes every node address through the
include, checkdmarc parses MTA-STS and TLS-RPT. A DKIM rotation and a new node change nothing a
customer holds but MX."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import dkim as dkimpy
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import jsonschema
import pytest
import spf as pyspf
from checkdmarc.mta_sts import parse_mta_sts_record, query_mta_sts_record
from checkdmarc.smtp_tls_reporting import (
    parse_smtp_tls_reporting_record,
    query_smtp_tls_reporting_record,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pmgdns.families.mta_sts import policy_id

from .conftest import Project, assert_clean_error, verify_json
from .servers import BindServer, zone_text
from .test_customer import NODES, fleet

CUSTOMER_TODAY = """\
@ IN TXT "v=spf1 include:spf.oldhost.example -all"
@ IN TXT "site-verification=abc123"
@ IN MX 10 mail.oldhost.example.
www IN A 203.0.113.80
"""
STRANGER = "203.0.113.99"


def _key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(private: Any) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@dataclass
class Receiver(BindServer):
    """A receiver's recursive resolver (a real BIND): every query is forwarded to the BIND at
    `upstream`, CNAMEs into other zones followed as a receiving mail server's resolver does;
    nothing is cached beyond a second, and nothing leaves the loopback."""

    upstream: int = 0

    def _config(self) -> str:
        d = self.directory
        return (
            "options {\n"
            f'  directory "{d}";\n  pid-file "{d}/named.pid";\n'
            f'  session-keyfile "{d}/session.key";\n  managed-keys-directory "{d}";\n'
            f"  listen-on port {self.port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n"
            "  recursion yes;\n  allow-recursion { 127.0.0.0/8; };\n"
            "  allow-query { 127.0.0.0/8; };\n  dnssec-validation no;\n  notify no;\n"
            "  empty-zones-enable no;\n  max-cache-ttl 1;\n  max-ncache-ttl 1;\n"
            "  servfail-ttl 0;\n"
            f"  forward only;\n  forwarders {{ 127.0.0.1 port {self.upstream}; }};\n"
            "};\ncontrols { };\n"
            'zone "." { type static-stub; server-addresses { 127.0.0.1; }; };\n')


@pytest.fixture
def receiver(bind: BindServer) -> Iterator[BindServer]:
    server = Receiver({"msp.example": ""}, upstream=bind.port).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def signers() -> dict[str, Any]:
    return {"pmga": _key(), "pmgb": _key()}


@pytest.fixture
def bind(project: Project, monkeypatch: pytest.MonkeyPatch,
         signers: dict[str, Any]) -> Iterator[BindServer]:
    server = BindServer({"msp.example": zone_text("msp.example", ""),
                         "customer.example": zone_text("customer.example", CUSTOMER_TODAY),
                         "other.example": zone_text("other.example", "")}).start()
    monkeypatch.setenv("PMGDNS_TSIG_SECRET", server.secret)
    project.write_spec(_spec(project, server, signers))
    try:
        yield server
    finally:
        server.stop()


def _spec(project: Project, server: BindServer, signers: dict[str, Any],
          **extra: Any) -> dict[str, Any]:
    spec = fleet(project.keys, providers={"bind": server.provider_config()})
    spec["dkim"] = {"selector": "pmga", "public_key": _b64(signers["pmga"])}
    spec["domains"]["msp.example"] = {"targets": ["bind"]}
    spec["domains"]["customer.example"]["spf"] = {"drop": ["include:spf.oldhost.example"]}
    spec.update(extra)
    return spec


def _ticket(project: Project, bind: BindServer, *args: str) -> dict[str, Any]:
    result = project.run("customer-ticket", "--format", "json", *args,
                         *(("--nameserver", f"127.0.0.1:{bind.port}") if "--live" in args
                           else ()))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    jsonschema.validate(doc, json.loads(
        files("pmgdns").joinpath("schemas/customer-ticket.schema.json").read_text()))
    return {t["domain"]: t for t in doc["customer_tickets"]}


def _rdata(rtype: str, value: str) -> Any:
    text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' if rtype == "TXT" \
        else value
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rtype), text)


def _as_the_customer(bind: BindServer, ticket: dict[str, Any]) -> None:
    """Set the ticket's records the way the customer's DNS host would: RFC 2136."""
    zone = ticket["domain"]
    update = bind.update(zone)
    for r in ticket.get("remove", []):
        update.delete(r["name"], _rdata(r["type"], r["value"]))
    for r in ticket["records"]:
        update.add(r["name"], r["ttl"], _rdata(r["type"], r["value"]))
    bind.send(update)


def _signed_verifies(bind: BindServer, private: Any, selector: str, domain: str) -> bool:
    pem = private.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    message = (f"From: a@{domain}\r\nTo: b@example.net\r\nSubject: test\r\n"
               "Date: Mon, 07 Dec 2026 02:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nHello.\r\n"
               ).encode()
    signature = dkimpy.sign(message, selector.encode(), domain.encode(), pem,
                            include_headers=[b"from", b"to", b"subject", b"date"])

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        # the receiver's resolver follows the CNAME at D into the delegate zone
        try:
            found = bind.resolver().resolve(name.decode(), "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(found[0].strings)

    return bool(dkimpy.verify(signature + message, dnsfunc=dnsfunc))


def _customer_checks(report: dict[str, Any], domain: str) -> list[dict[str, str]]:
    # the policy served over HTTPS and mta-sts.D are not part of this test (no web server)
    return [c for c in report["checks"] if c["subject"] == domain
            and c["check"] not in ("MTA-STS policy", "delegation")]


def test_from_spec_to_ticket_to_a_clean_verify(project: Project, bind: BindServer,
                                               receiver: BindServer,
                                               signers: dict[str, Any],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    untouched = {z: bind.rrsets(z) for z in ("customer.example", "other.example")}
    applied = project.run("apply", "--yes")
    assert applied.code == 0, applied.err
    assert {z: bind.rrsets(z) for z in untouched} == untouched  # applied nowhere

    # today: nothing of ours at the customers, the old records named to go, what that takes away
    before = _ticket(project, bind, "--live")
    c = before["customer.example"]
    assert {r["status"] for r in c["records"]} == {"pending"}
    assert {(r["type"], r["value"], r["action"]) for r in c["remove"]} == {
        ("TXT", "v=spf1 include:spf.oldhost.example -all", "replace"),
        ("MX", "10 mail.oldhost.example.", "replace")}
    assert {(t["kind"], t["value"]) for t in c["takes_away"]} == {
        ("spf-sender", "include:spf.oldhost.example"), ("mail-flow", "10 mail.oldhost.example.")}
    text = project.run("customer-ticket", "customer.example", "--live", "--nameserver",
                       f"127.0.0.1:{bind.port}").out
    assert "[pending] @" in text and "replace: customer.example. TXT" in text
    assert "site-verification" not in text  # a foreign record is none of the ticket's business

    # verify: the customer's records are pending at the customer, named with the ticket
    code, report = verify_json(project, bind.port)
    assert code == 1
    failed = [x for x in _customer_checks(report, "customer.example") if x["status"] == "FAIL"]
    assert not [x for x in failed if "run `pmgdns apply`" in x["fix"]], failed
    pending = {(x["family"], x["check"]) for x in failed
               if "pending" in x["fix"] and "`pmgdns customer-ticket customer.example`" in x["fix"]}
    assert pending >= {("mx", "MX"), ("dmarc", "DMARC"), ("delegate", "SPF"),
                       ("delegate", "DKIM delegation"), ("delegate", "MTA-STS delegation"),
                       ("delegate", "TLS-RPT delegation"), ("dkim", "DKIM")}, failed

    ns = f"127.0.0.1:{bind.port}"
    assert project.run("customer-ticket", "--live", "--nameserver", ns,
                       "--detailed-exitcode").code == 2
    for ticket in before.values():
        _as_the_customer(bind, ticket)

    after = _ticket(project, bind, "--live")
    assert project.run("customer-ticket", "--live", "--nameserver", ns,
                       "--detailed-exitcode").code == 0
    for domain, ticket in after.items():
        assert {r["status"] for r in ticket["records"]} == {"done"}, domain
        assert ticket["remove"] == [] and ticket["done"] is True, domain
    assert "site-verification=abc123" in bind.txt("customer.example.")  # theirs, untouched
    code, report = verify_json(project, bind.port)
    for domain in after:
        bad = [x for x in _customer_checks(report, domain) if x["status"] != "OK"]
        assert not bad, [(x["check"], x["message"]) for x in bad]
    pmgb = [x for x in report["checks"] if x["subject"] == "customer.example"
            and x["check"] == "DKIM delegation" and "pmgb" in x["message"]]
    assert pmgb and pmgb[0]["status"] == "OK" and "expected" in pmgb[0]["message"]

    # receivers judge through the CNAMEs and the include
    for domain in after:
        assert _signed_verifies(receiver, signers["pmga"], "pmga", domain), domain
        assert not _signed_verifies(receiver, signers["pmgb"], "pmga", domain), domain
    monkeypatch.setattr(dns.resolver, "default_resolver", receiver.resolver())
    for domain in after:
        for node in NODES:
            for address in (node["ipv4"], node.get("ipv6")):
                if address:
                    verdict = pyspf.check2(i=address, s=f"postmaster@{domain}",
                                           h=f"relay.{domain}", timeout=5)[0]
                    assert verdict == "pass", (domain, address, verdict)
        assert pyspf.check2(i=STRANGER, s=f"postmaster@{domain}", h="x", timeout=5)[0] == "fail"
        # checkdmarc asks the receiver's resolver, through the CNAMEs
        sts = query_mta_sts_record(domain, resolver=receiver.resolver())
        policy = (project.root / "build" / "mta-sts" / domain / ".well-known" /
                  "mta-sts.txt").read_bytes().decode()
        assert sts["record"] == f"v=STSv1; id={policy_id(policy)}", sts
        assert parse_mta_sts_record(sts["record"])["tags"]["id"] == policy_id(policy)
        tls = query_smtp_tls_reporting_record(domain, resolver=receiver.resolver())
        assert tls["record"] == "v=TLSRPTv1; rua=mailto:tls@msp.example", tls
        rua = parse_smtp_tls_reporting_record(tls["record"])["tags"]["rua"]["value"]
        assert rua == ["mailto:tls@msp.example"], rua


def test_a_rotation_and_a_new_node_need_nothing_from_the_customers_but_mx(
        project: Project, bind: BindServer, receiver: BindServer,
        signers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("apply", "--yes").code == 0
    first = _ticket(project, bind, "--live")
    for ticket in first.values():
        _as_the_customer(bind, ticket)
    spec = _spec(project, bind, signers)
    records = {d: t["records"] for d, t in _ticket(project, bind).items()}

    # stage the next key: published in the delegate zone only, then switch PMG to it
    spec["dkim"]["next"] = {"selector": "pmgb", "public_key": _b64(signers["pmgb"])}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    assert {d: t["records"] for d, t in _ticket(project, bind).items()} == records
    spec["dkim"] = {"selector": "pmgb", "public_key": _b64(signers["pmgb"]),
                    "retired_selectors": ["pmga"]}
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    assert {d: t["records"] for d, t in _ticket(project, bind).items()} == records
    for domain in records:
        assert _signed_verifies(receiver, signers["pmgb"], "pmgb", domain), domain
        assert not _signed_verifies(receiver, signers["pmga"], "pmga", domain), domain
    assert all(t["done"] for t in _ticket(project, bind, "--live").values())

    # a new node: the customers' MX changes, nothing else; its address passes through _spf
    spec["gateways"] = [*copy.deepcopy(NODES), {"hostname": "mx3.msp.example",
                                                "ipv4": "198.51.100.27"}]
    project.write_spec(spec)
    assert project.run("apply", "--yes").code == 0
    now = _ticket(project, bind, "--live")
    for domain, old in records.items():
        new = now[domain]["records"]
        assert [{k: v for k, v in r.items() if k != "status"} for r in new
                if r["type"] != "MX"] == [r for r in old if r["type"] != "MX"]
        assert {r["value"] for r in new if r["type"] == "MX"} == {
            "10 mx1.msp.example.", "10 mx2.msp.example.", "10 mx3.msp.example."}
        assert [r["status"] for r in new if r["type"] == "MX" and "mx3" in r["value"]] == [
            "pending"]
        assert all(r["status"] == "done" for r in new if r["type"] != "MX")
    monkeypatch.setattr(dns.resolver, "default_resolver", receiver.resolver())
    for domain in records:  # the new node may relay their mail before their MX names it
        verdict = pyspf.check2(i="198.51.100.27", s=f"postmaster@{domain}", h="x", timeout=5)[0]
        assert verdict == "pass", (domain, verdict)


def test_ticket_formats_files_and_bad_requests(project: Project, bind: BindServer) -> None:
    out = project.root / "tickets"
    result = project.run("customer-ticket", "--format", "markdown", "--out", f"{out}/")
    assert result.code == 0, result.err
    assert result.err.strip().splitlines()[-1] == f"2 tickets written to {out}/ (one per domain)."
    assert sorted(p.name for p in out.iterdir()) == ["customer.example.md", "other.example.md"]
    md = (out / "customer.example.md").read_text()
    assert "| `pmga._domainkey` | CNAME | 3600 | `pmga._domainkey.msp.example.` |" in md
    assert "other.example" not in md
    assert project.run("customer-ticket", "--format", "html", "--out",
                       str(project.root / "all.html")).code == 0
    page = (project.root / "all.html").read_text()
    assert "customer.example" in page and "other.example" in page and "<table" in page
    # a second run overwrites its own file, never someone else's
    assert project.run("customer-ticket", "--format", "markdown", "--out", f"{out}/").code == 0
    (project.root / "mine.txt").write_text("my notes\n")
    assert_clean_error(project.run("customer-ticket", "--out", str(project.root / "mine.txt")),
                       "not a customer ticket pmgdns wrote")
    assert_clean_error(project.run("customer-ticket", "msp.example"),
                       "msp.example is not held by a customer")


def test_a_key_missing_behind_a_customers_cname_is_fixed_by_apply(
        project: Project, bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    for ticket in _ticket(project, bind, "--live").values():
        _as_the_customer(bind, ticket)
    update = bind.update("msp.example")
    update.delete("pmga._domainkey.msp.example.", "TXT")
    bind.send(update)
    code, report = verify_json(project, bind.port)
    assert code == 1
    dkim = [x for x in report["checks"] if x["subject"] == "other.example"
            and x["family"] == "dkim"]
    assert dkim and dkim[0]["status"] == "FAIL"
    assert "run `pmgdns apply`" in dkim[0]["fix"] and "msp.example" in dkim[0]["fix"], dkim
    assert "customer-ticket" not in dkim[0]["fix"]
    # and the ticket still says the customer's part is done
    assert all(t["done"] for t in _ticket(project, bind, "--live").values())


def test_what_the_dns_answers_reaches_the_ticket_as_data(project: Project,
                                                         bind: BindServer) -> None:
    update = bind.update("customer.example")
    update.add("_dmarc.customer.example.", 300, "TXT",
               '"v=DMARC1; p=none; rua=mailto:a@x.example\\027[2J</td><script>x</script>|`"')
    bind.send(update)
    shown = {}
    for fmt in ("text", "markdown", "html", "json"):
        result = project.run("customer-ticket", "customer.example", "--live", "--format", fmt,
                             "--nameserver", f"127.0.0.1:{bind.port}")
        assert result.code == 0, result.err
        assert "\x1b" not in result.out, fmt
        shown[fmt] = result.out
    assert "\\x1b[2J" in shown["text"]
    assert "<script>" not in shown["html"] and "&lt;script&gt;" in shown["html"]
    removed = json.loads(shown["json"])["customer_tickets"][0]["remove"]
    assert any(r["name"] == "_dmarc.customer.example." and r["action"] == "replace"
               for r in removed)


def test_an_absent_customer_zone_is_done_once_its_records_are_gone(
        project: Project, bind: BindServer, signers: dict[str, Any]) -> None:
    assert project.run("apply", "--yes").code == 0
    for ticket in _ticket(project, bind, "--live").values():
        _as_the_customer(bind, ticket)
    spec = _spec(project, bind, signers)
    spec["domains"]["other.example"]["absent"] = True
    project.write_spec(spec)
    ticket = _ticket(project, bind, "other.example", "--live")["other.example"]
    assert ticket["absent"] and not ticket["done"]
    assert {r["status"] for r in ticket["records"]} == {"pending"}
    assert {(r["name"], r["type"]) for r in ticket["remove"]} == {
        (r["name"], r["type"]) for r in ticket["records"]}
    update = bind.update("other.example")
    for r in ticket["remove"]:
        update.delete(r["name"], _rdata(r["type"], r["value"]))
    bind.send(update)
    ticket = _ticket(project, bind, "other.example", "--live")["other.example"]
    assert ticket["done"] and {r["status"] for r in ticket["records"]} == {"done"}, ticket


def test_a_node_missing_from_the_delegate_spf_is_fixed_by_apply(
        project: Project, bind: BindServer) -> None:
    assert project.run("apply", "--yes").code == 0
    for ticket in _ticket(project, bind, "--live").values():
        _as_the_customer(bind, ticket)
    update = bind.update("msp.example")
    update.replace("_spf.msp.example.", 3600, "TXT", '"v=spf1 ip4:198.51.100.25 -all"')
    bind.send(update)
    code, report = verify_json(project, bind.port)
    assert code == 1
    spf = [x for x in report["checks"] if x["subject"] == "customer.example"
           and x["check"] == "SPF" and x["status"] == "FAIL"]
    assert spf and all("198.51.100.26" in x["message"] or "2001:db8::25" in x["message"]
                       for x in spf), spf
    assert all("run `pmgdns apply`" in x["fix"] and "_spf.msp.example" in x["fix"]
               and "customer-ticket" not in x["fix"] for x in spf), spf
