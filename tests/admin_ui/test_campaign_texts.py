"""The campaign pages' words and the form's texts read back: the merchant's clock, comma lists,
the two hour inputs, amounts in the currency, the budget's bar, figures in the admin's language,
and the trial's period and days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from admin_ui import campaign_texts as words
from admin_ui.formatting import using_locale

LUX = "Europe/Luxembourg"


def test_times_are_typed_and_shown_on_the_merchants_clock() -> None:
    at = words.read_local("2026-03-03 15:00", LUX)
    assert at is not None
    assert at.astimezone(UTC) == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    assert words.local(at, LUX) == "2026-03-03 15:00"
    assert words.local_text(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), LUX) == "2026-07-01 12:00"
    assert words.local_text(None, LUX) == ""
    midnight = words.read_local("2026-03-03", LUX)
    assert midnight is not None and (midnight.hour, midnight.minute) == (0, 0)
    assert words.read_local("  ", LUX) is None


@pytest.mark.parametrize("typed", ["03/03/2026", "2026-02-30 10:00", "2026-03-03 25:00", "soon"])
def test_a_time_that_is_not_one_says_what_to_type(typed: str) -> None:
    with pytest.raises(ValueError, match="must be a date and time like 2026-03-31 14:00"):
        words.read_local(typed, LUX)


def test_comma_lists() -> None:
    assert words.labels(" pastry, bread,, ") == ["pastry", "bread"]
    assert words.labels(None) == []
    assert words.labels_text(["pastry", "bread"]) == "pastry, bread"


@pytest.mark.parametrize(
    ("start", "end", "hours", "problem"),
    [
        ("", "", None, None),
        ("14:00", "17:00", "14:00-17:00", None),
        ("9:30", "12:00", "09:30-12:00", None),
        ("18:00", "00:00", "18:00-24:00", None),  # until midnight
        ("14:00", "", None, "give both times, or neither for all day"),
        ("2pm", "5pm", None, "must be times like 14:00"),
    ],
)
def test_the_two_hour_inputs_make_the_hours(
    start: str, end: str, hours: str | None, problem: str | None
) -> None:
    assert words.join_hours(start, end) == (hours, problem)


def test_hours_split_back_into_the_inputs() -> None:
    assert words.split_hours("14:00-17:00") == ("14:00", "17:00")
    assert words.split_hours(None) == ("", "")


def test_a_campaign_summarised() -> None:
    campaign = {
        "starts_at": datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        "ends_at": None,
        "days": ["thu", "tue"],
        "hours": "14:00-17:00",
    }
    assert words.when(campaign, LUX) == "from 2026-01-01 01:00 · Tue, Thu · 14:00–17:00"
    assert words.when({"days": []}, LUX) == "no end date · every day · all day"
    assert words.gives(Decimal("2.000"), 0) == "×2"
    assert words.gives(Decimal("1.5"), 50) == "×1.5 · +50 points"
    assert words.gives(Decimal(1), 1000) == "+1,000 points"
    assert words.applies_to([], ["pastry"]) == "pastry"
    assert words.applies_to(["croissant"], []) == "SKU croissant"
    assert (
        words.applies_to(["croissant", "bagel"], ["pastry"]) == "pastry and SKUs croissant, bagel"
    )
    assert words.applies_to([], []) == "every earning line"
    assert (
        words.on_what([], ["pastry"], 1250, "EUR") == "pastry · baskets of 12.50\u00a0EUR or more"
    )
    assert words.on_what([], [], None, "EUR") == "every earning line"
    assert words.per_card(None) == "no limit"
    assert words.per_card(3) == "3 purchases"


def test_the_budget_bar() -> None:
    assert words.budget(7450, 10000) == "7,450 / 10,000 points"
    assert words.budget_used(7450, 10000) == pytest.approx(0.745)
    assert words.budget(120, None) == "120 points · no budget"
    assert words.budget_used(120, None) is None


def test_figures_follow_the_admins_language() -> None:
    with using_locale("fr"):
        assert words.budget(7450, 10000) == "7\u202f450 / 10\u202f000 points"
        assert words.gives(Decimal("1.5"), 1000) == "×1,5 · +1\u202f000 points"
        assert words.per_card(1200) == "1\u202f200 purchases"
    with using_locale("de"):
        assert words.budget(7450, None) == "7.450 points · no budget"
        assert words.multiplier(Decimal("1.25")) == "×1,25"


def test_amounts_are_typed_in_the_currency_and_kept_in_cents() -> None:
    assert words.amount_text(1250) == 12.5
    assert words.amount_text(None) is None and words.amount_text(0) is None
    assert words.read_amount(12.5) == 1250
    assert words.read_amount("7") == 700
    assert words.read_amount(None) is None and words.read_amount("") is None
    for wrong in (12.345, -1, "twelve", "nan"):
        with pytest.raises(ValueError, match=r"must be an amount like 12\.50"):
            words.read_amount(wrong)


def test_statuses_have_words_and_colours() -> None:
    assert [words.status_word(s) for s in ("draft", "active", "paused", "ended")] == [
        "Draft",
        "Active",
        "Paused",
        "Ended",
    ]
    assert words.status_color("active") == "positive"


def test_the_trial_period_is_whole_local_days() -> None:
    assert words.default_period(date(2026, 3, 31)) == ("2026-03-02", "2026-03-31")
    start, end = words.read_period("2026-03-02", "2026-03-31", LUX)
    assert start.astimezone(UTC) == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    # The last day is included: the period ends at its midnight, summer time by then.
    assert end.astimezone(UTC) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="the last day is before the first"):
        words.read_period("2026-03-31", "2026-03-01", LUX)
    with pytest.raises(ValueError, match="366 days at most"):
        words.read_period("2024-01-01", "2026-01-01", LUX)
    with pytest.raises(ValueError, match="dates like"):
        words.read_period("", "2026-01-01", LUX)


def test_every_day_of_the_chart_is_there() -> None:
    per_day = {date(2026, 3, 3): [80, 130]}
    assert words.every_day(per_day, date(2026, 3, 2), date(2026, 3, 4)) == (
        ["2026-03-02", "2026-03-03", "2026-03-04"],
        [0, 80, 0],
        [0, 130, 0],
    )
