"""Programs: the list, and one program's settings with its rewards catalog and its tiers.

The settings are checked and saved by the catalog service (``domain.catalog``), the one of
``loyalty provision``: the panel and the file accept and refuse exactly the same values, and
every refusal is written under its field on the page.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.campaign_texts import labels, labels_text
from admin_ui.frame import frame, not_found
from admin_ui.guard import admin_page
from admin_ui.pages.common import (
    PROGRAM_TYPES,
    delete_restore_actions,
    deleted_banner,
    guarded,
    parse_id,
    section,
)
from admin_ui.pages.program_tables import RewardsTable, TiersTable
from admin_ui.problems import FieldProblem
from admin_ui.queries import deletion
from admin_ui.queries.admins import Principal
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.merchants import merchant_choices
from admin_ui.queries.programs import (
    ProgramDetail,
    ProgramRow,
    create_program,
    get_program,
    list_programs,
    update_program,
)
from admin_ui.runtime import Runtime, transaction
from admin_ui.texts import (
    EXPIRY_POLICIES,
    EXPIRY_POLICY_NOTE,
    expiry_policy_change,
)
from admin_ui.widgets import (
    Column,
    ErrorBox,
    Listing,
    as_int,
    blank_to_none,
    confirm,
    show_problems,
    tag,
)

# (field, label, kind): kind is "int", "optional_int", "text", "optional_text", "bool",
# "decimal", "type", "policy" (the expiry policy), "color" or "labels" (a comma-separated list).
_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("name", "Program name", "text"),
    ("type", "Type", "type"),
    ("currency", "Currency (ISO 4217)", "text"),
    ("is_active", "Program active", "bool"),
    ("stamps_target", "Stamps for a reward", "int"),
    ("stamps_reward_description", "Stamp card reward", "optional_text"),
    ("stamps_reward_value_cents", "Stamp card reward value (cents)", "int"),
    ("cooldown_minutes", "Minutes between two stamps", "int"),
    ("max_daily_stamps", "Stamps per day at most (blank: no limit)", "optional_int"),
    ("points_per_euro", "Points per euro", "int"),
    ("welcome_bonus_points", "Welcome bonus (points)", "int"),
    ("minimum_redemption_points", "Minimum points to redeem", "int"),
    ("points_expiration_days", "Points expire after days (blank: never)", "optional_int"),
    ("expiry_policy", "Points expire", "policy"),
    ("pending_days", "Days before earned points can be spent", "int"),
    ("expiry_reminder_days", "Reminder to customers, days before points expire", "int"),
    ("point_value_cents", "Value of a point (cents)", "decimal"),
    ("minimum_purchase_cents", "Minimum purchase to earn (cents)", "int"),
    ("non_earning_categories", "Categories that earn nothing (comma-separated)", "labels"),
    ("require_staff_pin", "Staff terminal needs a PIN", "bool"),
    ("pin_max_attempts", "Wrong PINs before the lock", "int"),
    ("pin_lockout_minutes", "Lock duration (minutes)", "int"),
    ("card_name", "Name on the card", "optional_text"),
    ("background_color", "Background colour (#RRGGBB)", "color"),
    ("foreground_color", "Text colour (#RRGGBB)", "color"),
    ("label_color", "Label colour (#RRGGBB)", "color"),
    ("logo_url", "Logo URL", "optional_text"),
    ("hero_image_url", "Banner image URL", "optional_text"),
    ("terms_url", "Terms URL", "optional_text"),
    ("privacy_url", "Privacy policy URL", "optional_text"),
)


def register(rt: Runtime) -> None:
    """The program pages."""

    @admin_page(rt, "/programs")
    async def programs_page(me: Principal) -> Response | None:
        with frame(me, "Programs", active="programs"):
            await _program_list(rt, me)
        return None

    @admin_page(rt, "/programs/{program_id}")
    async def program_page(me: Principal, program_id: str) -> Response | None:
        wanted = parse_id(program_id)
        async with rt.session() as session:
            program = await get_program(session, me, wanted) if wanted else None
        if program is None:
            not_found(me)
            return None
        title = f"Program of {program.merchant_code}: {program.settings['name']}"
        with frame(me, title, active="programs"):
            await _program_detail(rt, me, program)
        return None


async def _program_list(rt: Runtime, me: Principal) -> None:
    async def fetch(request: PageRequest) -> Rows[ProgramRow]:
        async with rt.session() as session:
            return await list_programs(session, me, request)

    actions = delete_restore_actions(
        rt,
        me,
        "program",
        question=lambda r: f"Delete the program of {r.merchant_code}?",
        warning=("Its cards are hidden with it. It can be restored."),
        subject=lambda r: "Program",
        marker=lambda r: r.id,
        reload=lambda: listing.load(),
    )

    async with rt.session() as session:
        choices = await merchant_choices(session, me)
    with ui.row().classes("w-full items-end gap-4"):
        merchant = tag(
            ui.select(choices, label="Merchant", value=next(iter(choices), None)).classes("w-72"),
            "new-program-merchant",
        )
        kind = tag(ui.select(PROGRAM_TYPES, label="Type", value="stamps"), "new-program-type")

        async def create() -> None:
            if merchant.value is None:
                ui.notify("Choose a merchant.", type="warning")
                return
            created: list[int] = []

            async def work() -> None:
                async with transaction(rt) as session:
                    created.append(
                        await create_program(
                            session, me, int(merchant.value), kind.value, "Loyalty card"
                        )
                    )

            if await guarded(work, success="Program created."):
                ui.navigate.to(f"/programs/{created[0]}")

        tag(ui.button("New program", icon="add", on_click=create), "new-program")
    listing: Listing[ProgramRow] = Listing(
        "programs",
        [
            Column("Merchant", lambda r: r.merchant_code, lambda r: f"/programs/{r.id}"),
            Column("Name", lambda r: r.name),
            Column("Type", lambda r: r.type.value),
            Column("Active", lambda r: "yes" if r.is_active else "no"),
        ],
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search name or merchant",
    )
    await listing.load()


# Hints under the inputs whose meaning is not in their label.
_HINTS = {
    "points_expiration_days": "Days without activity, or after each purchase when rolling",
    "pending_days": "0: at once. A return voids its own pending points first",
    "expiry_reminder_days": "0: no reminder ahead of the day",
}


def _input(key: str, label: str, kind: str, value: Any) -> Any:
    element = _bare_input(label, kind, value)
    if key in _HINTS:
        element.props(f'hint="{_HINTS[key]}"')
    if key in _HINTS or kind == "labels":
        # The hint takes the lines it needs (wrapped on a phone) instead of spilling over
        # the next field.
        element.props("hide-bottom-space")
    if kind != "bool":
        # Always the small label above the field: a long one fits a phone's width even while
        # the field is blank.
        element.props("stack-label")
    return element


def _bare_input(label: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        return ui.switch(label, value=bool(value))
    if kind == "type":
        return ui.select(PROGRAM_TYPES, label=label, value=value).classes("w-full")
    if kind == "policy":
        return ui.select(EXPIRY_POLICIES, label=label, value=value).classes("w-full")
    if kind in ("int", "optional_int"):
        return ui.number(label, value=value, format="%d").classes("w-full")
    if kind == "decimal":
        return ui.input(label, value=str(value) if value is not None else "").classes("w-full")
    if kind == "labels":
        element = ui.input(label, value=labels_text(value)).classes("w-full")
        return element.props('hint="e.g. gift-card, tobacco; they count toward no minimum"')
    element = ui.input(label, value=value or "").classes("w-full")
    if kind == "color":
        element.props("maxlength=7")
    return element


def _value(kind: str, element: Any) -> Any:
    raw = element.value
    if kind == "bool":
        return bool(raw)
    if kind in ("type", "policy"):
        return raw
    if kind == "int":
        return as_int(raw)
    if kind == "optional_int":
        return None if raw is None or raw == "" else as_int(raw)
    if kind == "decimal":
        text = (raw or "").strip()
        try:
            return Decimal(text) if text else None
        except InvalidOperation:
            return text  # named as "must be a number" by the validation
    if kind == "optional_text":
        return blank_to_none(raw)
    if kind == "labels":
        return labels(raw)
    return (raw or "").strip() if isinstance(raw, str) else raw


async def _program_detail(rt: Runtime, me: Principal, program: ProgramDetail) -> None:
    deleted_banner("program", program.deleted_at)
    if program.deleted_at is not None:

        async def bring_back() -> None:
            async def work() -> None:
                async with transaction(rt) as session:
                    await deletion.restore(session, me, "program", program.id)

            if await guarded(work, success="Program restored."):
                ui.navigate.reload()

        tag(ui.button("Restore program", on_click=bring_back), "program-restore")
        return

    with ui.row().classes("gap-4"):
        ui.link(f"Merchant {program.merchant_code}", f"/merchants/{program.merchant_id}")
        ui.link("Statistics", f"/stats/programs/{program.id}")
        tag(ui.link("Campaigns", f"/programs/{program.id}/campaigns"), "program-campaigns")

    errors = ErrorBox("program-errors")
    fields: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    policy = _PolicyNote(program.settings.get("expiry_policy") or "inactivity")
    # One column on a phone, two from a tablet's width.
    grid = "w-full grid-cols-1 sm:grid-cols-2 gap-x-6 gap-y-2"
    with section("Settings"), tag(ui.grid().classes(grid), "program-settings"):
        for key, label, kind in _FIELDS:
            if kind == "policy":
                with ui.column().classes("w-full gap-1"):
                    fields[key] = policy.build(_input(key, label, kind, program.settings.get(key)))
            else:
                element = _input(key, label, kind, program.settings.get(key))
                fields[key] = tag(element, f"program-{key}")
            kinds[key] = kind

    catalog = RewardsTable(program.rewards)
    with section("Rewards catalog (points)"):
        ui.label(
            "Rewards a card buys with points. A removed reward is deactivated, never deleted: "
            "the ledger names it."
        ).classes("text-sm text-slate-600")
        catalog.build()

    tiers = TiersTable(program.tiers, program.settings)
    with section("Tiers"):
        tiers.build()

    async def save() -> None:
        data = {key: _value(kinds[key], element) for key, element in fields.items()}
        data["points_rewards"] = catalog.values()
        data.update(tiers.values())
        problems = [_one_input(p) for p in domain_api.check_program(data)]
        show_problems(problems, {**fields, **catalog.fields(), **tiers.fields()}, errors)
        if problems:
            return

        async def work() -> None:
            async with transaction(rt) as session:
                await update_program(session, me, program.id, data)

        if await guarded(work, success="Program saved."):
            catalog.mark_saved()
            tiers.mark_saved()
            policy.mark_saved()

    with ui.row().classes("gap-4"):
        tag(ui.button("Save program", icon="save", on_click=save), "program-save")

    with section("Delete"):

        async def remove() -> None:
            if not await confirm(
                "Delete this program?", "Its cards are hidden with it. It can be restored."
            ):
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await deletion.delete(session, me, "program", program.id)

            if await guarded(work, success="Program deleted."):
                ui.navigate.to(f"/merchants/{program.merchant_id}")

        tag(
            ui.button("Delete program", on_click=remove).props("color=negative outline"),
            "program-delete",
        )


def _one_input(problem: FieldProblem) -> FieldProblem:
    # A list's item ("non_earning_categories[1]") stands under the list's one input.
    key, bracket, _ = problem.path.partition("[")
    if bracket and _KINDS.get(key) == "labels":
        return FieldProblem(key, problem.message)
    return problem


_KINDS = {key: kind for key, _, kind in _FIELDS}


class _PolicyNote:
    """The expiry policy's select with what a change of it does: a standing note, and, while
    the chosen policy is not the saved one, a hint saying that only points earned after
    saving follow it."""

    def __init__(self, saved: str) -> None:
        self.saved = saved
        self.select: Any = None
        self.change: ui.label | None = None

    def build(self, select: Any) -> Any:
        self.select = tag(select, "program-expiry_policy")
        tag(
            ui.label(EXPIRY_POLICY_NOTE).classes("text-xs text-slate-600"),
            "program-expiry_policy-note",
        )
        self.change = tag(
            ui.label("").classes("text-xs text-amber-800"), "program-expiry_policy-change"
        )
        select.on_value_change(lambda _: self.refresh())
        self.refresh()
        return self.select

    def refresh(self) -> None:
        """Show the change hint when the select differs from the saved policy."""
        assert self.change is not None and self.select is not None
        text = expiry_policy_change(self.saved, self.select.value)
        self.change.text = text or ""
        self.change.visible = text is not None

    def mark_saved(self) -> None:
        """The chosen policy is the program's now."""
        if self.select is not None and self.select.value in EXPIRY_POLICIES:
            self.saved = self.select.value
        self.refresh()
