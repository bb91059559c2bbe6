"""Programs: the list, and one program's settings with its rewards catalog and its tiers.

The settings are checked and saved by the catalog service (``domain.catalog``), the one of
``loyalty provision``: the panel and the file accept and refuse exactly the same values, and
every refusal is written under its field on the page, and named in words above the save button
("Reward 1, points: must be at least 1").

The form is in sections (earning, rewards, anti-fraud, expiry, appearance); money is typed in
the program's currency ("2.50") and kept in cents; colours are typed or picked; beside the
form (below it on a phone) a live preview draws a sample card from the values being typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from starlette.responses import Response

from admin_ui import domain_api
from admin_ui.formatting import zone_of
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
    submit_form,
)
from admin_ui.pages.program_tables import (
    REWARD_LABELS,
    TIER_LABELS,
    PolicyNote,
    RewardsTable,
    TiersTable,
    settings_input,
    settings_value,
)
from admin_ui.problems import FieldLabels, FieldProblem, plain_message
from admin_ui.program_preview import ProgramPreview
from admin_ui.queries.admins import Principal
from admin_ui.queries.card_page import WalletCard
from admin_ui.queries.common import PageRequest, Rows
from admin_ui.queries.merchants import merchant_choices
from admin_ui.queries.programs import (
    AmountRefused,
    ProgramDetail,
    ProgramRow,
    create_program,
    get_program,
    list_programs,
    preview_card,
    update_program,
)
from admin_ui.runtime import Runtime, transaction
from admin_ui.widgets import (
    Column,
    ErrorBox,
    Listing,
    tag,
)

# The form's sections: (key, title, what it holds).
_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("program", "Program", "Its name, and whether cards can use it"),
    ("earning", "Earning", "How cards collect stamps and points"),
    ("rewards", "Rewards", "What points buy, what a point is worth, and tiers"),
    ("antifraud", "Anti-fraud", "Limits at the till"),
    ("expiry", "Expiry", "When earned points can be spent, and when they expire"),
    ("appearance", "Appearance", "What the card and the wallet pass look like"),
)

# (field, label, kind, section): kind is "int", "optional_int", "text", "optional_text",
# "bool", "type", "currency", "policy" (the expiry policy), "money" (whole cents typed as an
# amount), "point_money" (a point's value: fractions of a cent), "color" or "labels" (a
# comma-separated list).
_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("name", "Program name", "text", "program"),
    ("is_active", "Program active", "bool", "program"),
    ("type", "Type", "type", "earning"),
    ("currency", "Currency", "currency", "earning"),
    ("stamps_target", "Stamps for a reward", "int", "earning"),
    ("stamps_reward_description", "Stamp card reward", "optional_text", "earning"),
    ("stamps_reward_value_cents", "Stamp card reward value", "money", "earning"),
    ("points_per_euro", "Points per euro spent", "int", "earning"),
    ("welcome_bonus_points", "Welcome bonus (points)", "int", "earning"),
    ("minimum_purchase_cents", "Minimum purchase to earn", "money", "earning"),
    ("non_earning_categories", "Categories that earn nothing", "labels", "earning"),
    ("minimum_redemption_points", "Minimum points to redeem", "int", "rewards"),
    ("point_value_cents", "Value of a point", "point_money", "rewards"),
    ("cooldown_minutes", "Minutes between two stamps", "int", "antifraud"),
    ("max_daily_stamps", "Stamps per day at most (blank: no limit)", "optional_int", "antifraud"),
    ("require_staff_pin", "Staff terminal needs a PIN", "bool", "antifraud"),
    ("pin_max_attempts", "Wrong PINs before the lock", "int", "antifraud"),
    ("pin_lockout_minutes", "Lock duration (minutes)", "int", "antifraud"),
    ("points_expiration_days", "Points expire after days (blank: never)", "optional_int", "expiry"),
    ("expiry_policy", "Points expire", "policy", "expiry"),
    ("pending_days", "Days before earned points can be spent", "int", "expiry"),
    ("expiry_reminder_days", "Reminder to customers, days before points expire", "int", "expiry"),
    ("card_name", "Name on the card (blank: the program name)", "optional_text", "appearance"),
    ("background_color", "Background colour", "color", "appearance"),
    ("foreground_color", "Text colour", "color", "appearance"),
    ("label_color", "Label colour", "color", "appearance"),
    ("logo_url", "Logo URL", "optional_text", "appearance"),
    ("hero_image_url", "Banner image URL", "optional_text", "appearance"),
    ("terms_url", "Terms URL", "optional_text", "appearance"),
    ("privacy_url", "Privacy policy URL", "optional_text", "appearance"),
)
_KINDS = {key: kind for key, _, kind, _ in _FIELDS}
_SECTION_OF = {key: where for key, _, _, where in _FIELDS}

LABELS = FieldLabels(
    fields={
        **{key: label.split(" (")[0] for key, label, _, _ in _FIELDS},
        "points_rewards": "Rewards catalog",
        "tiers": "Tiers",
        "tier_window": "Qualifying points count over",
        "tier_grace_days": "Grace days before moving down",
    },
    items={"points_rewards": REWARD_LABELS, "tiers": TIER_LABELS},
)
"""The words the program form's problems are named with."""


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
        title = f"Program of {program.merchant_name or program.merchant_code}"
        with frame(me, f"{title}: {program.settings['name']}", active="programs"):
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
            ui.select(choices, label="Merchant", value=next(iter(choices), None))
            .props("use-input input-debounce=0")
            .classes("w-72 max-w-full"),
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
            Column("Type", lambda r: PROGRAM_TYPES.get(r.type.value, r.type.value)),
            Column("Active", lambda r: "yes" if r.is_active else "no"),
        ],
        fetch,
        is_deleted=lambda r: r.deleted_at is not None,
        actions=actions,
        placeholder="Search name or merchant",
    )
    await listing.load()


