"""Customers: the list, one customer's page, and enrolling a customer at a store (which issues
their card through the engine's enrolment rules, as a till would)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from nicegui import ui
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from admin_ui import auth, domain_api, records, texts
from admin_ui.auth import Principal
from admin_ui.frame import frame, not_found
from admin_ui.pages.common import delete_restore_actions, deleted_banner, guarded, parse_id, section
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Listing, PageRequest, Rows, confirm, tag
from domain.models import LoyaltyCard, Merchant, Store
from streams.inputs import EnrollmentRequested
from streams.topics import Topic

LOCALES = {"en": "English", "fr": "Français", "de": "Deutsch", "lb": "Lëtzebuergesch"}


def register(rt: Runtime) -> None:
    """The customer pages."""

    @ui.page("/customers")
    async def customers_page(request: Request, merchant: str = "") -> Response | None:
        me = await auth.current_principal(rt)
        if me is None:
            return auth.to_login(request)
        with frame(me, "Customers", active="customers"):
            await _customer_list(rt, me, merchant)
        return None

    @ui.page("/customers/{customer_id}")
    async def customer_page(request: Request, customer_id: str) -> Response | None:
        me = await auth.current_principal(rt)
        if me is None:
            return auth.to_login(request)
        wanted = parse_id(customer_id)
        async with rt.session() as session:
            customer = await records.get_customer(session, me, wanted) if wanted else None
        if customer is None:
            not_found(me)
            return None
        with frame(me, f"Customer {customer.display_name}", active="customers"):
            await _customer_detail(rt, me, customer)
        return None


async def store_choices(rt: Runtime, me: Principal) -> dict[str, str]:
    """Live stores this admin may enrol at, ``{code: "code — merchant"}``."""
    async with rt.session() as session:
        query = select(Store.code, Store.name, Merchant.code).join(
            Merchant, Merchant.id == Store.merchant_id
        )
        if not me.is_platform:
            query = query.where(Store.merchant_id == me.merchant_id)
        rows = (await session.execute(query.order_by(Merchant.code, Store.code))).all()
    return {r[0]: f"{r[0]} — {r[1]} ({r[2]})" for r in rows}


async def enrol_dialog(
    rt: Runtime, me: Principal, on_done: Callable[[int], Awaitable[None]]
) -> None:
    """Enrol a customer at a store (channel ``staff``); ``on_done`` gets the card's id."""
    stores = await store_choices(rt, me)
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
                    card_id = await session.scalar(
                        select(LoyaltyCard.id).where(LoyaltyCard.card_number == number)
                    )
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


async def _customer_list(rt: Runtime, me: Principal, merchant: str) -> None:
    async def fetch(request: PageRequest) -> Rows[records.CustomerRow]:
        async with rt.session() as session:
            return await records.list_customers(session, me, request)

    actions = delete_restore_actions(
        rt,
        me,
        "customer",
        question=lambda r: f"Delete customer {r.display_name}?",
        warning=("Their cards are hidden with them. They can be restored."),
        subject=lambda r: "Customer",
        marker=lambda r: r.id,
        reload=lambda: listing.load(),
    )

    async def enrolled(card_id: int) -> None:
        ui.navigate.to(f"/cards/{card_id}")

    with ui.row().classes("w-full"):
        tag(
            ui.button(
                "Enrol customer", icon="person_add", on_click=lambda: enrol_dialog(rt, me, enrolled)
            ),
            "new-customer",
        )
    listing: Listing[records.CustomerRow] = Listing(
        "customers",
        [
            Column("Customer", lambda r: r.display_name, lambda r: f"/customers/{r.id}"),
            Column("Email", lambda r: r.email or "—"),
            Column("Reference", lambda r: r.customer_ref or "—"),
            Column("Merchant", lambda r: r.merchant_code),
            Column("Cards", lambda r: str(r.cards)),
        ],
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search email, name, reference or merchant",
    )
    if merchant:
        listing.search.value = merchant
    await listing.load()


async def _customer_detail(rt: Runtime, me: Principal, customer: records.CustomerRow) -> None:
    ui.label(f"Merchant: {customer.merchant_code}").classes("text-slate-600")
    deleted_banner("customer", customer.deleted_at)
    if customer.deleted_at is not None:

        async def bring_back() -> None:
            async def work() -> None:
                async with transaction(rt) as session:
                    await records.restore(session, me, "customer", customer.id)

            if await guarded(work, success="Customer restored."):
                ui.navigate.reload()

        tag(ui.button("Restore customer", on_click=bring_back), "customer-restore")
    else:
        with section("Contact"):
            fields = {
                "email": ui.input("Email", value=customer.email or ""),
                "customer_ref": ui.input("Customer reference", value=customer.customer_ref or ""),
                "first_name": ui.input("First name", value=customer.first_name or ""),
                "last_name": ui.input("Last name", value=customer.last_name or ""),
                "phone": ui.input("Phone", value=customer.phone or ""),
                "locale": ui.select(LOCALES, label="Language", value=customer.locale),
            }
            for key, element in fields.items():
                tag(element.classes("w-full"), f"customer-{key}")

            async def save() -> None:
                data = {key: element.value for key, element in fields.items()}

                async def work() -> None:
                    async with transaction(rt) as session:
                        await records.update_customer(session, me, customer.id, data)

                await guarded(work, success="Customer saved.")

            tag(ui.button("Save", on_click=save), "customer-save")

    with section("Cards"):
        from admin_ui.pages.cards import card_listing

        await card_listing(rt, me, customer_id=customer.id)

    if customer.deleted_at is None:
        with section("Delete"):

            async def remove() -> None:
                if not await confirm(
                    f"Delete customer {customer.display_name}?",
                    "Their cards are hidden with them. They can be restored.",
                ):
                    return

                async def work() -> None:
                    async with transaction(rt) as session:
                        await records.delete(session, me, "customer", customer.id)

                if await guarded(work, success="Customer deleted."):
                    ui.navigate.to("/customers")

            tag(
                ui.button("Delete customer", on_click=remove).props("color=negative outline"),
                "customer-delete",
            )
