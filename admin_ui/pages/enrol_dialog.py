"""Enrolling a customer at a store from the panel (channel ``staff``): the dialog the
customers' and the cards' pages open. The card is issued through the engine's enrolment
rules, as a till would.

The store is picked (searched by typing) among the stores of the merchant being worked on:
the merchant admin's own, or the one a platform admin has narrowed the page to, or chooses
first in the dialog. The server checks the store again when the form is sent, whatever the
page sent."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from admin_ui import domain_api, texts
from admin_ui.problems import DomainRefusal
from admin_ui.queries import cards
from admin_ui.queries.admins import Principal
from admin_ui.queries.merchants import merchant_choices
from admin_ui.queries.stores import enrolment_store, store_choices
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import ErrorBox, tag
from streams.inputs import EnrollmentRequested
from streams.topics import Topic

LOCALES = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}


async def enrol_dialog(
    rt: Runtime,
    me: Principal,
    on_done: Callable[[int], Awaitable[None]],
    *,
    merchant_id: int | None = None,
) -> None:
    """Enrol a customer at a store (channel ``staff``); ``on_done`` gets the card's id.

    ``merchant_id`` is the merchant being worked on (a merchant admin's own is always it);
    without one, a platform admin picks the merchant first, then one of its stores.
    """
    scope = merchant_id if me.is_platform else me.merchant_id
    async with rt.session() as session:
        merchants = await merchant_choices(session, me) if me.is_platform and not scope else {}
        stores = await store_choices(session, me, scope) if scope else {}
    action_id = uuid.uuid4()  # armed when the form is shown: a double click enrols once
    with ui.dialog() as dialog, ui.card().classes("w-[30rem] max-w-full"):
        ui.label("Enrol a customer").classes("text-lg font-medium")
        merchant = tag(
            ui.select(merchants, label="Merchant", with_input=True).classes("w-full"),
            "enrol-merchant",
        )
        merchant.visible = bool(merchants)
        store = tag(
            ui.select(
                stores,
                label="Store",
                value=next(iter(stores), None),
                with_input=True,
            )
            .props('hint="Type to search the stores"')
            .classes("w-full"),
            "enrol-store",
        )
        if merchants:
            store.disable()

            async def merchant_chosen() -> None:
                chosen = merchant.value
                async with rt.session() as session:
                    found = await store_choices(session, me, chosen) if chosen else {}
                store.set_options(found, value=next(iter(found), None))
                store.set_enabled(bool(found))

            merchant.on_value_change(merchant_chosen)
        email = tag(ui.input("Email").classes("w-full"), "enrol-email")
        ref = tag(ui.input("Customer reference (optional)").classes("w-full"), "enrol-ref")
        with ui.row().classes("w-full no-wrap"):
            first = tag(ui.input("First name").classes("grow min-w-0"), "enrol-first-name")
            last = tag(ui.input("Last name").classes("grow min-w-0"), "enrol-last-name")
        locale = tag(
            ui.select(LOCALES, label="Language", value="en").classes("w-48"), "enrol-locale"
        )
        errors = ErrorBox("enrol-errors")

        async def enrol() -> None:
            errors.clear()
            working_on = scope or merchant.value
            if merchants and working_on is None:
                errors.show("Choose a merchant, then one of its stores.")
                return
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
            try:
                async with transaction(rt) as session:
                    # Checked here, on the server: the store is one of the merchant's.
                    await enrolment_store(session, me, str(store.value), working_on)
                    outcome = await domain_api.apply_events(
                        session,
                        [domain_api.inbound(Topic.ENROLLMENTS.value, message, actor=me.actor)],
                        now,
                    )
                    card_id = None
                    number = outcome.results[0].card_number if outcome.results else None
                    if number:
                        card_id = await cards.card_id(session, number)
            except DomainRefusal as exc:
                errors.show(str(exc)[:1].upper() + str(exc)[1:] + ".")
                return
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
