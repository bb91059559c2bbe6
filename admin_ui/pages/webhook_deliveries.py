"""An endpoint's deliveries on its page, filtered by status, newest first (lines under column
headings on a wide screen, a card each on a phone), with the last reply of each (an endpoint's
error text is shown with its control characters escaped), "Re-send" on each parked one and
"Re-send all parked" behind a confirmation.

A re-sent delivery is pending again: the dispatcher tries it anew, in order per card.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from nicegui import ui

from admin_ui import texts
from admin_ui.formatting import local_when, number
from admin_ui.pages.common import guarded, section
from admin_ui.queries import webhooks
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.webhooks import DeliveryRow, DeliveryStatus, EndpointRow
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Listing, confirm, tag

FILTERS: dict[str, str] = {
    "all": "All",
    "parked": "Parked",
    "pending": "Pending",
    "delivered": "Delivered",
}
STATUS_COLORS = {"pending": "warning", "parked": "negative", "delivered": "positive"}
Resend = Callable[[DeliveryRow], Awaitable[None]]
_HEADINGS = {
    "status": "Status",
    "when": "Queued",
    "event": "Event",
    "card": "Card",
    "attempts": "Attempts",
    "reply": "Last reply",
}
# Widths from a laptop's width on; the last reply takes the rest.
_WIDTHS = {
    "status": "lg:w-24",
    "when": "lg:w-48",
    "event": "lg:w-44",
    "card": "lg:w-36",
    "attempts": "lg:w-16",
}
_HEAD = "text-xs uppercase tracking-wide text-slate-500"


def _queued(count: int) -> str:
    return "1 delivery queued again." if count == 1 else f"{number(count)} deliveries queued again."


async def deliveries_section(
    rt: Runtime, me: Principal, endpoint: EndpointRow, zone: str, dialogs: ui.element
) -> None:
    """The endpoint's deliveries; parked ones first when it has any, as they need a person."""
    parked = [endpoint.parked]

    async def fetch(request: PageRequest) -> Rows[DeliveryRow]:
        chosen = status.value if status.value in webhooks.DELIVERY_STATUSES else None
        wanted: DeliveryStatus | None = chosen
        async with rt.session() as session:
            return await webhooks.list_deliveries(session, me, endpoint.id, wanted, request)

    async def refresh() -> None:
        """The listing and the parked count again, after a re-send."""
        async with rt.session() as session:
            found = await webhooks.find_endpoint(session, me, endpoint.id, now=datetime.now(UTC))
        parked[0] = found[0].parked if found else 0
        resend_all.text = f"Re-send all parked ({number(parked[0])})"
        resend_all.visible = parked[0] > 0
        await listing.load()

    async def resend(ids: Sequence[int] | None) -> int | None:
        done: list[int] = []

        async def work() -> None:
            async with transaction(rt) as session:
                done.append(await webhooks.resend(session, me, endpoint.id, ids))

        return done[0] if await guarded(work) and done else None

    async def resend_one(row: DeliveryRow) -> None:
        count = await resend([row.id])
        if count:
            ui.notify("Delivery queued again: it is sent in a moment.", type="positive")
        elif count == 0:
            ui.notify("That delivery is not parked any more.", type="warning")
        await refresh()

    async def resend_parked() -> None:
        with dialogs:
            asked = await confirm(
                f"Re-send all {number(parked[0])} parked deliveries?",
                "They are queued again and retried for up to 24 hours more, in order per card.",
                ok="Re-send",
            )
        if not asked:
            return
        count = await resend(None)
        if count is not None:
            ui.notify(_queued(count), type="positive" if count else "warning")
        await refresh()

    def rows(items: Sequence[DeliveryRow]) -> None:
        _deliveries(items, zone, resend_one)

    with section("Deliveries"):
        ui.label(f"Newest first. Times on the merchant's clock ({zone}).").classes(
            "text-sm text-slate-600"
        )
        with ui.row().classes("w-full items-center gap-2"):
            status = ui.toggle(FILTERS, value="parked" if endpoint.parked else "all")
            tag(status.props("dense no-caps"), "webhook-status-filter")
            ui.space()
            resend_all = ui.button(
                f"Re-send all parked ({number(endpoint.parked)})",
                icon="replay",
                on_click=resend_parked,
            ).props("outline")
            tag(resend_all, "webhook-resend-all")
            resend_all.visible = endpoint.parked > 0
        listing: Listing[DeliveryRow] = Listing(
            "webhook-deliveries",
            [],
            fetch,
            deleted_switches=False,
            placeholder="Search card, event id or type",
            empty_text="No delivery here.",
            rows=rows,
        )

        async def filtered() -> None:
            listing.page = 1
            await listing.load()

        status.on_value_change(filtered)
        await listing.load()


