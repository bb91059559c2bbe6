"""Stores: the list, one store's page, and its staff PINs (shown once, when set)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.formatting import local_when, number
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
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
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import CsvExport, PageRequest, Rows
from admin_ui.queries.merchants import merchant_choices, merchant_filter_options
from admin_ui.queries.stores import (
    StoreRow,
    create_store,
    export_stores,
    get_store,
    list_stores,
    update_store,
)
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Filter, Listing, confirm, show_problems, tag


def register(rt: Runtime) -> None:
    """The store pages."""

    @admin_page(rt, "/stores")
    async def stores_page(me: Principal) -> Response | None:
        with frame(me, "Stores", active="stores"):
            await store_listing(rt, me)
        return None

    @admin_page(rt, "/stores/{store_id}")
    async def store_page(me: Principal, store_id: str) -> Response | None:
        wanted = parse_id(store_id)
        async with rt.session() as session:
            store = await get_store(session, me, wanted) if wanted else None
        if store is None:
            not_found(me)
            return None
        with frame(me, f"Store {store.name} ({store.code})", active="stores"):
            await _store_detail(rt, me, store)
        return None


def _pins(row: StoreRow) -> str:
    if row.pin_locked_until and row.pin_locked_until > datetime.now(UTC):
        return f"locked until {local_when(row.pin_locked_until, row.timezone)}"
    return "open"


async def store_listing(rt: Runtime, me: Principal, *, merchant_id: int | None = None) -> None:
    """The list of stores (of one merchant when given) with "New store"."""

    async def fetch(request: PageRequest) -> Rows[StoreRow]:
        async with rt.session() as session:
            return await list_stores(session, me, request, merchant_id=merchant_id)

    async def export(request: PageRequest) -> CsvExport:
        async with rt.session() as session:
            return await export_stores(session, me, request, merchant_id=merchant_id)

    filters: list[Filter] = []
    if merchant_id is None and me.is_platform:
        async with rt.session() as session:
            merchants = await merchant_filter_options(session, me)
        filters.append(Filter("merchant", "Merchant", merchants, all_label="All merchants"))

    actions = delete_restore_actions(
        rt,
        me,
        "store",
        question=lambda r: f"Delete store {r.name} ({r.code})?",
        warning=(
            "Its terminal stops working and events naming it are refused. It can be restored."
        ),
        subject=lambda r: f"Store {r.code}",
        marker=lambda r: r.code,
        reload=lambda: listing.load(),
    )

    async def created() -> None:
        await listing.load()

    with ui.row().classes("w-full"):
        tag(
            ui.button(
                "New store",
                icon="add",
                on_click=lambda: _new_store_dialog(rt, me, merchant_id, created),
            ),
            "new-store",
        )
    columns: list[Column[StoreRow]] = [
        Column("Name", lambda r: r.name, lambda r: f"/stores/{r.id}", sort="name"),
        Column("Code", lambda r: r.code, sort="code"),
    ]
    if merchant_id is None and me.is_platform:
        columns.append(Column("Merchant", lambda r: r.merchant_name, sort="merchant"))
    columns.append(Column("Staff PINs", _pins, sort="locked"))
    listing: Listing[StoreRow] = Listing(
        "stores",
        columns,
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search code or name" if merchant_id else "Search code, name or merchant",
        noun="stores",
        empty_text="No stores yet. Add the first store with the button above.",
        filters=filters,
        export=export,
    )
    await listing.load()


async def _new_store_dialog(
    rt: Runtime, me: Principal, merchant_id: int | None, done: Callable[[], Awaitable[None]]
) -> None:
    async with rt.session() as session:
        choices = await merchant_choices(session, me)
    with ui.dialog() as dialog, ui.card().classes("w-[28rem] max-w-full"):
        ui.label("New store").classes("text-lg font-medium")
        merchant = tag(
            ui.select(
                choices,
                label="Merchant",
                value=merchant_id if merchant_id in choices else next(iter(choices), None),
                with_input=True,
            ).classes("w-full"),
            "store-merchant",
        )
        if merchant_id is not None or not me.is_platform:
            merchant.disable()
        code = tag(ui.input("Code (used by tills and events)").classes("w-full"), "store-code")
        name = tag(ui.input("Name").classes("w-full"), "store-name")
        errors = ErrorBox("store-errors")

        async def create() -> None:
            data = {"code": (code.value or "").strip(), "name": (name.value or "").strip()}
            problems = domain_api.check_store(data)
            show_problems(problems, {"code": code, "name": name}, errors)
            if problems:
                return
            if merchant.value is None:
                errors.show("Choose a merchant.")
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await create_store(session, me, int(merchant.value), data)

            if await guarded(work, success=f"Store {data['code']} created."):
                dialog.close()
                await done()

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            tag(ui.button("Create", on_click=create), "store-create")
    dialog.open()


async def _store_detail(rt: Runtime, me: Principal, store: StoreRow) -> None:
    with ui.row().classes("gap-4 text-slate-600"):
        ui.link(f"Merchant: {store.merchant_name}", f"/merchants/{store.merchant_id}")
    deleted_banner("store", store.deleted_at, store.deleted_by, zone=store.timezone)
    if store.deleted_at is not None:

        async def bring_back() -> None:
            if await restore_with_counts(rt, me, "store", store.id, f"Store {store.code}"):
                ui.navigate.reload()

        tag(ui.button("Restore store", on_click=bring_back), "store-restore")
        return

    with ui.row().classes("gap-4"):
        tag(ui.link("Staff terminal", f"/terminal/{store.code}", new_tab=True), "terminal-link")
        tag(ui.link("Self-enrolment page", f"/enroll/{store.code}", new_tab=True), "enroll-link")

    with section("Store"):
        code = tag(ui.input("Code", value=store.code).classes("w-full"), "store-code")
        name = tag(ui.input("Name", value=store.name).classes("w-full"), "store-name")
        errors = ErrorBox("store-errors")

        async def save() -> None:
            data = {"code": (code.value or "").strip(), "name": (name.value or "").strip()}
            problems = domain_api.check_store(data)
            show_problems(problems, {"code": code, "name": name}, errors)
            if problems:
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await update_store(session, me, store.id, data)

            if await guarded(work, success="Store saved."):
                ui.navigate.reload()

        tag(ui.button("Save", on_click=save), "store-save")

    await _pins_section(rt, me, store)
    await _terminals_section(rt, me, store)

    with danger_zone():
        ui.label(
            "Deleting the store stops its terminal; events naming it are refused. Its customers "
            "and cards stay. It can be restored."
        ).classes("text-sm text-slate-600")

        async def remove() -> None:
            if await delete_with_counts(
                rt,
                me,
                "store",
                store.id,
                question=f"Delete store {store.name} ({store.code})?",
                warning="Its terminal stops working. It can be restored.",
                subject=f"Store {store.code}",
            ):
                ui.navigate.to(f"/merchants/{store.merchant_id}")

        tag(
            ui.button("Delete store", on_click=remove).props("color=negative outline"),
            "store-delete",
        )


async def _terminals_section(rt: Runtime, me: Principal, store: StoreRow) -> None:
    """Devices paired as this store's terminal: pair one with a code, revoke one."""
    zone = store.timezone
    with section("Terminals"):
        ui.label(
            "A terminal opens for an admin signed in here, or on a device paired with this "
            "store: press Pair a terminal, then type the code on the device's terminal page "
            f"(/terminal/{store.code}) within ten minutes."
        ).classes("text-sm text-slate-600")
        body = ui.column().classes("w-full gap-1")
        dialogs = ui.element("div")

    async def redraw() -> None:
        async with rt.session() as session:
            devices = await domain_api.store_devices(session, store.id, datetime.now(UTC))
        body.clear()
        with body:
            if not devices:
                ui.label("No paired terminal yet.").classes("text-slate-500 italic")
            for d in devices:
                with tag(ui.row().classes("items-center gap-4 w-full"), "terminal-device-row"):
                    ui.label(d.name).classes("font-medium w-40")
                    if d.state == "paired":
                        detail = f"paired {local_when(d.paired_at, zone)}"
                        detail += f" · last seen {local_when(d.last_seen_at, zone)}"
                    elif d.state == "waiting":
                        until = local_when(d.pairing_expires_at, zone)
                        detail = f"waiting for its code until {until}"
                    else:
                        detail = f"revoked {local_when(d.revoked_at, zone)}"
                    tag(ui.label(detail), "terminal-device-state").classes("text-sm text-slate-500")
                    ui.space()
                    if d.state != "revoked":
                        tag(
                            ui.button(
                                "Revoke", on_click=lambda i=d.id, n=d.name: revoke(i, n)
                            ).props("flat dense color=negative"),
                            f"terminal-revoke-{d.name}",
                        )
            with ui.row().classes("items-end gap-4 pt-2"):
                name = tag(ui.input("Device name", value="Till"), "terminal-new-name")

                async def start() -> None:
                    label = (name.value or "").strip()
                    if not label:
                        ui.notify("Give the device a name.", type="warning")
                        return
                    code: list[domain_api.PairingCode] = []

                    async def work() -> None:
                        async with transaction(rt) as session:
                            code.append(
                                await domain_api.start_pairing(
                                    session, store.id, label, by=me.actor, now=datetime.now(UTC)
                                )
                            )

                    if await guarded(work) and code:
                        with dialogs:
                            _show_pairing_code(label, code[0], store.timezone)
                        await redraw()

                tag(ui.button("Pair a terminal", on_click=start), "terminal-pair-start")

    async def revoke(device_id: int, name: str) -> None:
        with dialogs:
            confirmed = await confirm(
                f"Revoke terminal {name}? It stops working at its next action.", ok="Revoke"
            )
        if not confirmed:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await domain_api.revoke_device(
                    session, store.id, device_id, by=me.actor, now=datetime.now(UTC)
                )

        if await guarded(work, success=f"Terminal {name} is revoked."):
            await redraw()

    await redraw()


