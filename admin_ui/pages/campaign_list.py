"""A program's campaigns as a list, and the pieces the campaign pages share: the way back to
the program, the status badge and the budget's bar.

The list is the panel's ``Listing`` (search, deleted switches, pages) with rows of its own:
on a wide screen a line per campaign under column headings, on a phone a card per campaign
with each value named, so nothing hides behind a sideways scroll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nicegui import ui

from admin_ui import campaign_texts as words
from admin_ui.pages.common import deleted_banner, guarded
from admin_ui.queries.admins import Principal
from admin_ui.queries.campaigns import (
    CampaignRow,
    ProgramScope,
    StatusMove,
    delete_campaign,
    list_campaign_rows,
    move_campaign,
    restore_campaign,
)
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.programs import ProgramRow, list_programs
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import Column, Listing, confirm, tag

# The move a list row offers for each status: (move, button, outcome).
QUICK_MOVES: dict[str, tuple[StatusMove, str, str]] = {
    "draft": ("activate", "Activate", "activated"),
    "active": ("pause", "Pause", "paused"),
    "paused": ("resume", "Resume", "resumed"),
}
# Widths of the columns from a tablet's width on; the campaign's name takes the rest.
_WIDTHS = {"when": "md:w-56", "gives": "md:w-36", "budget": "md:w-44", "card": "md:w-24"}
_HEAD = "text-xs uppercase tracking-wide text-slate-500"


async def program_choice(rt: Runtime, me: Principal) -> None:
    """The programs a platform admin may open the campaigns of."""

    async def fetch(request: PageRequest) -> Rows[ProgramRow]:
        async with rt.session() as session:
            return await list_programs(session, me, request)

    ui.label("Campaigns belong to a merchant's program: choose one.").classes("text-slate-600")
    listing: Listing[ProgramRow] = Listing(
        "campaign-programs",
        [
            Column("Merchant", lambda r: r.merchant_code, lambda r: f"/programs/{r.id}/campaigns"),
            Column("Program", lambda r: r.name),
            Column("Type", lambda r: r.type.value.capitalize()),
        ],
        fetch,
        deleted_switches=False,
        placeholder="Search name or merchant",
    )
    await listing.load()


def links(scope: ProgramScope, *, to_list: bool = True) -> None:
    """The way back to the program (and to its campaigns), and what keeps them from running."""
    with ui.row().classes("gap-x-4 gap-y-1 items-center"):
        tag(
            ui.link(f"Program: {scope.program_name}", f"/programs/{scope.program_id}"),
            "program-link",
        )
        if to_list:
            link = ui.link("All campaigns", f"/programs/{scope.program_id}/campaigns")
            tag(link, "campaigns-link")
    if scope.deleted_at is not None:
        deleted_banner("program", scope.deleted_at, zone=scope.timezone)
    elif not scope.earns_points:
        ui.label(
            "This is a stamps program: campaigns change points, so none can be activated. "
            "Drafts can be prepared; make it a points or hybrid program to run them."
        ).classes("w-full bg-amber-50 border border-amber-200 text-amber-900 rounded px-3 py-2")


def badge(status: str) -> None:
    """A campaign's status as a coloured badge."""
    tag(ui.badge(words.status_word(status), color=words.status_color(status)), "campaign-status")


def budget_bar(row: CampaignRow, *, caption: bool = False) -> None:
    """The budget's used part as a bar and in points (``7,450 / 10,000 points``)."""
    with ui.column().classes("gap-1 w-full"):
        if caption:
            ui.label("Budget used").classes(_HEAD)
        used = words.budget_used(row.points_awarded, row.budget_points)
        if used is not None:
            color = "negative" if used >= 1 else "warning" if used >= 0.8 else "primary"
            ui.linear_progress(value=used, show_value=False, color=color).props("rounded")
        text = words.budget(row.points_awarded, row.budget_points)
        tag(ui.label(text).classes("text-xs text-slate-600"), "campaign-budget")


