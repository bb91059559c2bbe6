"""Parts of a program's form: its two editable tables, the rewards catalog and the tiers
(CONTRACT.md 7.4), one row of inputs per entry, added and removed in place; the expiry
policy's select with what a change of it does; and the inputs of the settings
(``settings_input``, read back by ``settings_value``): amounts typed in the currency's units,
checked as they are typed, colours typed or picked, the currency picked from a searchable
list.

Each table says how its validation paths read in words (``REWARD_LABELS``, ``TIER_LABELS``:
``points_rewards[0].name`` is "Reward 1, name").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from nicegui import ui

from admin_ui.campaign_texts import labels, labels_text
from admin_ui.pages.common import PROGRAM_TYPES
from admin_ui.queries.programs import (
    POINT_VALUE_DECIMALS,
    AmountRefused,
    amount_of_cents,
    cents_of_amount,
    currency_choices,
    whole_cents,
)
from admin_ui.texts import (
    EXPIRY_POLICIES,
    EXPIRY_POLICY_NOTE,
    TIER_WINDOWS,
    TIERS_NOTE,
    expiry_policy_change,
)
from admin_ui.widgets import as_int, blank_to_none, tag

# A row of the rewards or the tiers table: a grid of two inputs a line, the delete button on
# the right, while the form is narrow (a phone, or a laptop with the preview beside the form);
# one line when the form itself is wide (a container query: the table is its container).
_TABLE_ROW = (
    "w-full grid grid-cols-[minmax(0,1fr)_minmax(0,1fr)_auto] gap-x-2 items-start "
    "@3xl:flex @3xl:flex-nowrap"
)
_TABLE_ROW_DELETE = "col-start-3 row-start-1 self-center @3xl:self-start"
_TABLE = "w-full gap-3 @3xl:gap-1"

# The words of the tables' inputs, for the problems named by their paths.
REWARD_LABELS = (
    "Reward",
    {"id": "code", "name": "name", "points_required": "points", "description": "description"},
)
TIER_LABELS = (
    "Tier",
    {
        "id": "id",
        "name": "name",
        "threshold_points": "threshold points",
        "multiplier": "multiplier",
    },
)


class RewardsTable:
    """The rewards catalog as an editable table: one row of inputs per reward."""

    def __init__(self, rewards: list[dict[str, Any]]) -> None:
        self.rows: list[dict[str, Any]] = []
        self._initial = rewards
        self.container: ui.column | None = None

    def build(self) -> None:
        with ui.element("div").classes("@container w-full"):
            self.container = tag(ui.column().classes(_TABLE), "rewards")
        for reward in self._initial:
            self._add(reward)
        tag(
            ui.button("Add reward", icon="add", on_click=lambda: self._add(None)).props("flat"),
            "reward-add",
        )

    def _add(self, reward: dict[str, Any] | None) -> None:
        assert self.container is not None
        index = len(self.rows)
        # A reward on one line in a wide form; else three lines, two inputs a line, the
        # delete button beside them.
        with self.container, ui.element("div").classes(_TABLE_ROW) as line:
            code = tag(
                ui.input("Code", value=reward["id"] if reward else "").classes("min-w-0 @3xl:w-32"),
                f"reward-{index}-id",
            )
            if reward and reward.get("saved"):
                code.disable()  # a saved reward keeps its code: the ledger names it by it
            name = tag(
                ui.input("Name", value=reward["name"] if reward else "").classes(
                    "min-w-0 @3xl:w-56"
                ),
                f"reward-{index}-name",
            )
            points = tag(
                ui.number(
                    "Points", value=reward["points_required"] if reward else None, format="%d"
                ).classes("min-w-0 @3xl:w-28"),
                f"reward-{index}-points_required",
            )
            description = tag(
                ui.input("Description", value=(reward or {}).get("description") or "").classes(
                    "min-w-0 @3xl:grow"
                ),
                f"reward-{index}-description",
            )
            active = tag(
                ui.switch("Active", value=bool((reward or {}).get("is_active", True))).classes(
                    "@3xl:shrink-0"
                ),
                f"reward-{index}-active",
            )
            row = {
                "id": code,
                "name": name,
                "points_required": points,
                "description": description,
                "is_active": active,
                "line": line,
                "removed": False,
            }
            tag(
                ui.button(icon="delete", on_click=lambda r=row: self._remove(r))
                .props('flat dense color=negative aria-label="Remove"')
                .classes(_TABLE_ROW_DELETE + " row-span-3"),
                f"reward-{index}-remove",
            )
        self.rows.append(row)

    def _remove(self, row: dict[str, Any]) -> None:
        row["removed"] = True
        row["line"].visible = False

    def _live(self) -> list[tuple[int, dict[str, Any]]]:
        return [(i, r) for i, r in enumerate(r for r in self.rows if not r["removed"])]

    def values(self) -> list[dict[str, Any]]:
        """The catalog as ``RewardSpec`` data (plus ``is_active``), in the table's order."""
        return [
            {
                "id": (row["id"].value or "").strip(),
                "name": (row["name"].value or "").strip(),
                "points_required": as_int(row["points_required"].value),
                "description": blank_to_none(row["description"].value),
                "is_active": bool(row["is_active"].value),
            }
            for _, row in self._live()
        ]

    def fields(self) -> dict[str, Any]:
        """Validation paths (``points_rewards[0].name``) to their inputs."""
        mapping: dict[str, Any] = {}
        for i, row in self._live():
            for key in ("id", "name", "points_required", "description"):
                mapping[f"points_rewards[{i}].{key}"] = row[key]
        return mapping

    def mark_saved(self) -> None:
        """Saved codes are fixed from now on."""
        for _, row in self._live():
            row["id"].disable()


