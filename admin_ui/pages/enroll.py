"""Self-enrolment of a store (``/enroll/{store_code}``), public: a customer gives an email and a
name, and the card's link is sent to that email. In English, French, German or Luxembourgish
(``?lang=`` or the browser's ``Accept-Language``).

The page answers the same whether the email is new or already has a card: it never shows a
card, a number or a link, since anyone can type anyone's email. The card link goes only to
the address's inbox (``domain_api.send_card_link``), sent in the background so the answer's
timing does not tell either. Without SMTP configured, the page says to ask at the counter.
Answers are rate-limited per client address and per email.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request
from nicegui import background_tasks, ui
from pydantic import ValidationError
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.i18n import LANGUAGE_NAMES, pick_language, t
from admin_ui.public_widgets import language_switch, privacy_link
from admin_ui.queries.cards import active_link_token
from admin_ui.queries.enrolment import enrolment_store
from admin_ui.rate_limit import RateLimit
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import tag
from streams.inputs import EnrollmentRequested
from streams.topics import Topic


class Limits:
    """The enrol form's rate limits, shared by every page of the process."""

    def __init__(self, rt: Runtime) -> None:
        settings = rt.settings
        window = float(settings.enroll_limit_window_s)
        self.per_ip = RateLimit(settings.enroll_limit_per_ip, window)
        self.per_email = RateLimit(settings.enroll_limit_per_email, window)

    def hit(self, client: str, email: str) -> bool:
        """Count one answer for this client and email; False when either is over its limit."""
        if not self.per_ip.allowed(client) or not self.per_email.allowed(email):
            return False
        return self.per_ip.hit(client) and self.per_email.hit(email)


def register(rt: Runtime) -> None:
    """The self-enrolment page."""
    limits = Limits(rt)

    @ui.page("/enroll/{store_code}")
    async def enroll_page(request: Request, store_code: str, lang: str = "") -> Response | None:
        language = pick_language(lang, request.headers.get("accept-language"))
        ui.page_title(t("title", language))
        ui.query("body").classes("bg-slate-100")
        async with rt.session() as session:
            store = await enrolment_store(session, store_code)
        with ui.column().classes("w-full max-w-md mx-auto px-4 py-6 gap-4 items-stretch"):
            with ui.row().classes("w-full justify-end"):
                language_switch(language, f"/enroll/{quote(store_code, safe='')}")
            if store is None:
                ui.context.client.status_code = 404
                tag(ui.label(t("not_found", language)), "enroll-message").classes("text-xl")
                return None
            background, foreground = store.colors
            with (
                ui.card()
                .classes("w-full p-6 gap-1")
                .style(f"background:{background};color:{foreground}")
            ):
                ui.label(store.merchant_name).classes("text-2xl font-semibold")
                ui.label(t("title", language))
            refused = domain_api.self_enrolment_refusal(store.self_enrollment)
            if refused is not None:
                tag(ui.label(t(refused, language)), "enroll-message").classes(
                    "text-lg text-slate-700"
                )
                return None
            if not store.program_active:
                tag(ui.label(t("program_unavailable", language)), "enroll-message").classes(
                    "text-lg text-slate-700"
                )
                return None
            client = request.client.host if request.client else "unknown"
            _Form(rt, limits, client, store.code, store.merchant_name, language).build()
            with ui.row().classes("w-full justify-center"):
                privacy_link(store.privacy_url, language)
        return None


class _Form:
    """The enrolment form, then the same answer for every email."""

    def __init__(
        self,
        rt: Runtime,
        limits: Limits,
        client: str,
        store_code: str,
        merchant_name: str,
        lang: str,
    ) -> None:
        self.rt = rt
        self.limits = limits
        self.client = client
        self.store_code = store_code
        self.merchant_name = merchant_name
        self.lang = lang
        # The form's idempotency key, armed when it is shown: a double submit enrols once.
        self.event_id = uuid.uuid4()
        self.busy = False
        self.done = False

    def build(self) -> None:
        """Draw the form."""
        lang = self.lang
        with ui.card().classes("w-full gap-3") as self.card:
            ui.label(t("intro", lang, merchant=self.merchant_name)).classes("text-slate-700")
            self.email = tag(
                ui.input(t("email", lang))
                .props("type=email autocomplete=email outlined")
                .classes("w-full"),
                "enroll-email",
            )
            self.first = tag(
                ui.input(t("first_name", lang))
                .props("autocomplete=given-name outlined")
                .classes("w-full"),
                "enroll-first-name",
            )
            self.last = tag(
                ui.input(t("last_name", lang))
                .props("autocomplete=family-name outlined")
                .classes("w-full"),
                "enroll-last-name",
            )
            self.locale = tag(
                ui.select(LANGUAGE_NAMES, label=t("language", lang), value=lang)
                .props("outlined")
                .classes("w-full"),
                "enroll-locale",
            )
            self.message = tag(ui.label(""), "enroll-error").classes("text-red-700")
            self.button = tag(
                ui.button(t("submit", lang), on_click=self.submit).classes("w-full"),
                "enroll-submit",
            )
        self.result = ui.column().classes("w-full items-center gap-3")

    async def submit(self) -> None:
        """Enrol once, whatever the clicks."""
        if self.busy or self.done:
            return
        self.busy = True
        try:
            await self._submit()
        finally:
            self.busy = False

    async def _submit(self) -> None:
        lang = self.lang
        self.message.text = ""
        locale = self.locale.value or lang
        customer: dict[str, Any] = {"locale": locale}
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
        if not self.limits.hit(self.client, email.lower()):
            self.message.text = t("rate_limited", lang)
            return
        async with transaction(self.rt) as session:
            outcome = await domain_api.apply_events(
                session, [domain_api.inbound(Topic.ENROLLMENTS.value, message, actor="self")], now
            )
            result = outcome.results[0] if outcome.results else None
            number = result.card_number if result is not None else None
            token = await active_link_token(session, number) if number else None
        if outcome.duplicates:
            return  # the first submit of this form is showing its answer
        if result is not None and set(result.reasons) & {
            "self_enrollment_disabled",
            "store_not_found",
            "program_not_found",
            "program_inactive",
        }:
            # The store's answers, the same for every email: they tell nothing of a person.
            code = result.reasons[0].value
            self.message.text = t(
                "self_enrollment_disabled"
                if code == "self_enrollment_disabled"
                else "program_unavailable",
                lang,
            )
            return
        configured = domain_api.mail_configured(self.rt.settings)
        if configured and token is not None:
            sending = domain_api.send_card_link(
                self.rt.settings,
                to=email,
                language=locale,
                merchant_name=self.merchant_name,
                link_token=token,
            )
            background_tasks.create(sending, name="enrol-mail")
        self.done = True
        self.card.visible = False
        self._answer(configured)

    def _answer(self, mailed: bool) -> None:
        lang = self.lang
        self.result.clear()
        with self.result, ui.card().classes("w-full items-center gap-3 p-6"):
            if mailed:
                tag(ui.icon("mark_email_read").classes("text-5xl text-emerald-700"), "enroll-icon")
                tag(ui.label(t("check_inbox", lang)), "enroll-message").classes(
                    "text-xl font-medium text-center"
                )
                ui.label(t("check_inbox_detail", lang)).classes(
                    "text-sm text-slate-600 text-center"
                )
            else:
                tag(ui.label(t("ask_at_counter", lang)), "enroll-message").classes(
                    "text-xl font-medium text-center"
                )
