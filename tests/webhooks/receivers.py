"""Merchants' webhook endpoints for tests: real HTTP servers on loopback.

Each ``Receiver`` is the standard library's threading HTTP server (HTTP/1.1, keep-alive) in a
daemon thread. It records every request as it arrives and answers by its ``mode``: ``ok``
(204), ``fail`` (500 with a short reason) or ``hang`` (no answer until ``release`` or a
minute, far past the dispatcher's timeout).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "fail", "hang"]


@dataclass
class Received:
    """One request as it arrived, and what it was answered (``None``: not yet, or a hanging
    answer the dispatcher had given up on)."""

    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | None

    @property
    def key(self) -> str:
        """The ``Idempotency-Key``: the output's event id."""
        return self.headers["idempotency-key"]

    @property
    def message(self) -> dict[str, Any]:
        """The body as JSON."""
        data: dict[str, Any] = json.loads(self.body)
        return data


class Receiver:
    """An endpoint on ``127.0.0.1``; ``url`` is its address."""

    def __init__(self, mode: Mode = "ok", *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: a server context, for an https endpoint."""
        self.mode: Mode = mode
        self.received: list[Received] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on, on 127.0.0.1."""
        return self._server.server_port

    @property
    def url(self) -> str:
        """Where the endpoint listens (a path of its own, to show paths are kept)."""
        return f"{self._scheme}://127.0.0.1:{self.port}/hooks/loyalty"

    def start(self) -> Receiver:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def release(self) -> None:
        """Let hanging requests be answered (200), now and from now on."""
        self._release.set()

    def stop(self) -> None:
        """Stop serving (hanging requests are released first)."""
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def delivered(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.received if r.answered is not None and r.answered < 300]

    def all(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self.received)

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def _answer(self) -> tuple[int, bytes]:
        if self.mode == "ok":
            return 204, b""
        if self.mode == "fail":
            return 500, b"database unavailable"
        self._release.wait(60)
        return 200, b"late"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(headers, body, arrived, None)
            receiver._record(received)
            hanging = receiver.mode == "hang"
            status, answer = receiver._answer()
            if not hanging:
                received.answered = status
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:  # the dispatcher gave up waiting (its timeout) and hung up
                pass

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``received``."""

    return Handler