class TiersTable:
    """The program's tiers (CONTRACT.md 7.4) as an editable table, one row of inputs per tier,
    with the window qualifying points are counted in and the grace days before a card moves
    down. A saved tier keeps its id: cards and their history name it."""

    _KEYS = ("id", "name", "threshold_points", "multiplier")

    def __init__(
        self,
        tiers: list[dict[str, Any]],
        settings: dict[str, Any],
        on_change: Callable[[], Any] | None = None,
    ) -> None:
        self.on_change = on_change
        self.rows: list[dict[str, Any]] = []
        self._initial = tiers
        self._settings = settings
        self.container: ui.column | None = None
        self.window: Any = None
        self.grace: Any = None
        self.empty: ui.label | None = None

    def build(self) -> None:
        tag(ui.label(TIERS_NOTE).classes("text-sm text-slate-600"), "program-tiers-note")
        self.empty = tag(
            ui.label("No tiers: every card earns alike.").classes("text-sm text-slate-600"),
            "program-tiers-empty",
        )
        ui.label("The first tier starts at 0 points; each next one needs more.").classes(
            "text-xs text-slate-500"
        )
        with ui.element("div").classes("@container w-full"):
            self.container = tag(ui.column().classes(_TABLE), "tiers")
        for tier in self._initial:
            self._add(tier)
        self._refresh()
        tag(
            ui.button("Add tier", icon="add", on_click=lambda: self._add(None)).props("flat"),
            "tier-add",
        )
        with ui.row().classes("w-full items-start gap-x-6 gap-y-2"):
            window = self._settings.get("tier_window") or "rolling_12_months"
            self.window = tag(
                ui.select(TIER_WINDOWS, label="Qualifying points count over", value=window),
                "program-tier_window",
            ).classes("w-64 max-w-full")
            self.grace = tag(
                ui.number(
                    "Grace days before moving down",
                    value=self._settings.get("tier_grace_days", 0),
                    format="%d",
                ).props('hint="0: at the first daily run below the tier"'),
                "program-tier_grace_days",
            ).classes("w-64 max-w-full")

    def _add(self, tier: dict[str, Any] | None) -> None:
        assert self.container is not None
        index = len(self.rows)
        given = tier or {}
        # A tier on one line in a wide form; else two lines of two inputs, the delete button
        # beside them.
        with self.container, ui.element("div").classes(_TABLE_ROW) as line:
            code = tag(
                ui.input("Id", value=given.get("id", "")).classes("min-w-0 @3xl:w-32"),
                f"tier-{index}-id",
            )
            if tier is not None:
                code.disable()  # a saved tier keeps its id: cards and their history name it
            name = tag(
                ui.input("Name", value=given.get("name", "")).classes("min-w-0 @3xl:w-56"),
                f"tier-{index}-name",
            )
            threshold = tag(
                ui.number(
                    "Threshold points",
                    value=given.get("threshold_points", 0 if index == 0 else None),
                    format="%d",
                ).classes("min-w-0 @3xl:w-36"),
                f"tier-{index}-threshold_points",
            )
            multiplier = tag(
                ui.number("Multiplier", value=given.get("multiplier", 1), step=0.05).classes(
                    "min-w-0 @3xl:w-28"
                ),
                f"tier-{index}-multiplier",
            )
            row = {
                "id": code,
                "name": name,
                "threshold_points": threshold,
                "multiplier": multiplier,
                "line": line,
                "removed": False,
            }
            tag(
                ui.button(icon="delete", on_click=lambda r=row: self._remove(r))
                .props('flat dense color=negative aria-label="Remove"')
                .classes(_TABLE_ROW_DELETE + " row-span-2"),
                f"tier-{index}-remove",
            )
            for field in (code, name, threshold, multiplier):
                field.on_value_change(lambda _: self._changed())
        self.rows.append(row)
        self._refresh()
        self._changed()

    def _remove(self, row: dict[str, Any]) -> None:
        row["removed"] = True
        row["line"].visible = False
        self._refresh()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _refresh(self) -> None:
        """ "No tiers" only while the table has none."""
        if self.empty is not None:
            self.empty.visible = not self._live()

    def _live(self) -> list[tuple[int, dict[str, Any]]]:
        return [(i, r) for i, r in enumerate(r for r in self.rows if not r["removed"])]

    def values(self) -> dict[str, Any]:
        """``tiers`` (as ``TierSpec`` data, in the table's order), ``tier_window`` and
        ``tier_grace_days``, as the catalog reads them."""
        tiers = []
        for _, row in self._live():
            tier = {
                "id": (row["id"].value or "").strip(),
                "name": (row["name"].value or "").strip(),
                "threshold_points": as_int(row["threshold_points"].value),
            }
            multiplier = _multiplier(row["multiplier"].value)
            if multiplier is not None:  # blank: the default, 1
                tier["multiplier"] = multiplier
            tiers.append(tier)
        return {
            "tiers": tiers,
            "tier_window": self.window.value,
            "tier_grace_days": as_int(self.grace.value),
        }

    def fields(self) -> dict[str, Any]:
        """Validation paths (``tiers[0].threshold_points``) to their inputs."""
        mapping: dict[str, Any] = {"tier_window": self.window, "tier_grace_days": self.grace}
        for i, row in self._live():
            for key in self._KEYS:
                mapping[f"tiers[{i}].{key}"] = row[key]
        return mapping

    def mark_saved(self) -> None:
        """Saved ids are fixed from now on."""
        for _, row in self._live():
            row["id"].disable()


