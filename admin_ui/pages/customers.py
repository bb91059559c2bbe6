"""Customers: the list, one customer's page with their cards, the button that enrols a
customer at a store (``enrol_dialog``, which issues their card through the engine), and the
customer's data (CONTRACT.md 7.6): its export as a JSON download, and its erasure once the
admin typed the customer's email or one of their card numbers."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.formatting import local_day, local_when, number
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.card_list import card_listing
from admin_ui.pages.common import (
    danger_zone,
    delete_restore_actions,
    delete_with_counts,
    deleted_banner,
    guarded,
    parse_id,
    restore_with_counts,
    section,
)
from admin_ui.pages.enrol_dialog import LOCALES, enrol_dialog
from admin_ui.problems import DomainRefusal
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import CsvExport, PageRequest, Rows
from admin_ui.queries.customers import (
    CustomerRow,
    erasure_target,
    export_customers,
    get_customer,
    list_customers,
    update_customer,
)
from admin_ui.queries.merchants import merchant_filter_options, merchant_id_by_code
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Filter, Listing, tag


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

    async def export(request: PageRequest) -> CsvExport:
        async with rt.session() as session:
            return await export_customers(session, me, request)

    filters: list[Filter] = []
    if me.is_platform:
        # The merchant worked on: from the merchant's page link (?merchant=code), or chosen.
        async with rt.session() as session:
            options = await merchant_filter_options(session, me)
            chosen = await merchant_id_by_code(session, me, merchant) if merchant else None
        filters.append(
            Filter(
                "merchant",
                "Merchant",
                options,
                value=str(chosen) if chosen else "",
                all_label="All merchants",
            )
        )

    actions = delete_restore_actions(
        rt,
        me,
        "customer",
        question=lambda r: f"Delete {r.display_name}?",
        warning="They can be restored.",
        subject=lambda r: "Customer",
        marker=lambda r: r.id,
        reload=lambda: listing.load(),
    )

    async def enrolled(card_id: int) -> None:
        ui.navigate.to(f"/cards/{card_id}")

    def working_on() -> int | None:
        """The merchant the list is narrowed to (a platform admin's choice)."""
        if not me.is_platform:
            return me.merchant_id
        chosen = listing.filters["merchant"].value
        return int(chosen) if chosen else None

    with ui.row().classes("w-full"):
        tag(
            ui.button(
                "Enrol customer",
                icon="person_add",
                on_click=lambda: enrol_dialog(rt, me, enrolled, merchant_id=working_on()),
            ),
            "new-customer",
        )
    columns: list[Column[CustomerRow]] = [
        Column("Customer", lambda r: r.display_name, lambda r: f"/customers/{r.id}", sort="name"),
        # An erased customer's pseudonyms mean nothing to a person.
        Column("Email", lambda r: "erased" if r.erased_at else r.email or "—", sort="email"),
        Column(
            "Reference",
            lambda r: "erased" if r.erased_at else r.customer_ref or "—",
            sort="reference",
        ),
    ]
    if me.is_platform:
        columns.append(Column("Merchant", lambda r: r.merchant_name, sort="merchant"))
    columns += [
        Column("Cards", lambda r: number(r.cards), numeric=True),
        Column("Joined", lambda r: local_day(r.created_at, r.timezone), sort="joined"),
    ]
    listing: Listing[CustomerRow] = Listing(
        "customers",
        columns,
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search email, name, reference or merchant",
        noun="customers",
        empty_text="No customers yet. Enrol the first customer with the button above.",
        filters=filters,
        export=export,
    )
    await listing.load()


async def _customer_detail(rt: Runtime, me: Principal, customer: CustomerRow) -> None:
    with ui.row().classes("gap-4 text-slate-600"):
        ui.link(f"Merchant: {customer.merchant_name}", f"/merchants/{customer.merchant_id}")
        ui.label(f"Joined {local_when(customer.created_at, customer.timezone)}")
    deleted_banner(
        "customer",
        customer.deleted_at,
        customer.deleted_by,
        zone=customer.timezone,
        hidden_with="merchant" if customer.hidden_with_merchant else None,
    )
    if customer.erased_at is not None:
        erased = local_when(customer.erased_at, customer.timezone)
        tag(
            ui.label(
                f"This customer's personal data was erased on {erased}. "
                "Their cards are deactivated; the ledger keeps its amounts."
            ).classes("w-full bg-slate-100 border border-slate-300 rounded px-3 py-2"),
            "erased-banner",
        )
    if customer.deleted_at is not None:

        async def bring_back() -> None:
            if await restore_with_counts(rt, me, "customer", customer.id, "Customer"):
                ui.navigate.reload()

        tag(ui.button("Restore customer", on_click=bring_back), "customer-restore")
    elif customer.erased_at is None:
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

    _data_section(rt, me, customer)

    if customer.deleted_at is None:
        with danger_zone():
            ui.label(
                "Deleting the customer hides them with their cards. They can be restored."
            ).classes("text-sm text-slate-600")

            async def remove() -> None:
                if await delete_with_counts(
                    rt,
                    me,
                    "customer",
                    customer.id,
                    question=f"Delete {customer.display_name}?",
                    warning="They can be restored.",
                    subject="Customer",
                ):
                    ui.navigate.to("/customers")

            tag(
                ui.button("Delete customer", on_click=remove).props("color=negative outline"),
                "customer-delete",
            )


def _data_section(rt: Runtime, me: Principal, customer: CustomerRow) -> None:
    """The customer's data: download all of it, and erase it (not for an erased customer)."""
    with section("Customer's data"):
        ui.label(
            "Everything held about this customer (contact, cards, ledger, purchases, wallet "
            "registrations), as a JSON file they may ask for."
        ).classes("text-sm text-slate-600")

        async def download() -> None:
            data: list[bytes] = []

            async def work() -> None:
                async with rt.session() as session:
                    if await get_customer(session, me, customer.id) is None:
                        raise DomainRefusal("this customer does not exist")
                    data.append(await domain_api.export_customer(session, customer.id))

            if await guarded(work):
                ui.download.content(data[0], f"customer-{customer.id}.json", "application/json")

        with ui.row().classes("gap-2"):
            tag(
                ui.button("Export data", icon="download", on_click=download).props("outline"),
                "customer-export",
            )
            if customer.erased_at is None:
                tag(
                    ui.button(
                        "Erase customer",
                        icon="person_remove",
                        on_click=lambda: _erase(rt, me, customer),
                    ).props("color=negative outline"),
                    "customer-erase",
                )


async def _erase(rt: Runtime, me: Principal, customer: CustomerRow) -> None:
    """The erasure, behind a dialog where the admin types the customer's email or one of their
    card numbers (checked again on the server)."""
    dialog = ui.dialog().props("persistent")
    with dialog, tag(ui.card().classes("w-[28rem] max-w-full"), "erase-dialog"):
        ui.label("Erase this customer?").classes("text-lg font-medium")
        ui.label(
            "Their email, names, phone and reference are replaced by a pseudonym, their cards "
            "are deactivated (wallet passes voided) and their card links closed. The ledger "
            "keeps its amounts. This cannot be undone."
        ).classes("text-sm text-slate-600")
        typed = tag(
            ui.input("Type the customer's email or a card number").classes("w-full"),
            "erase-confirm-text",
        )
        errors = ErrorBox("erase-errors")
        with ui.row().classes("w-full justify-end gap-2"):
            tag(
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat"),
                "erase-cancel",
            )

            async def submit() -> None:
                errors.clear()
                done: list[domain_api.ErasureOutcome] = []
                try:
                    async with transaction(rt) as session:
                        await erasure_target(session, me, customer.id, typed.value or "")
                        done.append(
                            await domain_api.erase_customer(
                                session, customer.id, actor=me.actor, now=datetime.now(UTC)
                            )
                        )
                except DomainRefusal as exc:
                    errors.show(str(exc)[:1].upper() + str(exc)[1:] + ".")
                    return
                outcome = done[0]
                if outcome.already_erased:
                    ui.notify("This customer was already erased.", type="info")
                else:
                    ui.notify(
                        f"Customer erased: {len(outcome.deactivated)} card(s) deactivated.",
                        type="positive",
                    )
                dialog.submit(True)

            tag(ui.button("Erase", on_click=submit).props("color=negative"), "erase-submit")
    erased = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    if erased:
        ui.navigate.reload()
