"""The two editable tables of a program's form: its rewards catalog and its tiers
(CONTRACT.md 7.4), one row of inputs per entry, added and removed in place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nicegui import ui

from admin_ui.texts import TIER_WINDOWS, TIERS_NOTE
from admin_ui.widgets import as_int, blank_to_none, tag

# A row of the rewards or the tiers table: on a phone a grid of two inputs a line, the delete
# button on the right; one line from a tablet's width.
_TABLE_ROW = (
    "w-full grid grid-cols-[minmax(0,1fr)_minmax(0,1fr)_auto] gap-x-2 items-start "
    "md:flex md:flex-nowrap"
)
_TABLE_ROW_DELETE = "col-start-3 row-start-1 self-center md:self-start"


class RewardsTable:
    """The rewards catalog as an editable table: one row of inputs per reward."""

    def __init__(self, rewards: list[dict[str, Any]]) -> None:
        self.rows: list[dict[str, Any]] = []
        self._initial = rewards
        self.container: ui.column | None = None

    def build(self) -> None:
        self.container = tag(ui.column().classes("w-full gap-3 md:gap-1"), "rewards")
        for reward in self._initial:
            self._add(reward)
        tag(
            ui.button("Add reward", icon="add", on_click=lambda: self._add(None)).props("flat"),
            "reward-add",
        )

    def _add(self, reward: dict[str, Any] | None) -> None:
        assert self.container is not None
        index = len(self.rows)
        # A reward on one line from a tablet's width; on a phone three lines, two inputs a
        # line, the delete button beside them.
        with self.container, ui.element("div").classes(_TABLE_ROW) as line:
            code = tag(
                ui.input("Code", value=reward["id"] if reward else "").classes("min-w-0 md:w-32"),
                f"reward-{index}-id",
            )
            if reward and reward.get("saved"):
                code.disable()  # a saved reward keeps its code: the ledger names it by it
            name = tag(
                ui.input("Name", value=reward["name"] if reward else "").classes("min-w-0 md:w-56"),
                f"reward-{index}-name",
            )
            points = tag(
                ui.number(
                    "Points", value=reward["points_required"] if reward else None, format="%d"
                ).classes("min-w-0 md:w-28"),
                f"reward-{index}-points_required",
            )
            description = tag(
                ui.input("Description", value=(reward or {}).get("description") or "").classes(
                    "min-w-0 md:grow"
                ),
                f"reward-{index}-description",
            )
            active = tag(
                ui.switch("Active", value=bool((reward or {}).get("is_active", True))).classes(
                    "md:shrink-0"
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
                .props("flat dense color=negative")
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

    def __init__(self, tiers: list[dict[str, Any]], settings: dict[str, Any]) -> None:
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
        self.container = tag(ui.column().classes("w-full gap-3 md:gap-1"), "tiers")
        for tier in self._initial:
            self._add(tier)
        self._refresh()
        tag(
            ui.button("Add tier", icon="add", on_click=lambda: self._add(None)).props("flat"),
            "tier-add",
        )
        with ui.row().classes("w-full items-start gap-6"):
            window = self._settings.get("tier_window") or "rolling_12_months"
            self.window = tag(
                ui.select(TIER_WINDOWS, label="Qualifying points count over", value=window),
                "program-tier_window",
            ).classes("w-64")
            self.grace = tag(
                ui.number(
                    "Grace days before moving down",
                    value=self._settings.get("tier_grace_days", 0),
                    format="%d",
                ).props('hint="0: at the first daily run below the tier"'),
                "program-tier_grace_days",
            ).classes("w-64")

    def _add(self, tier: dict[str, Any] | None) -> None:
        assert self.container is not None
        index = len(self.rows)
        given = tier or {}
        # A tier on one line from a tablet's width; on a phone two lines of two inputs, the
        # delete button beside them.
        with self.container, ui.element("div").classes(_TABLE_ROW) as line:
            code = tag(
                ui.input("Id", value=given.get("id", "")).classes("min-w-0 md:w-32"),
                f"tier-{index}-id",
            )
            if tier is not None:
                code.disable()  # a saved tier keeps its id: cards and their history name it
            name = tag(
                ui.input("Name", value=given.get("name", "")).classes("min-w-0 md:w-56"),
                f"tier-{index}-name",
            )
            threshold = tag(
                ui.number(
                    "Threshold points",
                    value=given.get("threshold_points", 0 if index == 0 else None),
                    format="%d",
                ).classes("min-w-0 md:w-36"),
                f"tier-{index}-threshold_points",
            )
            multiplier = tag(
                ui.number("Multiplier", value=given.get("multiplier", 1), step=0.05).classes(
                    "min-w-0 md:w-28"
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
                .props("flat dense color=negative")
                .classes(_TABLE_ROW_DELETE + " row-span-2"),
                f"tier-{index}-remove",
            )
        self.rows.append(row)
        self._refresh()

    def _remove(self, row: dict[str, Any]) -> None:
        row["removed"] = True
        row["line"].visible = False
        self._refresh()

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