# --- the form ---------------------------------------------------------------------------------


class _ProgramForm:
    """A program's settings form: its sections, its inputs by field, its two tables."""

    def __init__(self, program: ProgramDetail) -> None:
        self.program = program
        self.fields: dict[str, Any] = {}
        self.sections: dict[str, ui.expansion] = {}
        settings = program.settings
        self.policy = PolicyNote(settings.get("expiry_policy") or "inactivity")
        self.catalog = RewardsTable(program.rewards)
        self.tiers = TiersTable(program.tiers, settings, on_change=self.changed)
        self.preview = ProgramPreview(self.sample)

    def build(self) -> None:
        """The sections, each with its inputs (the rewards one with its tables)."""
        currency = self.program.settings.get("currency") or "EUR"
        for key, title, caption in _SECTIONS:
            with self._section(key, title, caption):
                # One column while the form is narrow, two when it has the room.
                with ui.element("div").classes("@container w-full"):
                    grid = "w-full grid grid-cols-1 @xl:grid-cols-2 gap-x-6 gap-y-2 items-start"
                    with ui.element("div").classes(grid):
                        for field, label, kind, where in _FIELDS:
                            if where == key:
                                self._add(field, label, kind, currency)
                if key == "rewards":
                    self._tables()
        self.fields["currency"].on_value_change(lambda e: self._currency(e.value))
        self._currency(currency)

    def _section(self, key: str, title: str, caption: str) -> ui.expansion:
        expansion = ui.expansion(title, caption=caption, value=True)
        expansion.classes("w-full bg-white rounded-lg shadow-sm").props("header-class=text-lg")
        self.sections[key] = tag(expansion, f"program-section-{key}")
        return expansion

    def _add(self, key: str, label: str, kind: str, currency: str) -> None:
        value = self.program.settings.get(key)
        if kind == "policy":
            with ui.column().classes("w-full gap-1"):
                element = self.policy.build(settings_input(key, label, kind, value, currency))
        else:
            element = tag(settings_input(key, label, kind, value, currency), f"program-{key}")
        element.on_value_change(lambda _: self.changed())
        self.fields[key] = element

    def _tables(self) -> None:
        ui.separator().classes("my-2")
        ui.label("Rewards catalog (points)").classes("text-base font-medium text-slate-700")
        ui.label(
            "Rewards a card buys with points. A removed reward is deactivated, never deleted: "
            "the ledger names it."
        ).classes("text-sm text-slate-600")
        self.catalog.build()
        ui.separator().classes("my-2")
        ui.label("Tiers").classes("text-base font-medium text-slate-700")
        self.tiers.build()

    def _currency(self, code: str | None) -> None:
        """Money is shown in the chosen currency: its code after each amount."""
        shown = code or ""
        for key, kind in _KINDS.items():
            if kind in ("money", "point_money"):
                self.fields[key].props(f'suffix="{shown}"')
        self.fields["points_per_euro"].props(f'label="Points per 1 {shown} spent"')

    def changed(self) -> None:
        """A value changed: the preview follows."""
        self.preview.refresh()

    def sample(self) -> WalletCard:
        """The sample card of the values typed now."""
        settings = {key: self.fields[key].value for key in self.fields}
        today = datetime.now(UTC).astimezone(zone_of(self.program.merchant_timezone)).date()
        return preview_card(
            settings,
            self.tiers.values()["tiers"] if self.tiers.window is not None else [],
            merchant_name=self.program.merchant_name or self.program.merchant_code,
            merchant_timezone=self.program.merchant_timezone,
            today=today,
        )

    def read(self) -> tuple[dict[str, Any], list[FieldProblem]]:
        """The form's data as the catalog reads it, and the amounts that are not amounts (the
        saved value stands in for each, so it is named once)."""
        data: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        for key, element in self.fields.items():
            try:
                data[key] = settings_value(_KINDS[key], element)
            except AmountRefused as exc:
                problems.append(FieldProblem(key, str(exc)))
                data[key] = self.program.settings.get(key)
        data["points_rewards"] = self.catalog.values()
        data.update(self.tiers.values())
        return data, problems

    def inputs(self) -> dict[str, Any]:
        """Validation paths to their inputs."""
        return {**self.fields, **self.catalog.fields(), **self.tiers.fields()}

    def show(self, problems: Sequence[FieldProblem], box: ErrorBox) -> None:
        """Each problem under its input, in words; all of them named in ``box``; the sections
        holding one opened."""
        inputs = self.inputs()
        for element in inputs.values():
            if hasattr(element, "error"):
                element.error = None
        for problem in problems:
            element = inputs.get(problem.path)
            if element is not None and hasattr(element, "error"):
                element.error = plain_message(problem.message, LABELS.fields)
            where = _SECTION_OF.get(problem.path.partition("[")[0], "rewards")
            self.sections[where].value = True
        if problems:
            box.show("Please correct: " + "; ".join(LABELS.sentence(p) for p in problems))
        else:
            box.clear()

    def mark_saved(self) -> None:
        """What was saved is the program's now."""
        self.catalog.mark_saved()
        self.tiers.mark_saved()
        self.policy.mark_saved()


