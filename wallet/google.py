"""Google Wallet loyalty cards: class and object JSON, the REST client, save links.

One ``LoyaltyClass`` per merchant program (``<issuer id>.<merchant code>``) and one
``LoyaltyObject`` per card (``<issuer id>.<card number>``). The object carries the whole
current state of the card, so an upsert is idempotent and a redelivered wallet update is
harmless.

The REST client is synchronous (``requests`` through google-auth's ``AuthorizedSession``,
which handles the OAuth token); :class:`AsyncGoogleWalletClient` runs it in worker threads
with ``asyncio.to_thread`` so an async consumer's event loop never blocks, backoff sleeps
included.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import requests
from google.auth import crypt, jwt
from google.auth.exceptions import GoogleAuthError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from core.logs import get_logger
from wallet import i18n
from wallet.cards import SUPPORTED_LOCALES, PassCard, PassProgram
from wallet.errors import WalletConfigError, WalletError
from wallet.settings import WalletSettings

log = get_logger(__name__)

WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
SAVE_URL = "https://pay.google.com/gp/v/save/"

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# A wait longer than this is not slept through in a worker: the caller reschedules.
_MAX_RETRY_AFTER_SECONDS = 60.0


class GoogleWalletError(WalletError):
    """Google Wallet refused a request (or could not be reached)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class GoogleWalletRetryError(GoogleWalletError):
    """Still failing (429, 5xx, network) after every attempt: worth retrying later."""


class GoogleWalletAuthError(GoogleWalletError):
    """The service account could not get an access token."""


# --- ids and documents ------------------------------------------------------------------


def _suffix(value: str) -> str:
    # Google allows only letters, digits, '.', '_' and '-' after the issuer id.
    return _ID_UNSAFE.sub("_", value.strip())


def _issuer(settings: WalletSettings) -> str:
    if not settings.google_issuer_id:
        raise WalletConfigError(
            "Google Wallet is disabled: missing LOYALTY_WALLET_GOOGLE_ISSUER_ID"
        )
    return settings.google_issuer_id


def loyalty_class_id(merchant_code: str, settings: WalletSettings) -> str:
    """The LoyaltyClass id of a merchant's program: ``<issuer id>.<merchant code>``."""
    return f"{_issuer(settings)}.{_suffix(merchant_code)}"


def loyalty_object_id(card_number: str, settings: WalletSettings) -> str:
    """The LoyaltyObject id of a card: ``<issuer id>.<card number>``."""
    return f"{_issuer(settings)}.{_suffix(card_number)}"


def build_loyalty_class(program: PassProgram, settings: WalletSettings) -> dict[str, Any]:
    """The LoyaltyClass resource of ``program``."""
    return {
        "id": loyalty_class_id(program.merchant_code, settings),
        "issuerName": program.issuer_name,
        "programName": program.program_name,
        "programLogo": {
            "sourceUri": {"uri": program.logo_url},
            "contentDescription": {
                "defaultValue": {"language": "en", "value": f"{program.issuer_name} logo"}
            },
        },
        "hexBackgroundColor": program.background_color,
        # Only sent on insert (see ensure_class): Google reviews new classes.
        "reviewStatus": "UNDER_REVIEW",
    }


def _points(key: str, balance: dict[str, Any], locale: str) -> dict[str, Any]:
    return {
        "label": i18n.translate(key, locale),
        "localizedLabel": i18n.localized_string(key, locale),
        "balance": balance,
    }


