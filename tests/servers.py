"""Real DNS servers on 127.0.0.1 for the tests, started as an unprivileged user, stopped by PID."""

from __future__ import annotations

import base64
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.tsigkeyring
import dns.update
import dns.zone

NAMED = shutil.which("named") or "/usr/sbin/named"
KEY_NAME = "pmgdns-test."


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no free port on 127.0.0.1")


def _drop_privileges_user() -> str | None:
    """named drops root to this user (`-u`); None when we are not root already."""
    if os.getuid() != 0:
        return None
    for name in ("bind", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


class _LoopbackServer:
    """What the real servers share: a private directory, a process started as an unprivileged
    user in its own session, its log, stop by PID, and a resolver that asks it."""

    directory: Path
    process: subprocess.Popen[bytes] | None
    LOG = "server.log"

    def _chown_to(self, user: str | None) -> None:
        if user:
            pw = pwd.getpwnam(user)
            for path in [self.directory, *self.directory.iterdir()]:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def _spawn(self, args: list[str]) -> None:
        self._log = open(self.directory / self.LOG, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def log_text(self) -> str:
        try:
            return (self.directory / self.LOG).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _resolver(self, port: int) -> dns.resolver.Resolver:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = port
        r.lifetime = 5
        return r


@dataclass
class BindServer(_LoopbackServer):
    """A real BIND9 primary for `zones`, with a TSIG key allowing RFC 2136 updates and AXFR."""

    zones: dict[str, str]  # zone name (no trailing dot) -> zone file text
    # its own directory in the system temp dir: the unprivileged user must be able to reach it
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pmgdns-named-")))
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    process: subprocess.Popen[bytes] | None = None

    @property
    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({KEY_NAME: ("hmac-sha256", self.secret)})

    def provider_config(self, secret_env: str = "PMGDNS_TSIG_SECRET") -> dict[str, object]:
        return {"class": "octodns_bind.Rfc2136Provider", "host": "127.0.0.1",
                "port": self.port, "key_name": KEY_NAME, "key_secret": f"env/{secret_env}",
                "key_algorithm": "hmac-sha256", "timeout": 10}

    def _config(self) -> str:
        d = self.directory
        zones = "".join(
            f'zone "{z}" {{ type primary; file "{d}/{z}.zone"; '
            f'allow-update {{ key "{KEY_NAME}"; }}; allow-transfer {{ key "{KEY_NAME}"; }}; }};\n'
            for z in self.zones)
        return (
            f'key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{self.secret}"; }};\n'
            "options {\n"
            f'  directory "{d}";\n'
            f'  pid-file "{d}/named.pid";\n'
            f'  session-keyfile "{d}/session.key";\n'
            f'  managed-keys-directory "{d}";\n'
            f"  listen-on port {self.port} {{ 127.0.0.1; }};\n"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n"
            "  notify no;\n"
            "  dnssec-validation no;\n"
            "  allow-query { 127.0.0.0/8; };\n"
            "};\n"
            "controls { };\n"
            + zones)

    def start(self) -> BindServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        for zone, text in self.zones.items():
            (self.directory / f"{zone}.zone").write_text(text)
        conf = self.directory / "named.conf"
        conf.write_text(self._config())
        user = _drop_privileges_user()
        self._chown_to(user)
        self._spawn([NAMED, "-g", "-4", "-c", str(conf)] + (["-u", user] if user else []))
        assert self.process is not None
        deadline = time.monotonic() + 20
        first = next(iter(self.zones))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("named exited:\n" + self.log_text())
            try:
                q = dns.message.make_query(f"{first}.", dns.rdatatype.SOA)
                r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
                if r.rcode() == dns.rcode.NOERROR and r.answer:
                    return self
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("named did not answer in time:\n" + self.log_text())

    # -- talking to it --------------------------------------------------------------------------

    def axfr(self, zone: str) -> dns.zone.Zone:
        return dns.zone.from_xfr(dns.query.xfr("127.0.0.1", f"{zone}.", port=self.port,
                                               keyring=self.keyring, keyalgorithm="hmac-sha256",
                                               timeout=10, relativize=False),
                                 relativize=False)

    def rrsets(self, zone: str) -> dict[tuple[str, str], tuple[int, frozenset[str]]]:
        """{(owner, type): (ttl, {rdata text})} of the whole zone, SOA left out."""
        out = {}
        for name, rdataset in self.axfr(zone).iterate_rdatasets():
            t = dns.rdatatype.to_text(rdataset.rdtype)
            if t == "SOA":
                continue
            out[(name.to_text(), t)] = (rdataset.ttl,
                                        frozenset(r.to_text() for r in rdataset))
        return out

    def resolver(self) -> dns.resolver.Resolver:
        return self._resolver(self.port)

    def txt(self, name: str) -> list[str]:
        """The TXT values at `name` as a receiver sees them (strings joined)."""
        try:
            answer = self.resolver().resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return sorted(b"".join(r.strings).decode() for r in answer)

    def update(self, zone: str) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(f"{zone}.", keyring=self.keyring,
                                        keyalgorithm="hmac-sha256")

    def send(self, update: dns.update.UpdateMessage) -> None:
        r = dns.query.tcp(update, "127.0.0.1", port=self.port, timeout=10)
        assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())


def zone_text(zone: str, body: str) -> str:
    return (f"$ORIGIN {zone}.\n$TTL 3600\n"
            f"@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 604800 300\n"
            f"@ IN NS ns1.{zone}.\nns1 IN A 198.51.100.53\n" + body)


PDNS = shutil.which("pdns_server") or "/usr/sbin/pdns_server"
PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


@dataclass
class PowerDnsServer(_LoopbackServer):
    """A real PowerDNS Authoritative server (sqlite3 backend) with its HTTP API on 127.0.0.1."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pmgdns-pdns-")))
    dns_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    def provider_config(self, key_env: str = "PMGDNS_PDNS_API_KEY") -> dict[str, object]:
        return {"class": "octodns_powerdns.PowerDnsProvider", "host": "127.0.0.1",
                "port": self.api_port, "api_key": f"env/{key_env}", "enable_dynamic": False}

    def start(self) -> PowerDnsServer:
        import sqlite3

        self.directory.chmod(0o755)
        db = self.directory / "pdns.sqlite3"
        with sqlite3.connect(db) as conn:
            conn.executescript(PDNS_SCHEMA.read_text())
        conf = "\n".join([
            "launch=gsqlite3", f"gsqlite3-database={db}", "local-address=127.0.0.1",
            f"local-port={self.dns_port}", "api=yes", f"api-key={self.api_key}",
            "webserver=yes", "webserver-address=127.0.0.1", f"webserver-port={self.api_port}",
            "webserver-allow-from=127.0.0.0/8", f"socket-dir={self.directory}",
            "daemon=no", "guardian=no", "disable-syslog=yes", "loglevel=4",
            "default-soa-content=ns1.@ hostmaster.@ 0 10800 3600 604800 3600", ""])
        (self.directory / "pdns.conf").write_text(conf)
        user = _drop_privileges_user()
        self._chown_to(user)
        args = [PDNS, f"--config-dir={self.directory}"]
        if user:
            args += [f"--setuid={user}", f"--setgid={pwd.getpwnam(user).pw_gid}"]
        self._spawn(args)
        assert self.process is not None
        import requests

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("pdns_server exited:\n" + self.log_text())
            try:
                r = requests.get(f"{self.api_url}/servers/localhost",
                                 headers={"X-API-Key": self.api_key}, timeout=1)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("pdns_server did not answer in time:\n" + self.log_text())

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def api(self, method: str, path: str, body: object | None = None) -> object:
        import requests

        r = requests.request(method, f"{self.api_url}/servers/localhost{path}", json=body,
                             headers={"X-API-Key": self.api_key}, timeout=10)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def resolver(self) -> dns.resolver.Resolver:
        return self._resolver(self.dns_port)
