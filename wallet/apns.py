"""Apple Push Notification service client for Wallet pass updates.

A Wallet update push is an empty JSON object sent to ``/3/device/<push token>`` with the
pass type ID as topic. The device then asks the PassKit web service which passes changed
and downloads them. APNs speaks HTTP/2 only; authentication is a provider JWT (ES256, signed
with a ``.p8`` key) or a TLS client certificate (the pass type ID certificate).

The client never decides what to do with the database: each :class:`PushResult` says
whether the registration should be removed (410, or 400 ``BadDeviceToken``) or the push
retried later (429, 5xx, network trouble), and the caller acts on it.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from google.auth import crypt, jwt

from core.logs import get_logger
from wallet.credentials import load_client_cert_chain
from wallet.errors import WalletConfigError
from wallet.settings import WalletSettings

log = get_logger(__name__)

# Apple refuses provider tokens older than an hour and throttles ones renewed more often
# than every 20 minutes; 50 minutes sits safely between.
TOKEN_REFRESH_SECONDS = 50 * 60

_PUSH_TOKEN = re.compile(r"^[0-9a-fA-F]{32,200}$")
_REMOVE_REASONS = frozenset({"BadDeviceToken"})
_STALE_PROVIDER_TOKEN = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})


class PushOutcome(StrEnum):
    """What the caller should do after a push."""

    DELIVERED = "delivered"  # APNs accepted it
    REMOVE = "remove"  # the device is gone: delete the registration
    RETRY = "retry"  # transient (throttled, APNs down, network): try again later
    FAILED = "failed"  # refused for a reason retrying will not fix (configuration)


@dataclass(frozen=True)
class PushResult:
    """The answer of APNs for one push token. The token stays out of ``repr``."""

    push_token: str = field(repr=False)
    outcome: PushOutcome
    status: int | None = None  # HTTP status; None when no answer came
    reason: str | None = None  # APNs's reason, or the local error's name
    apns_id: str | None = None

    @property
    def delivered(self) -> bool:
        """True when APNs accepted the push."""
        return self.outcome is PushOutcome.DELIVERED

    @property
    def remove_registration(self) -> bool:
        """True when the device registration should be deleted."""
        return self.outcome is PushOutcome.REMOVE

    @property
    def retryable(self) -> bool:
        """True when the same push may succeed later."""
        return self.outcome is PushOutcome.RETRY


class ApnsTokenProvider:
    """Makes the provider authentication JWT and reuses it until it is due for renewal."""

    def __init__(
        self,
        key_pem: bytes,
        key_id: str,
        team_id: str,
        *,
        refresh_after: float = TOKEN_REFRESH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self._signer = crypt.ES256Signer.from_string(key_pem, key_id)
        except (ValueError, TypeError) as exc:
            raise WalletConfigError("the APNs .p8 key is not a PEM EC private key") from exc
        self._key_id = key_id
        self._team_id = team_id
        self._refresh_after = refresh_after
        self._clock = clock
        self._token: str | None = None
        self._issued_at = 0.0

    @classmethod
    def from_file(cls, path: Path, key_id: str, team_id: str, **kwargs: Any) -> Self:
        """The provider of a ``.p8`` key file."""
        try:
            key_pem = path.read_bytes()
        except OSError as exc:
            raise WalletConfigError(f"cannot read the APNs key at {path}: {exc.strerror}") from exc
        return cls(key_pem, key_id, team_id, **kwargs)

    def token(self) -> str:
        """The current JWT: ``{"alg": "ES256", "kid": key id}.{"iss": team id, "iat": now}``."""
        now = self._clock()
        if self._token is None or now - self._issued_at >= self._refresh_after:
            issued_at = int(now)
            claims = {"iss": self._team_id, "iat": issued_at}
            encoded: bytes = jwt.encode(  # type: ignore[no-untyped-call]
                self._signer, claims, key_id=self._key_id
            )
            self._token = encoded.decode("ascii")
            self._issued_at = float(issued_at)
        return self._token

    def invalidate(self) -> None:
        """Forget the token, so the next push signs a new one (after APNs called it stale)."""
        self._token = None


def _reason(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None


def classify(status: int, reason: str | None) -> PushOutcome:
    """The outcome of an APNs answer, after Apple's documented status codes."""
    if status == 200:
        return PushOutcome.DELIVERED
    if status == 410 or (status == 400 and reason in _REMOVE_REASONS):
        return PushOutcome.REMOVE
    if status == 429 or status >= 500:
        return PushOutcome.RETRY
    return PushOutcome.FAILED


