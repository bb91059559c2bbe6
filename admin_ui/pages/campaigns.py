"""Campaigns (CONTRACT.md 7.1): a program's list, a campaign's page with its status moves and
its form, a new campaign's form, and "Try on past traffic" (``campaign_trial``); the list itself
is ``campaign_list``'s.

A campaign made here is a draft: it earns nothing until it is activated, so a merchant can
try it on past traffic first. Every write goes through ``admin_ui.queries.campaigns``, which
hands the merchant-scoped campaign service the signed-in admin's merchant: another
merchant's program or campaign is "not found", whatever the URL says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi.responses import RedirectResponse
from nicegui import ui
from starlette.responses import Response

from admin_ui import campaign_texts as words
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.campaign_form import CampaignForm
from admin_ui.pages.campaign_list import badge, budget_bar, campaign_list, links, program_choice
from admin_ui.pages.campaign_trial import open_trial
from admin_ui.pages.common import deleted_banner, guarded, parse_id, section, submit_form
from admin_ui.queries.admins import Principal
from admin_ui.queries.campaigns import (
    CampaignRow,
    ProgramScope,
    StatusMove,
    create_campaign,
    delete_campaign,
    find_campaign,
    move_campaign,
    program_scope,
    restore_campaign,
    update_campaign,
)
from admin_ui.queries.programs import live_program_id
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import confirm, tag

# The status moves each status offers: (move, button, outcome).
_MOVES: dict[str, tuple[tuple[StatusMove, str, str], ...]] = {
    "draft": (("activate", "Activate", "Campaign activated."), ("end", "End", "Campaign ended.")),
    "active": (("pause", "Pause", "Campaign paused."), ("end", "End", "Campaign ended.")),
    "paused": (("resume", "Resume", "Campaign resumed."), ("end", "End", "Campaign ended.")),
    "ended": (),
}
_STATE = {
    "draft": "A draft earns nothing: try it on past traffic, then activate it.",
    "active": "Active: purchases earn with it, within its window, days and hours.",
    "paused": "Paused: it earns nothing until it is resumed.",
    "ended": "Ended for good: what it awarded stays, it awards nothing more.",
}


def register(rt: Runtime) -> None:
    """The campaign pages."""

    @admin_page(rt, "/campaigns")
    async def campaigns_home(me: Principal) -> Response | None:
        if not me.is_platform and me.merchant_id is not None:
            async with rt.session() as session:
                program_id = await live_program_id(session, me.merchant_id)
            if program_id is not None:
                return RedirectResponse(f"/programs/{program_id}/campaigns")
        with frame(me, "Campaigns", active="campaigns"):
            if me.is_platform:
                await program_choice(rt, me)
            else:
                ui.label("Campaigns belong to a loyalty program, and there is none yet.")
                ui.link("Create one on the merchant's page", f"/merchants/{me.merchant_id}")
        return None

    @admin_page(rt, "/programs/{program_id}/campaigns")
    async def program_campaigns(me: Principal, program_id: str) -> Response | None:
        scope = await _scope(rt, me, program_id)
        if scope is None:
            not_found(me)
            return None
        with frame(me, f"Campaigns of {scope.merchant_name}", active="campaigns"):
            await campaign_list(rt, me, scope)
        return None

    @admin_page(rt, "/programs/{program_id}/campaigns/new")
    async def new_campaign(me: Principal, program_id: str) -> Response | None:
        scope = await _scope(rt, me, program_id)
        if scope is None or scope.deleted_at is not None:
            not_found(me)
            return None
        with frame(me, f"New campaign of {scope.merchant_name}", active="campaigns"):
            _new_campaign(rt, me, scope)
        return None

    @admin_page(rt, "/campaigns/{campaign_id}")
    async def campaign_page(me: Principal, campaign_id: str, created: int = 0) -> Response | None:
        wanted = parse_id(campaign_id)
        async with rt.session() as session:
            found = await find_campaign(session, me, wanted) if wanted else None
        if found is None:
            not_found(me)
            return None
        row, scope = found
        with frame(me, f"Campaign: {row.name}", active="campaigns"):
            await _campaign_detail(rt, me, row, scope)
        if created and row.status == "draft":
            # Said here, not on the form's page: that page is gone by the time it would show.
            ui.notify("Campaign created as a draft.", type="positive")
        return None


async def _scope(rt: Runtime, me: Principal, program_id: str) -> ProgramScope | None:
    wanted = parse_id(program_id)
    async with rt.session() as session:
        return await program_scope(session, me, wanted) if wanted else None


def _new_campaign(rt: Runtime, me: Principal, scope: ProgramScope) -> None:
    links(scope)
    ui.label(
        "A new campaign is a draft: it earns nothing until you activate it. "
        "Try it on past traffic first."
    ).classes("text-slate-600")
    dialogs = ui.element("div")
    form = CampaignForm(scope, None, code_fixed=False)
    created: list[int] = []

    async def create() -> None:
        data = form.values()
        if data is None:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                created.append(await create_campaign(session, me, scope, data))

        if await submit_form(form.show, work, None):
            ui.navigate.to(f"/campaigns/{created[-1]}?created=1")

    async def trial() -> None:
        data = form.values()
        if data is not None:
            with dialogs:
                await open_trial(rt, scope, data)

    with ui.row().classes("gap-3"):
        tag(ui.button("Create draft", icon="add", on_click=create), "campaign-create")
        tag(
            ui.button("Try on past traffic", icon="query_stats", on_click=trial).props("outline"),
            "campaign-try",
        )


async def _campaign_detail(
    rt: Runtime, me: Principal, row: CampaignRow, scope: ProgramScope
) -> None:
    links(scope)
    dialogs = ui.element("div")
    if row.deleted_at is not None:
        deleted_banner("campaign", row.deleted_at, row.deleted_by, zone=scope.timezone)
        with section("Campaign"):
            _facts(row, scope)

        async def bring_back() -> None:
            async def work() -> None:
                async with transaction(rt) as session:
                    await restore_campaign(session, me, row.id)

            if await guarded(work, success="Campaign restored."):
                ui.navigate.reload()

        tag(ui.button("Restore campaign", on_click=bring_back), "campaign-restore")
        return

    state = tag(ui.card().classes("w-full"), "campaign-state")

    async def redraw() -> None:
        async with rt.session() as session:
            found = await find_campaign(session, me, row.id)
        current = found[0] if found else row
        if current.status != "draft":
            form.fix_code()
        state.clear()
        with state:
            _state(current, scope, move, trial, remove)

    async def move(kind: StatusMove, success: str) -> None:
        if kind == "end":
            with dialogs:
                asked = await confirm(
                    "End this campaign for good?",
                    "It stops awarding and cannot be resumed. What it awarded stays.",
                    ok="End",
                )
            if not asked:
                return

        async def work() -> None:
            async with transaction(rt) as session:
                await move_campaign(session, me, row.id, kind)

        if await guarded(work, success=success):
            await redraw()

    async def trial() -> None:
        data = form.values()
        if data is None:
            ui.notify("Correct the form first: the trial runs what it states.", type="warning")
            return
        with dialogs:
            await open_trial(rt, scope, data)

    async def remove() -> None:
        with dialogs:
            asked = await confirm(
                f"Delete campaign {row.code}?", "It stops applying at once. It can be restored."
            )
        if not asked:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await delete_campaign(session, me, row.id)

        if await guarded(work, success=f"Campaign {row.code} deleted."):
            ui.navigate.to(f"/programs/{scope.program_id}/campaigns")

    form = CampaignForm(scope, row.form, code_fixed=row.status != "draft")

    async def save() -> None:
        data = form.values()
        if data is None:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await update_campaign(session, me, row.id, data)

        if await submit_form(form.show, work, "Campaign saved."):
            await redraw()

    tag(ui.button("Save campaign", icon="save", on_click=save), "campaign-save")
    await redraw()


def _facts(row: CampaignRow, scope: ProgramScope) -> None:
    with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-x-6 gap-y-1 w-full"):
        for label, value in (
            ("When", words.when(row.form, scope.timezone)),
            ("Gives", words.gives(row.multiplier, row.bonus_points)),
            (
                "On",
                words.on_what(
                    row.skus, row.categories, row.form.get("min_basket_cents"), scope.currency
                ),
            ),
            ("Per card", words.per_card(row.max_awards_per_card)),
        ):
            with ui.row().classes("gap-2 no-wrap items-baseline"):
                ui.label(label).classes(
                    "text-xs uppercase tracking-wide text-slate-500 w-16 shrink-0"
                )
                ui.label(value).classes("text-sm")


def _state(
    row: CampaignRow,
    scope: ProgramScope,
    move: Callable[[StatusMove, str], Awaitable[None]],
    trial: Callable[[], Awaitable[None]],
    remove: Callable[[], Awaitable[None]],
) -> None:
    """The campaign's status, budget and facts, with the buttons that move it."""
    with ui.row().classes("w-full items-center gap-3"):
        badge(row.status)
        ui.label(row.code).classes("font-mono text-slate-500")
        ui.space()
        with ui.element("div").classes("w-full sm:w-56"):
            budget_bar(row, caption=True)
    tag(ui.label(_STATE[row.status]).classes("text-sm text-slate-600"), "campaign-state-text")
    _facts(row, scope)
    with ui.row().classes("w-full gap-2 pt-1"):
        for kind, label, success in _MOVES[row.status]:
            button = ui.button(label, on_click=lambda k=kind, s=success: move(k, s))
            if kind == "end":
                button.props("outline")
            tag(button, f"campaign-{kind}")
        tag(
            ui.button("Try on past traffic", icon="query_stats", on_click=trial).props("outline"),
            "campaign-try",
        )
        ui.space()
        tag(ui.button("Delete", on_click=remove).props("flat color=negative"), "campaign-delete")