def _show_pairing_code(name: str, pairing: domain_api.PairingCode, zone: str) -> None:
    """The pairing code, shown this once: only its hash is kept."""
    with ui.dialog() as dialog, ui.card().classes("items-center"):
        ui.label(f"Pairing code for {name}").classes("text-lg font-medium")
        tag(ui.label(pairing.code).classes("text-4xl font-mono tracking-widest"), "pairing-code")
        ui.label(
            "Type it on the device's terminal page before "
            f"{local_when(pairing.expires_at, zone)}. It works once."
        ).classes("text-sm text-slate-600")
        tag(ui.button("Done", on_click=dialog.close), "pairing-code-done")
    dialog.on("hide", dialog.delete)
    dialog.open()


def _new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


async def _pins_section(rt: Runtime, me: Principal, store: StoreRow) -> None:
    zone = store.timezone
    with section("Staff PINs"):
        lock = ui.row().classes("items-center gap-4")
        body = ui.column().classes("w-full gap-1")
        # Dialogs live as long as the element they are opened in: this one is never cleared
        # by a redraw, unlike the rows whose buttons open them.
        dialogs = ui.element("div")

    async def redraw() -> None:
        async with rt.session() as session:
            current = await get_store(session, me, store.id)
            pins = await domain_api.store_pins(session, store.code)
            rows = [(p.id, p.name, p.created_at, p.last_used_at) for p in pins]
        lock.clear()
        with lock:
            until = current.pin_locked_until if current else None
            if until is not None and until > datetime.now(UTC):
                tag(
                    ui.label(f"The PINs of this store are locked until {local_when(until, zone)}."),
                    "pins-locked",
                ).classes("text-red-700")
                tag(ui.button("Unlock", on_click=unlock).props("outline"), "pins-unlock")
            else:
                failed = current.pin_failed_attempts if current else 0
                wrong = "1 wrong PIN" if failed == 1 else f"{number(failed)} wrong PINs"
                ui.label(f"Open · {wrong} since the last right one.").classes("text-slate-600")
        body.clear()
        with body:
            if not rows:
                ui.label("No staff PIN yet.").classes("text-slate-500 italic")
            for pin_id, name, created, last_used in rows:
                with tag(ui.row().classes("items-center gap-4 w-full"), "pin-row"):
                    ui.label(name).classes("font-medium w-40")
                    ui.label(f"added {local_when(created, zone)}").classes("text-sm text-slate-500")
                    ui.label(f"last used {local_when(last_used, zone)}").classes(
                        "text-sm text-slate-500"
                    )
                    ui.space()
                    tag(
                        ui.button(
                            "Change PIN", on_click=lambda i=pin_id, n=name: change(i, n)
                        ).props("flat dense"),
                        f"pin-change-{name}",
                    )
                    tag(
                        ui.button("Remove", on_click=lambda i=pin_id, n=name: remove(i, n)).props(
                            "flat dense color=negative"
                        ),
                        f"pin-remove-{name}",
                    )
            with ui.row().classes("items-end gap-4 pt-2"):
                new_name = tag(ui.input("Staff member"), "pin-new-name")
                new_pin = tag(
                    ui.input("PIN (4-8 digits, blank: generated)", password=True),
                    "pin-new-pin",
                )

                async def add() -> None:
                    pin = (new_pin.value or "").strip() or _new_pin()
                    staff_name = (new_name.value or "").strip()

                    async def work() -> None:
                        async with transaction(rt) as session:
                            await domain_api.add_pin(session, store.code, staff_name, pin)

                    if await guarded(work):
                        with dialogs:
                            _show_once(staff_name, pin)
                        await redraw()

                tag(ui.button("Add staff PIN", on_click=add), "pin-add")

    async def unlock() -> None:
        async def work() -> None:
            async with transaction(rt) as session:
                await domain_api.unlock_store(session, store.code)

        if await guarded(work, success="The store's PINs are unlocked."):
            await redraw()

    async def change(pin_id: int, name: str) -> None:
        with dialogs, ui.dialog() as dialog, ui.card():
            ui.label(f"New PIN for {name}").classes("text-lg font-medium")
            value = tag(
                ui.input("PIN (4-8 digits, blank: generated)", password=True), "pin-change-value"
            )

            async def apply() -> None:
                pin = (value.value or "").strip() or _new_pin()

                async def work() -> None:
                    async with transaction(rt) as session:
                        await domain_api.change_pin(session, pin_id, pin)

                if await guarded(work):
                    dialog.close()
                    with dialogs:
                        _show_once(name, pin)
                    await redraw()

            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                tag(ui.button("Set PIN", on_click=apply), "pin-change-save")
        dialog.open()

    async def remove(pin_id: int, name: str) -> None:
        with dialogs:
            confirmed = await confirm(f"Remove the PIN of {name}?", ok="Remove")
        if not confirmed:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await domain_api.remove_pin(session, pin_id)

        if await guarded(work, success=f"The PIN of {name} is removed."):
            await redraw()

    await redraw()


def _show_once(name: str, pin: str) -> None:
    """The PIN, shown this once: it is stored only as a hash."""
    with ui.dialog() as dialog, ui.card().classes("items-center"):
        ui.label(f"PIN of {name}").classes("text-lg font-medium")
        tag(ui.label(pin).classes("text-4xl font-mono tracking-widest"), "pin-shown")
        ui.label("Write it down or tell it now: it will not be shown again.").classes(
            "text-sm text-slate-600"
        )
        tag(ui.button("Done", on_click=dialog.close), "pin-shown-done")
    dialog.on("hide", dialog.delete)
    dialog.open()
