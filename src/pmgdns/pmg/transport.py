"""The transport of `pmg pull`: one TLS policy per session, and a total deadline per request.

See pmg/client.py for why the TLS policy lives in an HTTPAdapter (and not in proxmoxer or in
requests' `verify=`). The deadline: urllib3's timeouts bound each read, so a peer sending a byte
just inside every timeout would hold a request for ever; `Deadline` shuts the request's
connection down when its total time is up.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool


class Deadline:
    """A total deadline for one request: when it passes, every connection the client opened is
    shut down (through a duplicate of its socket), so a read blocked on a peer that sends a byte
    now and then returns at once, whether in the TLS handshake, the headers or the body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self.expired = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            dup = sock.dup()
            self._sockets.append(dup)
            if self.expired:
                self._shut(dup)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    def start(self, seconds: float) -> None:
        self.expired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _pool_class(deadline: Deadline) -> type[HTTPSConnectionPool]:
    """An HTTPS connection pool whose connections `deadline` can shut down."""

    class Connection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            deadline.watch(sock)
            return sock

    class Pool(HTTPSConnectionPool):
        ConnectionCls = Connection

    return Pool


class TlsPolicyAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections follow one fixed TLS policy (see the module docstring).

    requests' own `verify=` knows only "a CA bundle" or "nothing", and with `verify=True` it adds
    certifi's bundle to whatever context is in use; here the policy lives entirely in the
    SSLContext and urllib3's `assert_fingerprint`, and requests' `verify` is ignored."""

    def __init__(self, context: ssl.SSLContext, fingerprint: str | None,
                 deadline: Deadline) -> None:
        self._context = context
        self._fingerprint = fingerprint
        self.deadline = deadline
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._context
        if self._fingerprint:
            pool_kwargs["assert_fingerprint"] = self._fingerprint
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme, "https": _pool_class(self.deadline)}

    def build_connection_pool_key_attributes(self, request: Any, verify: Any,
                                             cert: Any = None) -> Any:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs: dict[str, Any] = {
            "ssl_context": self._context,
            "cert_reqs": "CERT_NONE" if self._fingerprint else "CERT_REQUIRED",
        }
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: Any, verify: Any, cert: Any) -> None:
        return None  # the context decides; requests must not load certifi into it