class ApnsClient:
    """Sends Wallet update pushes over one multiplexed HTTP/2 connection.

    Use as ``async with ApnsClient(settings) as apns: results = await apns.push(tokens)``.
    ``ca_file`` replaces the system trust store (tests, or a corporate TLS proxy).
    """

    def __init__(
        self,
        settings: WalletSettings,
        *,
        ca_file: str | Path | None = None,
        max_concurrency: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        reason = settings.apns_disabled_reason()
        if reason:
            raise WalletConfigError(f"APNs is disabled: {reason}")
        assert settings.apple_pass_type_id
        self._topic = settings.apple_pass_type_id
        self._base_url = f"https://{settings.apns_host}:{settings.apns_port}"
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._tokens: ApnsTokenProvider | None = None
        if settings.apns_auth_mode == "token":
            assert settings.apns_key_path and settings.apns_key_id and settings.apple_team_id
            self._tokens = ApnsTokenProvider.from_file(
                settings.apns_key_path, settings.apns_key_id, settings.apple_team_id, clock=clock
            )
        else:
            cert, key, password = settings.apns_client_cert()
            assert cert and key
            load_client_cert_chain(context, cert, key, password)
        # http1=False: APNs speaks only HTTP/2, and a silent fall-back to HTTP/1.1 would
        # only turn into confusing errors later.
        self._http = httpx.AsyncClient(
            http1=False,
            http2=True,
            verify=context,
            timeout=settings.apns_timeout_seconds,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self._slots = asyncio.Semaphore(max_concurrency)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP/2 connection."""
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {
            "apns-topic": self._topic,
            # A background push: no alert, Wallet fetches the update silently.
            "apns-push-type": "background",
            # Apple requires priority 5 for background pushes (10 is for alerts).
            "apns-priority": "5",
            "content-type": "application/json",
        }
        if self._tokens is not None:
            headers["authorization"] = f"bearer {self._tokens.token()}"
        return headers

    async def _send(self, push_token: str) -> httpx.Response:
        return await self._http.post(
            f"{self._base_url}/3/device/{push_token}", content=b"{}", headers=self._headers()
        )

    async def push_one(self, push_token: str) -> PushResult:
        """Send one update push; never raises for APNs or network trouble."""
        if not _PUSH_TOKEN.match(push_token):
            # A token that is not hex can never be delivered (and must not reach the URL).
            return PushResult(push_token, PushOutcome.REMOVE, reason="MalformedDeviceToken")
        async with self._slots:
            try:
                response = await self._send(push_token)
                reason = _reason(response)
                if response.status_code == 403 and reason in _STALE_PROVIDER_TOKEN and self._tokens:
                    # Our clock or Apple's judged the token stale: sign a new one, once.
                    self._tokens.invalidate()
                    response = await self._send(push_token)
                    reason = _reason(response)
            except httpx.HTTPError as exc:
                log.warning("apns_transport_error", error=type(exc).__name__)
                return PushResult(push_token, PushOutcome.RETRY, reason=type(exc).__name__)
        outcome = classify(response.status_code, reason)
        if outcome is not PushOutcome.DELIVERED:
            log.info(
                "apns_push_refused",
                status=response.status_code,
                reason=reason,
                outcome=outcome.value,
            )
        return PushResult(
            push_token,
            outcome,
            status=response.status_code,
            reason=reason,
            apns_id=response.headers.get("apns-id"),
        )

    async def push(self, push_tokens: Iterable[str]) -> list[PushResult]:
        """Send an update push to every token, concurrently; results in the same order."""
        results = list(await asyncio.gather(*(self.push_one(t) for t in push_tokens)))
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
        log.info("apns_push_batch", total=len(results), **counts)
        return results
