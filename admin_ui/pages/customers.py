"""Customers: the list, one customer's page with their cards, and the button that enrols a
customer at a store (``enrol_dialog``, which issues their card through the engine)."""

from __future__ import annotations

from nicegui import ui
from starlette.responses import Response

from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.cards import card_listing
from admin_ui.pages.common import delete_restore_actions, deleted_banner, guarded, parse_id, section
from admin_ui.pages.enrol_dialog import LOCALES, enrol_dialog
from admin_ui.queries import deletion
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.customers import CustomerRow, get_customer, list_customers, update_customer
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, Listing, confirm, tag


def register(rt: Runtime) -> None:
    """The customer pages."""

    @admin_page(rt, "/customers")
    async def customers_page(me: Principal, merchant: str = "") -> Response | None:
        with frame(me, "Customers", active="customers"):
            await _customer_list(rt, me, merchant)
        return None

    @admin_page(rt, "/customers/{customer_id}")
    async def customer_page(me: Principal, customer_id: str) -> Response | None:
        wanted = parse_id(customer_id)
        async with rt.session() as session:
            customer = await get_customer(session, me, wanted) if wanted else None
        if customer is None:
            not_found(me)
            return None
        with frame(me, f"Customer {customer.display_name}", active="customers"):
            await _customer_detail(rt, me, customer)
        return None


async def _customer_list(rt: Runtime, me: Principal, merchant: str) -> None:
    async def fetch(request: PageRequest) -> Rows[CustomerRow]:
        async with rt.session() as session:
            return await list_customers(session, me, request)

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
    listing: Listing[CustomerRow] = Listing(
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


async def _customer_detail(rt: Runtime, me: Principal, customer: CustomerRow) -> None:
    ui.label(f"Merchant: {customer.merchant_code}").classes("text-slate-600")
    deleted_banner("customer", customer.deleted_at)
    if customer.deleted_at is not None:

        async def bring_back() -> None:
            async def work() -> None:
                async with transaction(rt) as session:
                    await deletion.restore(session, me, "customer", customer.id)

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
                        await update_customer(session, me, customer.id, data)

                await guarded(work, success="Customer saved.")

            tag(ui.button("Save", on_click=save), "customer-save")

    with section("Cards"):
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
                        await deletion.delete(session, me, "customer", customer.id)

                if await guarded(work, success="Customer deleted."):
                    ui.navigate.to("/customers")

            tag(
                ui.button("Delete customer", on_click=remove).props("color=negative outline"),
                "customer-delete",
            )
