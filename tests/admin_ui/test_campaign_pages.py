"""The campaign pages as a merchant uses them: the form with its messages, the list with its
badges and budget bars, the status buttons, soft delete and restore, "Try on past traffic",
another merchant's campaigns out of reach, and the program's non-earning categories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nicegui.testing import User
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from admin_ui.queries import campaigns
from admin_ui.queries.admins import Principal
from core.enums import CampaignStatus
from domain.models import Campaign, LoyaltyProgram, UserRole
from tests.admin_ui.helpers import (
    ALICE,
    MAIN_FILE,
    PLATFORM,
    WAIT,
    element_error,
    enrol,
    purchase,
    set_value,
    sign_in,
    status_of,
    texts,
    value_of,
)

pytestmark = MAIN_FILE

PASTRY = {"sku": "croissant", "category": "pastry", "quantity": 2, "amount_cents": 500}
COFFEE = {"sku": "espresso", "category": "drink", "quantity": 1, "amount_cents": 300}


async def _campaign(
    db: AsyncSession, people: dict[str, Any], merchant: str = "a", **changes: Any
) -> int:
    """A campaign of the merchant's program made through the panel's service (a draft)."""
    me = Principal(0, "seed", UserRole.PLATFORM_ADMIN, None)
    scope = await campaigns.program_scope(db, me, people[f"{merchant}_program"])
    assert scope is not None
    data: dict[str, Any] = {
        "id": "double-pastry",
        "name": "Double pastries",
        "categories": ["pastry"],
        "multiplier": 2,
    }
    data.update(changes)
    campaign_id = await campaigns.create_campaign(db, me, scope, data)
    await db.commit()
    return campaign_id


async def _row(db: AsyncSession, campaign_id: int) -> Campaign:
    db.expire_all()
    campaign = await db.get(Campaign, campaign_id)
    assert campaign is not None
    return campaign


async def test_a_campaign_is_created_through_the_form_after_its_refusals(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to="/campaigns")  # the navigation leads to her program's list
    await user.should_see("No campaign here yet.", retries=WAIT)
    user.find(marker="new-campaign").click()
    await user.should_see(marker="campaign-create", retries=WAIT)
    user.find(marker="campaign-id").type("Double Tuesday")
    user.find(marker="campaign-name").type("Double points on Tuesday afternoons")
    user.find(marker="campaign-starts_at").type("next week")
    set_value(user, "campaign-hours-from", "14:00")
    set_value(user, "campaign-min_basket_cents", 12.345)  # euros, and not whole cents
    user.find(marker="campaign-create").click()
    await user.should_see(marker="campaign-errors", retries=WAIT)
    assert element_error(user, "campaign-id") == "must be lower-case letters, digits and '-'"
    assert element_error(user, "campaign-starts_at") == (
        "must be a date and time like 2026-03-31 14:00"
    )
    assert element_error(user, "campaign-hours-until") == (
        "give both times, or neither for all day"
    )
    assert element_error(user, "campaign-min_basket_cents") == (
        "must be an amount like 12.50, in whole cents"
    )
    # The summary names the fields as the form labels them, not by their keys.
    (summary,) = texts(user, "campaign-errors")
    assert "Code: must be lower-case" in summary and "Minimum basket: must be" in summary
    assert "min_basket" not in summary and "starts_at" not in summary, summary
    await user.should_not_see("Traceback")

    # Each field right, the campaign as a whole is checked: it must change something.
    user.find(marker="campaign-id").clear()
    user.find(marker="campaign-id").type("double-tuesday")
    set_value(user, "campaign-starts_at", "2026-01-01 00:00")
    set_value(user, "campaign-hours-until", "17:00")
    user.find(marker="campaign-create").click()
    await user.should_see("changes nothing", retries=WAIT)
    assert "changes nothing" in (element_error(user, "campaign-multiplier") or "")
    assert element_error(user, "campaign-id") is None
    assert (await db.scalars(select(Campaign))).all() == []

    set_value(user, "campaign-day-tue", True)
    user.find(marker="campaign-categories").type("pastry, bread")
    set_value(user, "campaign-multiplier", 2)
    set_value(user, "campaign-bonus_points", 25)
    set_value(user, "campaign-budget_points", 10000)
    set_value(user, "campaign-max_awards_per_card", 3)
    set_value(user, "campaign-min_basket_cents", 12.5)
    user.find(marker="campaign-create").click()
    await user.should_see("Campaign created as a draft.", retries=WAIT)
    await user.should_see(marker="campaign-activate", retries=WAIT)
    assert texts(user, "campaign-budget") == ["0 / 10,000 points"]

    campaign = (await db.scalars(select(Campaign))).one()
    assert (campaign.code, campaign.status) == ("double-tuesday", CampaignStatus.DRAFT)
    # Typed on Luxembourg's clock: midnight there is 23:00 UTC the day before.
    assert campaign.starts_at == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert (campaign.days, campaign.hours) == (["tue"], "14:00-17:00")
    assert (campaign.categories, campaign.skus) == (["pastry", "bread"], [])
    assert (campaign.multiplier, campaign.bonus_points) == (Decimal(2), 25)
    assert (campaign.budget_points, campaign.max_awards_per_card) == (10000, 3)
    assert campaign.min_basket_cents == 1250  # typed in euros, kept in cents
    # The form shows it back as typed.
    assert value_of(user, "campaign-min_basket_cents") == 12.5
    assert value_of(user, "campaign-starts_at") == "2026-01-01 00:00"
    assert value_of(user, "campaign-categories") == "pastry, bread"


async def test_the_list_shows_badges_budgets_and_deleted_ones_on_request(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    spent = await _campaign(db, people, id="coffee-bonus", name="Coffee bonus", categories=[])
    await _campaign(db, people, budget_points=None)
    await db.execute(
        update(Campaign)
        .where(Campaign.id == spent)
        .values(status=CampaignStatus.ACTIVE, budget_points=10000, points_awarded=7450)
    )
    await db.commit()
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}/campaigns")
    await user.should_see("7,450 / 10,000 points", retries=WAIT)
    await user.should_see("0 points · no budget")
    assert sorted(_badges(user)) == ["Active", "Draft"]
    await user.should_see("no end date · every day · all day")

    user.find(marker=f"campaign-pause-{spent}").click()
    await user.should_see("Campaign coffee-bonus paused.", retries=WAIT)
    await user.should_see(marker=f"campaign-resume-{spent}", retries=WAIT)

    user.find(marker=f"campaign-delete-{spent}").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("Campaign coffee-bonus deleted.", retries=WAIT)
    await user.should_not_see(marker=f"campaign-delete-{spent}", retries=WAIT)
    assert len(user.find(marker="campaigns-row").elements) == 1

    user.find(marker="campaigns-show-deleted").click()
    await user.should_see(marker=f"campaign-restore-{spent}", retries=WAIT)
    user.find(marker=f"campaign-restore-{spent}").click()
    await user.should_see("Campaign coffee-bonus restored.", retries=WAIT)
    restored = await _row(db, spent)
    assert (restored.deleted_at, restored.status) == (None, CampaignStatus.PAUSED)


def _badges(user: User) -> list[str]:
    return [e.text for e in user.find(marker="campaign-status").elements]  # type: ignore[attr-defined]


async def test_status_buttons_move_the_campaign_and_show_where_it_is(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    campaign_id = await _campaign(db, people)
    await sign_in(user, ALICE, to=f"/campaigns/{campaign_id}")
    await user.should_see(marker="campaign-activate", retries=WAIT)
    assert _badges(user) == ["Draft"]
    for button, outcome, badge in (
        ("campaign-activate", "Campaign activated.", "Active"),
        ("campaign-pause", "Campaign paused.", "Paused"),
        ("campaign-resume", "Campaign resumed.", "Active"),
    ):
        user.find(marker=button).click()
        await user.should_see(outcome, retries=WAIT)
        await user.should_see(marker="campaign-status", content=badge, retries=WAIT)
    assert (await _row(db, campaign_id)).status is CampaignStatus.ACTIVE

    user.find(marker="campaign-end").click()
    await user.should_see(marker="confirm-dialog", retries=WAIT)
    user.find(marker="confirm-no").click()
    await user.should_not_see(marker="confirm-dialog", retries=WAIT)
    assert (await _row(db, campaign_id)).status is CampaignStatus.ACTIVE
    user.find(marker="campaign-end").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see("Campaign ended.", retries=WAIT)
    await user.should_see(marker="campaign-status", content="Ended", retries=WAIT)
    await user.should_not_see(marker="campaign-resume")
    assert (await _row(db, campaign_id)).status is CampaignStatus.ENDED

    user.find(marker="campaign-delete").click()
    await user.should_see(marker="confirm-yes", retries=WAIT)
    user.find(marker="confirm-yes").click()
    await user.should_see(marker="campaigns-list", retries=WAIT)  # back on the list
    assert (await _row(db, campaign_id)).deleted_by == "admin:alice"
    await user.open(f"/campaigns/{campaign_id}")
    await user.should_see(marker="deleted-banner", retries=WAIT)
    user.find(marker="campaign-restore").click()
    await user.should_see("Campaign restored.", retries=WAIT)
    assert (await _row(db, campaign_id)).deleted_at is None


async def test_what_only_the_database_refuses_stands_under_its_field(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _campaign(db, people)
    other = await _campaign(db, people, id="bonus", name="Bonus", bonus_points=10, multiplier=1)
    await db.execute(update(Campaign).where(Campaign.id == other).values(points_awarded=700))
    await db.commit()
    await sign_in(user, PLATFORM, to=f"/campaigns/{other}")
    await user.should_see(marker="campaign-save", retries=WAIT)
    user.find(marker="campaign-id").clear()
    user.find(marker="campaign-id").type("double-pastry")
    set_value(user, "campaign-budget_points", 500)
    user.find(marker="campaign-save").click()
    await user.should_see(marker="campaign-errors", retries=WAIT)
    taken = "the program already has a campaign 'double-pastry'"
    assert element_error(user, "campaign-id") == taken
    assert "700 points the campaign has already awarded" in (
        element_error(user, "campaign-budget_points") or ""
    )
    assert (await _row(db, other)).code == "bonus"

    user.find(marker="campaign-id").clear()
    user.find(marker="campaign-id").type("bonus-10")
    set_value(user, "campaign-budget_points", 700)
    user.find(marker="campaign-save").click()
    await user.should_see("Campaign saved.", retries=WAIT)
    assert element_error(user, "campaign-id") is None
    saved = await _row(db, other)
    assert (saved.code, saved.budget_points, saved.points_awarded) == ("bonus-10", 700, 700)


async def test_another_merchants_campaigns_are_not_found(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    theirs = await _campaign(db, people, merchant="b", name="Secret plan of b")
    mine = await _campaign(db, people)
    await sign_in(user, ALICE)
    for path in (
        f"/programs/{people['b_program']}/campaigns",
        f"/programs/{people['b_program']}/campaigns/new",
        f"/campaigns/{theirs}",
        "/campaigns/999999",
        "/campaigns/not-a-number",
    ):
        status, body = await status_of(user, path)
        assert status == 404, path
        assert "not allowed to see it" in body, path
        assert "Secret plan" not in body and people["b_code"] not in body, path
    for path in (
        f"/programs/{people['a_program']}/campaigns",
        f"/programs/{people['a_program']}/campaigns/new",
        f"/campaigns/{mine}",
    ):
        status, body = await status_of(user, path)
        assert status == 200, path
    assert (await _row(db, theirs)).name == "Secret plan of b"


async def test_try_on_past_traffic_runs_the_unsaved_form_and_writes_nothing(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    store = people["a_store_codes"][0]
    card = await enrol(db, store, "regular@example.com")
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago in (2, 3, 9):
        await purchase(db, store, card, 800, day - timedelta(days=days_ago), [PASTRY, COFFEE])
    campaign_id = await _campaign(db, people, budget_points=120)
    await sign_in(user, ALICE, to=f"/campaigns/{campaign_id}")
    await user.should_see(marker="campaign-try", retries=WAIT)
    set_value(user, "campaign-multiplier", 3)  # not saved: the trial runs it all the same
    user.find(marker="campaign-try").click()
    await user.should_see(marker="trial-dialog", retries=WAIT)
    await user.should_see(marker="trial-chart", retries=WAIT)

    # 80 points a purchase; tripled pastries earn 100 more each, 120 in all at most.
    assert texts(user, "trial-purchases-value") == ["3"]
    assert texts(user, "trial-matched-value") == ["2"]
    assert texts(user, "trial-cards-value") == ["1"]
    assert texts(user, "trial-points-value") == ["120"]
    assert texts(user, "trial-cost-value") == ["1.20\u00a0EUR"]
    assert texts(user, "trial-ran-out-value") != ["not reached"]
    (totals,) = texts(user, "trial-totals")
    assert "240 without it" in totals and "360 with it" in totals and "+50.0%" in totals
    saved = await _row(db, campaign_id)
    assert (saved.multiplier, saved.points_awarded) == (Decimal(2), 0)

    # A shorter period, run again: the purchase of nine days ago is out of it.
    set_value(user, "trial-from", (day - timedelta(days=4)).date().isoformat())
    user.find(marker="trial-run").click()
    await user.should_see(marker="trial-chart", retries=WAIT)
    await user.should_see(marker="trial-purchases-value", content="2", retries=WAIT)
    set_value(user, "trial-from", "yesterday")
    user.find(marker="trial-run").click()
    await user.should_see("Give the first and the last day as dates", retries=WAIT)


async def test_the_program_form_sets_its_non_earning_categories(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await sign_in(user, ALICE, to=f"/programs/{people['a_program']}")
    await user.should_see(marker="program-campaigns", retries=WAIT)  # the way to its campaigns
    user.find(marker="program-non_earning_categories").type("gift-card, " + "x" * 65)
    user.find(marker="program-save").click()
    await user.should_see(marker="program-errors", retries=WAIT)
    assert element_error(user, "program-non_earning_categories") == (
        "entry 2 must have at most 64 characters"
    )
    user.find(marker="program-non_earning_categories").clear()
    user.find(marker="program-non_earning_categories").type("gift-card, tobacco")
    user.find(marker="program-save").click()
    await user.should_see("Program saved.", retries=WAIT)
    db.expire_all()
    program = await db.get(LoyaltyProgram, people["a_program"])
    assert program is not None and program.non_earning_categories == ["gift-card", "tobacco"]


async def test_a_platform_admin_chooses_the_program_whose_campaigns_to_see(
    user: User, people: dict[str, Any], db: AsyncSession
) -> None:
    await _campaign(db, people, merchant="b", name="Campaign of b")
    await sign_in(user, PLATFORM, to="/campaigns")
    await user.should_see(marker="campaign-programs-list", retries=WAIT)
    user.find(people["b_code"]).click()
    await user.should_see("Campaign of b", retries=WAIT)
    await user.should_see(marker="new-campaign")