def build_loyalty_object(card: PassCard, settings: WalletSettings) -> dict[str, Any]:
    """The LoyaltyObject resource of ``card``.

    ``loyaltyPoints`` is the prominent balance: the points in a points or hybrid program, the
    stamps ("3/10") in a stamps-only one, where a "0 points" line would be wrong. In a hybrid
    program the stamps are the ``secondaryLoyaltyPoints``.
    """
    stamps = _points(
        i18n.STAMPS, {"string": f"{card.stamp_count}/{card.stamps_target}"}, card.locale
    )
    points = _points(i18n.POINTS, {"int": card.points_balance}, card.locale)
    document: dict[str, Any] = {
        "id": loyalty_object_id(card.card_number, settings),
        "classId": loyalty_class_id(card.merchant_code, settings),
        "state": "ACTIVE" if card.is_active else "INACTIVE",
        "accountId": card.card_number,
        "accountName": card.customer_name or card.card_number,
        "barcode": {"type": "QR_CODE", "value": card.qr_token, "alternateText": card.card_number},
    }
    kind = card.program_type
    if kind.points_enabled:
        document["loyaltyPoints"] = points
        if kind.stamps_enabled:
            document["secondaryLoyaltyPoints"] = stamps
    else:
        document["loyaltyPoints"] = stamps
    modules: list[dict[str, Any]] = []
    if card.reward_description:
        modules.append(
            {
                "id": "reward",
                "header": i18n.translate(i18n.REWARD, card.locale),
                "localizedHeader": i18n.localized_string(i18n.REWARD, card.locale),
                "body": card.reward_description,
            }
        )
    for module in (_tier_module(card), _points_module(card)):
        if module is not None:
            modules.append(module)
    if modules:
        document["textModulesData"] = modules
    return document


def _tier_module(card: PassCard) -> dict[str, Any] | None:
    """The text module of the card's tier and what the next one takes (CONTRACT.md 7.4),
    ``Silver · 230 points to Gold``, in every language; None when the program has no tiers."""
    if not card.tier_name:
        return None
    bodies = {
        locale: i18n.tier_text(card.tier_name, card.next_tier, locale)
        for locale in SUPPORTED_LOCALES
    }
    return {
        "id": "tier",
        "header": i18n.translate(i18n.TIER, card.locale),
        "localizedHeader": i18n.localized_string(i18n.TIER, card.locale),
        "body": bodies[card.locale],
        "localizedBody": i18n.localized_values(bodies, card.locale),
    }


def _points_module(card: PassCard) -> dict[str, Any] | None:
    """The text module of pending points and the next expiry (CONTRACT.md 7.2, 7.3), in
    every language; None when the card has neither."""
    if not card.program_type.points_enabled:
        return None
    expiry = card.next_expiry
    bodies: dict[str, str] = {}
    for locale in SUPPORTED_LOCALES:
        parts = []
        if card.points_pending > 0:
            parts.append(i18n.pending_text(card.points_pending, locale))
        if expiry is not None:
            parts.append(i18n.expiry_text(*expiry, locale))
        if not parts:
            return None
        bodies[locale] = " · ".join(parts)
    return {
        "id": "points",
        "header": i18n.translate(i18n.YOUR_POINTS, card.locale),
        "localizedHeader": i18n.localized_string(i18n.YOUR_POINTS, card.locale),
        "body": bodies[card.locale],
        "localizedBody": i18n.localized_values(bodies, card.locale),
    }


# --- service account ------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _service_account_info(path: Path, mtime_ns: int) -> Mapping[str, Any]:
    del mtime_ns  # part of the cache key only: a rotated key file is read again
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WalletConfigError(f"cannot read the service account JSON at {path}") from exc
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if info.get("type") != "service_account" or missing:
        raise WalletConfigError(
            f"{path} is not a service account key file (missing {', '.join(missing) or 'type'})"
        )
    return dict(info)


def service_account_info(settings: WalletSettings) -> Mapping[str, Any]:
    """The parsed service-account key file named by ``settings`` (cached per file version)."""
    reason = settings.google_disabled_reason()
    if reason:
        raise WalletConfigError(f"Google Wallet is disabled: {reason}")
    path = settings.google_service_account_path
    assert path is not None
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise WalletConfigError(f"cannot read the service account JSON at {path}") from exc
    return _service_account_info(path, mtime)


def service_account_credentials(settings: WalletSettings) -> service_account.Credentials:
    """Credentials for the Wallet API scope, with the configured token endpoint."""
    info = service_account_info(settings)
    try:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[WALLET_SCOPE]
            )
        )
    except ValueError as exc:
        raise WalletConfigError("the service account's private key cannot be read") from exc
    if settings.google_token_url:
        credentials = credentials.with_token_uri(settings.google_token_url)
    return credentials


