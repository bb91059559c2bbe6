"""Apple's PassKit web service: the routes Wallet calls for the passes the engine issues.

Every endpoint of Apple's protocol, under a base path (``WalletSettings.passkit_path``:
``LOYALTY_WALLET_PASSKIT_BASE_PATH``, else the path of ``LOYALTY_WALLET_APPLE_WEB_SERVICE_URL``,
else ``/passkit``)::

    POST   /v1/devices/{device}/registrations/{passType}/{serial}   register (201 new, 200 known)
    DELETE /v1/devices/{device}/registrations/{passType}/{serial}   unregister (200)
    GET    /v1/devices/{device}/registrations/{passType}?passesUpdatedSince=tag
                                                   serials updated since tag (200, 204 none)
    GET    /v1/passes/{passType}/{serial}          the latest .pkpass (200, 304 not modified)
    POST   /v1/log                                 Wallet's error reports (200)

The serial number is the card number. ``Authorization: ApplePass <token>`` is compared in
constant time with the card's ``apple_authentication_token``; an unknown serial, another pass
type and a wrong or missing token all get the same empty 401. Deleted cards, and cards of a
deleted merchant or program, are never served.

The admin app mounts these with :func:`register_passkit_routes`; :func:`create_passkit_app`
serves them alone (tests, or a separate process).

Timestamps: ``updated_at`` is set by the engine's transactions to their start time, so a
change can commit a little after a later-stamped one. Both validators allow for that: the
``lastUpdated`` tag is the database clock minus :data:`SETTLE_SECONDS` (a pass changed in
that window is listed once more next time, which is harmless), and a pass changed within
:data:`SETTLE_SECONDS` is served without ``Last-Modified`` (the next fetch downloads it again
instead of risking a wrong 304).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.logs import get_logger
from core.settings import get_settings
from domain.db import make_engine, make_sessionmaker
from domain.identifiers import mask
from domain.models import AppleDeviceRegistration, LoyaltyCard, LoyaltyProgram, Merchant
from domain.wallet_cards import WalletCard, wallet_cards_by_number
from wallet import (
    PKPASS_MIME_TYPE,
    InvalidImageError,
    PassSigner,
    WalletConfigError,
    WalletSettings,
    build_pkpass,
    get_wallet_settings,
)

log = get_logger(__name__)

SETTLE_SECONDS = 10.0
MAX_LOG_ENTRIES = 50
MAX_LOG_CHARS = 1000
_MAX_BODY = 64 * 1024
_MAX_ID = 200  # the registration table's column width

SessionSource = Callable[[], async_sessionmaker[AsyncSession]]
SettingsSource = Callable[[], WalletSettings]


# --- the database of a process that has none of its own -----------------------------------


class OwnDatabase:
    """An engine opened when the app starts and disposed when it stops.

    NiceGUI's ``user`` fixture starts and stops the app once per test, each time in a new
    event loop, so the engine must never outlive the app (never a module-level engine).
    Call it to get the session factory.
    """

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def open(self) -> None:
        """Create the engine (it connects lazily, so this never blocks)."""
        self._engine = make_engine(get_settings())
        self._sessions = make_sessionmaker(self._engine)

    async def close(self) -> None:
        """Dispose of the engine."""
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = self._sessions = None

    def __call__(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("the database is opened at app start-up: the app is not running")
        return self._sessions


def attach_database(app: FastAPI) -> OwnDatabase:
    """An :class:`OwnDatabase` opened and closed with ``app`` (NiceGUI's or plain FastAPI)."""
    database = OwnDatabase()
    on_startup = getattr(app, "on_startup", None)
    on_shutdown = getattr(app, "on_shutdown", None)
    if callable(on_startup) and callable(on_shutdown):  # NiceGUI's app
        on_startup(database.open)
        on_shutdown(database.close)
        return database
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        database.open()
        try:
            async with inner(the_app) as state:
                yield state
        finally:
            await database.close()

    app.router.lifespan_context = lifespan
    return database


# --- signing ------------------------------------------------------------------------------------

_signers: dict[int, tuple[WalletSettings, PassSigner]] = {}


def pass_signer(settings: WalletSettings) -> PassSigner:
    """The signer of ``settings``, loaded (files read and checked) once per settings object."""
    cached = _signers.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    signer = PassSigner.from_settings(settings)
    _signers[id(settings)] = (settings, signer)
    return signer


async def pkpass_of(card: WalletCard, settings: WalletSettings) -> bytes:
    """The signed ``.pkpass`` of ``card`` (built in a worker thread: signing and images are
    CPU work). Raises :class:`wallet.WalletConfigError` when Apple Wallet is not set up."""
    signer = pass_signer(settings)
    return await asyncio.to_thread(build_pkpass, card.pass_card(), settings, signer=signer)


# --- helpers -----------------------------------------------------------------------------------

_NO_CARD_TOKEN = "no card: compared so that a miss takes as long as a wrong token"  # noqa: S105


def _apple_pass_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "applepass" and token else None


def _same_secret(given: str, expected: str) -> bool:
    # Digests first: equal lengths, so not even the token's length leaks through timing.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def _unauthorized() -> Response:
    # The same empty answer for an unknown serial, another pass type and a wrong token.
    return Response(status_code=401)


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_tag(tag: str | None) -> datetime | None:
    if not tag:
        return None
    try:
        return datetime.fromtimestamp(float(tag), UTC)
    except (ValueError, OverflowError, OSError):
        return None  # not a tag of ours: list everything, which is always correct


async def _json_body(request: Request) -> Any:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= _MAX_ID


class PassKitService:
    """The endpoints' logic over a session source and the wallet settings."""

    def __init__(self, sessions: SessionSource, settings: SettingsSource) -> None:
        self.sessions = sessions
        self.settings = settings

    async def authorized_card(
        self, session: AsyncSession, pass_type_id: str, serial: str, authorization: str | None
    ) -> WalletCard | None:
        """The live card ``serial`` when the request carries its token; None otherwise."""
        token = _apple_pass_token(authorization)
        card: WalletCard | None = None
        ours = self.settings().apple_pass_type_id
        if ours and pass_type_id == ours and token is not None and len(serial) <= 32:
            card = (await wallet_cards_by_number(session, [serial])).get(serial)
        expected = card.authentication_token if card is not None else _NO_CARD_TOKEN
        matches = _same_secret(token or "", expected)
        return card if card is not None and token is not None and matches else None

    async def register(
        self, device: str, pass_type_id: str, serial: str, request: Request
    ) -> Response:
        """Register a device for a card's pushes: 201 new, 200 already registered."""
        async with self.sessions()() as session:
            card = await self.authorized_card(
                session, pass_type_id, serial, request.headers.get("authorization")
            )
            if card is None:
                return _unauthorized()
            body = await _json_body(request)
            push_token = body.get("pushToken") if isinstance(body, dict) else None
            if not (isinstance(push_token, str) and _valid_id(push_token) and _valid_id(device)):
                return Response(status_code=400)
            inserted = await session.scalar(
                _REGISTER,
                {
                    "device": device,
                    "pass_type": pass_type_id,
                    "push_token": push_token,
                    "card_id": card.card_id,
                },
            )
            await session.commit()
        log.info(
            "passkit_registered" if inserted else "passkit_registration_renewed",
            card_number=card.card_number,
            device=mask(device),
        )
        return Response(status_code=201 if inserted else 200)

    async def unregister(
        self, device: str, pass_type_id: str, serial: str, request: Request
    ) -> Response:
        """Forget a device's registration for a card: 200 (also when there was none)."""
        async with self.sessions()() as session:
            card = await self.authorized_card(
                session, pass_type_id, serial, request.headers.get("authorization")
            )
            if card is None:
                return _unauthorized()
            await session.execute(
                delete(AppleDeviceRegistration).where(
                    AppleDeviceRegistration.device_library_id == device,
                    AppleDeviceRegistration.pass_type_id == pass_type_id,
                    AppleDeviceRegistration.card_id == card.card_id,
                )
            )
            await session.commit()
        log.info("passkit_unregistered", card_number=card.card_number, device=mask(device))
        return Response(status_code=200)

    async def updated_serials(
        self, device: str, pass_type_id: str, passes_updated_since: str | None
    ) -> Response:
        """The device's live passes changed since the tag: 200 with the list, 204 for none."""
        since = _parse_tag(passes_updated_since)
        query = (
            select(LoyaltyCard.card_number)
            .join(AppleDeviceRegistration, AppleDeviceRegistration.card_id == LoyaltyCard.id)
            # Joined so the soft-delete hook hides cards of a deleted merchant or program.
            .join(Merchant, Merchant.id == LoyaltyCard.merchant_id)
            .join(LoyaltyProgram, LoyaltyProgram.id == LoyaltyCard.program_id)
            .where(
                AppleDeviceRegistration.device_library_id == device,
                AppleDeviceRegistration.pass_type_id == pass_type_id,
            )
            .order_by(LoyaltyCard.card_number)
        )
        if since is not None:
            query = query.where(LoyaltyCard.updated_at > since)
        async with self.sessions()() as session:
            serials = list(dict.fromkeys((await session.scalars(query)).all()))
            clock = await session.scalar(select(func.clock_timestamp()))
        if not serials:
            return Response(status_code=204)
        assert clock is not None
        tag = (clock - timedelta(seconds=SETTLE_SECONDS)).timestamp()
        return JSONResponse({"serialNumbers": serials, "lastUpdated": f"{tag:.6f}"})

    async def latest_pass(self, pass_type_id: str, serial: str, request: Request) -> Response:
        """The card's current ``.pkpass``; 304 when ``If-Modified-Since`` is not older."""
        async with self.sessions()() as session:
            card = await self.authorized_card(
                session, pass_type_id, serial, request.headers.get("authorization")
            )
            if card is None:
                return _unauthorized()
            clock = await session.scalar(select(func.clock_timestamp()))
        assert clock is not None
        modified = card.updated_at.replace(microsecond=0)
        settled = (clock - card.updated_at).total_seconds() >= SETTLE_SECONDS
        since = _parse_http_date(request.headers.get("if-modified-since"))
        if since is not None and since >= modified:
            return Response(status_code=304, headers={"Last-Modified": _http_date(modified)})
        settings = self.settings()
        try:
            data = await pkpass_of(card, settings)
        except WalletConfigError as exc:
            log.error("passkit_pass_unavailable", error=str(exc))
            return Response(status_code=503)
        except (InvalidImageError, ValueError) as exc:
            log.error("passkit_pass_failed", card_number=card.card_number, error=str(exc))
            return Response(status_code=500)
        headers = {"Cache-Control": "private, no-cache"}
        if settled:
            headers["Last-Modified"] = _http_date(modified)
        return Response(content=data, media_type=PKPASS_MIME_TYPE, headers=headers)

    async def device_log(self, request: Request) -> Response:
        """Log what Wallet reports (its errors about our web service)."""
        body = await _json_body(request)
        entries = body.get("logs") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            return Response(status_code=400)
        for entry in entries[:MAX_LOG_ENTRIES]:
            log.warning("passkit_device_log", message=str(entry)[:MAX_LOG_CHARS])
        if len(entries) > MAX_LOG_ENTRIES:
            log.warning("passkit_device_log_truncated", dropped=len(entries) - MAX_LOG_ENTRIES)
        return Response(status_code=200)


_REGISTER = text(
    """
INSERT INTO apple_device_registrations (device_library_id, pass_type_id, push_token, card_id)
VALUES (:device, :pass_type, :push_token, :card_id)
ON CONFLICT (device_library_id, pass_type_id, card_id)
DO UPDATE SET push_token = EXCLUDED.push_token
RETURNING (xmax = 0) AS inserted
"""
)


def register_passkit_routes(
    app: FastAPI,
    base_path: str | None = None,
    *,
    sessions: SessionSource | None = None,
    wallet_settings: WalletSettings | None = None,
) -> PassKitService:
    """Add the PassKit web service routes to ``app`` (NiceGUI's ``app`` is a FastAPI app).

    ``base_path`` defaults to ``WalletSettings.passkit_path``. ``sessions`` returns the
    app's session factory; without it the routes open a database of their own with the app
    (:func:`attach_database`). ``wallet_settings`` defaults to the environment's, read at
    each request.
    """
    settings: SettingsSource = (
        (lambda: wallet_settings) if wallet_settings is not None else get_wallet_settings
    )
    prefix = (settings().passkit_path if base_path is None else base_path).rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    service = PassKitService(sessions or attach_database(app), settings)
    router = APIRouter(prefix=prefix, tags=["passkit"], include_in_schema=False)
    registration = "/v1/devices/{device_library_id}/registrations/{pass_type_id}/{serial_number}"

    @router.post(registration)
    async def register(
        device_library_id: str, pass_type_id: str, serial_number: str, request: Request
    ) -> Response:
        return await service.register(device_library_id, pass_type_id, serial_number, request)

    @router.delete(registration)
    async def unregister(
        device_library_id: str, pass_type_id: str, serial_number: str, request: Request
    ) -> Response:
        return await service.unregister(device_library_id, pass_type_id, serial_number, request)

    @router.get("/v1/devices/{device_library_id}/registrations/{pass_type_id}")
    async def updated_serials(
        device_library_id: str, pass_type_id: str, passesUpdatedSince: str | None = None
    ) -> Response:
        return await service.updated_serials(device_library_id, pass_type_id, passesUpdatedSince)

    @router.get("/v1/passes/{pass_type_id}/{serial_number}")
    async def latest_pass(pass_type_id: str, serial_number: str, request: Request) -> Response:
        return await service.latest_pass(pass_type_id, serial_number, request)

    @router.post("/v1/log")
    async def device_log(request: Request) -> Response:
        return await service.device_log(request)

    app.include_router(router)
    return service


def create_passkit_app(
    *,
    sessions: SessionSource | None = None,
    wallet_settings: WalletSettings | None = None,
    base_path: str | None = None,
) -> FastAPI:
    """A FastAPI app serving only the PassKit web service (tests, or a process of its own)."""
    app = FastAPI(title="PassKit web service", docs_url=None, redoc_url=None, openapi_url=None)
    register_passkit_routes(app, base_path, sessions=sessions, wallet_settings=wallet_settings)
    return app
