"""A local stand-in for APNs: hypercorn serving a tiny ASGI app over TLS with ALPN h2.

It records every request and answers per device token from a script, the way APNs answers:
200 with an ``apns-id``, or an error status with ``{"reason": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    http_version: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeApns:
    """The ASGI app. ``script[token]`` is a list of (status, reason) answers, used in turn
    (the last one repeats); unknown tokens get 200."""

    script: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(
            Recorded(
                method=scope["method"],
                path=scope["path"],
                http_version=scope["http_version"],
                headers={k.decode(): v.decode() for k, v in scope["headers"]},
                body=body,
            )
        )
        token = scope["path"].rsplit("/", 1)[-1]
        answers = self.script.get(token, [(200, None)])
        status, reason = answers.pop(0) if len(answers) > 1 else answers[0]
        payload = json.dumps({"reason": reason}).encode() if reason else b""
        headers = [(b"apns-id", str(uuid.uuid4()).encode())]
        if payload:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


@asynccontextmanager
async def running_fake_apns(
    cert_path: Path, key_path: Path, client_ca_path: Path | None = None
) -> AsyncIterator[FakeApns]:
    """Serve a :class:`FakeApns` on 127.0.0.1 (a free port) until the block ends.

    The listening socket is bound before hypercorn starts and handed over by file
    descriptor, so the port is never free for someone else to take in between, and clients
    may connect at once (the kernel queues them until hypercorn accepts).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    app = FakeApns(port=sock.getsockname()[1])
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.certfile = str(cert_path)
    config.keyfile = str(key_path)
    config.alpn_protocols = ["h2"]
    config.accesslog = None
    config.graceful_timeout = 1
    if client_ca_path is not None:
        # Certificate auth: like APNs, refuse a connection without a valid client cert.
        config.ca_certs = str(client_ca_path)
        config.verify_mode = ssl.CERT_REQUIRED
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)