# --- REST client -------------------------------------------------------------------------------


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_of(response: requests.Response) -> tuple[str | None, str]:
    """Google's ``error.status`` and ``error.message``, or the raw text."""
    try:
        error = response.json().get("error", {})
        return error.get("status"), str(error.get("message", ""))
    except (ValueError, AttributeError):
        return None, response.text[:200]


def _differs(current: Any, desired: Any) -> bool:
    """True when a field of ``desired`` is missing or different in ``current``; fields
    Google adds on its side (kind, version, ...) do not count."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(_differs(current.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(current, list) or len(current) != len(desired):
            return True
        return any(_differs(c, d) for c, d in zip(current, desired, strict=True))
    return bool(current != desired)


class GoogleWalletClient:
    """The Google Wallet REST API for loyalty classes and objects (synchronous).

    Retries 429, 5xx and network errors with exponential backoff and jitter, at most
    ``settings.google_max_attempts`` attempts, sleeping what ``Retry-After`` asks when it is
    given. Other refusals raise :class:`GoogleWalletError` at once.
    """

    def __init__(
        self,
        settings: WalletSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self._base = settings.google_api_base_url.rstrip("/")
        self._timeout = settings.google_timeout_seconds
        self._max_attempts = settings.google_max_attempts
        self._settings = settings
        self._session = session or AuthorizedSession(  # type: ignore[no-untyped-call]
            service_account_credentials(settings)
        )
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        # Classes this client already brought up to date: a batch of card updates of one
        # program then costs one class check, not one per card.
        self._classes_done: dict[str, str] = {}

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # "Equal jitter" (half fixed, half random) keeps workers from retrying in lock-step.
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> requests.Response:
        """One API call with retries; returns any response that is not retryable."""
        url = f"{self._base}/{path}"
        failure = "no attempt made"
        last_status: int | None = None
        for attempt in range(1, self._max_attempts + 1):
            retry_after: float | None = None
            try:
                response = self._session.request(method, url, json=body, timeout=self._timeout)
            except GoogleAuthError as exc:
                raise GoogleWalletAuthError(f"cannot get a Google access token: {exc}") from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure, last_status = type(exc).__name__, None
            else:
                status = last_status = response.status_code
                if status != 429 and status < 500:
                    return response
                retry_after = _retry_after(response)
                reason, _ = _error_of(response)
                failure = f"HTTP {status} {reason or ''}".strip()
                if retry_after is not None and retry_after > _MAX_RETRY_AFTER_SECONDS:
                    raise GoogleWalletRetryError(
                        f"{method} {path}: {failure}, retry after {retry_after:.0f}s",
                        status=status,
                        reason=reason,
                        retry_after=retry_after,
                    )
            if attempt == self._max_attempts:
                break
            delay = self._delay(attempt, retry_after)
            log.info(
                "google_wallet_retry",
                method=method,
                path=path,
                failure=failure,
                attempt=attempt,
                delay=round(delay, 3),
            )
            self._sleep(delay)
        raise GoogleWalletRetryError(
            f"{method} {path}: {failure} after {self._max_attempts} attempts", status=last_status
        )

    def _check(self, response: requests.Response, method: str, path: str) -> dict[str, Any]:
        if response.ok:
            body = response.json() if response.content else {}
            return body if isinstance(body, dict) else {}
        reason, message = _error_of(response)
        raise GoogleWalletError(
            f"{method} {path}: HTTP {response.status_code} {reason or ''} {message}".strip(),
            status=response.status_code,
            reason=reason,
        )

    def _upsert(
        self, kind: str, resource: dict[str, Any], insert_only: frozenset[str]
    ) -> dict[str, Any]:
        """GET the resource; 404 -> insert; else PATCH what differs (nothing when equal)."""
        resource_id = resource["id"]
        item = f"{kind}/{resource_id}"
        current = self._request("GET", item)
        if current.status_code == 404:
            inserted = self._request("POST", kind, resource)
            if inserted.status_code != 409:
                log.info("google_wallet_inserted", kind=kind, id=resource_id)
                return self._check(inserted, "POST", kind)
            # Another worker inserted it between our GET and POST: fall through to PATCH.
            current = self._request("GET", item)
        existing = self._check(current, "GET", item)
        changes = {k: v for k, v in resource.items() if k not in insert_only}
        if not _differs(existing, changes):
            return existing
        log.info("google_wallet_patched", kind=kind, id=resource_id)
        return self._check(self._request("PATCH", item, changes), "PATCH", item)

    def ensure_class(self, program: PassProgram) -> dict[str, Any]:
        """Create the program's LoyaltyClass, or bring it up to date; returns it."""
        resource = build_loyalty_class(program, self._settings)
        fingerprint = json.dumps(resource, sort_keys=True)
        if self._classes_done.get(resource["id"]) == fingerprint:
            return resource
        # reviewStatus only on insert: patching it would send an approved class back to review.
        result = self._upsert("loyaltyClass", resource, frozenset({"reviewStatus"}))
        self._classes_done[resource["id"]] = fingerprint
        return result

    def upsert_object(self, card: PassCard) -> dict[str, Any]:
        """Create or update the card's LoyaltyObject to the card's current state."""
        return self._upsert(
            "loyaltyObject", build_loyalty_object(card, self._settings), frozenset()
        )

    def get_object(self, card_number: str) -> dict[str, Any] | None:
        """The card's LoyaltyObject as Google has it, None when it does not exist."""
        item = f"loyaltyObject/{loyalty_object_id(card_number, self._settings)}"
        response = self._request("GET", item)
        if response.status_code == 404:
            return None
        return self._check(response, "GET", item)