async def campaign_list(rt: Runtime, me: Principal, scope: ProgramScope) -> None:
    """The program's campaigns with "New campaign", each row's quick status move, Delete
    behind a confirmation, and Restore for the deleted ones shown on request."""
    links(scope, to_list=False)
    dialogs = ui.element("div")

    async def fetch(request: PageRequest) -> Rows[CampaignRow]:
        async with rt.session() as session:
            return await list_campaign_rows(session, me, scope, request)

    async def act(row: CampaignRow, what: str) -> None:
        async def run() -> None:
            async with transaction(rt) as session:
                if what == "delete":
                    await delete_campaign(session, me, row.id)
                elif what == "restore":
                    await restore_campaign(session, me, row.id)
                else:
                    await move_campaign(session, me, row.id, QUICK_MOVES[row.status][0])

        if what == "delete":
            with dialogs:
                asked = await confirm(
                    f"Delete campaign {row.code}?",
                    "It stops applying at once. It can be restored.",
                )
            if not asked:
                return
        done = {"delete": "deleted", "restore": "restored"}.get(what) or QUICK_MOVES[row.status][2]
        if await guarded(run, success=f"Campaign {row.code} {done}."):
            await listing.load()

    def actions(row: CampaignRow) -> None:
        if row.deleted_at is not None:
            tag(
                ui.button("Restore", on_click=lambda r=row: act(r, "restore")).props("flat dense"),
                f"campaign-restore-{row.id}",
            )
            return
        if row.status in QUICK_MOVES:
            kind, label, _ = QUICK_MOVES[row.status]
            tag(
                ui.button(label, on_click=lambda r=row: act(r, "move")).props("flat dense"),
                f"campaign-{kind}-{row.id}",
            )
        tag(
            ui.button("Delete", on_click=lambda r=row: act(r, "delete")).props(
                "flat dense color=negative"
            ),
            f"campaign-delete-{row.id}",
        )

    def rows(items: Sequence[CampaignRow]) -> None:
        _rows(items, scope, actions)

    if scope.deleted_at is None:
        new = f"/programs/{scope.program_id}/campaigns/new"
        tag(
            ui.button("New campaign", icon="add", on_click=lambda: ui.navigate.to(new)),
            "new-campaign",
        )
    listing: Listing[CampaignRow] = Listing(
        "campaigns",
        [],
        fetch,
        actions=actions,
        placeholder="Search name or code",
        empty_text="No campaign here yet.",
        rows=rows,
    )
    await listing.load()


def _rows(
    items: Sequence[CampaignRow], scope: ProgramScope, actions: Callable[[CampaignRow], None]
) -> None:
    with ui.column().classes(
        "w-full gap-2 md:gap-0 md:border md:border-slate-200 md:rounded md:bg-white"
    ):
        # A plain element: Quasar's own "hidden" would beat the breakpoint's "flex".
        heading = "flex max-md:hidden w-full gap-4 px-4 py-2 border-b border-slate-200"
        with ui.element("div").classes(heading):
            ui.label("Campaign").classes(f"{_HEAD} flex-1")
            for key, label in (
                ("when", "When"),
                ("gives", "Gives"),
                ("budget", "Budget used"),
                ("card", "Per card"),
            ):
                ui.label(label).classes(f"{_HEAD} {_WIDTHS[key]}")
            ui.element("div").classes("md:w-40")
        for row in items:
            _row(row, scope, actions)


def _row(row: CampaignRow, scope: ProgramScope, actions: Callable[[CampaignRow], None]) -> None:
    deleted = row.deleted_at is not None
    line = ui.element("div").classes(
        "w-full flex flex-col md:flex-row md:items-center gap-2 md:gap-4 p-3 md:px-4 "
        "rounded border border-slate-200 md:rounded-none md:border-0 md:border-b "
        "last:border-b-0 " + ("bg-rose-50 text-slate-500" if deleted else "bg-white")
    )
    tag(line, "campaigns-row")
    if deleted:
        line.mark("campaigns-row", "campaigns-deleted-row")
    with line:
        with ui.column().classes("gap-0 flex-1 min-w-0"):
            with ui.row().classes("items-center gap-2"):
                ui.link(row.name, f"/campaigns/{row.id}").classes("font-medium")
                badge(row.status)
                if deleted:
                    ui.badge("deleted", color="red").props("outline")
            ui.label(row.code).classes("text-xs font-mono text-slate-500")
        _cell("When", words.when(row.form, scope.timezone), _WIDTHS["when"])
        _cell(
            "Gives",
            words.gives(row.multiplier, row.bonus_points),
            _WIDTHS["gives"],
            "on " + words.applies_to(row.skus, row.categories),
        )
        with ui.column().classes(f"gap-0 w-full {_WIDTHS['budget']}"):
            ui.label("Budget used").classes(f"{_HEAD} md:hidden")
            budget_bar(row)
        _cell("Per card", words.per_card(row.max_awards_per_card), _WIDTHS["card"])
        with ui.row().classes("gap-1 md:w-40 md:justify-end no-wrap"):
            actions(row)


def _cell(label: str, value: str, width: str, detail: str = "") -> None:
    with ui.column().classes(f"gap-0 {width}"):
        # On a phone there are no column headings: each value says what it is.
        ui.label(label).classes(f"{_HEAD} md:hidden")
        ui.label(value).classes("text-sm")
        if detail:
            ui.label(detail).classes("text-xs text-slate-500")
