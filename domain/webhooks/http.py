"""One HTTP attempt to deliver a webhook, over connections that only reach allowed addresses.

The client is httpcore's connection pool (the transport under httpx) with a network backend
of its own: every new connection resolves the host, refuses it when an address is not public
(unless private ones are allowed) and connects to the addresses it checked. Checking the URL
before the request and letting the client resolve the name again would leave a gap in between
(a name re-pointed at an internal address: DNS rebinding). TLS still names the URL's host, so
certificates are verified against it, and pooled connections are keyed by it. httpx's client
offers no way to plug such a backend in; httpcore's pool does.

Redirects are not followed (a 3xx is a failure), proxies from the environment are not used,
and at most ``MAX_ANSWER_BYTES`` of an answer are read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore

from domain.webhooks.errors import WebhookError
from domain.webhooks.urls import parse_url, resolve_checked

MAX_ANSWER_BYTES = 1024
_ERROR_CHARS = 300


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: the answer's status (``None``: no answer) and, unless it was
    a 2xx, a short error for ``last_error`` (never a secret, never the body sent)."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        """A 2xx answer."""
        return self.error is None


class AddressRefused(httpcore.ConnectError):
    """The host resolves to an address the engine may not call."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """anyio's network backend, connecting only to checked addresses of a host."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to the first address that answers."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(host, port, allow_private=self.allow_private)
        except WebhookError as exc:
            raise AddressRefused(exc.message) from None
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: an endpoint is a URL, not a socket on this machine."""
        raise AddressRefused("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        """As anyio sleeps."""
        await self._inner.sleep(seconds)


class WebhookClient:
    """Posts deliveries; one per process, shared by every attempt under way."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool,
        max_connections: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: the system's trusted authorities unless given (tests give theirs)."""
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(allow_private=allow_private),
        )

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Attempt:
        """POST ``body`` to ``url`` within the timeout (connecting, sending and reading the
        answer's start all count); a 2xx is a delivery, anything else an error."""
        try:
            # The form again: a URL saved before private addresses were refused may be http.
            parse_url(url, allow_private=self.allow_private)
        except WebhookError as exc:
            return Attempt(None, f"refused: the URL {exc.message}")
        phases = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout_s)
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                self._pool.stream(
                    "POST",
                    url,
                    headers=list(headers.items()),
                    content=body,
                    extensions={"timeout": phases},
                ) as response,
            ):
                status = response.status
                answer = await _read_some(response)
        except (TimeoutError, httpcore.TimeoutException):
            return Attempt(None, f"timed out after {self.timeout_s:g} s")
        except AddressRefused as exc:
            return Attempt(None, _short(f"refused: {exc}"))
        except (
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
            OSError,
        ) as exc:
            return Attempt(None, _short(f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)))
        if 200 <= status < 300:
            return Attempt(status, None)
        text = " ".join(answer.decode("utf-8", "replace").split())
        return Attempt(status, _short(f"HTTP {status}" + (f": {text}" if text else "")))

    async def close(self) -> None:
        """Close the pooled connections."""
        await self._pool.aclose()


async def _read_some(response: httpcore.Response) -> bytes:
    """The start of an answer: enough for an error's reason, never a flood into memory."""
    read = b""
    async for chunk in response.aiter_stream():
        read += chunk
        if len(read) >= MAX_ANSWER_BYTES:
            break
    return read[:MAX_ANSWER_BYTES]


def _short(text: str) -> str:
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"
