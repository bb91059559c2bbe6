"""The program form (issue 18 item 3): money typed in the currency's units and kept in cents,
problems named in words, the sample card of the live preview; and the form through NiceGUI's
``user`` fixture: its sections, amounts saved in cents, bad values refused under their fields
with nothing saved, the currency from a list, and the preview following the typing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.formatting import local_when
from admin_ui.pages.program_tables import REWARD_LABELS, TIER_LABELS
from admin_ui.pages.programs import LABELS
from admin_ui.problems import FieldLabels, FieldProblem, plain_message
from admin_ui.queries.programs import (
    AmountRefused,
    amount_of_cents,
    cents_of_amount,
    currency_choices,
    preview_card,
    sample_tier,
    whole_cents,
)
from domain.models import LoyaltyProgram, Merchant
from tests.admin_ui.helpers import (
    ALICE,
    BOB,
    MAIN_FILE,
    WAIT,
    element_error,
    enrol,
    set_value,
    sign_in,
    status_of,
    texts,
    value_of,
)

pytestmark = MAIN_FILE

# --- euros and cents ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("2.50", 250),
        ("2.5", 250),
        ("2", 200),
        ("0", 0),
        (" 12.05 ", 1205),
        ("2,50", 250),  # a comma before one or two digits is the decimal mark
        (".5", 50),
        ("2.500", 250),  # trailing zeros are not decimals
        ("0.29", 29),  # exactly: 0.29 * 100 in floats is 28.999999999999996
        ("21474836.47", 2**31 - 1),
    ],
)
def test_an_amount_becomes_exact_cents(typed: str, cents: int) -> None:
    assert whole_cents(typed) == cents
    assert isinstance(whole_cents(typed), int)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2.555", "must have at most 2 decimals"),
        ("0.001", "must have at most 2 decimals"),
        ("-1", "must not be negative"),
        ("-0.50", "must not be negative"),
        ("", "must be an amount like 2.50"),
        (None, "must be an amount like 2.50"),
        ("abc", "must be an amount like 2.50"),
        ("1e3", "must be an amount like 2.50"),
        ("1,250", "must be an amount like 2.50"),  # a thousand or 1.25? Neither is guessed.
        ("2.50 EUR", "must be an amount like 2.50"),
        ("21474836.48", "is too large"),
    ],
)
def test_a_bad_amount_is_refused_with_a_message(typed: str | None, message: str) -> None:
    with pytest.raises(AmountRefused) as refused:
        whole_cents(typed)
    assert str(refused.value) == message


def test_a_point_value_keeps_fractions_of_a_cent() -> None:
    assert cents_of_amount("0.005", decimals=6) == Decimal("0.5")
    assert cents_of_amount("0.01", decimals=6) == Decimal("1")
    assert cents_of_amount("0.000001", decimals=6) == Decimal("0.0001")
    with pytest.raises(AmountRefused, match="at most 6 decimals"):
        cents_of_amount("0.0000001", decimals=6)


@pytest.mark.parametrize(
    ("cents", "decimals", "shown"),
    [
        (250, 2, "2.50"),
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (123456789, 2, "1234567.89"),
        (None, 2, ""),
        (Decimal("1.0000"), 6, "0.01"),
        (Decimal("0.5000"), 6, "0.005"),
        (Decimal("0.0001"), 6, "0.000001"),
    ],
)
def test_cents_are_shown_as_an_amount(cents: Any, decimals: int, shown: str) -> None:
    assert amount_of_cents(cents, decimals=decimals) == shown
    if cents is not None:  # and read back to the same cents
        assert cents_of_amount(shown, decimals=decimals) == Decimal(cents)


def test_the_currencies_are_iso_codes_with_names_common_ones_first() -> None:
    choices = currency_choices("EUR")
    assert list(choices)[:3] == ["EUR", "USD", "GBP"]
    assert choices["EUR"] == "EUR — Euro"
    assert "JPY" in choices
    # A program's own currency stays selectable even if no longer offered.
    assert currency_choices("XTS")["XTS"] == "XTS"


# --- problems in words ---------------------------------------------------------------------------


def test_paths_are_named_by_the_labels_of_their_inputs() -> None:
    assert LABELS.label("stamps_target") == "Stamps for a reward"
    assert LABELS.label("points_rewards[0].name") == "Reward 1, name"
    assert LABELS.label("points_rewards[2].points_required") == "Reward 3, points"
    assert LABELS.label("points_rewards") == "Rewards catalog"
    assert LABELS.label("tiers[1].threshold_points") == "Tier 2, threshold points"
    assert LABELS.label("tier_grace_days") == "Grace days before moving down"
    assert LABELS.label("max_daily_stamps") == "Stamps per day at most"  # without its hint
    assert LABELS.label("stamps_reward_value_cents") == "Stamp card reward value"
    assert LABELS.label("non_earning_categories[1]") == "Categories that earn nothing (entry 2)"
    problem = FieldProblem("points_rewards[0].name", "must not be empty")
    assert LABELS.sentence(problem) == "Reward 1, name: must not be empty"


def test_a_path_without_a_label_is_still_said_in_words() -> None:
    labels = FieldLabels(fields={}, items={"points_rewards": REWARD_LABELS})
    assert labels.label("some_field") == "Some field"
    assert labels.label("campaigns[0].ends_at") == "Campaigns 1 ends at"
    assert labels.label("tiers[0].id") == "Tiers 1 id"
    assert FieldLabels(fields={}, items={"tiers": TIER_LABELS}).label("tiers[0].id") == "Tier 1, id"


@pytest.mark.parametrize(
    ("message", "plain"),
    [
        ("must be >= 1", "must be at least 1"),
        ("must be >= 0", "must not be negative"),
        ("must be > 0", "must be more than 0"),
        ("must be <= 2147483647", "must be at most 2,147,483,647"),
        ("must be < 100", "must be less than 100"),
        ("must be an integer", "must be a whole number"),
        ("required", "must be filled in"),
        ("must be a colour like #1F2937", "must be a colour like #1F2937"),
        (
            "must be < points_expiration_days (30) when expiry_policy is rolling: the points "
            "would expire before they could be spent",
            "must be less than “Points expire after days” (30) when “Points expire” is rolling: "
            "the points would expire before they could be spent",
        ),
    ],
)
def test_the_catalog_s_sentences_are_said_without_symbols_or_keys(message: str, plain: str) -> None:
    assert plain_message(message, LABELS.fields) == plain


# --- the preview's sample card --------------------------------------------------------------------


def _sample(**settings: Any) -> Any:
    return preview_card(
        {"type": "hybrid", "name": "Club", **settings},
        [],
        merchant_name="Café",
        merchant_timezone="Europe/Luxembourg",
        today=date(2027, 1, 1),
    )


def test_the_sample_card_is_drawn_from_the_values_typed() -> None:
    card = _sample(
        background_color="#7c2d12", card_name="Café Club", stamps_target=8, pending_days=14
    )
    assert (card.background_color, card.program_name, card.stamps_target) == (
        "#7C2D12",
        "Café Club",
        8,
    )
    assert 0 < card.stamp_count < 8
    assert card.points_pending > 0
    assert card.next_expiry_on is None  # points that never expire
    # What the catalog would refuse is drawn in the defaults, never a crash.
    card = _sample(background_color="blue", foreground_color="#FFF", stamps_target=None)
    assert (card.background_color, card.foreground_color, card.stamps_target) == (
        "#1F2937",
        "#FFFFFF",
        10,
    )
    assert _sample(card_name="", name="").program_name == "Loyalty card"
    expiring = _sample(points_expiration_days=365)
    assert expiring.next_expiry_on == date(2027, 1, 31) and expiring.next_expiry_points > 0
    assert expiring.pass_card().next_expiry is not None


def test_the_sample_card_stands_in_the_first_tier_on_the_way_to_the_second() -> None:
    tiers: list[dict[str, Any]] = [
        {"id": "member", "name": "Member", "threshold_points": 0, "multiplier": 1},
        {"id": "gold", "name": "Gold", "threshold_points": 1000, "multiplier": None},
        {"id": "", "name": "", "threshold_points": None},  # a row being typed
    ]
    standing = sample_tier(tiers)
    assert standing is not None
    assert (standing.name, standing.next_name, standing.points_to_next) == ("Member", "Gold", 400)
    assert sample_tier([]) is None
    assert sample_tier([{"id": "", "name": "", "threshold_points": None}]) is None
    stamps_only = preview_card(
        {"type": "stamps", "name": "Club"},
        tiers,
        merchant_name="Café",
        merchant_timezone="UTC",
        today=date(2027, 1, 1),
    )
    assert stamps_only.tier is None  # tiers count points


# --- the form ------------------------------------------------------------------------------------


def _type(user: User, marker: str, text: str) -> None:
    user.find(marker=marker).clear()
    user.find(marker=marker).type(text)


async def _program(db: AsyncSession, program_id: int) -> LoyaltyProgram:
    db.expire_all()
    program = await db.get(LoyaltyProgram, program_id, execution_options={"include_deleted": True})
    assert program is not None
    return program


async def test_the_form_is_in_sections_and_saves_amounts_in_cents(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    for title in ("Program", "Earning", "Rewards", "Anti-fraud", "Expiry", "Appearance"):
        await user.should_see(title)
    sections = {
        "earning": ("program-type", "program-currency", "program-stamps_reward_value_cents"),
        "rewards": ("program-point_value_cents", "reward-0-name", "program-tier_window"),
        "antifraud": ("program-cooldown_minutes", "program-pin_max_attempts"),
        "expiry": ("program-expiry_policy", "program-pending_days"),
        "appearance": ("program-background_color", "program-logo_url"),
    }
    for key, markers in sections.items():
        (box,) = user.find(marker=f"program-section-{key}").elements
        inside = {m for e in box.descendants() for m in e._markers}
        assert set(markers) <= inside, (key, set(markers) - inside)
    # Amounts shown in the currency's units, the currency after them.
    assert value_of(user, "program-stamps_reward_value_cents") == "0.00"
    assert value_of(user, "program-point_value_cents") == "0.01"
    (money,) = user.find(marker="program-minimum_purchase_cents").elements
    assert money.props["suffix"] == "EUR"

    _type(user, "program-stamps_reward_value_cents", "2.50")
    _type(user, "program-minimum_purchase_cents", "12,05")
    _type(user, "program-point_value_cents", "0.005")
    set_value(user, "program-currency", "CHF")
    assert money.props["suffix"] == "CHF"  # the amounts follow the currency chosen
    user.find(marker="program-save").click()
    await user.should_see("Program saved.", retries=WAIT)
    program = await _program(db, people["a_program"])
    assert (
        program.stamps_reward_value_cents,
        program.minimum_purchase_cents,
        program.point_value_cents,
        program.currency,
    ) == (250, 1205, Decimal("0.5"), "CHF")

    await user.open(f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    assert value_of(user, "program-stamps_reward_value_cents") == "2.50"
    assert value_of(user, "program-minimum_purchase_cents") == "12.05"
    assert value_of(user, "program-point_value_cents") == "0.005"
    (currency,) = user.find(marker="program-currency").elements
    assert isinstance(currency, ui.select)
    assert currency.value == "CHF"
    assert currency.options["CHF"] == "CHF — Swiss Franc"  # type: ignore[call-overload]
    assert "use-input" in currency.props  # searchable


async def test_a_bad_amount_and_a_bad_colour_change_nothing(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    _type(user, "program-background_color", "#12345")
    # Said as it is typed, before saving.
    assert element_error(user, "program-background_color") == "must be a colour like #1F2937"
    _type(user, "program-stamps_reward_value_cents", "-2")
    assert element_error(user, "program-stamps_reward_value_cents") == "must not be negative"
    _type(user, "program-minimum_purchase_cents", "five")
    _type(user, "program-name", "Renamed")
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "program-background_color") == "must be a colour like #1F2937"
    assert element_error(user, "program-stamps_reward_value_cents") == "must not be negative"
    assert element_error(user, "program-minimum_purchase_cents") == "must be an amount like 2.50"
    (box,) = texts(user, "program-errors")
    assert box == (
        "Please correct: Stamp card reward value: must not be negative; Minimum purchase to "
        "earn: must be an amount like 2.50; Background colour: must be a colour like #1F2937"
    )
    await user.should_not_see("Program saved.")
    program = await _program(db, people["a_program"])
    assert (
        program.name,
        program.background_color,
        program.stamps_reward_value_cents,
        program.minimum_purchase_cents,
    ) == ("Loyalty card", "#1F2937", 0, 0)


async def test_table_problems_are_named_in_words_and_their_section_opened(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-save", retries=WAIT)
    (rewards,) = user.find(marker="program-section-rewards").elements
    assert isinstance(rewards, ui.expansion)
    rewards.value = False  # the admin folded it away
    user.find(marker="reward-0-name").clear()
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert texts(user, "program-errors") == ["Please correct: Reward 1, name: must not be empty"]
    assert element_error(user, "reward-0-name") == "must not be empty"
    assert rewards.value is True  # opened again on the problem
    await user.should_not_see("points_rewards")


async def test_the_preview_follows_the_typing_without_saving(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await db.execute(
        update(LoyaltyProgram)
        .where(LoyaltyProgram.id == people["a_program"])
        .values(stamps_reward_description="A free coffee")
    )
    await db.commit()
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-preview", retries=WAIT)
    merchant = await db.scalar(select(Merchant.name).where(Merchant.id == people["a"]))
    assert texts(user, "program-preview-logo-text") == [merchant]
    assert texts(user, "program-preview-pass-reward") == ["A free coffee"]
    assert texts(user, "program-preview-pass-points") == ["1,250"]  # a sample balance
    (pass_card,) = user.find(marker="program-preview-pass-card").elements
    assert "background-color: #1F2937" in _style(pass_card)

    _type(user, "program-background_color", "#7C2D12")
    _type(user, "program-card_name", "Café Crème Club")
    _type(user, "program-stamps_reward_description", "A croissant")
    (pass_card,) = user.find(marker="program-preview-pass-card").elements
    assert "background-color: #7C2D12" in _style(pass_card)
    (brand,) = user.find(marker="brand-card").elements  # the card page's own drawing
    assert "background-color: #7C2D12" in _style(brand)
    await user.should_see("Café Crème Club")
    assert texts(user, "program-preview-pass-reward") == ["A croissant"]
    # A colour half typed leaves the preview in the last one it could draw: the default.
    _type(user, "program-background_color", "#7C2")
    (pass_card,) = user.find(marker="program-preview-pass-card").elements
    assert "background-color: #1F2937" in _style(pass_card)

    program = await _program(db, people["a_program"])
    assert (program.background_color, program.card_name) == ("#1F2937", None)


def _style(element: ui.element) -> str:
    return "; ".join(f"{key}: {value}" for key, value in element._style.items())


async def test_another_merchant_s_program_form_is_not_found(
    user: User, people: dict[str, Any]
) -> None:
    await sign_in(user, BOB)
    status, body = await status_of(user, f"/programs/{people['a_program']}")
    assert status == 404
    assert "not allowed to see it" in body
    assert "program-preview" not in body and people["a_name"] not in body


async def test_a_program_deleted_from_its_page_says_when_on_the_merchant_s_clock(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await enrol(db, people["a_store_codes"][0], "jane@example.com")
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-delete", retries=WAIT)
    user.find(marker="program-delete").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    await user.should_see("1 card", retries=WAIT)  # what the deletion hides along
    user.find(marker="confirm-yes").click()
    await user.should_see("Program deleted.", retries=WAIT)
    program = await _program(db, people["a_program"])
    assert program.deleted_at is not None

    await user.open(f"/programs/{people['a_program']}")
    await user.should_see(marker="deleted-banner", retries=WAIT)
    (banner,) = texts(user, "deleted-banner")
    local = local_when(program.deleted_at, "Europe/Luxembourg")  # the seeded merchant's zone
    assert local in banner and "UTC" not in banner, banner
    await user.should_not_see(marker="program-preview")
    user.find(marker="program-restore").click()
    await user.should_see("Program restored.", retries=WAIT)
    assert (await _program(db, people["a_program"])).deleted_at is None
