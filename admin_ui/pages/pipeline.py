"""The pipeline (platform admins): consumer lag, outbox backlog, last processed event, the dead
letters with their re-drive, and the returns held for their purchase."""

from __future__ import annotations

from nicegui import ui
from starlette.responses import Response

from admin_ui import texts
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import guarded, section
from admin_ui.queries import pipeline as pipeline_data
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, Listing, confirm, tag

_SHOWN_PAYLOAD = 120


def register(rt: Runtime) -> None:
    """The pipeline page."""

    @admin_page(rt, "/pipeline")
    async def pipeline_page(me: Principal) -> Response | None:
        if not me.is_platform:
            not_found(me)
            return None
        with frame(me, "Pipeline", active="pipeline"):
            await _lag_section(rt)
            await _database_section(rt)
            await _dead_letters(rt)
            await _held_returns(rt)
        return None


async def _lag_section(rt: Runtime) -> None:
    with section("Consumer lag"):
        ui.label(
            f"Group {rt.settings.consumer_group} on {rt.settings.bootstrap}: committed offsets "
            "against the end of each input partition."
        ).classes("text-sm text-slate-600")
        box = ui.column().classes("w-full")

    async def draw() -> None:
        report = await pipeline_data.consumer_lag(rt.settings)
        box.clear()
        with box:
            if report.error:
                tag(ui.label(report.error).classes("text-red-700"), "lag-error")
            else:
                tag(ui.label(f"Total lag: {report.total}"), "lag-total").classes("font-medium")
                with tag(
                    ui.element("q-markup-table").props("flat bordered dense").classes("w-full"),
                    "lag-table",
                ):
                    with ui.element("thead"), ui.element("tr"):
                        for h in ("Topic", "Partition", "Committed", "End", "Lag"):
                            with ui.element("th").classes("text-left"):
                                ui.label(h)
                    with ui.element("tbody"):
                        for p in report.partitions:
                            with ui.element("tr"):
                                for value in (
                                    p.topic,
                                    str(p.partition),
                                    "—" if p.committed is None else str(p.committed),
                                    str(p.end),
                                    str(p.lag),
                                ):
                                    with ui.element("td"):
                                        ui.label(value)
            tag(ui.button("Refresh", icon="refresh", on_click=draw).props("flat"), "lag-refresh")

    await draw()


async def _database_section(rt: Runtime) -> None:
    async with rt.session() as session:
        backlog = await pipeline_data.outbox_backlog(session)
        last = await pipeline_data.last_processed(session)
    with ui.row().classes("w-full gap-4 no-wrap"):
        with section("Outbox backlog").classes("w-1/2"):
            tag(ui.label(f"{backlog.unsent} unsent message(s)"), "outbox-unsent").classes(
                "text-2xl font-semibold"
            )
            if backlog.unsent:
                ui.label(f"oldest from {texts.when(backlog.oldest)}").classes("text-slate-600")
                for topic, count in sorted(backlog.by_topic.items()):
                    ui.label(f"{topic}: {count}").classes("text-sm")
        with section("Last processed event").classes("w-1/2"):
            if last is None:
                tag(ui.label("No event processed yet."), "last-event").classes(
                    "text-slate-500 italic"
                )
            else:
                tag(ui.label(f"{texts.when(last.processed_at)} · {last.status}"), "last-event")
                ui.label(f"{last.topic} · {last.event_id}").classes("text-sm text-slate-600")


async def _dead_letters(rt: Runtime) -> None:
    async def fetch(request: PageRequest) -> Rows[pipeline_data.DeadLetterRow]:
        async with rt.session() as session:
            return await pipeline_data.dead_letters(session, request)

    async def show(row: pipeline_data.DeadLetterRow) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[40rem]"):
            ui.label(f"{row.source_topic} [{row.partition}] @ {row.offset}").classes(
                "text-lg font-medium"
            )
            ui.label(f"Key: {row.key or '—'}").classes("text-sm")
            ui.label("Error").classes("font-medium")
            ui.label(row.error).classes("text-red-700 whitespace-pre-wrap")
            ui.label("Payload").classes("font-medium")
            tag(
                ui.code(row.payload or "(empty)").classes("w-full max-h-96 overflow-auto"),
                "dlq-payload",
            )
            ui.button("Close", on_click=dialog.close).props("flat")
        dialog.open()

    async def redrive(row: pipeline_data.DeadLetterRow) -> None:
        again = " again" if row.redriven_at else ""
        if not await confirm(
            f"Re-drive this message{again} to {row.source_topic}?",
            "Its original payload is published to the source topic and processed anew.",
            ok="Re-drive",
        ):
            return
        topics: list[str] = []

        async def work() -> None:
            async with transaction(rt) as session:
                topics.append(await pipeline_data.redrive(session, rt.settings, row.id))

        if await guarded(work):
            ui.notify(f"Re-driven to {topics[0]}.", type="positive")
            await listing.load()

    def actions(row: pipeline_data.DeadLetterRow) -> None:
        tag(
            ui.button("Payload", on_click=lambda r=row: show(r)).props("flat dense"),
            f"dlq-show-{row.id}",
        )
        tag(
            ui.button("Re-drive", on_click=lambda r=row: redrive(r)).props("flat dense"),
            f"dlq-redrive-{row.id}",
        )

    def shorten(text: str) -> str:
        return text if len(text) <= _SHOWN_PAYLOAD else text[: _SHOWN_PAYLOAD - 1] + "…"

    with section("Dead letters"):
        listing: Listing[pipeline_data.DeadLetterRow] = Listing(
            "dlq",
            [
                Column("When", lambda r: texts.when(r.occurred_at)),
                Column("Source", lambda r: f"{r.source_topic} [{r.partition}] @ {r.offset}"),
                Column("Error", lambda r: shorten(r.error)),
                Column("Payload", lambda r: shorten(r.payload)),
                Column(
                    "Re-driven",
                    lambda r: texts.when(r.redriven_at) if r.redriven_at else "no",
                ),
            ],
            fetch,
            actions=actions,
            deleted_switches=False,
            placeholder="Search error, payload or topic",
            empty_text="No dead letter.",
        )
        await listing.load()


async def _held_returns(rt: Runtime) -> None:
    async def fetch(request: PageRequest) -> Rows[pipeline_data.HeldRow]:
        async with rt.session() as session:
            return await pipeline_data.held_returns(session, request)

    with section("Held returns"):
        ui.label("Returns whose purchase has not been seen yet; applied when it arrives.").classes(
            "text-sm text-slate-600"
        )
        listing: Listing[pipeline_data.HeldRow] = Listing(
            "held",
            [
                Column("Received", lambda r: texts.when(r.received_at)),
                Column("Merchant", lambda r: r.merchant_code),
                Column("Store", lambda r: r.store_code),
                Column("Order", lambda r: r.order_reference),
                Column("Refund", lambda r: texts.cents(r.refund_amount_cents)),
            ],
            fetch,
            deleted_switches=False,
            placeholder="Search order reference",
            empty_text="No return is held.",
        )
        await listing.load()
