"""The admin panel as one NiceGUI app: pages, the auth middleware, the database's lifetime.

``build`` registers everything and returns the runtime; ``run`` serves it (``loyalty admin``),
with the process's ops port (``/metrics``, ``/healthz``, ``/readyz``: ``core.health``) on a
port of its own, never the public one. ``admin_ui/main.py`` does both, for NiceGUI's test
``user`` fixture, which runs that file.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.responses import PlainTextResponse
from nicegui import app, ui

from admin_ui.auth import AuthMiddleware
from admin_ui.card_page import register_card_page
from admin_ui.pages import register_all
from admin_ui.passkit import register_passkit_routes
from admin_ui.runtime import Runtime
from core.health import Health, keep_probing, start_ops_server
from core.logs import get_logger
from core.metrics import LOCKOUT_KINDS, LOCKOUTS
from core.settings import Settings
from wallet import WalletConfigError, WalletSettings, check_apple_wallet, get_wallet_settings
from wallet.checks import is_loopback_host

log = get_logger(__name__)

TITLE = "Loyalty admin"


def build(settings: Settings) -> Runtime:
    """Register the pages, the middleware and the engine's start and stop on the NiceGUI app."""
    runtime = Runtime(settings)
    app.on_startup(runtime.start)
    app.on_shutdown(runtime.stop)
    # The customer's card page, its .pkpass, and Apple's PassKit web service (wallet module).
    register_card_page(sessions=runtime.sessionmaker)
    register_passkit_routes(app, sessions=runtime.sessionmaker)
    passkit = get_wallet_settings().passkit_path.rstrip("/")
    app.add_middleware(AuthMiddleware, public_prefixes=(passkit + "/",) if passkit else ())

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.on_page_exception
    def _page_failed() -> None:
        # Never a traceback on the page: the exception is logged by NiceGUI meanwhile.
        with ui.column().classes("absolute-center items-center gap-2"):
            ui.label("Something went wrong").classes("text-2xl font-semibold")
            ui.label("The error was logged. Go back and try again.").classes("text-slate-600")
            ui.link("Back to the start page", "/")

    register_all(runtime)
    return runtime


def run_options(settings: Settings) -> dict[str, Any]:
    """``ui.run`` keyword arguments for serving the panel with these settings."""
    return {
        "host": settings.admin_host,
        "port": settings.admin_http_port,
        "title": TITLE,
        "storage_secret": settings.session_secret,
        "reload": False,
        "show": False,
        "show_welcome_message": False,
        "uvicorn_logging_level": "warning",
        "favicon": "🎟️",
    }


class StartRefused(Exception):
    """The panel must not be served with these settings; ``str()`` says which to fix."""


def uses_default_session_secret(settings: Settings) -> bool:
    """True when sessions would be signed with the secret everybody can read in the code."""
    return bool(settings.session_secret == Settings.model_fields["session_secret"].default)


def check_start(settings: Settings, wallet_settings: WalletSettings) -> None:
    """Refuse a start that would be unsafe or hand out passes Wallet rejects.

    Raises :class:`StartRefused` when the panel would listen beyond this machine with the
    default session secret (anyone could forge a platform admin's session cookie), and
    :class:`wallet.WalletConfigError` when Apple Wallet is configured wrongly.
    """
    if uses_default_session_secret(settings) and not is_loopback_host(settings.admin_host):
        raise StartRefused(
            f"LOYALTY_SESSION_SECRET is the public default and LOYALTY_ADMIN_HOST is "
            f"{settings.admin_host!r}, not a loopback address: anyone reaching the panel could "
            "forge a session. Set LOYALTY_SESSION_SECRET to a long random value, or listen on "
            "127.0.0.1"
        )
    check_apple_wallet(wallet_settings)


def run(settings: Settings) -> None:
    """Build the panel and serve it until stopped; exit with a message when
    :func:`check_start` refuses the settings."""
    try:
        check_start(settings, get_wallet_settings())
    except (StartRefused, WalletConfigError) as exc:
        raise SystemExit(f"loyalty admin: {exc}") from None
    if uses_default_session_secret(settings):
        log.warning(
            "admin_ui.default_session_secret",
            hint="set LOYALTY_SESSION_SECRET: sessions are signed with a public default",
        )
    runtime = build(settings)
    serve_ops(settings, runtime)
    log.info("admin_ui.serving", url=settings.admin_url)
    ui.run(**run_options(settings))


def serve_ops(settings: Settings, runtime: Runtime) -> Health:
    """Serve the process's ops port from the app's start to its stop; ready while the
    database answers."""
    health = Health("admin", required=("database",))
    # Lockouts are rare: each kind exports 0 from the first scrape, so an alert sees it.
    for kind in LOCKOUT_KINDS:
        LOCKOUTS.labels(kind)
    ops = start_ops_server(settings, health)
    tasks: list[asyncio.Task[None]] = []

    async def database() -> None:
        if runtime.engine is None:
            raise ConnectionError("no database engine yet")
        async with runtime.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def start() -> None:
        tasks.append(asyncio.create_task(keep_probing(health, {"database": database})))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        if ops is not None:
            ops.close()

    app.on_startup(start)
    app.on_shutdown(stop)
    return health
