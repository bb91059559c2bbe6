"""A campaign's form: every field of CONTRACT.md 7.1, typed as a merchant thinks of them.

The window is typed on the merchant's clock, weekdays are ticked, the hours are two times,
skus and categories comma-separated lists, the minimum basket in the program's currency.
``CampaignForm.values`` turns that back into the fields of the provisioning file and checks
them with the catalog's one validation (``domain_api.check_campaign``), so the form refuses
what ``loyalty provision`` refuses, with the same sentences, each under its field (named as
the form labels it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from nicegui import ui

from admin_ui import campaign_texts as words
from admin_ui import domain_api
from admin_ui.pages.common import section
from admin_ui.problems import FieldLabels, FieldProblem, plain_message
from admin_ui.queries.campaigns import ProgramScope
from admin_ui.widgets import ErrorBox, as_int, datetime_field, show_problems, tag, time_field

_ITEM = re.compile(r"^(skus|categories|days)\[(\d+)\]$")
# Each field as the form labels it, for the list of what to correct.
_LABELS = FieldLabels(
    {
        "id": "Code",
        "name": "Name",
        "starts_at": "Starts",
        "ends_at": "Ends",
        "days": "Days",
        "hours": "Hours",
        "categories": "Categories",
        "skus": "SKUs",
        "min_basket_cents": "Minimum basket",
        "multiplier": "Multiplier",
        "bonus_points": "Bonus points",
        "budget_points": "Budget",
        "max_awards_per_card": "Purchases rewarded per card",
    }
)


class CampaignForm:
    """The inputs of one campaign, filled from ``initial`` (``campaign_data``'s shape) or
    empty for a new one. ``code_fixed`` locks the id: a campaign that has run is named by it
    in results and in the provisioning file."""

    def __init__(
        self, scope: ProgramScope, initial: Mapping[str, Any] | None, *, code_fixed: bool
    ) -> None:
        self.zone = scope.timezone
        self.currency = scope.currency
        data: Mapping[str, Any] = initial or {}
        start, until = words.split_hours(data.get("hours"))
        self.errors = ErrorBox("campaign-errors")
        with section("Campaign"), _grid():
            self.code = _hint(
                tag(ui.input("Code", value=data.get("id") or ""), "campaign-id"),
                "Lower-case letters, digits and -; names it in reports",
            ).props("maxlength=64")
            if code_fixed:
                self.fix_code()
            self.name = tag(ui.input("Name", value=data.get("name") or ""), "campaign-name")
        with section(f"When (on the merchant's clock, {self.zone})"):
            with _grid():
                self.starts = _hint(
                    tag(
                        datetime_field(
                            "Starts", words.local_text(data.get("starts_at"), self.zone)
                        ),
                        "campaign-starts_at",
                    ),
                    "Blank: at once",
                )
                self.ends = _hint(
                    tag(
                        datetime_field("Ends", words.local_text(data.get("ends_at"), self.zone)),
                        "campaign-ends_at",
                    ),
                    "Blank: never",
                )
            ui.label("Days (none ticked: every day)").classes("text-sm text-slate-600 pt-2")
            ticked = set(data.get("days") or ())
            with ui.row().classes("gap-x-3 gap-y-0"):
                self.days = {
                    day: tag(
                        ui.checkbox(words.DAY_NAMES[day], value=day in ticked),
                        f"campaign-day-{day}",
                    )
                    for day in words.WEEKDAYS
                }
            with _grid():
                self.hours_from = _hint(
                    tag(time_field("From", start), "campaign-hours-from"), "Both blank: all day"
                )
                self.hours_until = _hint(
                    tag(time_field("Until", until), "campaign-hours-until"), "00:00: midnight"
                )
        with section("Which purchases"):
            _caption("Lines of these categories or SKUs; with neither, every line that earns.")
            with _grid():
                self.categories = _hint(
                    tag(
                        ui.input("Categories", value=words.labels_text(data.get("categories"))),
                        "campaign-categories",
                    ),
                    "Comma-separated, e.g. pastry, bread",
                )
                self.skus = _hint(
                    tag(
                        ui.input("SKUs", value=words.labels_text(data.get("skus"))), "campaign-skus"
                    ),
                    "Comma-separated, e.g. croissant",
                )
                self.min_basket = _hint(
                    tag(
                        ui.number(
                            f"Minimum basket ({self.currency})",
                            value=words.amount_text(data.get("min_basket_cents")),
                            format="%.2f",
                            step=0.5,
                            min=0,
                        ),
                        "campaign-min_basket_cents",
                    ),
                    "Of the lines that earn, e.g. 12.50. Blank: none",
                )
        with section("What they earn"):
            _caption(
                "Where campaigns overlap, the highest multiplier applies; their bonuses add up."
            )
            with _grid():
                multiplier = data.get("multiplier")
                self.multiplier = _hint(
                    tag(
                        ui.number(
                            "Multiplier",
                            value=float(multiplier) if multiplier is not None else 1,
                            step=0.5,
                            min=0,
                        ),
                        "campaign-multiplier",
                    ),
                    "1: none, 2: double points",
                )
                self.bonus = _hint(
                    tag(
                        ui.number(
                            "Bonus points", value=data.get("bonus_points") or 0, format="%d", min=0
                        ),
                        "campaign-bonus_points",
                    ),
                    "Once per matching purchase",
                )
                self.budget = _hint(
                    tag(
                        ui.number(
                            "Budget (points)", value=data.get("budget_points"), format="%d", min=1
                        ),
                        "campaign-budget_points",
                    ),
                    "All it may award. Blank: no limit",
                )
                self.per_card = _hint(
                    tag(
                        ui.number(
                            "Purchases rewarded per card",
                            value=data.get("max_awards_per_card"),
                            format="%d",
                            min=1,
                        ),
                        "campaign-max_awards_per_card",
                    ),
                    "Blank: no limit",
                )
        self._fields: dict[str, Any] = {
            "id": self.code,
            "name": self.name,
            "starts_at": self.starts,
            "ends_at": self.ends,
            "hours": self.hours_until,
            "skus": self.skus,
            "categories": self.categories,
            "min_basket_cents": self.min_basket,
            "multiplier": self.multiplier,
            "bonus_points": self.bonus,
            "budget_points": self.budget,
            "max_awards_per_card": self.per_card,
        }
        for element in (*self._fields.values(), self.hours_from):
            # The space under an input grows with a message of two lines instead of letting
            # it run over the next input.
            element.classes("w-full").props("hide-bottom-space")

    def fix_code(self) -> None:
        """Lock the id: the campaign has run, and results and the provisioning file name it."""
        self.code.disable()
        self.code.props('hint="Fixed once the campaign has run"')

    def values(self) -> dict[str, Any] | None:
        """The campaign the form states, validated; ``None`` after writing each problem under
        its field."""
        data, problems = self._read()
        problems += [
            p
            for p in domain_api.check_campaign(data)
            if _field(p.path) not in {q.path for q in problems}
        ]
        self.show(problems)
        return None if problems else data

    def show(self, problems: Sequence[FieldProblem]) -> None:
        """Write ``problems`` (by the catalog's paths) under their fields, and list them."""
        readable = [self._readable(p) for p in problems]
        plain = [FieldProblem(p.path, plain_message(p.message, _LABELS.fields)) for p in readable]
        show_problems(plain, self._fields, self.errors)
        if plain:
            # Named as the form labels them, not by the provisioning file's keys.
            self.errors.show("Please correct: " + "; ".join(_LABELS.sentence(p) for p in plain))
        # The hours are one field of two inputs: both turn red, the sentence stands once.
        self.hours_from.error = "" if self.hours_until.error else None

    def _read(self) -> tuple[dict[str, Any], list[FieldProblem]]:
        problems: list[FieldProblem] = []
        data: dict[str, Any] = {
            "id": (self.code.value or "").strip(),
            "name": (self.name.value or "").strip(),
            "days": [day for day, box in self.days.items() if box.value],
            "skus": words.labels(self.skus.value),
            "categories": words.labels(self.categories.value),
            "budget_points": _optional(self.budget.value),
            "max_awards_per_card": _optional(self.per_card.value),
        }
        for key, element in (("starts_at", self.starts), ("ends_at", self.ends)):
            try:
                at = words.read_local(element.value, self.zone)
            except ValueError as exc:
                problems.append(FieldProblem(key, str(exc)))
                continue
            data[key] = at.isoformat() if at else None
        hours, problem = words.join_hours(self.hours_from.value, self.hours_until.value)
        if problem:
            problems.append(FieldProblem("hours", problem))
        data["hours"] = hours
        # Blank numbers take the campaign's defaults (no minimum, no multiplier, no bonus).
        try:
            basket = words.read_amount(self.min_basket.value)
        except ValueError as exc:
            problems.append(FieldProblem("min_basket_cents", str(exc)))
        else:
            if basket is not None:
                data["min_basket_cents"] = basket
        if self.bonus.value is not None:
            data["bonus_points"] = as_int(self.bonus.value)
        if self.multiplier.value is not None:
            data["multiplier"] = _decimal(self.multiplier.value)
        return data, problems

    def _readable(self, problem: FieldProblem) -> FieldProblem:
        # "categories[2]: must have at most 64 characters" stands under the one input of the
        # list, naming the item.
        match = _ITEM.match(problem.path)
        if match is None:
            return problem
        key, index = match.group(1), int(match.group(2))
        items = self._read()[0].get(key) or []
        item = items[index] if index < len(items) else ""
        return FieldProblem(key, f"“{item}”: {problem.message}")


E = TypeVar("E", bound=ui.element)


def _hint(element: E, text: str) -> E:
    # Labels stay short enough for a phone; what a field means stands under it.
    element.props(f'hint="{text}"')
    return element


def _caption(text: str) -> None:
    ui.label(text).classes("text-sm text-slate-600")


def _field(path: str) -> str:
    match = _ITEM.match(path)
    return match.group(1) if match else path


def _grid() -> ui.element:
    # One column on a phone, two from a tablet's width on.
    return ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-x-6 gap-y-2 w-full")


def _optional(value: Any) -> Any:
    return None if value is None or value == "" else as_int(value)


def _decimal(value: Any) -> Any:
    try:
        # Through str: 1.1 as a float is not 1.1, but its shortest text is.
        return Decimal(str(value))
    except InvalidOperation:
        return value  # named as "must be a number" by the validation
