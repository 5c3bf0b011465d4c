"""A DNS hierarchy on loopback for the tests: BIND serving the root and a TLD on one address, child
zones on others, a recursive BIND resolver whose hints name that root, signed zones
(`dnssec-policy default;`) and a DNS blocklist zone.

A resolver follows NS and glue to port 53 only, so every server has an address of its own on
port 53: extra 127.x.y.z/32 addresses are added to `lo` (`ip addr add`, root) and removed again
when the hierarchy stops, also on failure. named starts as root to bind port 53 and drops to an
unprivileged user (`-u`). Every server is stopped by its PID. Only loopback addresses are used.
"""

from __future__ import annotations

import base64
import os
import pwd
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.dnssec
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from .servers import KEY_NAME, NAMED, _drop_privileges_user, _LoopbackServer

IP = shutil.which("ip") or "/usr/sbin/ip"


def _lo_addresses() -> set[str]:
    out = subprocess.run([IP, "-4", "-o", "addr", "show", "dev", "lo"], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


@dataclass
class Named(_LoopbackServer):
    """One named on ADDRESS:53: primary zones (optionally signed) or a recursive resolver."""

    address: str
    secret: str
    zones: dict[str, str] = field(default_factory=dict)  # zone -> zone file text
    signed: tuple[str, ...] = ()
    static: tuple[str, ...] = ()  # served as given (a zone signed beforehand): no updates
    resolver_for: str | None = None  # the root server's address: a recursive resolver
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pmgdns-dns-")))
    process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        d = self.directory
        head = (f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{self.secret}"; }};\n'
                "options {\n"
                f'  directory "{d}";\n  pid-file "{d}/named.pid";\n'
                f'  session-keyfile "{d}/session.key";\n  managed-keys-directory "{d}";\n'
                f"  listen-on port 53 {{ {self.address}; }};\n  listen-on-v6 {{ none; }};\n"
                "  notify no;\n  allow-query { 127.0.0.0/8; };\n")
        if self.resolver_for:
            (d / "root.hint").write_text(f". 3600 IN NS ns.root.\n"
                                         f"ns.root. 3600 IN A {self.resolver_for}\n")
            return (head + "  recursion yes;\n  allow-recursion { 127.0.0.0/8; };\n"
                    "  dnssec-validation no;\n  empty-zones-enable no;\n"
                    "  max-cache-ttl 1;\n  max-ncache-ttl 1;\n  servfail-ttl 0;\n"
                    f"  query-source address {self.address};\n"
                    "};\ncontrols { };\n"
                    f'zone "." {{ type hint; file "{d}/root.hint"; }};\n')
        zones = ""
        for zone in self.zones:
            policy = " dnssec-policy default;" if zone in self.signed else ""
            file = "root" if zone == "." else zone
            if zone in self.static:
                zones += f'zone "{zone}" {{ type primary; file "{d}/{file}.zone"; }};\n'
                continue
            zones += (f'zone "{zone}" {{ type primary; file "{d}/{file}.zone";{policy} '
                      f'key-directory "{d}/keys"; allow-update {{ key "{KEY_NAME}"; }}; '
                      f'allow-transfer {{ key "{KEY_NAME}"; }}; }};\n')
        return head + "  recursion no;\n  dnssec-validation no;\n};\ncontrols { };\n" + zones

    def start(self) -> Named:
        self.directory.chmod(0o755)
        (self.directory / "keys").mkdir()
        for zone, text in self.zones.items():
            (self.directory / f"{'root' if zone == '.' else zone}.zone").write_text(text)
        conf = self.directory / "named.conf"
        conf.write_text(self._config())
        user = _drop_privileges_user()
        self._chown_to(user)
        if user:
            pw = pwd.getpwnam(user)
            os.chown(self.directory / "keys", pw.pw_uid, pw.pw_gid)
        self._spawn([NAMED, "-g", "-4", "-c", str(conf)] + (["-u", user] if user else []))
        probe = next(iter(self.zones), ".")
        self.wait(probe, "SOA" if self.zones else "NS", recursive=bool(self.resolver_for))
        for zone in self.signed:
            self.wait(zone, "DNSKEY", signed=True)
        return self

    def ask(self, name: str, rtype: str, recursive: bool = False,
            dnssec: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rtype, want_dnssec=dnssec)
        if not recursive:
            q.flags &= ~dns.flags.RD
        return dns.query.udp(q, self.address, port=53, timeout=2)

    def wait(self, name: str, rtype: str, recursive: bool = False, signed: bool = False,
             seconds: float = 30) -> None:
        """Until the server answers (name, rtype), with an RRSIG when `signed`."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("named exited:\n" + self.log_text())
            try:
                r = self.ask(name, rtype, recursive=recursive, dnssec=signed)
                types = {rrset.rdtype for rrset in r.answer}
                if r.rcode() == dns.rcode.NOERROR and r.answer and (
                        not signed or dns.rdatatype.RRSIG in types):
                    return
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"named on {self.address} did not answer {name} {rtype}:\n"
                           + self.log_text())

    def update(self, zone: str) -> dns.update.UpdateMessage:
        keyring = dns.tsigkeyring.from_text({KEY_NAME: ("hmac-sha256", self.secret)})
        return dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm="hmac-sha256")

    def send(self, update: dns.update.UpdateMessage) -> None:
        r = dns.query.tcp(update, self.address, port=53, timeout=10)
        assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())

    def provider_config(self, secret_env: str = "PMGDNS_TSIG_SECRET") -> dict[str, object]:
        return {"class": "octodns_bind.Rfc2136Provider", "host": self.address, "port": 53,
                "key_name": KEY_NAME, "key_secret": f"env/{secret_env}",
                "key_algorithm": "hmac-sha256", "timeout": 10}


class Loopback:
    """Extra addresses on `lo`, removed again (only those added here)."""

    def __init__(self, count: int) -> None:
        taken = _lo_addresses()
        for _ in range(50):
            prefix = f"127.53.{random.randint(1, 254)}"
            wanted = [f"{prefix}.{i}" for i in range(1, count + 1)]
            if not taken & set(wanted):
                break
        else:
            raise RuntimeError("no free 127.53.x.0/24 on lo")
        self.added: list[str] = []
        try:
            for address in wanted:
                subprocess.run([IP, "addr", "add", f"{address}/32", "dev", "lo"], check=True,
                               capture_output=True, timeout=10)
                self.added.append(address)
        except (subprocess.CalledProcessError, OSError) as exc:
            self.remove()
            raise RuntimeError(f"cannot add {wanted} to lo (root needed): {exc}") from None

    def remove(self) -> None:
        while self.added:
            address = self.added.pop()
            subprocess.run([IP, "addr", "del", f"{address}/32", "dev", "lo"],
                           capture_output=True, timeout=10)


def soa(zone: str, ns: str, ns_address: str | None, body: str = "") -> str:
    origin = zone if zone.endswith(".") else zone + "."
    glue = f"{ns} IN A {ns_address}\n" if ns_address else ""
    mail = f"hostmaster.{origin}" if origin != "." else "hostmaster.root."
    return (f"$ORIGIN {origin}\n$TTL 2\n@ IN SOA {ns} {mail} 1 3600 600 604800 1\n"
            f"@ IN NS {ns}\n" + glue + body)


# The lab: one zone per break, all applied at `child` (the target), delegated from `test.`
SIGNED = ("good.test", "nods.test", "badds.test")
STALE = "stale.test"  # signed beforehand, its signatures expired in 2020: not applied to


def presign(zone: str, text: str) -> tuple[str, str]:
    """`zone` signed by dnssec-signzone with signatures that expired in 2020, and the DS of its
    KSK (dnssec-dsfromkey): the DS matches, the RRSIGs do not validate."""
    work = Path(tempfile.mkdtemp(prefix="pmgdns-sign-"))
    try:
        (work / "zone").write_text(text)

        def run(*args: str) -> str:
            return subprocess.run(args, cwd=work, capture_output=True, text=True, check=True,
                                  timeout=60).stdout.strip()

        ksk = run("dnssec-keygen", "-q", "-K", ".", "-a", "ECDSAP256SHA256", "-f", "KSK", zone)
        run("dnssec-keygen", "-q", "-K", ".", "-a", "ECDSAP256SHA256", zone)
        run("dnssec-signzone", "-q", "-P", "-K", ".", "-S", "-s", "20200101000000", "-e",
            "20200201000000", "-o", zone, "-f", "zone.signed", "zone")
        ds = run("dnssec-dsfromkey", "-2", f"{ksk}.key")
        return (work / "zone.signed").read_text(), ds
    finally:
        shutil.rmtree(work, ignore_errors=True)
AT_CHILD = (*SIGNED, "plain.test", "lame.test", "moved.test", "missing.test", "half.test",
            "flat.test")
BLOCKLIST = "bl.test"


@dataclass
class Hierarchy:
    """Root, `test.` (signed), in-addr.arpa and ip6.arpa on `top`; the children on `child`;
    `away` serves an old copy of moved.test and the blocklist; `resolver` recurses from `top`.

    - good.test: signed, DS at test. (secure); plain.test: unsigned; nods.test: signed, no DS;
      badds.test: signed, a DS with the right key tag and a wrong digest (bogus);
    - lame.test: delegated to ns.away.test., which does not serve it;
    - moved.test: delegated to ns.away.test., which serves an old copy;
    - missing.test: served by `child`, not delegated at all (NXDOMAIN at test.);
    - flat.test: served by `child`; test. has a record at that name but no delegation;
    - half.test: delegated to ns1.half.test. and ns.away.test.; only the first serves it;
    - stale.test: on `child`, signed beforehand with signatures expired, its DS at test.
      matching (bogus: the RRSIGs do not validate); pmgdns applies nothing there.
    """

    top: Named
    child: Named
    away: Named
    resolver: Named
    lo: Loopback

    @property
    def nameserver(self) -> str:
        return f"{self.resolver.address}:53"

    def stop(self) -> None:
        try:
            for server in (self.resolver, self.away, self.child, self.top):
                server.stop()
        finally:
            self.lo.remove()

    def ksk(self, zone: str) -> list[object]:
        r = self.child.ask(zone, "DNSKEY")
        return [k for rrset in r.answer for k in rrset if k.flags == 257]

    def add_ds(self, zone: str, wrong: bool = False) -> None:
        upd = self.top.update("test.")
        for key in self.ksk(zone):
            ds = dns.dnssec.make_ds(f"{zone}.", key, "SHA256")  # type: ignore[arg-type]
            if wrong:  # the right key tag, a wrong digest
                digest = bytes(b ^ 0xFF for b in ds.digest)
                ds = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS,
                                         f"{ds.key_tag} {ds.algorithm} {ds.digest_type} "
                                         f"{digest.hex()}")
            upd.add(f"{zone}.", 2, ds)
        self.top.send(upd)

    def delv(self, name: str, rtype: str) -> str:
        """What `delv` (bind9-dnsutils) says of (name, rtype), validating from test.'s key."""
        anchors = self.top.directory / "anchors.conf"
        if not anchors.exists():
            keys = [k for rrset in self.top.ask("test.", "DNSKEY").answer for k in rrset
                    if k.flags == 257]
            anchors.write_text("trust-anchors {\n" + "".join(
                f'  test. static-key {k.flags} {k.protocol} {k.algorithm} "'
                f'{base64.b64encode(k.key).decode()}";\n' for k in keys) + "};\n")
        result = subprocess.run([shutil.which("delv") or "delv", f"@{self.resolver.address}",
                                 "-a", str(anchors), "+root=test.", name, rtype],
                                capture_output=True, text=True, timeout=30)
        return result.stdout + result.stderr


def start(secret: str, reverse: dict[str, str], blocklist: str) -> Hierarchy:
    """Start the lab. `reverse`: {zone: body} for in-addr.arpa and ip6.arpa; `blocklist`: the
    body of bl.test."""
    lo = Loopback(4)
    a1, a2, a3, a4 = lo.added
    servers: list[Named] = []
    try:
        root = soa(".", "ns.root.", a1, "".join(
            f"{z} IN NS ns.root.\n" for z in ("test.", "in-addr.arpa.", "ip6.arpa.")))
        stale, stale_ds = presign(STALE, soa(STALE, f"ns1.{STALE}.", a2))
        delegations = "".join(f"{z}. IN NS ns1.{z}.\nns1.{z}. IN A {a2}\n"
                              for z in (*AT_CHILD, STALE) if z not in (
                                  "lame.test", "moved.test", "missing.test", "flat.test"))
        delegations += (stale_ds + "\nhalf.test. IN NS ns.away.test.\n"
                        'flat.test. IN TXT "a name in test., not a zone"\n')
        delegations += (f"ns.away IN A {a3}\n" + "".join(f"{z}. IN NS ns.away.test.\n" for z in
                                                      ("lame.test", "moved.test", BLOCKLIST)))
        top_zones = {".": root, "test.": soa("test.", "ns.root.", None, delegations)}
        top_zones.update({z: soa(z, "ns.root.", None, body) for z, body in reverse.items()})
        top = Named(a1, secret, top_zones, signed=("test.",))
        servers.append(top)
        top.start()
        child = Named(a2, secret, {**{z: soa(z, f"ns1.{z}.", a2) for z in AT_CHILD},
                                   "half.test": soa("half.test", "ns1.half.test.", a2,
                                                    "@ IN NS ns.away.test.\n"),
                                   STALE: stale}, signed=SIGNED, static=(STALE,))
        servers.append(child)
        child.start()
        away = Named(a3, secret, {
            "moved.test": soa("moved.test", "ns.away.test.", None,
                              "@ IN MX 10 mail.old-host.example.\n"),
            BLOCKLIST: soa(BLOCKLIST, "ns.away.test.", None, blocklist)})
        servers.append(away)
        away.start()
        resolver = Named(a4, secret, resolver_for=a1)
        servers.append(resolver)
        resolver.start()
        return Hierarchy(top, child, away, resolver, lo)
    except BaseException:
        for server in reversed(servers):
            server.stop()
        lo.remove()
        raise
