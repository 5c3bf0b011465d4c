"""A local HTTP server that answers like Cloudflare's v4 API for every call octodns-cloudflare makes
(zones list, dns_records list/create/update/delete), with bearer auth, `result_info` paging,
content without trailing dots, TXT content quoted as Cloudflare stores it, request counting, a
per-request timeline, injectable faults (401, 403, 429 with Retry-After, 500) and an optional
request limit that answers 429 + Retry-After, as Cloudflare's does, once a window's budget is
spent."""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/client/v4"


@dataclass
class Fault:
    status: int
    method: str | None = None  # only requests with this method
    times: int = 1  # how many requests fail before the server recovers
    retry_after: int | str | None = None  # seconds, or any text (an HTTP date, garbage)


@dataclass
class RateLimit:
    """At most `limit` accepted requests per fixed `window` seconds; beyond that, 429 with
    Retry-After = whole seconds until the window ends (refused requests do not count)."""

    limit: int
    window: float
    start: float = field(default_factory=time.monotonic)
    current: int = -1  # index of the window being counted
    used: int = 0
    refused: int = 0  # 429s answered because of this limit

    def check(self, now: float) -> int | None:
        """None when the request may pass, else the Retry-After in seconds."""
        index = math.floor((now - self.start) / self.window)
        if index != self.current:
            self.current, self.used = index, 0
        if self.used < self.limit:
            self.used += 1
            return None
        self.refused += 1
        window_end = self.start + (index + 1) * self.window
        return max(1, math.ceil(window_end - now))


@dataclass
class Hit:
    at: float  # time.monotonic() when the server received the request
    method: str
    path: str
    status: int
    retry_after: str | None


