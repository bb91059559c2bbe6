"""The list of cards (all of them, or one customer's): sortable headings, the status and
program filters, search as you type, pages, the CSV export, and each row's menu."""

from __future__ import annotations

from admin_ui.formatting import local_when, number
from admin_ui.pages.common import delete_restore_actions
from admin_ui.queries.admins import Principal
from admin_ui.queries.card_list import (
    CARD_STATUSES,
    CardRow,
    export_cards,
    list_cards,
    program_filter_options,
)
from admin_ui.queries.common import CsvExport, PageRequest, Rows
from admin_ui.runtime import Runtime
from admin_ui.widgets import Column, Filter, Listing


def signed(value: int) -> str:
    """A change with its sign: ``+1,200``, ``-50``."""
    return ("+" if value > 0 else "") + number(value)


async def card_listing(rt: Runtime, me: Principal, *, customer_id: int | None = None) -> None:
    """The list of cards (of one customer when given)."""

    async def fetch(request: PageRequest) -> Rows[CardRow]:
        async with rt.session() as session:
            return await list_cards(session, me, request, customer_id=customer_id)

    async def export(request: PageRequest) -> CsvExport:
        async with rt.session() as session:
            return await export_cards(session, me, request, customer_id=customer_id)

    filters = [Filter("status", "Status", CARD_STATUSES, all_label="Any status")]
    if customer_id is None:
        async with rt.session() as session:
            programs = await program_filter_options(session, me)
        if len(programs) > 1:
            filters.append(Filter("program", "Program", programs, all_label="All programs"))

    actions = delete_restore_actions(
        rt,
        me,
        "card",
        question=lambda r: f"Delete card {r.card_number}?",
        warning="It can be restored.",
        subject=lambda r: f"Card {r.card_number}",
        marker=lambda r: r.card_number,
        reload=lambda: listing.load(),
    )

    columns: list[Column[CardRow]] = [
        Column("Card", lambda r: r.card_number, lambda r: f"/cards/{r.id}", sort="number"),
    ]
    if customer_id is None:
        columns.append(
            Column(
                "Customer",
                lambda r: r.customer,
                lambda r: f"/customers/{r.customer_id}",
                sort="customer",
            )
        )
    if me.is_platform and customer_id is None:
        columns.append(Column("Merchant", lambda r: r.merchant_name, sort="merchant"))
    columns += [
        Column("Stamps", lambda r: number(r.stamp_count), sort="stamps", numeric=True),
        Column("Points", lambda r: number(r.points_balance), sort="points", numeric=True),
        Column("Status", lambda r: r.status, sort="status"),
        Column("Issued", lambda r: local_when(r.created_at, r.timezone), sort="issued"),
    ]
    listing: Listing[CardRow] = Listing(
        "cards",
        columns,
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Card number, QR text, email or merchant",
        noun="cards",
        empty_text=(
            "No cards yet. Issue the first card with the button above."
            if customer_id is None
            else "This customer has no card."
        ),
        filters=filters,
        export=export,
    )
    await listing.load()