def _links(program: ProgramDetail) -> ui.row:
    with ui.row().classes("gap-x-4 gap-y-1") as row:
        merchant = program.merchant_name or program.merchant_code
        ui.link(f"Merchant: {merchant}", f"/merchants/{program.merchant_id}")
        ui.link("Statistics", f"/stats/programs/{program.id}")
        tag(ui.link("Campaigns", f"/programs/{program.id}/campaigns"), "program-campaigns")
    return row


async def _program_detail(rt: Runtime, me: Principal, program: ProgramDetail) -> None:
    deleted_banner(
        "program",
        program.deleted_at,
        program.deleted_by,
        zone=program.merchant_timezone,
        hidden_with=program.hidden_with,
    )
    if program.deleted_at is not None:
        if program.hidden_with is None:  # else the merchant's restore brings it back

            async def bring_back() -> None:
                if await restore_with_counts(rt, me, "program", program.id, "Program"):
                    ui.navigate.reload()

            tag(ui.button("Restore program", on_click=bring_back), "program-restore")
        return

    links = _links(program)
    form = _ProgramForm(program)
    # The form and its preview side by side on a wide screen; the preview below on a phone.
    layout = "w-full grid grid-cols-1 lg:grid-cols-[minmax(0,1fr)_22rem] gap-6 items-start"
    with ui.element("div").classes(layout):
        with tag(ui.column().classes("w-full min-w-0 gap-4"), "program-settings"):
            form.build()
            # The save button and what stops it stay in sight below the long form.
            bar = ui.column().classes("w-full gap-2 sticky bottom-0 z-10 bg-slate-50 py-2")
            with bar:
                errors = ErrorBox("program-errors")
                errors.label.classes("max-h-28 overflow-y-auto text-sm")
                save_button = tag(ui.button("Save program", icon="save"), "program-save")

        async def save() -> None:
            data, problems = form.read()
            refused = {p.path for p in problems}
            problems += [
                p
                for p in (_one_input(p) for p in domain_api.check_program(data))
                if p.path not in refused
            ]
            form.show(problems, errors)
            if problems:
                return

            async def work() -> None:
                async with transaction(rt) as session:
                    await update_program(session, me, program.id, data)

            if await submit_form(lambda found: form.show(found, errors), work, "Program saved."):
                form.mark_saved()

        save_button.on_click(save)
        # Beside the form it stays in sight, scrolling within itself when the window is short.
        aside = "w-full min-w-0 lg:sticky lg:top-20 lg:max-h-[calc(100vh-6rem)] lg:overflow-y-auto"
        with ui.column().classes(aside) as beside:
            form.preview.build()
    with links:
        # On a phone the preview is below the long form: a way down to it.
        tag(ui.link("See the preview", beside).classes("lg:hidden"), "program-preview-link")

    with danger_zone():
        ui.label(
            "Deleting the program hides its cards with it; their history stays. It can be restored."
        ).classes("text-sm text-slate-600")

        async def remove() -> None:
            if await delete_with_counts(
                rt,
                me,
                "program",
                program.id,
                question="Delete this program?",
                warning="It can be restored.",
                subject="Program",
            ):
                ui.navigate.to(f"/merchants/{program.merchant_id}")

        tag(
            ui.button("Delete program", on_click=remove).props("color=negative outline"),
            "program-delete",
        )


def _one_input(problem: FieldProblem) -> FieldProblem:
    # A list's item ("non_earning_categories[1]") stands under the list's one input.
    key, bracket, rest = problem.path.partition("[")
    if bracket and _KINDS.get(key) == "labels":
        entry = int(rest.partition("]")[0]) + 1
        return FieldProblem(key, f"entry {entry} {plain_message(problem.message)}")
    return problem