def _deliveries(items: Sequence[DeliveryRow], zone: str, resend_one: Resend) -> None:
    """On a wide screen a line per delivery under column headings; on a phone a card per
    delivery with each value named, so the error and "Re-send" never hide off the screen."""
    with ui.column().classes(
        "w-full gap-2 lg:gap-0 lg:border lg:border-slate-200 lg:rounded lg:bg-white"
    ):
        # A plain element: Quasar's own "hidden" would beat the breakpoint's "flex".
        heading = "flex max-lg:hidden w-full gap-4 px-4 py-2 border-b border-slate-200"
        with ui.element("div").classes(heading):
            for key, label in _HEADINGS.items():
                ui.label(label).classes(f"{_HEAD} {_WIDTHS.get(key, 'flex-1')}")
        for item in items:
            _line(item, zone, resend_one)


def _line(row: DeliveryRow, zone: str, resend_one: Resend) -> None:
    line = ui.element("div").classes(
        "w-full flex flex-wrap lg:flex-nowrap items-start gap-x-4 gap-y-2 p-3 lg:px-4 bg-white "
        "rounded border border-slate-200 lg:rounded-none lg:border-0 lg:border-b lg:last:border-b-0"
    )
    with tag(line, "webhook-deliveries-row"):
        with ui.row().classes(
            f"w-full items-center gap-2 lg:flex-col lg:items-start lg:gap-1 {_WIDTHS['status']}"
        ):
            badge = ui.badge(texts.delivery_status(row.status))
            badge.props(f"color={STATUS_COLORS.get(row.status, 'grey')}")
            tag(badge, f"webhook-delivery-status-{row.id}")
            if row.status == "parked":
                button = ui.button("Re-send", icon="replay", on_click=lambda r=row: resend_one(r))
                tag(button.props("flat dense no-caps size=sm"), f"webhook-resend-{row.id}")
        _cell("Queued", _WIDTHS["when"], local_when(row.created_at, zone), _later(row, zone))
        what = texts.webhook_event_type(row.event_type)
        with _cell("Event", _WIDTHS["event"], what, f"event {row.event_id[:8]}…"):
            # The type and the id as the endpoint receives them, for whoever traces it there.
            ui.tooltip(f"{row.event_type} · {row.event_id}")
        _cell("Card", _WIDTHS["card"], row.card_number or "—")
        _cell("Attempts", _WIDTHS["attempts"], number(row.attempts))
        with ui.column().classes("gap-0 w-full lg:flex-1 min-w-0"):
            ui.label("Last reply").classes(f"{_HEAD} lg:hidden")
            reply = f"HTTP {row.last_status}" if row.last_status else ""
            if reply or not row.last_error:
                ui.label(reply or "—").classes("text-sm")
            if row.last_error:
                error = ui.label(texts.printable(row.last_error))
                error.classes("text-xs text-red-700 break-words w-full")
                tag(error, f"webhook-delivery-error-{row.id}")


def _cell(label: str, width: str, value: str, detail: str = "") -> ui.column:
    with ui.column().classes(f"gap-0 {width}") as cell:
        # On a phone there are no column headings: each value says what it is.
        ui.label(label).classes(f"{_HEAD} lg:hidden")
        ui.label(value).classes("text-sm")
        if detail:
            ui.label(detail).classes("text-xs text-slate-500")
    return cell


def _later(row: DeliveryRow, zone: str) -> str:
    """What came after the delivery was queued: its delivery, or its next attempt."""
    if row.status == "delivered":
        return "delivered " + local_when(row.delivered_at, zone)
    if row.status == "pending":
        return "next try " + local_when(row.next_attempt_at, zone)
    return ""
