"""Merchants: the list (platform admins), and one merchant's page with its stores and program."""

from __future__ import annotations

from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.choices import time_zone_options
from admin_ui.formatting import number
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import (
    PROGRAM_TYPES,
    danger_zone,
    delete_restore_actions,
    delete_with_counts,
    deleted_banner,
    guarded,
    parse_id,
    restore_with_counts,
    section,
)
from admin_ui.pages.stores import store_listing
from admin_ui.problems import FieldProblem
from admin_ui.queries import programs
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import CsvExport, PageRequest, Rows
from admin_ui.queries.merchants import (
    MerchantRow,
    create_merchant,
    export_merchants,
    get_merchant,
    list_merchants,
    update_merchant,
)
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, ErrorBox, Listing, show_problems, tag

DEFAULT_ZONE = "Europe/Luxembourg"


def time_zone_select(value: str) -> ui.select:
    """The time zone picked from every IANA zone, searched by typing (``Lux`` finds
    Europe/Luxembourg); a zone saved before that the list lacks stays choosable."""
    options = dict(time_zone_options())
    if value and value not in options:
        options[value] = value
    select = ui.select(options, label="Time zone", value=value, with_input=True)
    return select.props("options-dense")


def merchant_fields(values: MerchantRow | None = None) -> dict[str, Any]:
    """Inputs of a merchant's settings, pre-filled from ``values``."""
    fields: dict[str, Any] = {
        "code": tag(ui.input("Code", value=values.code if values else ""), "merchant-code"),
        "name": tag(ui.input("Name", value=values.name if values else ""), "merchant-name"),
        "timezone": tag(
            time_zone_select(values.timezone if values else DEFAULT_ZONE), "merchant-timezone"
        ),
        "allow_self_enrollment": tag(
            ui.switch(
                "Customers may enrol themselves",
                value=values.allow_self_enrollment if values else True,
            ),
            "merchant-self-enrollment",
        ),
        "allow_cross_location_redemption": tag(
            ui.switch(
                "One card valid at every store",
                value=values.allow_cross_location_redemption if values else True,
            ),
            "merchant-cross-location",
        ),
    }
    for key in ("code", "name", "timezone"):
        fields[key].classes("w-full")
    return fields


def merchant_data(fields: dict[str, Any]) -> dict[str, Any]:
    """The values of the merchant inputs, trimmed (no time zone chosen: ``""``, which the
    validation names)."""
    data = {
        key: (element.value.strip() if isinstance(element.value, str) else element.value)
        for key, element in fields.items()
    }
    data["timezone"] = data.get("timezone") or ""
    return data


def merchant_problems(data: dict[str, Any]) -> list[FieldProblem]:
    """What is wrong with the merchant's fields; no time zone chosen is said as such."""
    problems = list(domain_api.check_merchant(data))
    if not data.get("timezone"):
        problems = [p for p in problems if p.path != "timezone"]
        problems.append(FieldProblem("timezone", "choose a time zone from the list"))
    return problems


def register(rt: Runtime) -> None:
    """The merchant pages."""

    @admin_page(rt, "/merchants")
    async def merchants_page(me: Principal) -> Response | None:
        if not me.is_platform:
            return RedirectResponse(f"/merchants/{me.merchant_id}")
        with frame(me, "Merchants", active="merchants"):
            await _merchant_list(rt, me)
        return None

    @admin_page(rt, "/merchants/{merchant_id}")
    async def merchant_page(me: Principal, merchant_id: str) -> Response | None:
        wanted = parse_id(merchant_id)
        async with rt.session() as session:
            merchant = await get_merchant(session, me, wanted) if wanted else None
            program_id = await programs.live_program_id(session, merchant.id) if merchant else None
        if merchant is None:
            not_found(me)
            return None
        with frame(me, f"{merchant.name} ({merchant.code})", active="merchants"):
            await _merchant_detail(rt, me, merchant, program_id)
        return None


async def _merchant_list(rt: Runtime, me: Principal) -> None:
    async def fetch(request: PageRequest) -> Rows[MerchantRow]:
        async with rt.session() as session:
            return await list_merchants(session, me, request)

    async def export(request: PageRequest) -> CsvExport:
        async with rt.session() as session:
            return await export_merchants(session, me, request)

    actions = delete_restore_actions(
        rt,
        me,
        "merchant",
        question=lambda r: f"Delete merchant {r.name} ({r.code})?",
        warning=("Its admins can no longer sign in. It can be restored later from “Only deleted”."),
        subject=lambda r: f"Merchant {r.code}",
        marker=lambda r: r.code,
        reload=lambda: listing.load(),
    )

    with ui.row().classes("w-full"):
        tag(
            ui.button("New merchant", icon="add", on_click=lambda: _new_merchant_dialog(rt, me)),
            "new-merchant",
        )
    listing: Listing[MerchantRow] = Listing(
        "merchants",
        [
            Column("Name", lambda r: r.name, lambda r: f"/merchants/{r.id}", sort="name"),
            Column("Code", lambda r: r.code, sort="code"),
            Column("Time zone", lambda r: r.timezone.replace("_", " "), sort="timezone"),
            Column("Stores", lambda r: number(r.stores), sort="stores", numeric=True),
            Column("Self-enrolment", lambda r: "on" if r.allow_self_enrollment else "off"),
        ],
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search code or name",
        noun="merchants",
        empty_text="No merchants yet. Add the first merchant with the button above.",
        export=export,
    )
    await listing.load()