def _multiplier(raw: Any) -> Any:
    # A number input gives a float: read through its shortest text, 1.1 stays 1.1.
    if raw is None or raw == "":
        return None
    if isinstance(raw, float):
        return Decimal(repr(raw))
    return raw


class PolicyNote:
    """The expiry policy's select with what a change of it does: a standing note, and, while
    the chosen policy is not the saved one, a hint saying that only points earned after
    saving follow it."""

    def __init__(self, saved: str) -> None:
        self.saved = saved
        self.select: Any = None
        self.change: ui.label | None = None

    def build(self, select: Any) -> Any:
        """Tag ``select`` and put the note and the change hint under it; returns it."""
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


# --- the settings' inputs ------------------------------------------------------------------

# Hints under the inputs whose meaning is not in their label.
_HINTS = {
    "points_expiration_days": "Days without activity, or after each purchase when rolling",
    "pending_days": "0: at once. A return voids its own pending points first",
    "expiry_reminder_days": "0: no reminder ahead of the day",
    "point_value_cents": "What a point costs you, for the liability (e.g. 0.01)",
    "minimum_purchase_cents": "0.00: every purchase earns",
    "non_earning_categories": "e.g. gift-card, tobacco; they count toward no minimum",
}
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_COLOUR_MESSAGE = "must be a colour like #1F2937"