class AsyncGoogleWalletClient:
    """:class:`GoogleWalletClient` for asyncio code: each call runs in a worker thread
    (``asyncio.to_thread``), so the event loop keeps serving while requests and backoff
    sleeps wait."""

    def __init__(self, client: GoogleWalletClient) -> None:
        self.sync = client

    @classmethod
    def from_settings(cls, settings: WalletSettings) -> AsyncGoogleWalletClient:
        """A client built from ``settings``."""
        return cls(GoogleWalletClient(settings))

    async def ensure_class(self, program: PassProgram) -> dict[str, Any]:
        """See :meth:`GoogleWalletClient.ensure_class`."""
        return await asyncio.to_thread(self.sync.ensure_class, program)

    async def upsert_object(self, card: PassCard) -> dict[str, Any]:
        """See :meth:`GoogleWalletClient.upsert_object`."""
        return await asyncio.to_thread(self.sync.upsert_object, card)

    async def get_object(self, card_number: str) -> dict[str, Any] | None:
        """See :meth:`GoogleWalletClient.get_object`."""
        return await asyncio.to_thread(self.sync.get_object, card_number)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await asyncio.to_thread(self.sync.close)


# --- save links ----------------------------------------------------------------------------------


def save_link(
    card: PassCard,
    settings: WalletSettings,
    *,
    program: PassProgram | None = None,
    now: datetime | None = None,
) -> str:
    """The "Add to Google Wallet" link of ``card``: ``https://pay.google.com/gp/v/save/<jwt>``.

    Without ``program`` the JWT names the object by id only (it must have been inserted with
    :meth:`GoogleWalletClient.upsert_object`), which keeps the link short. With ``program``
    it carries the full class and object, so Google creates them on save.
    """
    info = service_account_info(settings)
    try:
        signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise WalletConfigError("the service account's private key cannot be read") from exc
    issued = int((now or datetime.now(UTC)).timestamp())
    payload: dict[str, Any]
    if program is None:
        payload = {"loyaltyObjects": [{"id": loyalty_object_id(card.card_number, settings)}]}
    else:
        payload = {
            "loyaltyClasses": [build_loyalty_class(program, settings)],
            "loyaltyObjects": [build_loyalty_object(card, settings)],
        }
    claims = {
        "iss": info["client_email"],
        "aud": "google",
        "typ": "savetowallet",
        "iat": issued,
        "exp": issued + settings.google_save_link_ttl_seconds,
        "origins": list(settings.google_origins),
        "payload": payload,
    }
    token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    return SAVE_URL + token.decode("ascii")
