"""Enrolling a customer at a store from the panel (channel ``staff``): the dialog the
customers' and the cards' pages open. The card is issued through the engine's enrolment
rules, as a till would."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from admin_ui import domain_api, texts
from admin_ui.queries import cards
from admin_ui.queries.admins import Principal
from admin_ui.queries.stores import store_choices
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import ErrorBox, tag
from streams.inputs import EnrollmentRequested
from streams.topics import Topic

LOCALES = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}


async def enrol_dialog(
    rt: Runtime, me: Principal, on_done: Callable[[int], Awaitable[None]]
) -> None:
    """Enrol a customer at a store (channel ``staff``); ``on_done`` gets the card's id."""
    async with rt.session() as session:
        stores = await store_choices(session, me)
    action_id = uuid.uuid4()  # armed when the form is shown: a double click enrols once
    with ui.dialog() as dialog, ui.card().classes("w-[30rem]"):
        ui.label("Enrol a customer").classes("text-lg font-medium")
        store = tag(
            ui.select(stores, label="Store", value=next(iter(stores), None)).classes("w-full"),
            "enrol-store",
        )
        email = tag(ui.input("Email").classes("w-full"), "enrol-email")
        ref = tag(ui.input("Customer reference (optional)").classes("w-full"), "enrol-ref")
        with ui.row().classes("w-full no-wrap"):
            first = tag(ui.input("First name").classes("grow"), "enrol-first-name")
            last = tag(ui.input("Last name").classes("grow"), "enrol-last-name")
        locale = tag(ui.select(LOCALES, label="Language", value="en"), "enrol-locale")
        errors = ErrorBox("enrol-errors")

        async def enrol() -> None:
            errors.clear()
            if store.value is None:
                errors.show("Choose a store.")
                return
            customer: dict[str, Any] = {"locale": locale.value}
            for key, element in (
                ("email", email),
                ("customer_ref", ref),
                ("first_name", first),
                ("last_name", last),
            ):
                value = (element.value or "").strip()
                if value:
                    customer[key] = value
            now = datetime.now(UTC)
            try:
                message = EnrollmentRequested.model_validate(
                    {
                        "event_id": str(action_id),
                        "type": "enrollment.requested",
                        "occurred_at": now.isoformat(),
                        "store_code": store.value,
                        "customer": customer,
                        "channel": "staff",
                    }
                )
            except ValidationError as exc:
                errors.show(
                    "Please correct: "
                    + "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                    )
                )
                return
            async with transaction(rt) as session:
                outcome = await domain_api.apply_events(
                    session,
                    [domain_api.inbound(Topic.ENROLLMENTS.value, message, actor=me.actor)],
                    now,
                )
                card_id = None
                number = outcome.results[0].card_number if outcome.results else None
                if number:
                    card_id = await cards.card_id(session, number)
            if outcome.duplicates:
                errors.show("This enrolment was already sent.")
                return
            result = outcome.results[0]
            if result.status != "applied" or card_id is None:
                errors.show(" ".join(texts.reasons(result.reasons)) or "Refused.")
                return
            note = " ".join(texts.reasons(result.reasons))
            ui.notify(note or f"Card {result.card_number} issued.", type="positive")
            dialog.close()
            await on_done(card_id)

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            tag(ui.button("Enrol", on_click=enrol), "enrol-submit")
    dialog.open()