async def _new_merchant_dialog(rt: Runtime, me: Principal) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[28rem]"):
        ui.label("New merchant").classes("text-lg font-medium")
        fields = merchant_fields()
        errors = ErrorBox("merchant-errors")

        async def create() -> None:
            data = merchant_data(fields)
            problems = merchant_problems(data)
            show_problems(problems, fields, errors)
            if problems:
                return
            created: list[int] = []

            async def work() -> None:
                async with transaction(rt) as session:
                    created.append(await create_merchant(session, me, data))

            if await guarded(work, success=f"Merchant {data['code']} created."):
                dialog.close()
                ui.navigate.to(f"/merchants/{created[0]}")

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            tag(ui.button("Create", on_click=create), "merchant-create")
    dialog.on("hide", dialog.delete)
    dialog.open()


async def _merchant_detail(
    rt: Runtime, me: Principal, merchant: MerchantRow, program_id: int | None
) -> None:
    deleted_banner("merchant", merchant.deleted_at, merchant.deleted_by, zone=merchant.timezone)
    if merchant.deleted_at is not None:
        if me.is_platform:

            async def bring_back() -> None:
                subject = f"Merchant {merchant.code}"
                if await restore_with_counts(rt, me, "merchant", merchant.id, subject):
                    ui.navigate.reload()

            tag(ui.button("Restore merchant", on_click=bring_back), "merchant-restore")
        return

    with ui.row().classes("gap-4"):
        ui.link("Statistics", f"/stats/merchants/{merchant.id}")
        tag(ui.link("Customers", f"/customers?merchant={merchant.code}"), "customers-link")
        tag(ui.link("Webhooks", f"/merchants/{merchant.id}/webhooks"), "webhooks-link")

    with section("Settings"):
        fields = merchant_fields(merchant)
        if not me.is_platform:
            fields["code"].disable()
        errors = ErrorBox("merchant-errors")

        async def save() -> None:
            data = merchant_data(fields)
            problems = merchant_problems(data)
            show_problems(problems, fields, errors)
            if problems:
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await update_merchant(session, me, merchant.id, data)

            await guarded(work, success="Merchant saved.")

        tag(ui.button("Save", on_click=save), "merchant-save")

    with section("Program"):
        if program_id is not None:
            tag(ui.link("Program settings and rewards", f"/programs/{program_id}"), "program-link")
        else:
            ui.label("This merchant has no loyalty program yet.").classes("text-slate-600")
            with ui.row().classes("items-end gap-4"):
                kind = tag(
                    ui.select(PROGRAM_TYPES, value="stamps", label="Type").classes("w-40"),
                    "program-type",
                )
                name = tag(ui.input("Name", value="Loyalty card"), "program-name")

                async def create_program() -> None:
                    created: list[int] = []

                    async def work() -> None:
                        async with transaction(rt) as session:
                            created.append(
                                await programs.create_program(
                                    session,
                                    me,
                                    merchant.id,
                                    kind.value,
                                    (name.value or "").strip() or "Loyalty card",
                                )
                            )

                    if await guarded(work, success="Program created."):
                        ui.navigate.to(f"/programs/{created[0]}")

                tag(ui.button("Create program", on_click=create_program), "program-create")

    with section("Stores"):
        await store_listing(rt, me, merchant_id=merchant.id)

    if me.is_platform:
        with danger_zone():
            ui.label(
                "Deleting the merchant hides it with its stores, program, customers and cards. "
                "Its admins can no longer sign in. It can be restored."
            ).classes("text-sm text-slate-600")

            async def remove() -> None:
                if await delete_with_counts(
                    rt,
                    me,
                    "merchant",
                    merchant.id,
                    question=f"Delete merchant {merchant.name} ({merchant.code})?",
                    warning="It can be restored later from “Only deleted”.",
                    subject=f"Merchant {merchant.code}",
                ):
                    ui.navigate.to("/merchants")

            tag(
                ui.button("Delete merchant", on_click=remove).props("color=negative outline"),
                "merchant-delete",
            )
