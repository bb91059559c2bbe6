"""Self-enrolment of a store (``/enroll/{store_code}``), public: a customer gives an email and a
name and gets a card, through the engine's enrolment rules (channel ``self``), in English,
French, German or Luxembourgish (``?lang=`` or the browser's ``Accept-Language``).

The card is shown with its QR code (the card's QR token, which tills scan) and the wallet
buttons. The wallet routes under ``/card/{qr_token}/`` are served by the wallet module.
"""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import qrcode
from fastapi import Request
from nicegui import ui
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.i18n import LANGUAGE_NAMES, pick_language, t
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import tag
from domain.models import LoyaltyCard, LoyaltyProgram, Merchant, Store
from domain.rules.enrol import may_enrol
from streams.inputs import EnrollmentRequested
from streams.topics import Topic


def qr_data_url(text: str) -> str:
    """A PNG QR code of ``text`` as a ``data:`` URL."""
    image = qrcode.make(text, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def register(rt: Runtime) -> None:
    """The self-enrolment page."""

    @ui.page("/enroll/{store_code}")
    async def enroll_page(request: Request, store_code: str, lang: str = "") -> Response | None:
        language = pick_language(lang, request.headers.get("accept-language"))
        ui.page_title(t("title", language))
        ui.query("body").classes("bg-slate-100")
        async with rt.session() as session:
            row = (
                await session.execute(
                    select(
                        Store.code, Merchant.name, Merchant.allow_self_enrollment, LoyaltyProgram
                    )
                    .join(Merchant, Merchant.id == Store.merchant_id)
                    .outerjoin(LoyaltyProgram, LoyaltyProgram.merchant_id == Merchant.id)
                    .where(Store.code == store_code)
                )
            ).first()
        with ui.column().classes("w-full max-w-md mx-auto p-6 gap-4 items-stretch"):
            if row is None:
                ui.context.client.status_code = 404
                tag(ui.label(t("not_found", language)), "enroll-message").classes("text-xl")
                return None
            code, merchant_name, self_allowed, program = row
            colors = (
                (program.background_color, program.foreground_color)
                if program is not None
                else ("#1F2937", "#FFFFFF")
            )
            with (
                ui.card()
                .classes("w-full p-6 gap-1")
                .style(f"background:{colors[0]};color:{colors[1]}")
            ):
                ui.label(merchant_name).classes("text-2xl font-semibold")
                ui.label(t("title", language))
            refused = may_enrol("self", bool(self_allowed))
            if refused is not None:
                tag(ui.label(t(refused.value, language)), "enroll-message").classes(
                    "text-lg text-slate-700"
                )
                return None
            if program is None or not program.is_active:
                tag(ui.label(t("program_unavailable", language)), "enroll-message").classes(
                    "text-lg text-slate-700"
                )
                return None
            _Form(rt, code, merchant_name, language).build()
        return None


class _Form:
    """The enrolment form, then the card."""

    def __init__(self, rt: Runtime, store_code: str, merchant_name: str, lang: str) -> None:
        self.rt = rt
        self.store_code = store_code
        self.merchant_name = merchant_name
        self.lang = lang
        # The form's idempotency key, armed when it is shown: a double submit enrols once.
        self.event_id = uuid.uuid4()
        self.busy = False

    def build(self) -> None:
        lang = self.lang
        with ui.card().classes("w-full gap-3") as self.card:
            ui.label(t("intro", lang, merchant=self.merchant_name)).classes("text-slate-700")
            self.email = tag(
                ui.input(t("email", lang)).props("type=email autocomplete=email outlined"),
                "enroll-email",
            )
            self.first = tag(
                ui.input(t("first_name", lang)).props("autocomplete=given-name outlined"),
                "enroll-first-name",
            )
            self.last = tag(
                ui.input(t("last_name", lang)).props("autocomplete=family-name outlined"),
                "enroll-last-name",
            )
            self.locale = tag(
                ui.select(LANGUAGE_NAMES, label=t("language", lang), value=lang).props("outlined"),
                "enroll-locale",
            )
            self.message = tag(ui.label(""), "enroll-error").classes("text-red-700")
            self.button = tag(
                ui.button(t("submit", lang), on_click=self.submit).classes("w-full"),
                "enroll-submit",
            )
        self.result = ui.column().classes("w-full items-center gap-3")

    async def submit(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            await self._submit()
        finally:
            self.busy = False

    async def _submit(self) -> None:
        lang = self.lang
        self.message.text = ""
        customer: dict[str, Any] = {"locale": self.locale.value or lang}
        email = (self.email.value or "").strip()
        customer["email"] = email
        for key, element in (("first_name", self.first), ("last_name", self.last)):
            value = (element.value or "").strip()
            if value:
                customer[key] = value
        now = datetime.now(UTC)
        try:
            message = EnrollmentRequested.model_validate(
                {
                    "event_id": str(self.event_id),
                    "type": "enrollment.requested",
                    "occurred_at": now.isoformat(),
                    "store_code": self.store_code,
                    "customer": customer,
                    "channel": "self",
                }
            )
        except ValidationError as exc:
            fields = {str(e["loc"][-1]) for e in exc.errors()}
            if fields & {"email", "customer"} or not email:
                self.message.text = t("invalid_email", lang)
            else:
                self.message.text = t("invalid_name", lang)
            return
        async with transaction(self.rt) as session:
            outcome = await domain_api.apply_events(
                session, [domain_api.inbound(Topic.ENROLLMENTS.value, message, actor="self")], now
            )
            number = outcome.results[0].card_number if outcome.results else None
            token = (
                await session.scalar(
                    select(LoyaltyCard.qr_token).where(LoyaltyCard.card_number == number)
                )
                if number
                else None
            )
            links = await domain_api.wallet_links(session, token) if token else None
        if outcome.duplicates:
            return  # the first submit of this form is showing its answer
        result = outcome.results[0]
        if result.status != "applied" or number is None or token is None or links is None:
            code = result.reasons[0].value if result.reasons else "error"
            key = code if code in ("self_enrollment_disabled",) else "program_unavailable"
            self.message.text = t(key, lang)
            return
        welcome = "already_enrolled" if "already_enrolled" in result.reasons else "welcome"
        self.card.visible = False
        self._show_card(t(welcome, lang), number, token, links)

    def _show_card(
        self, headline: str, number: str, token: str, links: domain_api.WalletLinks
    ) -> None:
        lang = self.lang
        self.result.clear()
        with self.result, ui.card().classes("w-full items-center gap-3 p-6"):
            tag(ui.label(headline), "enroll-message").classes("text-xl font-medium text-center")
            tag(ui.image(qr_data_url(token)).classes("w-56 h-56"), "enroll-qr")
            ui.label(t("show_at_till", lang)).classes("text-sm text-slate-600 text-center")
            ui.label(t("card_number", lang)).classes("text-xs uppercase text-slate-500")
            tag(ui.label(number), "enroll-card-number").classes("text-2xl font-mono")
            with ui.column().classes("w-full gap-2"):
                if links.apple:
                    tag(ui.link(t("apple_wallet", lang), links.apple), "enroll-apple").classes(
                        "w-full text-center rounded bg-black text-white py-2 no-underline"
                    )
                if links.google:
                    tag(ui.link(t("google_wallet", lang), links.google), "enroll-google").classes(
                        "w-full text-center rounded bg-blue-700 text-white py-2 no-underline"
                    )
                tag(ui.link(t("open_card", lang), links.card_page), "enroll-card-page").classes(
                    "w-full text-center py-2"
                )
