"""A local stand-in for Google's OAuth token endpoint and the Wallet REST API.

A threaded ``http.server`` on 127.0.0.1: ``POST /token`` takes a JWT-bearer grant and hands
out access tokens; ``/walletobjects/v1/loyaltyClass`` and ``/loyaltyObject`` support get,
insert and patch over an in-memory store, and refuse requests without a token it issued.
Faults are scripted per (method, resource kind): a list of statuses served before the real
answer.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/walletobjects/v1/"


@dataclass
class Fault:
    status: int
    retry_after: str | None = None


@dataclass
class FakeGoogle:
    """State of the fake: stored resources, issued tokens, what it received."""

    base_url: str = ""
    resources: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"loyaltyClass": {}, "loyaltyObject": {}}
    )
    token_requests: list[dict[str, str]] = field(default_factory=list)
    issued_tokens: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX.rstrip("/")

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    def fail(self, method: str, kind: str, *faults: Fault) -> None:
        """Answer the next ``len(faults)`` ``method`` calls on ``kind`` with these faults."""
        self.faults.setdefault((method, kind), []).extend(faults)

    def calls_to(self, method: str, kind: str) -> int:
        return sum(1 for m, p in self.calls if m == method and p.startswith(API_PREFIX + kind))


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

        def _reply(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, reason: str, message: str, **headers: str) -> None:
            self._reply(
                status, {"error": {"code": status, "status": reason, "message": message}}, headers
            )

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            if self.path == "/token":
                form = dict(urllib.parse.parse_qsl(self._body().decode()))
                token = "fake-access-" + secrets.token_hex(8)
                with fake.lock:
                    fake.token_requests.append(form)
                    fake.issued_tokens.add(token)
                self._reply(
                    200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
                )
                return
            self._api("POST")

        def do_GET(self) -> None:
            self._api("GET")

        def do_PATCH(self) -> None:
            self._api("PATCH")

        def _api(self, method: str) -> None:
            body = self._body()
            with fake.lock:
                fake.calls.append((method, self.path))
            if not self.path.startswith(API_PREFIX):
                self._error(404, "NOT_FOUND", "no such API")
                return
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in fake.issued_tokens:
                self._error(401, "UNAUTHENTICATED", "missing or unknown access token")
                return
            kind, _, resource_id = self.path[len(API_PREFIX) :].partition("/")
            if kind not in fake.resources:
                self._error(404, "NOT_FOUND", f"unknown resource {kind}")
                return
            with fake.lock:
                queue = fake.faults.get((method, kind))
                fault = queue.pop(0) if queue else None
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._error(fault.status, "INJECTED", "scripted fault", **headers)
                return
            store = fake.resources[kind]
            document = json.loads(body) if body else {}
            if document:
                with fake.lock:
                    fake.bodies.append(document)
            if method == "POST":
                if resource_id or "id" not in document:
                    self._error(400, "INVALID_ARGUMENT", "insert needs a body with an id")
                elif document["id"] in store:
                    self._error(409, "ALREADY_EXISTS", "resource already exists")
                else:
                    store[document["id"]] = {**document, "kind": f"walletobjects#{kind}"}
                    self._reply(200, store[document["id"]])
            elif resource_id not in store:
                self._error(404, "NOT_FOUND", f"{kind} {resource_id} not found")
            elif method == "GET":
                self._reply(200, store[resource_id])
            else:  # PATCH: top-level fields replaced, the rest kept
                store[resource_id] = {**store[resource_id], **document}
                self._reply(200, store[resource_id])

    return Handler


@contextmanager
def running_fake_google() -> Iterator[FakeGoogle]:
    """Serve a :class:`FakeGoogle` on 127.0.0.1 with a free port until the block ends."""
    fake = FakeGoogle()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-google", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
