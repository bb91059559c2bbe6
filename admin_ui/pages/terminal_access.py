"""Who may open a store's terminal: a signed-in admin of its merchant, or a device paired with
the store (its token in an http-only cookie, see ``domain.terminal_devices``); and what anyone
else sees: the sign-in link and the pairing form."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui import auth, domain_api
from admin_ui.queries.admins import admin_may_open
from admin_ui.queries.terminal import StoreInfo
from admin_ui.widgets import tag

DEVICE_COOKIE = "loyalty_terminal"
# Browsers keep a cookie at most 400 days; a paired till should not need pairing again sooner.
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Access:
    """Who opened the terminal: a signed-in admin (``user_id``) or a paired device."""

    user_id: int | None = None
    device_id: int | None = None
    device_token: str | None = None

    @property
    def label(self) -> str:
        """How the header names the access."""
        return "paired terminal" if self.device_id is not None else "signed-in admin"


async def access_of(
    session: AsyncSession, info: StoreInfo, user_id: object, device_token: str | None
) -> Access | None:
    """How this request may open the store's terminal, or ``None``."""
    if isinstance(user_id, int) and await admin_may_open(session, user_id, info.merchant_id):
        return Access(user_id=user_id)
    device = await domain_api.paired_device(session, info.code, device_token)
    if device is not None:
        return Access(device_id=device.id, device_token=device_token)
    return None


def cookie_path(store_code: str) -> str:
    """The device cookie is sent to its own store's terminal only."""
    return f"/terminal/{quote(store_code, safe='')}"


def secure_cookie(request: Request) -> bool:
    """Whether the device cookie must be ``Secure`` for this request."""
    # Browsers drop Secure cookies over plain http; only a loopback dev server may go without.
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host not in _LOOPBACK


async def still_allowed(session: AsyncSession, info: StoreInfo, access: Access) -> bool:
    """Whether the admin or the device that opened the terminal may still act there."""
    if access.user_id is not None:
        return await admin_may_open(session, access.user_id, info.merchant_id)
    device = await domain_api.paired_device(session, info.code, access.device_token)
    return device is not None


_PAIRING_MESSAGES = {
    "failed": "This code is not valid for this store, or it has expired. Ask an admin for a "
    "new one.",
    "limited": "Too many tries from this device. Wait a few minutes, then try again.",
}


def signed_out_page(info: StoreInfo, pairing: str) -> None:
    """What a device that may not open the terminal sees: sign in, or pair this device."""
    ui.page_title(f"Terminal {info.code}")
    ui.query("body").classes("bg-slate-100")
    target = cookie_path(info.code)
    with (
        ui.column().classes("w-full max-w-md mx-auto p-6 gap-4"),
        tag(ui.card().classes("w-full gap-3"), "terminal-signed-out"),
    ):
        ui.label(f"{info.merchant_name} · {info.name}").classes("text-xl font-semibold")
        ui.label(
            "This device is not signed in as a terminal of this store. An admin of the "
            "merchant can sign in, or pair this device with a code from the store's page "
            "in the admin panel."
        ).classes("text-slate-700")
        tag(
            ui.link(
                "Sign in as an admin", f"{auth.LOGIN_PATH}?redirect_to={quote(target, safe='')}"
            ),
            "terminal-sign-in",
        )
        ui.separator()
        ui.label("Pair this device").classes("text-lg font-medium")
        # A plain form: the answer sets the device's http-only cookie, which a websocket
        # event of the page could not.
        ui.html(
            f'<form method="post" action="{target}/pair" class="flex flex-wrap gap-2 items-end">'
            '<label class="flex flex-col text-sm text-slate-600">Pairing code'
            '<input name="code" required autocomplete="off" autocapitalize="characters" '
            'maxlength="12" placeholder="XXXX-XXXX" data-testid="terminal-pairing-code" '
            'class="border rounded px-3 py-2 text-lg font-mono text-slate-900"></label>'
            '<button type="submit" data-testid="terminal-pair" '
            'class="rounded bg-emerald-800 text-white px-4 py-2">Pair</button></form>',
            sanitize=False,
        )
        message = _PAIRING_MESSAGES.get(pairing)
        if message:
            tag(ui.label(message), "terminal-pairing-message").classes("text-red-700")
