"""Which addresses the engine may call: a merchant's admin must not make it call into the
network it runs in (its database, its cloud's metadata service, a neighbour on the LAN).

``check_url`` validates and normalises an endpoint's URL when it is saved; the dispatcher
checks again at every connection (``domain.webhooks.http``), because what a name resolves to
may change after it was saved. Plain ``http://`` and private, loopback, link-local and other
non-public addresses pass only with ``allow_private`` (``LOYALTY_WEBHOOK_ALLOW_PRIVATE``: local
development and tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from domain.webhooks.errors import WebhookError

MAX_URL_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A URL as it is stored (``url``: normalised) and the host and port it connects to."""

    url: str
    host: str
    port: int


def parse_url(url: str, *, allow_private: bool) -> Target:
    """The URL's form, without looking its host up: https (or http when ``allow_private``),
    a host, no user name or password. Raises ``WebhookError`` on the field ``url``."""
    text = url.strip()
    if not text:
        raise WebhookError("url", "required")
    if len(text) > MAX_URL_LENGTH:
        raise WebhookError("url", f"must have at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise WebhookError("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise WebhookError("url", "is not a valid address") from None
    schemes = ("https", "http") if allow_private else ("https",)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        wanted = "an https:// or http://" if allow_private else "an https://"
        raise WebhookError("url", f"must be {wanted} address")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("url", "must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookError("url", "must name a host")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise WebhookError("url", f"has an invalid host name {host!r}") from None
    default = 443 if scheme == "https" else 80
    if port == 0:
        raise WebhookError("url", "has an invalid port")
    port = default if port is None else port
    netloc = f"[{host}]" if ":" in host else host
    if port != default:
        netloc += f":{port}"
    normal = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(normal, host, port)


def address_problem(address: IPAddress) -> str | None:
    """Why the engine must not call ``address`` unless private ones are allowed; ``None``
    for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for flag, words in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(address, flag):
            return words
    # Shared (carrier-grade NAT), documentation, benchmarking ranges and the like.
    return None if address.is_global else "not a public address"


def refuse_addresses(host: str, addresses: list[str]) -> None:
    """Raise ``WebhookError`` when any of the host's addresses is not public."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone
        problem = address_problem(address)
        if problem is not None:
            where = text if text == host else f"{host} resolves to {text}"
            raise WebhookError("url", f"{where}, {problem}: only public addresses are allowed")


def check_url(url: str, *, allow_private: bool) -> str:
    """The normalised URL, or ``WebhookError`` (field ``url``) when the engine may not call it.

    Without ``allow_private``: https only, and every address of the host (an IP literal, or
    what ``socket.getaddrinfo`` answers) must be public. A name that does not resolve is
    refused. With it: http too, and no address is looked up.
    """
    target = parse_url(url, allow_private=allow_private)
    if not allow_private:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise WebhookError("url", f"host {target.host} cannot be resolved") from None
        refuse_addresses(target.host, _addresses(infos))
    return target.url


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The host's addresses to connect to, resolved on the running loop; ``WebhookError``
    when one is not public and private ones are not allowed."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookError("url", f"host {host} cannot be resolved") from None
    addresses = _addresses(infos)
    if not allow_private:
        refuse_addresses(host, addresses)
    return addresses


def _addresses(infos: Sequence[tuple[Any, ...]]) -> list[str]:
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