@dataclass
class FakeCloudflare:
    token: str
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)  # zone id -> zone
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # record id -> record
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    read_only_token: str | None = None
    rate_limit: RateLimit | None = None
    delay: float = 0.0  # seconds each answer takes (a remote API's latency)
    timeline: list[Hit] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    # -- state -----------------------------------------------------------------------------------

    def add_zone(self, name: str) -> str:
        zid = f"{next(self._ids):032x}"
        self.zones[zid] = {"id": zid, "name": name, "status": "active",
                           "plan": {"legacy_id": "free"},
                           "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"]}
        return zid

    def zone_id(self, name: str) -> str:
        return next(z for z, v in self.zones.items() if v["name"] == name)

    def add_record(self, zone: str, name: str, type_: str, content: str, ttl: int = 3600,
                   priority: int | None = None, proxied: bool = False) -> dict[str, Any]:
        zid = self.zone_id(zone)
        return self._store(zid, {"name": name, "type": type_, "content": content, "ttl": ttl,
                                 "priority": priority, "proxied": proxied})

    def _store(self, zid: str, data: dict[str, Any], rid: str | None = None) -> dict[str, Any]:
        type_ = data["type"]
        content = str(data.get("content", ""))
        if type_ in ("MX", "CNAME", "NS", "PTR"):
            content = content.rstrip(".")  # Cloudflare keeps no trailing dot
        if type_ == "TXT" and not content.startswith('"'):
            content = _quote(content)  # Cloudflare stores TXT as quoted character strings
        record = {
            "id": rid or f"{next(self._ids):032x}", "zone_id": zid,
            "zone_name": self.zones[zid]["name"], "name": data["name"].rstrip("."),
            "type": type_, "content": content, "ttl": int(data.get("ttl", 1)),
            "proxiable": type_ in ("A", "AAAA", "CNAME"),
            "proxied": bool(data.get("proxied", False)), "settings": {}, "meta": {},
            "comment": data.get("comment"), "tags": data.get("tags", []),
            "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z",
        }
        if type_ == "MX":
            record["priority"] = int(data["priority"])
        self.records[record["id"]] = record
        return record

    def zone_records(self, zone: str) -> list[dict[str, Any]]:
        zid = self.zone_id(zone)
        return sorted((r for r in self.records.values() if r["zone_id"] == zid),
                      key=lambda r: (r["name"], r["type"], r["content"]))

    def txt_values(self, name: str) -> list[str]:
        """The TXT values at `name` as a resolver would answer them (strings joined)."""
        out = []
        for r in self.records.values():
            if r["name"] == name and r["type"] == "TXT":
                out.append("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', r["content"])))
        return sorted(out)

    # -- HTTP --------------------------------------------------------------------------------

    def start(self) -> FakeCloudflare:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, payload, headers = api.handle(method, self.path,
                                                      self.headers.get("Authorization", ""), body)
                if api.delay:
                    time.sleep(api.delay)
                self._send(status, payload, headers)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def do_PATCH(self) -> None:  # noqa: N802
                self._handle("PATCH")

            def do_DELETE(self) -> None:  # noqa: N802
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def limit_requests(self, limit: int, window: float) -> RateLimit:
        """From now on, answer 429 + Retry-After beyond `limit` requests per `window` seconds."""
        with self._lock:
            self.rate_limit = RateLimit(limit, window)
            return self.rate_limit

    def handle(self, method: str, raw_path: str, auth: str, body: Any
               ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        with self._lock:
            now = time.monotonic()
            parts = urlsplit(raw_path)
            path = parts.path[len(PREFIX):] if parts.path.startswith(PREFIX) else parts.path
            self.requests[f"{method} {re.sub(r'[0-9a-f]{32}', '{id}', path)}"] += 1
            self.log.append((method, path))
            status, payload, headers = self._answer(method, parts.query, path, auth, body, now)
            self.timeline.append(Hit(now, method, path, status,
                                     (headers or {}).get("Retry-After")))
            return status, payload, headers

    def _answer(self, method: str, raw_query: str, path: str, auth: str, body: Any, now: float
                ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        if self.rate_limit is not None:
            retry_after = self.rate_limit.check(now)
            if retry_after is not None:
                return _fault(Fault(429, retry_after=retry_after))
        for fault in self.faults:
            if fault.times > 0 and (fault.method is None or fault.method == method):
                fault.times -= 1
                return _fault(fault)
        if auth not in (f"Bearer {self.token}", f"Bearer {self.read_only_token}"):
            return 401, _error(10000, "Authentication error"), None
        if method != "GET" and auth == f"Bearer {self.read_only_token}":
            return 403, _error(10000, "Authentication error"), None
        query = {k: v[0] for k, v in parse_qs(raw_query).items()}
        return self._route(method, path, query, body)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any
               ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        if path == "/zones" and method == "GET":
            zones = sorted(self.zones.values(), key=lambda z: z["name"])
            if "name" in query:
                zones = [z for z in zones if z["name"] == query["name"]]
            return _page(zones, query)
        m = re.fullmatch(r"/zones/([0-9a-f]{32})/dns_records(?:/([0-9a-f]{32}))?", path)
        if not m or m.group(1) not in self.zones:
            return 404, _error(7003, "Could not route to " + path), None
        zid, rid = m.group(1), m.group(2)
        if method == "GET" and rid is None:
            return _page([r for r in self.records.values() if r["zone_id"] == zid], query)
        if method == "POST" and rid is None:
            return 200, _ok(self._store(zid, body)), None
        if rid is None or rid not in self.records:
            return 404, _error(81044, "Record does not exist."), None
        if method == "PUT":
            return 200, _ok(self._store(zid, body, rid)), None
        if method == "DELETE":
            del self.records[rid]
            return 200, _ok({"id": rid}), None
        return 405, _error(10000, "Method not allowed"), None


def _quote(text: str) -> str:
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


def _ok(result: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result}


def _error(code: int, message: str) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [],
            "result": None}


def _page(items: list[Any], query: dict[str, str]
          ) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    page = int(query.get("page", 1))
    per_page = int(query.get("per_page", 20))
    chunk = items[(page - 1) * per_page: page * per_page]
    total_pages = max(1, -(-len(items) // per_page))
    body = _ok(chunk)
    body["result_info"] = {"page": page, "per_page": per_page, "count": len(chunk),
                           "total_count": len(items), "total_pages": total_pages}
    return 200, body, None


def _fault(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str] | None]:
    messages = {401: (10000, "Authentication error"),
                403: (10000, "Authentication error"),
                429: (971, "Please wait and consider throttling your request speed"),
                500: (10001, "Internal server error")}
    code, message = messages.get(fault.status, (10000, "error"))
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    return fault.status, _error(code, message), headers
