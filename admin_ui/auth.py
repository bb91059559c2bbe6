"""Who is signed in: the auth middleware and the sign-in page. What a signed-in admin may see
(``Principal``) lives in ``admin_ui.queries.admins``; every admin page checks the sign-in
through ``admin_ui.guard``.

The pattern of NiceGUI's authentication example: a Starlette middleware sends every request
for a protected page without a signed-in session to ``/login``. The session is NiceGUI's
``app.storage.user``, keyed by a browser id in a cookie signed with ``Settings.session_secret``
(``ui.run(storage_secret=...)``); it holds only the user's id. Every page loads the user again
from the database, so a disabled user or a deleted merchant is shut out at the next click.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from admin_ui import domain_api, texts
from admin_ui.queries.admins import Principal, principal_of
from admin_ui.runtime import Runtime
from admin_ui.widgets import tag

LOGIN_PATH = "/login"
USER_KEY = "user_id"

# Pages anyone may open: sign-in, the staff terminal (a PIN unlocks it), self-enrolment, and
# the card/pass routes of the wallets (another module serves them; they carry their own
# secrets). NiceGUI's own assets and websocket live under /_nicegui.
PUBLIC_PATHS = frozenset({LOGIN_PATH, "/favicon.ico", "/healthz"})
PUBLIC_PREFIXES = ("/_nicegui", "/terminal/", "/enroll/", "/card/", "/v1/", "/static/")


def is_public(path: str) -> bool:
    """Whether ``path`` is served without signing in."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthMiddleware(BaseHTTPMiddleware):
    """Sends requests for protected pages without a signed-in user to the sign-in page.

    ``public_prefixes`` adds paths served to anyone (the PassKit web service's base path).
    """

    def __init__(self, app: Any, public_prefixes: tuple[str, ...] = ()) -> None:
        super().__init__(app)
        self.public_prefixes = tuple(p for p in public_prefixes if p and p != "/")

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        public = is_public(path) or path.startswith(self.public_prefixes)
        if not public and not app.storage.user.get(USER_KEY):
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"{LOGIN_PATH}?redirect_to={quote(target, safe='')}")
        return await call_next(request)


async def current_principal(runtime: Runtime) -> Principal | None:
    """The signed-in admin, from the database; ``None`` (and the session cleared) when the
    user is gone, disabled, or belongs to a merchant that was deleted."""
    user_id = app.storage.user.get(USER_KEY)
    if not isinstance(user_id, int):
        return None
    async with runtime.session() as session:
        me = await principal_of(session, user_id)
    if me is None:
        app.storage.user.clear()
    return me


def to_login(request: Request | None = None) -> RedirectResponse:
    """A redirect to the sign-in page (back here afterwards)."""
    if request is None:
        return RedirectResponse(LOGIN_PATH)
    target = request.url.path + (("?" + request.url.query) if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?redirect_to={quote(target, safe='')}")


def sign_out() -> None:
    """Forget the signed-in user and go to the sign-in page."""
    app.storage.user.clear()
    ui.navigate.to(LOGIN_PATH)


def safe_redirect(target: str | None) -> str:
    """Only a path of this site: an open redirect would let a link send people elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def register(runtime: Runtime) -> None:
    """The sign-in page."""

    @ui.page(LOGIN_PATH, title="Sign in · Loyalty admin")
    async def login_page(redirect_to: str = "/") -> None:
        target = safe_redirect(redirect_to)
        ui.query("body").classes("bg-slate-100")
        with tag(ui.card().classes("absolute-center w-96 p-8 gap-4"), "login-card"):
            ui.label("Loyalty admin").classes("text-2xl font-semibold text-slate-800")
            ui.label("Sign in to manage merchants, cards and rewards.").classes(
                "text-sm text-slate-500"
            )
            username = tag(ui.input("User name").classes("w-full"), "login-username")
            password = tag(
                ui.input("Password", password=True, password_toggle_button=True).classes("w-full"),
                "login-password",
            )
            error = tag(ui.label("").classes("text-red-700 text-sm"), "login-error")
            error.visible = False

            async def attempt() -> None:
                if not username.value or not password.value:
                    error.text = "Enter your user name and password."
                    error.visible = True
                    return
                button.disable()
                try:
                    async with runtime.session() as session:
                        user = await domain_api.sign_in(
                            session, username.value, password.value, datetime.now(UTC)
                        )
                except domain_api.SignInRefused as exc:
                    if exc.locked_until is not None:
                        error.text = (
                            "Too many failed sign-ins: this account is locked until "
                            f"{texts.when(exc.locked_until)}."
                        )
                    else:
                        error.text = "Unknown user name or wrong password."
                    error.visible = True
                    password.value = ""
                    return
                finally:
                    button.enable()
                app.storage.user.clear()
                app.storage.user[USER_KEY] = user.id
                ui.navigate.to(target)

            password.on("keydown.enter", attempt)
            button = tag(ui.button("Sign in", on_click=attempt).classes("w-full"), "login-submit")
