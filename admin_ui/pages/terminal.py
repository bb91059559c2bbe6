"""The staff terminal of a store (``/terminal/{store_code}``): find a card, see its balance,
record a purchase, add a stamp, redeem a reward.

A terminal is a signed-in device: it opens for a signed-in admin of the store's merchant, or
for a device paired with the store (a one-time code from the admin panel, then a revocable
token in an http-only cookie, see ``domain.terminal_devices``). Anyone else gets the sign-in
and pairing form, and every action checks the access again on the server, so a revoked device
or a signed-out admin is refused at the next click even on a page left open. The staff PIN,
when the program asks for one, then says who at the till acts, with the store's lockout.

Every action goes through the engine (``process_batch``) in one transaction, with the staff
member's PIN id for the audit, exactly as a Kafka event would. Each action's ``event_id`` is
armed when its form is shown and replaced only after an answer, so a double click, or a
resubmission after a lost answer, acts once: the engine's inbox refuses the second one.

This module holds the routes; who may open a terminal is ``terminal_access``, the open till
``terminal_till``, what they read ``admin_ui.queries.terminal``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Form, Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from starlette.responses import Response

from admin_ui import auth, domain_api
from admin_ui.frame import public_not_found
from admin_ui.pages.terminal_access import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    access_of,
    cookie_path,
    secure_cookie,
    signed_out_page,
)
from admin_ui.pages.terminal_till import Terminal
from admin_ui.queries.terminal import load_store
from admin_ui.rate_limit import RateLimit
from admin_ui.runtime import Runtime, transaction


def register(rt: Runtime) -> None:
    """The terminal page and its pairing route."""
    pairing_limit = RateLimit(rt.settings.pairing_limit_per_ip, 600.0)

    @ui.page("/terminal/{store_code}", title="Staff terminal")
    async def terminal_page(
        request: Request, store_code: str, pairing: str = ""
    ) -> Response | None:
        async with rt.session() as session:
            info = await load_store(session, store_code)
            if info is None:
                public_not_found("No store has this code.")
                return None
            access = await access_of(
                session,
                info,
                app.storage.user.get(auth.USER_KEY),
                request.cookies.get(DEVICE_COOKIE),
            )
            if access is not None and access.device_id is not None:
                await domain_api.mark_seen(session, access.device_id, datetime.now(UTC))
                await session.commit()
        if access is None:
            signed_out_page(info, pairing)
            return None
        Terminal(rt, info, access).build()
        return None

    @app.post("/terminal/{store_code}/pair", include_in_schema=False)
    async def pair_terminal(
        request: Request, store_code: str, code: str = Form("")
    ) -> RedirectResponse:
        back = cookie_path(store_code)
        client = request.client.host if request.client else "unknown"
        if not pairing_limit.hit(client):
            return RedirectResponse(f"{back}?pairing=limited", status_code=303)
        async with transaction(rt) as session:
            token = await domain_api.pair(session, store_code, code, datetime.now(UTC))
        if token is None:
            return RedirectResponse(f"{back}?pairing=failed", status_code=303)
        answer = RedirectResponse(back, status_code=303)
        answer.set_cookie(
            DEVICE_COOKIE,
            token,
            max_age=DEVICE_COOKIE_MAX_AGE,
            path=back,
            httponly=True,
            secure=secure_cookie(request),
            samesite="strict",
        )
        return answer
