"""Line items, non-earning categories and campaigns (CONTRACT.md 7.1), as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.commands import Line, ReturnedLine
from core.enums import LedgerType, ReasonCode
from domain.models import ProgramType
from domain.rules.basket import CampaignUse, Earnings, basket_points, void_lines
from domain.rules.campaigns import CampaignTerms, parse_hours
from domain.rules.earn import PurchaseFacts, earn_purchase
from domain.rules.values import CardBalance, ProgramTerms, StampHistory
from domain.rules.void import PurchaseRecord, decide_line_return, decide_return
from tests.unit.domain.builders import LUXEMBOURG, lux, program

POINTS = ProgramType.POINTS
# A Tuesday afternoon and a Wednesday morning in Luxembourg.
TUESDAY_3PM = lux(2026, 3, 3, 15, 0)
WEDNESDAY_9AM = lux(2026, 3, 4, 9, 0)

DOUBLE_PASTRY_TUESDAY = CampaignTerms(
    campaign_id=1,
    code="double-tuesday",
    multiplier_milli=2000,
    days=frozenset({1}),
    hours=(14 * 60, 17 * 60),
    categories=frozenset({"pastry"}),
)
BIG_BASKET_BONUS = CampaignTerms(
    campaign_id=2, code="big-basket", bonus_points=50, min_basket_cents=3000
)


def terms(*campaigns: CampaignTerms, excluded: frozenset[str] = frozenset()) -> ProgramTerms:
    return program(
        POINTS,
        points_per_euro=10,
        timezone=LUXEMBOURG,
        campaigns=campaigns,
        non_earning_categories=excluded,
    )


def basket(*lines: Line, amount: int | None = None) -> tuple[int, tuple[Line, ...]]:
    return (sum(ln.amount_cents for ln in lines) if amount is None else amount), lines


CROISSANT = Line("croissant", 2, 500, "pastry")
COFFEE = Line("coffee", 1, 300, "drink")
GIFT_CARD = Line("gift-50", 1, 5000, "gift-card")


def test_without_lines_or_campaigns_a_purchase_earns_as_in_v1() -> None:
    p = program(POINTS, points_per_euro=10)
    result = basket_points(p, 1299, (), TUESDAY_3PM, {})
    assert (result.points, result.earnings, result.awards) == (129, None, ())


def test_lines_earn_like_the_whole_amount_when_no_campaign_applies() -> None:
    amount, lines = basket(CROISSANT, COFFEE, amount=850)  # 50 cents uncovered (a fee)
    result = basket_points(terms(), amount, lines, TUESDAY_3PM, {})
    assert result.points == 85
    assert result.earnings is not None
    assert [ln.points for ln in result.earnings.lines] == [50, 30]
    assert result.earnings.rest_points == 5


def test_a_category_multiplier_applies_in_its_window_only() -> None:
    amount, lines = basket(CROISSANT, COFFEE)
    on = basket_points(terms(DOUBLE_PASTRY_TUESDAY), amount, lines, TUESDAY_3PM, {})
    off = basket_points(terms(DOUBLE_PASTRY_TUESDAY), amount, lines, WEDNESDAY_9AM, {})
    assert on.points == 100 + 30
    assert [(c.code, pts) for c, pts in on.awards] == [("double-tuesday", 50)]
    assert off.points == 80 and off.awards == ()


def test_the_window_is_judged_on_the_merchants_clock() -> None:
    amount, lines = basket(CROISSANT)
    p = terms(DOUBLE_PASTRY_TUESDAY)
    # 13:30 UTC is 14:30 in Luxembourg in March: inside 14:00-17:00; 16:30 UTC is not.
    assert (
        basket_points(p, amount, lines, datetime(2026, 3, 3, 13, 30, tzinfo=UTC), {}).points == 100
    )
    assert (
        basket_points(p, amount, lines, datetime(2026, 3, 3, 16, 30, tzinfo=UTC), {}).points == 50
    )


def test_multipliers_do_not_stack_the_highest_wins() -> None:
    triple_all = CampaignTerms(campaign_id=3, code="triple", multiplier_milli=3000)
    amount, lines = basket(CROISSANT, COFFEE)
    result = basket_points(terms(DOUBLE_PASTRY_TUESDAY, triple_all), amount, lines, TUESDAY_3PM, {})
    assert result.points == 240
    assert [(c.code, pts) for c, pts in result.awards] == [("triple", 160)]


def test_non_earning_lines_earn_nothing_and_count_in_no_basket() -> None:
    amount, lines = basket(CROISSANT, GIFT_CARD)
    p = terms(BIG_BASKET_BONUS, excluded=frozenset({"gift-card"}))
    result = basket_points(p, amount, lines, TUESDAY_3PM, {})
    assert result.points == 50  # the croissants only; 55 EUR paid, but 5 EUR earn
    assert result.earning_cents == 500
    assert result.awards == ()


def test_non_earning_lines_do_not_reach_the_minimum_purchase() -> None:
    p = program(
        POINTS,
        points_per_euro=10,
        minimum_purchase_cents=1000,
        non_earning_categories=frozenset({"gift-card"}),
    )
    facts = PurchaseFacts(5500, "EUR", 0, TUESDAY_3PM, (CROISSANT, GIFT_CARD))
    outcome = earn_purchase(p, facts, StampHistory(None, 0), {})
    assert outcome.decision.reasons == (ReasonCode.BELOW_MINIMUM_PURCHASE,)


def test_a_bonus_needs_the_minimum_basket() -> None:
    small = basket_points(terms(BIG_BASKET_BONUS), *basket(CROISSANT), TUESDAY_3PM, {})
    big = basket_points(terms(BIG_BASKET_BONUS), 3000, (), TUESDAY_3PM, {})
    assert small.points == 50
    assert big.points == 300 + 50
    assert [(c.code, pts) for c, pts in big.awards] == [("big-basket", 50)]


def test_a_budget_awards_what_remains_then_stops() -> None:
    capped = CampaignTerms(
        campaign_id=4, code="capped", multiplier_milli=2000, bonus_points=30, budget_points=60
    )
    amount, lines = basket(CROISSANT)
    first = basket_points(terms(capped), amount, lines, TUESDAY_3PM, {4: CampaignUse(60)})
    assert first.points == 50 + 50 + 30 - 20  # 80 asked, 60 left: the bonus gives back 20
    assert [(c.code, pts) for c, pts in first.awards] == [("capped", 60)]
    assert first.earnings is not None
    assert [ln.points for ln in first.earnings.lines] == [100]
    assert [b.points for b in first.earnings.bonuses] == [10]
    over = CampaignTerms(campaign_id=4, code="capped", multiplier_milli=3000, budget_points=60)
    cut = basket_points(terms(over), amount, lines, TUESDAY_3PM, {4: CampaignUse(60)})
    assert cut.points == 110 and cut.earnings is not None  # 100 extra asked, 60 left
    assert [ln.points for ln in cut.earnings.lines] == [110]
    spent = basket_points(terms(capped), amount, lines, TUESDAY_3PM, {4: CampaignUse(0)})
    assert spent.points == 50 and spent.awards == ()


def test_awards_per_card_are_limited() -> None:
    once = CampaignTerms(campaign_id=5, code="once", bonus_points=20, max_awards_per_card=1)
    p = terms(once)
    assert basket_points(p, 1000, (), TUESDAY_3PM, {5: CampaignUse(None, 0)}).points == 120
    assert basket_points(p, 1000, (), TUESDAY_3PM, {5: CampaignUse(None, 1)}).points == 100


def test_the_sum_is_floored_not_each_line() -> None:
    thirds = [Line(f"s{i}", 1, 5, "x") for i in range(3)]  # 0.5 point each
    result = basket_points(terms(), 15, thirds, TUESDAY_3PM, {})
    assert result.points == 1
    assert result.earnings is not None
    assert sum(ln.points for ln in result.earnings.lines) + result.earnings.rest_points == 1


def test_hours_are_parsed_and_checked() -> None:
    assert parse_hours("14:00-17:30") == (840, 1050)
    assert parse_hours("00:00-24:00") == (0, 1440)
    for bad in ("17:00-14:00", "14-17", "14:00", "25:00-26:00", "14:60-15:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)


# --- returns -------------------------------------------------------------------------------


def _earned(
    amount: int, lines: tuple[Line, ...], *campaigns: CampaignTerms
) -> tuple[PurchaseRecord, Earnings]:
    result = basket_points(terms(*campaigns), amount, lines, TUESDAY_3PM, {})
    assert result.earnings is not None
    return PurchaseRecord(amount, result.points, 0), result.earnings


def test_a_return_with_lines_voids_what_those_units_earned_at_the_time() -> None:
    record, earnings = _earned(*basket(CROISSANT, COFFEE), DOUBLE_PASTRY_TUESDAY)
    card = CardBalance(card_id=1, points_balance=1000)
    outcome, after = decide_line_return(record, earnings, card, 250, [ReturnedLine("croissant", 1)])
    assert [c.points_delta for c in outcome.decision.changes] == [-50]  # half of 100
    assert outcome.decision.reasons == ()
    again, _ = decide_line_return(
        outcome.purchase, after, card, 250, [ReturnedLine("croissant", 1)]
    )
    assert [c.points_delta for c in again.decision.changes] == [-50]


def test_returning_more_units_than_bought_is_refused_for_the_excess() -> None:
    record, earnings = _earned(*basket(CROISSANT))
    card = CardBalance(card_id=1, points_balance=1000)
    outcome, after = decide_line_return(
        record, earnings, card, 500, [ReturnedLine("croissant", 3), ReturnedLine("tea", 1)]
    )
    assert outcome.decision.reasons == (ReasonCode.REFUND_EXCEEDS_PURCHASE,)
    assert [c.points_delta for c in outcome.decision.changes] == [-50]
    assert after.lines[0].returned == 2


def test_a_bonus_is_voided_when_the_basket_falls_under_its_minimum() -> None:
    big = (Line("cake", 1, 2500, "pastry"), Line("coffee", 2, 600, "drink"))
    record, earnings = _earned(*basket(*big), BIG_BASKET_BONUS)
    assert record.points_earned == 310 + 50
    card = CardBalance(card_id=1, points_balance=1000)
    outcome, _ = decide_line_return(record, earnings, card, 300, [ReturnedLine("coffee", 1)])
    assert [c.points_delta for c in outcome.decision.changes] == [-(30 + 50)]


def test_a_bonus_without_a_minimum_is_voided_when_every_unit_comes_back() -> None:
    welcome = CampaignTerms(campaign_id=6, code="any", bonus_points=25)
    record, earnings = _earned(*basket(CROISSANT, COFFEE), welcome)
    card = CardBalance(card_id=1, points_balance=1000)
    first, earnings = decide_line_return(
        record, earnings, card, 500, [ReturnedLine("croissant", 2)]
    )
    assert [c.points_delta for c in first.decision.changes] == [-50]
    last, _ = decide_line_return(first.purchase, earnings, card, 300, [ReturnedLine("coffee", 1)])
    assert [c.points_delta for c in last.decision.changes] == [-(30 + 25)]


def test_a_shortfall_is_reported_not_taken_below_zero() -> None:
    record, earnings = _earned(*basket(CROISSANT))
    card = CardBalance(card_id=1, points_balance=20)
    outcome, _ = decide_line_return(record, earnings, card, 500, [ReturnedLine("croissant", 2)])
    assert [c.points_delta for c in outcome.decision.changes] == [-20]
    assert outcome.decision.reasons == (ReasonCode.POINTS_SHORTFALL,)
    assert outcome.purchase.points_voided == 50


def test_earnings_survive_their_json() -> None:
    _, earnings = _earned(*basket(CROISSANT, GIFT_CARD, amount=5600), BIG_BASKET_BONUS)
    assert Earnings.from_json(earnings.as_json()) == earnings


# --- properties ------------------------------------------------------------------------------

SKUS = st.sampled_from(["croissant", "coffee", "cake", "gift", "tea"])
CATEGORIES = st.sampled_from([None, "pastry", "drink", "gift-card"])
LINES = st.lists(
    st.builds(
        Line,
        sku=SKUS,
        quantity=st.integers(1, 5),
        amount_cents=st.integers(0, 5000),
        category=CATEGORIES,
    ),
    max_size=6,
)
CAMPAIGNS = st.lists(
    st.builds(
        CampaignTerms,
        campaign_id=st.integers(1, 1000),
        code=st.just("c"),
        multiplier_milli=st.integers(1, 5000),
        bonus_points=st.integers(0, 100),
        min_basket_cents=st.integers(0, 5000),
        categories=st.frozensets(st.sampled_from(["pastry", "drink"]), max_size=1),
        budget_points=st.none() | st.integers(1, 500),
    ),
    max_size=3,
    unique_by=lambda c: c.campaign_id,
)


@settings(max_examples=300, deadline=None)
@given(
    lines=LINES,
    extra=st.just(0) | st.integers(0, 3000),
    campaigns=CAMPAIGNS,
    ppe=st.integers(0, 20),
)
def test_any_basket_earns_non_negative_points_and_a_full_return_voids_them_all(
    lines: list[Line], extra: int, campaigns: list[CampaignTerms], ppe: int
) -> None:
    p = program(
        POINTS,
        points_per_euro=ppe,
        campaigns=tuple(campaigns),
        non_earning_categories=frozenset({"gift-card"}),
    )
    amount = sum(ln.amount_cents for ln in lines) + extra
    uses = {c.campaign_id: CampaignUse(c.budget_points) for c in campaigns}
    result = basket_points(p, amount, lines, TUESDAY_3PM, uses)
    assert result.points >= 0
    for c, awarded in result.awards:
        assert c.budget_points is None or awarded <= c.budget_points
    if result.earnings is not None:
        e = result.earnings
        recorded = (
            sum(ln.points for ln in e.lines) + e.rest_points + sum(b.points for b in e.bonuses)
        )
        assert recorded == result.points
    record = PurchaseRecord(amount, result.points, 0)
    card = CardBalance(card_id=1, points_balance=result.points)
    if result.earnings is not None and lines and extra == 0:
        returned = [ReturnedLine(ln.sku, ln.quantity) for ln in lines]
        outcome, _ = decide_line_return(record, result.earnings, card, max(amount, 1), returned)
    else:
        outcome = decide_return(record, card, max(amount, 1))
    voided = -sum(
        c.points_delta for c in outcome.decision.changes if c.entry_type is LedgerType.POINTS_VOIDED
    )
    assert voided == result.points


@settings(max_examples=200, deadline=None)
@given(
    purchases=st.lists(st.tuples(LINES, st.integers(0, 2000)), min_size=1, max_size=15),
    budget=st.integers(1, 400),
    multiplier=st.integers(1000, 4000),
    bonus=st.integers(0, 60),
)
def test_a_budget_is_never_exceeded_over_many_purchases(
    purchases: list[tuple[list[Line], int]], budget: int, multiplier: int, bonus: int
) -> None:
    c = CampaignTerms(
        campaign_id=9,
        code="b",
        multiplier_milli=multiplier,
        bonus_points=bonus,
        budget_points=budget,
    )
    p = program(POINTS, points_per_euro=10, campaigns=(c,))
    awarded = 0
    for lines, extra in purchases:
        amount = sum(ln.amount_cents for ln in lines) + extra
        result = basket_points(p, amount, lines, TUESDAY_3PM, {9: CampaignUse(budget - awarded)})
        awarded += sum(max(0, pts) for _, pts in result.awards)
        assert awarded <= budget


def test_units_returned_over_several_returns_never_void_more_than_earned() -> None:
    record, earnings = _earned(*basket(Line("cake", 3, 1000, "pastry")))
    card = CardBalance(card_id=1, points_balance=1000)
    total = 0
    for _ in range(4):
        outcome, earnings = decide_line_return(record, earnings, card, 1, [ReturnedLine("cake", 1)])
        record = outcome.purchase
        total -= sum(c.points_delta for c in outcome.decision.changes)
    assert total == 100
    assert void_lines(earnings, [ReturnedLine("cake", 1)]).points_due == 0