def settings_input(key: str, label: str, kind: str, value: Any, currency: str) -> Any:
    """The input of the setting ``key`` (kinds: ``programs._FIELDS``), holding ``value`` as
    saved; amounts in ``currency``."""
    element = _bare_input(key, label, kind, value, currency)
    if key in _HINTS:
        element.props(f'hint="{_HINTS[key]}"')
        # The hint takes the lines it needs (wrapped on a phone) instead of spilling over
        # the next field.
        element.props("hide-bottom-space")
    if kind != "bool":
        # Always the small label above the field: a long one fits a phone's width even while
        # the field is blank.
        element.props("stack-label")
    return element


def _bare_input(key: str, label: str, kind: str, value: Any, currency: str) -> Any:
    if kind == "bool":
        return ui.switch(label, value=bool(value))
    if kind == "type":
        return ui.select(PROGRAM_TYPES, label=label, value=value).classes("w-full")
    if kind == "policy":
        return ui.select(EXPIRY_POLICIES, label=label, value=value).classes("w-full")
    if kind == "currency":
        # Searchable: typing "eur" or "euro" narrows the list.
        select = ui.select(currency_choices(value), label=label, value=value, with_input=True)
        return select.props("input-debounce=0 options-dense").classes("w-full")
    if kind in ("int", "optional_int"):
        return ui.number(label, value=value, format="%d").classes("w-full")
    if kind in ("money", "point_money"):
        return _money_input(label, kind, value, currency)
    if kind == "color":
        return _colour_input(label, value, f"program-{key}-picker")
    if kind == "labels":
        return ui.input(label, value=labels_text(value)).classes("w-full")
    return ui.input(label, value=value or "").classes("w-full")


def _money_input(label: str, kind: str, cents: Any, currency: str) -> ui.input:
    """An amount in the currency's units ("2.50"), checked as it is typed."""
    decimals = POINT_VALUE_DECIMALS if kind == "point_money" else 2

    def problem(text: str | None) -> str | None:
        try:
            cents_of_amount(text, decimals=decimals)
        except AmountRefused as exc:
            return str(exc)
        return None

    element = ui.input(
        label, value=amount_of_cents(cents, decimals=decimals), validation=problem
    ).classes("w-full")
    # No room kept for a message that is not there: it takes its place when there is one.
    return element.props(f'inputmode=decimal suffix="{currency}" hide-bottom-space')


def _colour_problem(text: str | None) -> str | None:
    return None if _COLOUR.fullmatch((text or "").strip()) else _COLOUR_MESSAGE


def _colour_input(label: str, value: Any, marker: str) -> ui.input:
    """A colour typed as #RRGGBB or picked; the picker's button shows the colour."""
    element = ui.input(label, value=value or "", validation=_colour_problem).classes("w-full")
    element.props("maxlength=7 hide-bottom-space")
    with element.add_slot("append"):
        picker = ui.color_picker(on_pick=lambda e: element.set_value(str(e.color).upper()))
        tag(picker.q_color, marker)
        swatch = ui.button(icon="colorize", on_click=picker.open)
        swatch.props('round dense unelevated aria-label="Pick a colour"').classes("border")

    def paint() -> None:
        text = (element.value or "").strip().upper()
        if not _COLOUR.fullmatch(text):
            swatch.style("background-color: transparent !important; color: #334155 !important")
            return
        r, g, b = (int(text[i : i + 2], 16) for i in (1, 3, 5))
        # The icon in black or white, whichever reads on the colour.
        icon = "#0F172A" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#FFFFFF"
        swatch.style(f"background-color: {text} !important; color: {icon} !important")
        picker.set_color(text)

    element.on_value_change(lambda _: paint())
    paint()
    return element


def settings_value(kind: str, element: Any) -> Any:
    """An input's value as the catalog reads it (``AmountRefused`` for a bad amount)."""
    raw = element.value
    if kind == "bool":
        return bool(raw)
    if kind in ("type", "policy", "currency"):
        return raw
    if kind == "int":
        return as_int(raw)
    if kind == "optional_int":
        return None if raw is None or raw == "" else as_int(raw)
    if kind == "money":
        return whole_cents(raw)
    if kind == "point_money":
        return cents_of_amount(raw, decimals=POINT_VALUE_DECIMALS)
    if kind == "optional_text":
        return blank_to_none(raw)
    if kind == "labels":
        return labels(raw)
    return (raw or "").strip() if isinstance(raw, str) else raw
