"""Hosts in network namespaces of their own, on one bridge, for sending real packets through
the firewall's rules.

Every namespace is held by a process this module starts (`unshare -n`) and disappears when that
process is stopped (by its PID); nothing is created in the test's own namespace. The bridge lives
in a namespace of its own and has no link to any other network, so the documentation addresses
the hosts use (192.0.2.0/24, 2001:db8::/64) never leave it.

Each host runs a small server that answers `hello` on 22/tcp and 8006/tcp (IPv4 and IPv6);
`Lab.connect` tries connections from a host and tells what happened to each: `ok` (the answer
came back), `timeout` (dropped on the way, out of the source or into the destination) or
`refused` (no server on that port).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

PORTS = (22, 8006)

# The server of a host: accepts on every port of PORTS, says hello, closes.
SERVER = f"""
import selectors, socket
sel = selectors.DefaultSelector()
for port in {PORTS!r}:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(16)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        conn.sendall(b"hello\\n")
        conn.close()
"""

# Connections from a host, in parallel: argv[1] is a JSON list of [address, port].
CLIENT = """
import errno, json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def attempt(target):
    address, port = target
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(float(sys.argv[2]))
    try:
        s.connect((address, port))
        return "ok" if s.recv(16) == b"hello\\n" else "no answer"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    finally:
        s.close()
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets) or 1) as pool:
    print(json.dumps(list(pool.map(attempt, targets))))
"""


def _run(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


@dataclass
class Host:
    name: str
    ipv4: str
    ipv6: str
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Lab:
    hosts: dict[str, Host] = field(default_factory=dict)
    hub: subprocess.Popen[str] | None = None

    def start(self, hosts: dict[str, tuple[str, str]]) -> None:
        """Start a namespace per host ({name: (ipv4, ipv6)}, all on 192.0.2.0/24 and
        2001:db8::/64) and the bridge that joins them."""
        self.hub = subprocess.Popen(["unshare", "-n", sys.executable, "-c",
                                     "import sys; sys.stdin.read()"],
                                    stdin=subprocess.PIPE, text=True)
        for name, (ipv4, ipv6) in hosts.items():
            process = subprocess.Popen(["unshare", "-n", sys.executable, "-c", SERVER],
                                       stdout=subprocess.PIPE, text=True)
            self.hosts[name] = Host(name, ipv4, ipv6, process)
        for host in self.hosts.values():
            assert host.process.stdout is not None
            assert host.process.stdout.readline().strip() == "ready", host.name
        links = ["ip link add br0 type bridge mcast_snooping 0", "ip link set br0 up"]
        for i, host in enumerate(self.hosts.values()):
            links += [f"ip link add p{i} type veth peer name eth0 netns {host.pid}",
                      f"ip link set p{i} master br0 up"]
        self.inside(self.hub.pid, " && ".join(links))
        for host in self.hosts.values():
            self.inside(host.pid, " && ".join([
                "ip link set lo up", "ip link set eth0 up",
                f"ip addr add {host.ipv4}/24 dev eth0",
                f"ip -6 addr add {host.ipv6}/64 dev eth0 nodad",
            ]))

    def stop(self) -> None:
        for process in [h.process for h in self.hosts.values()] + [self.hub]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    @staticmethod
    def inside(pid: int, script: str) -> str:
        return _run("nsenter", "-t", str(pid), "-n", "sh", "-c", script)

    def load(self, name: str, ruleset: str) -> None:
        """Load an nftables script into a host (`nft -f`); empty: remove pmgdns's table."""
        pid = self.hosts[name].pid
        if ruleset:
            done = subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"],
                                  input=ruleset, capture_output=True, text=True, timeout=60,
                                  check=False)
            assert done.returncode == 0, done.stderr
        else:
            self.inside(pid, "nft delete table inet pmgdns 2>/dev/null; true")

    def connect(self, source: str, targets: list[tuple[str, int]],
                timeout: float = 1.5) -> dict[tuple[str, int], str]:
        """Connect from `source` to each (address, port) at once; the outcome of each."""
        out = _run("nsenter", "-t", str(self.hosts[source].pid), "-n", sys.executable, "-c",
                   CLIENT, json.dumps(targets), str(timeout))
        return dict(zip(targets, json.loads(out), strict=True))

    def addresses(self, name: str) -> tuple[str, str]:
        return self.hosts[name].ipv4, self.hosts[name].ipv6
